"""Fuse a scale and a shift by single numbers after a product's activation into its epilogue.

conv(x) with its activation, then Mul by a constant and Add of a constant (each one number, either
or both; Sub and Div as their Add and Mul), is conv(x) with ``affine_after`` = (scale, shift):
the epilogue computes act(v) * scale + shift after the activation (and after a residual added after
it), in the same pass. PP-LCNetV3's "learnable affine blocks" (PaddleOCR's PP-OCRv5) follow every
convolution's HardSwish with one: two passes over every activation tensor each. Where the product
has no activation, ``fold_conv_affine`` has already folded such constants into its weights. The
compute backend's (its epilogues take it; the texture path keeps the element-wise ops).
"""

from __future__ import annotations

from .. import ops
from ..graph import Graph
from .patterns import Readers, scalar

STEPS = {"mul": lambda c: (c, 0.0), "div": lambda c: (1.0 / c, 0.0), "add": lambda c: (1.0, c),
         "sub": lambda c: (1.0, -c)}


def _step(node, operand):
    """(scale, shift) of a binary node that scales or shifts ``operand`` by one number, else None."""
    if node.op != "binary" or node.attrs.get("activation") is not None or node.outputs[0].shape != operand.shape:
        return None
    kind = node.attrs["kind"]
    if kind not in STEPS or (kind in ("sub", "div") and node.inputs[0] is not operand):
        return None
    other = node.inputs[1] if node.inputs[0] is operand else node.inputs[0]
    value = scalar(other)
    if value is None or other is operand or (kind == "div" and value == 0.0):
        return None
    return STEPS[kind](value)


def fuse_affine_after_activation(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for product in list(graph.nodes):
        if (product.op not in ("conv2d", "matmul") or not ops.has_trait(product, "fusable")
                or product.attrs.get("activation") is None or product.attrs.get("heads") is not None
                or product.attrs.get("exact") or product.outputs[0].dtype not in ("float32", "float16")
                or any(product.attrs.get(q) is not None for q in ("requantize", "x_zero", "int8_offset"))):
            continue
        scale, shift = product.attrs.get("affine_after") or (1.0, 0.0)
        out, taken = product.outputs[0], []
        while True:
            users = readers.users.get(id(out), [])
            step = _step(users[0], out) if len(users) == 1 and readers.only(out, users[0]) else None
            if step is None:
                break
            scale, shift = scale * step[0], shift * step[0] + step[1]
            taken.append(users[0])
            out = users[0].outputs[0]
        if not taken:
            continue
        product.attrs["affine_after"] = (scale, shift)
        readers.take_over(graph, taken, out, product.outputs[0])
        fused += 1
    return fused
