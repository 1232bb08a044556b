"""Fuse a Mul and the Add that alone reads it into one ``muladd`` (a * b + c, the compute
backend's three-operand kernel): a scale and a shift, as a batch norm that follows no convolution
becomes, or as dynamic quantization's products end (their sums times a scale computed at run time,
plus the bias). One pass over the tensor instead of two. It runs after ``fuse_residual`` (an Add
that a convolution or product takes as its residual costs nothing, cheaper still) and takes the
Add's fused activation along.
"""

from __future__ import annotations

from ..graph import Graph, Node
from .patterns import Readers, made_by, other


def fuse_muladd(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for node in list(graph.nodes):
        if node.op != "binary" or node.attrs["kind"] != "add" or node.outputs[0].dtype != "float32":
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
