"""Drop dequantize -> quantize round trips that give back the integers they started from.

ONNX Runtime's quantizer (QDQ format) wraps every operator in dequantize/quantize pairs, also those
that move or select values without computing new ones: a Flatten before the classifier, a MaxPool.
With the same scale and zero point on both sides,

    quantize(views(dequantize(q))) = views(q)        quantize(maxpool(dequantize(q))) = maxpool(q)

because ``(q - zero) * scale / scale`` comes back to within a few float32 ulps of ``q - zero``, far
from a rounding boundary, and dequantizing is increasing (a positive scale), so the maximum of the
floats is the float of the maximum. The views and the pooling are rebuilt on the integers, and the
two element-wise passes go.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Graph, Node, Operand, fresh_name
from ..ops import static_value


def _moves_values(node: Node) -> bool:
    """A node whose result only moves or selects its input's values, in an order-preserving way."""
    return ops.has_trait(node, "view") or (node.op == "pool2d" and node.attrs.get("mode") == "max")


def _same_quantization(dq: Node, quant: Node) -> bool:
    scales = [static_value(dq.inputs[1]), static_value(quant.inputs[1])]
    zeros = [static_value(dq.inputs[2]), static_value(quant.inputs[2])]
    if any(v is None or v.size != 1 for v in scales + zeros) or dq.inputs[1].dtype != "float32":
        return False
    scale = np.float32(scales[0].reshape(()))
    return (bool(np.isfinite(scale) and scale > 0) and scale == np.float32(scales[1].reshape(()))
            and int(zeros[0].reshape(())) == int(zeros[1].reshape(()))
            and dq.inputs[0].dtype == quant.outputs[0].dtype and quant.inputs[1].dtype == "float32")


def drop_quant_roundtrips(graph: Graph) -> int:
    users = graph.consumers()
    dropped = 0
    for quant in list(graph.nodes):
        if quant.op != "quantize_linear":
            continue
        chain, x = [], quant.inputs[0]
        while (x.producer is not None and _moves_values(x.producer) and len(users.get(id(x), [])) == 1
               and all(t is None or t.is_constant for t in x.producer.inputs[1:])):
            chain.append(x.producer)
            x = x.producer.inputs[0]
        dq = x.producer
        if dq is None or dq.op != "dequantize_linear" or dq.attrs.get("shift") or not _same_quantization(dq, quant):
            continue
        q = dq.inputs[0]
        at = graph.nodes.index(quant)
        for step in reversed(chain):  # the same moves, on the integers
            moved = Operand(fresh_name(step.outputs[0].name + "_q"), step.outputs[0].shape, q.dtype)
            node = Node(step.op, [q] + step.inputs[1:], [moved], dict(step.attrs), name=moved.name)
            moved.producer = node
            graph.nodes.insert(at, node)
            at += 1
            q = moved
        graph.replace_uses(quant.outputs[0], q)
        graph.nodes.remove(quant)
        dropped += 1
    if dropped:
        graph.prune()
    return dropped
