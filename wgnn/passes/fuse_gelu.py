"""Recognise GELU written out with Erf and fold it into one activation.

Exporters write GELU as x * 0.5 * (1 + erf(x / sqrt(2))) in five nodes (PyTorch: Div, Erf, Add,
Mul, Mul; the constant 0.5 in either product, or x / sqrt(2) as x * (1 / sqrt(2))). As one
``gelu`` activation it runs in one pass, or in the epilogue of the matrix product before it.
"""

from __future__ import annotations

import math

from ..graph import Graph, Node
from ..ops.activation import Activation
from .patterns import Readers, made_by, other, scalar

_TOLERANCE = 1e-4  # relative, on the constants 0.5, 1 and sqrt(2) as stored in float32 or float16


def _near(value: float | None, want: float) -> bool:
    return value is not None and abs(value - want) <= _TOLERANCE * abs(want)


def _erf_term(t, readers: Readers, mul: Node):
    """(x, the nodes from x / sqrt(2) to 1 + erf) when ``t`` is 1 + erf(x / sqrt(2)), else None."""
    plus = made_by(t, "binary", "add")
    if plus is None or not readers.only(t, mul):
        return None
    erf_out = next((i for i in plus.inputs if made_by(i, "activation", "erf") is not None), None)
    if erf_out is None or not _near(scalar(other(plus, erf_out)), 1.0) or not readers.only(erf_out, plus):
        return None
    erf = erf_out.producer
    scaled = erf.inputs[0]
    div, mul_by = made_by(scaled, "binary", "div"), made_by(scaled, "binary", "mul")
    if div is not None and _near(scalar(div.inputs[1]), math.sqrt(2.0)):
        x, inner = div.inputs[0], div
    elif mul_by is not None and any(_near(scalar(i), 1 / math.sqrt(2.0)) for i in mul_by.inputs):
        x, inner = next(i for i in mul_by.inputs if not _near(scalar(i), 1 / math.sqrt(2.0))), mul_by
    else:
        return None
    if not readers.only(scaled, erf):
        return None
    return x, [inner, erf, plus]


def fuse_gelu(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for node in list(graph.nodes):
        if node not in graph.nodes or made_by(node.outputs[0], "binary", "mul") is not node:
            continue
        # The product's three factors x, 0.5 and 1 + erf(x / sqrt(2)), in any grouping of two products.
        for inner_out in node.inputs:
            inner = made_by(inner_out, "binary", "mul")
            if inner is None or not readers.only(inner_out, node):
                continue
            factors = list(inner.inputs) + [other(node, inner_out)]
            half = next((f for f in factors if _near(scalar(f), 0.5)), None)
            if half is None:
                continue
            rest = [f for f in factors if f is not half]
            for t, x in (rest, rest[::-1]):
                owner = inner if t in inner.inputs else node
                found = _erf_term(t, readers, owner)
                if found is None or found[0] is not x or x.shape != node.outputs[0].shape:
                    continue
                gelu = Node("activation", [x], node.outputs, {"activation": Activation("gelu")}, name=node.name)
                readers.substitute(graph, found[1] + [inner], node, gelu)
                fused += 1
                break
            else:
                continue
            break
    return fused
