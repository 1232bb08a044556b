"""Fold a zero padding of the spatial axes into the convolution that alone reads it.

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
        if pad.op != "pad" or pad.attrs["mode"] != "constant" or float(pad.attrs["value"]) != 0.0:
            continue
        x, out, p = pad.inputs[0], pad.outputs[0], tuple(pad.attrs["pads"])
        if x.rank != 4 or min(p) < 0 or any(p[k] for k in (0, 1, 4, 5)) or x.dtype not in ("float32", "float16"):
            continue
        users = readers.users.get(id(out), [])
        conv = users[0] if len(users) == 1 and id(out) not in readers.outputs else None
        if (conv is None or conv.op != "conv2d" or conv.inputs[0] is not out or conv.attrs.get("exact")
                or any(conv.attrs.get(k) is not None for k in ("x_zero", "int8_offset", "requantize"))):
            continue
        top, left, bottom, right = conv.attrs["pads"]
        conv.attrs["pads"] = (top + p[2], left + p[3], bottom + p[6], right + p[7])
        conv.inputs[0] = x
        graph.nodes.remove(pad)
        readers.drop(pad)
        readers.users.setdefault(id(x), []).append(conv)
        folded += 1
    return folded
