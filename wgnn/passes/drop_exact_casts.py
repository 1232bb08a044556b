"""Drop an integer round trip of exact sums: a float result that holds integers exactly (a
quantized product's sums, marked ``exact``), cast to int32 and straight back to float32, is itself.
ONNX Runtime's dynamic quantization writes MatMulInteger (int32) then Cast (float32); wgnn computes
MatMulInteger's sums in f32, so the pair costs two passes and changes nothing.
"""

from __future__ import annotations

from ..graph import Graph
from .patterns import made_by


def drop_exact_casts(graph: Graph) -> int:
    dropped = 0
    for node in graph.nodes:
        if node.op != "cast" or node.attrs["to"] != "float32":
            continue
        inner = made_by(node.inputs[0], "cast")
        if inner is None or inner.attrs["to"] not in ("int32", "int64"):
            continue
        source = inner.inputs[0]
        producer = source.producer
        if (producer is None or source.dtype != "float32" or not producer.attrs.get("exact")
                or producer.attrs.get("requantize") is not None):
            continue
        graph.replace_uses(node.outputs[0], source)
        dropped += 1
    if dropped:
        graph.prune()
    return dropped
