"""Run a transposed convolution whose filter equals its stride as a 1x1 convolution and a shuffle.

With a KH x KW filter, strides (KH, KW), no padding and no dilation, every output pixel
(i * KH + a, j * KW + b) takes exactly one input pixel, (i, j), through one slice of the filter,
w[:, :, a, b]: the transposed convolution is a 1x1 convolution to KH * KW * Cout channels (channel
(a * KW + b) * Cout + o) followed by moving each channel group to its place in the larger image (a
``depth_to_space``: one strided copy, channels-last in and out). The compute path's convolution
kernels run that 1x1 product on vec4 tiles; its transposed convolution kernel is scalar. The
epilogue (bias, activation, PRelu slope) goes with the 1x1 convolution, repeated for each of the
KH * KW positions. PP-OCR's text detectors end in two (2x2, stride 2), MediaPipe's selfie
segmentation in one.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name


def transposed_as_pixel_shuffle(graph: Graph) -> int:
    rewritten = 0
    for node in list(graph.nodes):
        if node.op != "conv_transpose2d":
            continue
        x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
        ins = node.inputs + [None] * (5 - len(node.inputs))
        bias, slope = ins[2], ins[4]
        if (x.rank != 4 or not w.is_constant or node.attrs["groups"] != 1
                or tuple(node.attrs["strides"]) != tuple(w.shape[2:]) or tuple(node.attrs["dilations"]) != (1, 1)
                or any(node.attrs["pads"]) or (bias is not None and not bias.is_constant)
                or (slope is not None and not slope.is_constant) or ins[3] is not None
                or tuple(out.shape[2:]) != (x.shape[2] * w.shape[2], x.shape[3] * w.shape[3])):
            continue
        n, c, h, wd = x.shape
        cin, o, kh, kw = w.shape
        k = kh * kw
        weights = np.ascontiguousarray(w.value.transpose(2, 3, 1, 0).reshape(k * o, cin, 1, 1))
        shuffled = [None if t is None else Operand(fresh_name(f"{t.name}_shuffled"), (k * t.size,), t.dtype,
                                                   value=np.tile(np.asarray(t.value).reshape(-1), k))
                    for t in (bias, slope)]
        inputs = [x, Operand(fresh_name(w.name + "_shuffled"), weights.shape, w.dtype, value=weights), shuffled[0]]
        if slope is not None:
            inputs += [None, shuffled[1]]  # (no residual)
        deep = Operand(fresh_name(node.name + "_depth"), (n, k * o, h, wd), out.dtype)
        conv = Node("conv2d", inputs, [deep], {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0),
                                               "groups": 1, "activation": node.attrs.get("activation")},
                    name=node.name)
        if "onnx_op" in node.attrs:
            conv.attrs["onnx_op"] = node.attrs["onnx_op"]
        deep.producer = conv
        shuffle = Node("depth_to_space", [deep], [out], {"block": (kh, kw)}, name=node.name + "_shuffle")
        out.producer = shuffle
        at = graph.nodes.index(node)
        graph.nodes[at:at + 1] = [conv, shuffle]
        rewritten += 1
    return rewritten
