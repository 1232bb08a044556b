"""Fuse a residual Add into the convolution or matmul that produces one of its operands.

y = add(conv(x), skip) becomes conv(x, residual=skip): the kernel adds ``skip`` in its epilogue
before the activation, saving a dispatch and a full read and write of the activations. The conv
moves to the Add's place in the schedule, so ``skip`` is always ready when it runs.

``fuse_residual_after_activation`` (the compute backend's) takes y = add(act(conv(x)), skip) too,
the conv's activation already in its epilogue: the residual is added after it (``residual_after``;
YOLOv5's and YOLOv8's bottlenecks, x + SiLU(conv(...))).

``narrow_padded_residuals`` (the compute backend's) lets a convolution read a residual that is a
tensor zero-padded along channels as that tensor: the vec4 epilogue adds zero beyond its channels
(MediaPipe's BlazeFace and BlazePose blocks widen their input with a channel pad before the add).
"""

from __future__ import annotations

from .. import ops
from ..graph import Graph
from .patterns import channel_tail_pad


def _taken(producer) -> bool:
    """Whether ``producer`` has inputs past its bias (a residual, a PRelu slope, a convolution's
    input scale) where a residual would go; a product's run-time factor (input 5,
    ``passes.fuse_product_factor``) leaves room for one."""
    if producer.op == "matmul":
        return any(t is not None for t in producer.inputs[3:5])
    return len(producer.inputs) > 3


def fuse_residual(graph: Graph, *, after_activation: bool = False) -> int:
    users = graph.consumers()
    outputs = graph.output_ids()
    fused = 0
    for node in list(graph.nodes):
        if node.op != "binary" or node.attrs["kind"] != "add":
            continue
        out = node.outputs[0]
        for k in (0, 1):
            main, skip = node.inputs[k], node.inputs[1 - k]
            producer = main.producer
            act = producer.attrs.get("activation") if producer is not None else None
            if (producer is None or not ops.has_trait(producer, "residual") or skip.is_constant
                    or producer.attrs.get("heads") is not None  # a residual is read in the product's own order
                    or producer.attrs.get("affine_after") is not None  # (the epilogue's last step)
                    or (act is not None) != after_activation or _taken(producer)
                    or (after_activation and (node.attrs.get("activation") is not None or producer.attrs.get("exact")
                                              or any(producer.attrs.get(q) is not None for q in
                                                     ("requantize", "x_zero", "int8_offset"))))
                    or skip.shape != out.shape or main.shape != out.shape
                    or len(users.get(id(main), [])) != 1 or id(main) in outputs or skip is main):
                continue
            inputs = producer.inputs + [None] * (4 - len(producer.inputs))
            inputs[3] = skip  # (after a product's factor, if it has one: passes.fuse_product_factor)
            producer.inputs = inputs
            if after_activation:
                producer.attrs["residual_after"] = True
            else:
                producer.attrs["activation"] = node.attrs.get("activation")
            graph.nodes.remove(producer)
            graph.nodes[graph.nodes.index(node)] = producer
            graph.replace_uses(out, main)
            main.name, out.name = out.name, main.name  # keep the user-visible name on the result
            fused += 1
            break
    return fused


def fuse_residual_after_activation(graph: Graph) -> int:
    return fuse_residual(graph, after_activation=True)


def narrow_padded_residuals(graph: Graph) -> int:
    """conv(x, residual=pad(r, channels c -> c + k, zeros)) -> conv(x, residual=r): the pad goes
    where nothing else reads it. Channel counts in fours (the epilogue reads whole vec4s); float
    convolutions only (a quantized one's residual is read as it is stored)."""
    narrowed = 0
    for node in graph.nodes:
        residual = node.inputs[3] if node.op == "conv2d" and len(node.inputs) > 3 else None
        pad = residual.producer if residual is not None else None
        added = channel_tail_pad(pad)
        if (added is None or added <= 0 or node.attrs.get("exact")
                or any(node.attrs.get(q) is not None for q in ("requantize", "x_zero", "int8_offset"))):
            continue
        r = pad.inputs[0]
        if (r.rank != 4 or r.is_constant or r.dtype not in ("float32", "float16") or r.shape[1] % 4
                or residual.shape[1] % 4):
            continue
        node.inputs[3] = r
        narrowed += 1
    return narrowed
