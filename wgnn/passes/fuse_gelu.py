"""Recognise GELU written out and fold it into one activation.

Exporters write GELU as x * 0.5 * (1 + erf(x / sqrt(2))) in five nodes (PyTorch: Div, Erf, Add,
Mul, Mul; the constant 0.5 in either product, or x / sqrt(2) as x * (1 / sqrt(2))), and its tanh
approximation x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))) in nine or ten (JAX and
TensorFlow through tf2onnx: the cube as three products, Magika's convolutions; Hugging Face's
``gelu_new``: a Pow). As one ``gelu`` activation (alpha 1: the tanh form) it runs in one pass, or
in the epilogue of the product before it.
"""

from __future__ import annotations

import math

from ..graph import Graph, Node
from ..ops.activation import Activation
from .patterns import Readers, live, made_by, near, other, scalar


def _factors(t, readers: Readers, owner: Node) -> tuple[list, list[Node]]:
    """The factors of ``t`` through products that only the product tree reads (each a leaf
    operand), and those products."""
    mul = made_by(t, "binary", "mul")
    if mul is None or not readers.only(t, owner):
        return [t], []
    leaves, nodes = [], [mul]
    for operand in mul.inputs:
        more, inner = _factors(operand, readers, mul)
        leaves += more
        nodes += inner
    return leaves, nodes


def _reader(operand, nodes: list[Node]) -> Node:
    return next(n for n in nodes if any(i is operand for i in n.inputs))


def _tanh_inner(scaled, readers: Readers, tanh: Node):
    """(x, the nodes from x^3 to the scaled sum) when ``scaled`` is sqrt(2 / pi) * (x + 0.044715 *
    x^3), in any grouping of the products, the cube as x * x * x or Pow(x, 3); else None."""
    factors, nodes = _factors(scaled, readers, tanh)
    sums = [f for f in factors if made_by(f, "binary", "add") is not None]
    if (len(factors) != 2 or len(sums) != 1 or not any(near(scalar(f), math.sqrt(2 / math.pi)) for f in factors)
            or not readers.only(sums[0], _reader(sums[0], nodes))):
        return None
    plus = sums[0].producer
    for x, cube in (plus.inputs, plus.inputs[::-1]):
        leaves, products = _factors(cube, readers, plus)
        constants = [f for f in leaves if near(scalar(f), 0.044715)]
        if len(constants) != 1:
            continue
        rest = [f for f in leaves if f is not constants[0]]
        if len(rest) == 3 and all(f is x for f in rest):
            return x, nodes + [plus] + products
        power = made_by(rest[0], "binary", "pow") if len(rest) == 1 else None
        if (power is not None and power.inputs[0] is x and near(scalar(power.inputs[1]), 3.0)
                and readers.only(rest[0], _reader(rest[0], products))):
            return x, nodes + [plus] + products + [power]
    return None


def _gelu_term(t, readers: Readers, mul: Node):
    """(x, the nodes from x to 1 + erf or 1 + tanh, the activation's alpha) when ``t`` is
    1 + erf(x / sqrt(2)) (alpha 0) or 1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)) (alpha 1), else
    None."""
    plus = made_by(t, "binary", "add")
    if plus is None or not readers.only(t, mul):
        return None
    tanh_out = next((i for i in plus.inputs if made_by(i, "activation", "tanh") is not None), None)
    if tanh_out is not None and near(scalar(other(plus, tanh_out)), 1.0) and readers.only(tanh_out, plus):
        found = _tanh_inner(tanh_out.producer.inputs[0], readers, tanh_out.producer)
        return None if found is None else (found[0], found[1] + [tanh_out.producer, plus], 1.0)
    erf_out = next((i for i in plus.inputs if made_by(i, "activation", "erf") is not None), None)
    if erf_out is None or not near(scalar(other(plus, erf_out)), 1.0) or not readers.only(erf_out, plus):
        return None
    erf = erf_out.producer
    scaled = erf.inputs[0]
    div, mul_by = made_by(scaled, "binary", "div"), made_by(scaled, "binary", "mul")
    if div is not None and near(scalar(div.inputs[1]), math.sqrt(2.0)):
        x, inner = div.inputs[0], div
    elif mul_by is not None and any(near(scalar(i), 1 / math.sqrt(2.0)) for i in mul_by.inputs):
        x, inner = next(i for i in mul_by.inputs if not near(scalar(i), 1 / math.sqrt(2.0))), mul_by
    else:
        return None
    if not readers.only(scaled, erf):
        return None
    return x, [inner, erf, plus], 0.0


def fuse_gelu(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for node in live(graph, "binary", "mul"):
        # The product's three factors x, 0.5 and 1 + erf(x / sqrt(2)), in any grouping of two products.
        for inner_out in node.inputs:
            inner = made_by(inner_out, "binary", "mul")
            if inner is None or not readers.only(inner_out, node):
                continue
            factors = list(inner.inputs) + [other(node, inner_out)]
            half = next((f for f in factors if near(scalar(f), 0.5)), None)
            if half is None:
                continue
            rest = [f for f in factors if f is not half]
            for t, x in (rest, rest[::-1]):
                owner = inner if t in inner.inputs else node
                found = _gelu_term(t, readers, owner)
                if found is None or found[0] is not x or x.shape != node.outputs[0].shape:
                    continue
                gelu = Node("activation", [x], node.outputs, {"activation": Activation("gelu", found[2])},
                            name=node.name)
                readers.substitute(graph, found[1] + [inner], node, gelu)
                fused += 1
                break
            else:
                continue
            break
    return fused
