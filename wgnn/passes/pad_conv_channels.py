"""Pad a convolution's input channels to a multiple of 4 (with zeros, and its filter with zero
input channels), so that the tiled ``conv2d`` kernel, which reads four channels as a vec4, runs it
instead of the scalar ``conv2d_generic``. A network's first layer (3 colour channels) is the case
this is for; the pad is one cheap copy of the input image.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name


def pad_conv_channels(graph: Graph) -> int:
    padded = 0
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.op == "conv2d" and node.attrs["groups"] == 1 and node.inputs[1].is_constant:
            x, w = node.inputs[0], node.inputs[1]
            extra = -x.shape[1] % 4
            if extra and w.shape[0] % 4 == 0:
                shape = (x.shape[0], x.shape[1] + extra) + x.shape[2:]
                wide = Operand(fresh_name(x.name + "_c4"), shape, x.dtype)
                pads = [0] * 8
                pads[5] = extra  # the end of axis 1
                pad = Node("pad", [x], [wide], {"pads": tuple(pads), "mode": "constant", "value": 0.0},
                           name=wide.name)
                wide.producer = pad
                weights = np.pad(w.value, ((0, 0), (0, extra), (0, 0), (0, 0)))
                node.inputs = [wide, Operand(w.name + "_c4", weights.shape, w.dtype, value=weights)] + node.inputs[2:]
                nodes.append(pad)
                padded += 1
        nodes.append(node)
    graph.nodes = nodes
    return padded
