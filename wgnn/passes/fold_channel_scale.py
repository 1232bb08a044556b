"""A per-channel scale of a 1x1 convolution's input folded into the convolution: ``conv(x * s)``
with s one value per channel of a single image, shape (1, C, 1, 1), becomes ``conv(x)`` with s as
its sixth input (``x_scale``). A squeeze-and-excitation block (MobileNetV3, EfficientNet: selfie
segmentation has ten) multiplies its input by such a gate, computed from that input's global pool,
and a 1x1 convolution alone reads the product: a pass over the whole tensor and a copy of it in
memory, for what the convolution's matrix kernels do as they load their weights (s[k] B[k], the
same products; ``x_scale.wgsl``). Only where the compute backend's kernels for a 1x1 convolution
can run it: one image, channels in fours, constant weights, no quantization."""

from __future__ import annotations

from ..graph import Graph, Node, Operand
from .patterns import Readers, live


def _scale_of(product: Node) -> tuple[Operand, Operand] | None:
    """(x, s) of ``x * s`` with s of shape (1, C, 1, 1) and x (1, C, H, W), either order."""
    for x, s in (product.inputs, product.inputs[::-1]):
        if (x.rank == 4 and s.rank == 4 and x.shape[0] == 1 and s.shape == (1, x.shape[1], 1, 1)
                and x.shape[2] * x.shape[3] > 1 and not x.is_constant and x.dtype == s.dtype):
            return x, s
    return None


def _takes_scale(conv: Node, x: Operand) -> bool:
    a = conv.attrs
    w = conv.inputs[1]
    return (conv.inputs[0] is x and all(t is not x for t in conv.inputs[1:]) and len(conv.inputs) <= 5
            and w.is_constant
            and w.shape[2:] == (1, 1) and tuple(a["strides"]) == (1, 1) and not any(a["pads"])
            and a["groups"] == 1 and w.shape[0] % 4 == 0 and w.shape[1] % 4 == 0
            and not any(a.get(q) is not None for q in ("x_zero", "requantize", "int8_offset", "heads"))
            and not a.get("exact"))


def fold_channel_scale(graph: Graph) -> int:
    readers = Readers(graph)
    folded = 0
    for node in live(graph, "binary", "mul"):
        found = _scale_of(node) if node.attrs.get("activation") is None else None
        users = readers.users.get(id(node.outputs[0]), [])
        if found is None or len(users) != 1 or not readers.only(node.outputs[0], users[0]):
            continue
        conv = users[0]
        if conv.op != "conv2d" or not _takes_scale(conv, node.outputs[0]):
            continue
        x, s = found
        readers.bypass(graph, node, conv, [x, s])
        conv.inputs = [x] + conv.inputs[1:] + [None] * (5 - len(conv.inputs)) + [s]
        folded += 1
    return folded
