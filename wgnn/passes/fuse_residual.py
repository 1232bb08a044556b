"""Fuse a residual Add into the convolution or matmul that produces one of its operands.

y = add(conv(x), skip) becomes conv(x, residual=skip): the kernel adds ``skip`` in its epilogue
before the activation, saving a dispatch and a full read and write of the activations. The conv
moves to the Add's place in the schedule, so ``skip`` is always ready when it runs.
"""

from __future__ import annotations

from .. import ops
from ..graph import Graph


def fuse_residual(graph: Graph) -> int:
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
            if (producer is None or not ops.has_trait(producer, "residual") or skip.is_constant
                    or producer.attrs.get("heads") is not None  # a residual is read in the product's own order
                    or producer.attrs.get("activation") is not None or len(producer.inputs) > 3
                    or skip.shape != out.shape or main.shape != out.shape
                    or len(users.get(id(main), [])) != 1 or id(main) in outputs or skip is main):
                continue
            inputs = producer.inputs + [None] * (3 - len(producer.inputs))
            producer.inputs = inputs + [skip]
            producer.attrs["activation"] = node.attrs.get("activation")
            graph.nodes.remove(producer)
            graph.nodes[graph.nodes.index(node)] = producer
            graph.replace_uses(out, main)
            main.name, out.name = out.name, main.name  # keep the user-visible name on the result
            fused += 1
            break
    return fused
