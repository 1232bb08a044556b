"""Fuse a Mul and the Add that alone reads it into one ``muladd`` (a * b + c, the compute
backend's three-operand kernel): a scale and a shift, as a batch norm that follows no convolution
becomes, or as dynamic quantization's products end (their sums times a scale computed at run time,
plus the bias). One pass over the tensor instead of two. It runs after ``fuse_residual`` (an Add
that a convolution or product takes as its residual costs nothing, cheaper still) and takes the
Add's fused activation along. A constant added after a ``muladd`` whose shift is a constant joins
that shift (a dynamically quantized LSTM's input projection: sums * scale + input bias, then + the
recurrent bias). A factor that is a tensor times one constant number, read by the ``muladd`` alone,
becomes the tensor and the muladd's ``scale`` (dynamic quantization's x_scale * w_scale, one tiny
dispatch per product: a * (x_scale * w_scale) + c with the same two roundings). A factor that is a
tensor times one number computed at run time becomes the tensor and the muladd's fourth input (and
where that number is a run-time number times a constant one, the constant its scale).
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name
from .patterns import Readers, constant_scale, made_by, other


def _shift_sum(graph: Graph, node: Node, readers: Readers) -> bool:
    """Add(muladd(a, b, c), d), c and d constants, the muladd without activation and read by the Add
    alone: the muladd takes c + d and the Add's activation, the Add goes."""
    for result in node.inputs:
        first, d = made_by(result, "muladd"), other(node, result)
        if first is None or d is result or not readers.only(result, node) or first.attrs.get("activation") is not None:
            continue
        c, out = first.inputs[2], node.outputs[0]
        if (not c.is_constant or not d.is_constant or c.dtype != "float32" or d.dtype != "float32"
                or np.broadcast_shapes(out.shape, c.shape, d.shape) != out.shape or result.shape != out.shape):
            continue
        total = (c.value.astype(np.float32) + d.value.astype(np.float32)).astype(np.float32)
        shift = Operand(fresh_name(c.name + "_shift"), total.shape, "float32", value=total)
        joined = Node("muladd", [first.inputs[0], first.inputs[1], shift] + first.inputs[3:], [out],
                      dict(first.attrs, activation=node.attrs.get("activation")), name=node.name)
        readers.substitute(graph, [first], node, joined)
        return True
    return False


def _factor(node: Node, readers: Readers, positions: tuple[int, ...], takes) -> tuple | None:
    """(position, the Mul, x, k) for the first of ``node``'s inputs at ``positions`` that is a Mul
    x * k (no activation) read by ``node`` alone, of x's shape, with ``takes(x, k)``; else None."""
    for at in positions:
        factor = node.inputs[at]
        mul = made_by(factor, "binary", "mul")
        if mul is None or not readers.only(factor, node):
            continue
        for x, k in (mul.inputs, mul.inputs[::-1]):
            if x is not k and x.shape == factor.shape and x.dtype == k.dtype == "float32" and takes(x, k):
                return at, mul, x, k
    return None


def _scale_into(graph: Graph, node: Node, readers: Readers) -> bool:
    """muladd(x * k, b, c) or muladd(a, x * k, c), k a constant number, x * k read by the muladd
    alone and of the shape it had: muladd(the other, x, c) with scale k."""
    found = None if node.attrs.get("scale") is not None else _factor(
        node, readers, (1, 0), lambda x, k: k.is_constant and k.size == 1 and not x.is_constant)
    if found is None:
        return False
    at, mul, x, k = found
    node.inputs = [node.inputs[1 - at], x] + node.inputs[2:]
    node.attrs = dict(node.attrs, scale=float(np.asarray(k.value, np.float32).reshape(())))
    readers.bypass(graph, mul, node, [x])
    return True


def _factor_into(graph: Graph, node: Node, readers: Readers) -> bool:
    """muladd(x * s, b, c) or muladd(a, x * s, c), s one number computed at run time (not a
    constant: ``_scale_into`` takes those), x * s read by the muladd alone and of x's shape:
    muladd(x, the other, c, s), a * (b * s) + c. Dynamic quantization's products times
    x_scale * w_scale, then a batch norm's scale and shift: one pass over the tensor instead of two
    (a model ``quantize_dynamic`` wrote without folding its batch norms first). Where s is itself a
    run-time number times a constant one (x_scale * w_scale), the constant becomes the scale."""
    found = None if len(node.inputs) > 3 else _factor(
        node, readers, (0, 1), lambda x, s: s.size == 1 and not s.is_constant and not x.is_constant)
    if found is None:
        return False
    at, mul, x, s = found
    node.inputs = [x, node.inputs[1 - at], node.inputs[2], s]
    readers.bypass(graph, mul, node, [x, s])
    constant_scale(graph, node, 3, readers)
    return True


def fuse_muladd(graph: Graph) -> int:
    readers = Readers(graph)
    fused = sum(_scale_into(graph, node, readers) for node in list(graph.nodes) if node.op == "muladd")
    fused += sum(_factor_into(graph, node, readers) for node in list(graph.nodes) if node.op == "muladd")
    for node in list(graph.nodes):
        if node.op != "binary" or node.attrs["kind"] != "add" or node.outputs[0].dtype != "float32":
            continue
        if node in graph.nodes and _shift_sum(graph, node, readers):
            fused += 1
            continue
        for product in node.inputs:
            mul = made_by(product, "binary", "mul")
            shift = other(node, product)
            if (mul is None or shift is product or not readers.only(product, node)
                    or any(t.dtype != "float32" for t in mul.inputs + [shift])):
                continue
            out = node.outputs[0]
            fusedop = Node("muladd", [mul.inputs[0], mul.inputs[1], shift], [out],
                           {"activation": node.attrs.get("activation")}, name=node.name)
            readers.substitute(graph, [mul], node, fusedop)
            fused += 1
            break
    return fused
