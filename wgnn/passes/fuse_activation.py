"""Fuse an activation into the epilogue of the conv, depthwise, matmul or element-wise op before it.

The producer must have no activation yet and no other reader. PRelu fuses into conv and matmul
when its slope is a constant with one value per output channel (or one in all).
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Graph, Operand


def _channel_slope(producer, slope: Operand, out: Operand) -> Operand | None:
    """The slope as a per-channel vector for ``producer``'s output, or None if it isn't one."""
    if not slope.is_constant or producer.op not in ("conv2d", "conv_transpose2d", "matmul") or slope.rank > out.rank:
        return None
    axis = out.rank - 1 if producer.op == "matmul" else 1
    channels = out.shape[axis]
    value = slope.value.astype(np.float32)
    shape = (1,) * (out.rank - value.ndim) + value.shape
    if value.size == 1:
        vec = np.full(channels, value.reshape(-1)[0], np.float32)
    elif shape[axis] == channels and all(d == 1 for k, d in enumerate(shape) if k != axis):
        vec = value.reshape(-1)
    else:
        return None
    return Operand(slope.name + "_per_channel", (channels,), "float32", value=vec)


def fuse_activation(graph: Graph) -> int:
    users = graph.consumers()
    outputs = graph.output_ids()
    fused = 0
    kept = []
    for node in graph.nodes:
        x = node.inputs[0] if node.op == "activation" else None
        producer = x.producer if x is not None else None
        if (producer is None or not ops.has_trait(producer, "fusable") or producer.attrs.get("activation")
                or len(users.get(id(x), [])) != 1 or id(x) in outputs or producer not in kept):
            kept.append(node)
            continue
        act = node.attrs["activation"]
        if act.kind == "prelu":
            slope = _channel_slope(producer, node.inputs[1], x) if len(producer.inputs) <= 4 else None
            if slope is None:
                kept.append(node)
                continue
            producer.inputs = producer.inputs + [None] * (4 - len(producer.inputs)) + [slope]
        producer.attrs["activation"] = act
        out = node.outputs[0]
        graph.replace_uses(out, x)
        x.name = out.name
        fused += 1
    graph.nodes = kept
    return fused
