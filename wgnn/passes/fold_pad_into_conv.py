"""Fold a zero padding of the spatial axes into the convolutions that alone read it.

pad(x, zeros around H and W) then conv2d(pads p) is conv2d(x, pads p + those): the convolution
reads the border as zeros anyway. Keras writes ZeroPadding2D before its strided and 'valid'
convolutions, and TFLite keeps it as a PAD op (MediaPipe's full-range face detector: 43 of them);
on the GPU each was a tensor-sized copy (five dispatches) that now costs nothing.
"""

from __future__ import annotations

from ..graph import Graph
from .patterns import Readers


def fold_pad_into_conv(graph: Graph) -> int:
    readers = Readers(graph)
    folded = 0
    for pad in list(graph.nodes):
        if (pad.op != "pad" or pad.attrs["mode"] != "constant" or float(pad.attrs["value"]) != 0.0
                or pad.attrs.get("quantize")):
            continue
        x, out, p = pad.inputs[0], pad.outputs[0], tuple(pad.attrs["pads"])
        if x.rank != 4 or min(p) < 0 or any(p[k] for k in (0, 1, 4, 5)) or x.dtype not in ("float32", "float16"):
            continue
        convs = list({id(c): c for c in readers.users.get(id(out), [])}.values())
        if not convs or id(out) in readers.outputs or not all(
                conv.op == "conv2d" and conv.inputs[0] is out and all(t is not out for t in conv.inputs[1:])
                and not conv.attrs.get("exact") and len(conv.inputs) <= 5  # (an x_scale: its 1x1 kernels take no
                # padding, passes.fold_channel_scale)
                and all(conv.attrs.get(k) is None for k in ("x_zero", "int8_offset", "requantize")) for conv in convs):
            continue
        for conv in convs:  # (BlazePose's heads: two depthwise convolutions read each padding)
            top, left, bottom, right = conv.attrs["pads"]
            conv.attrs["pads"] = (top + p[2], left + p[3], bottom + p[6], right + p[7])
            conv.inputs[0] = x
            readers.users.setdefault(id(x), []).append(conv)
        graph.nodes.remove(pad)
        readers.drop(pad)
        folded += 1
    return folded
