"""Drop an integer round trip of exact sums: a float result that holds integers exactly (a
quantized product's sums, marked ``exact``), cast to int32 and straight back to float32, is itself.
ONNX Runtime's dynamic quantization writes MatMulInteger (int32) then Cast (float32); wgnn computes
MatMulInteger's sums in f32, so the pair costs two passes and changes nothing.

``fuse_dequantize_sum`` (compute): after a ConvInteger, quantize_dynamic writes the int32 bias's Add
between the casts, then the Mul by x_scale * w_scale: cast(int32) -> add(int32 bias) ->
cast(float32) -> mul(scale), four passes over the product's result, become one ``dequantize_sum``
(``float32(int32(acc) + bias) * scale``: the same integer sum, rounded to float once as ONNX Runtime
rounds it).
"""

from __future__ import annotations

from ..graph import Graph, Node
from .patterns import Readers, made_by, other


def drop_exact_casts(graph: Graph) -> int:
    dropped = 0
    for node in graph.nodes:
        if node.op != "cast" or node.attrs["to"] != "float32":
            continue
        inner = made_by(node.inputs[0], "cast")
        if inner is None or inner.attrs["to"] not in ("int32", "int64"):
            continue
        source = inner.inputs[0]
        if not _exact_integers(source):
            continue
        graph.replace_uses(node.outputs[0], source)
        dropped += 1
    if dropped:
        graph.prune()
    return dropped


def _exact_integers(source) -> bool:
    """Whether ``source`` is a quantized product's f32 result holding integer sums exactly."""
    producer = source.producer
    return (producer is not None and source.dtype == "float32" and bool(producer.attrs.get("exact"))
            and producer.attrs.get("requantize") is None)


def _integer_cast(operand, to: str, readers: Readers, reader: Node) -> Node | None:
    """The cast to ``to`` that makes ``operand``, read by ``reader`` alone, else None."""
    cast = made_by(operand, "cast")
    return cast if cast is not None and cast.attrs["to"] == to and readers.only(operand, reader) else None


def fuse_dequantize_sum(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for mul in list(graph.nodes):  # (a rewrite removes casts and adds, never a Mul still to visit)
        if mul.op != "binary" or mul.attrs["kind"] != "mul":
            continue
        for value in mul.inputs:
            to_float = _integer_cast(value, "float32", readers, mul)
            add = made_by(to_float.inputs[0], "binary", "add") if to_float is not None else None
            if add is None or not readers.only(add.outputs[0], to_float) or value.shape != mul.outputs[0].shape:
                continue
            for acc in add.inputs:
                to_int = _integer_cast(acc, "int32", readers, add)
                if to_int is not None and _exact_integers(to_int.inputs[0]) and acc.shape == add.outputs[0].shape:
                    break
            else:
                continue
            bias, scale = other(add, acc), other(mul, value)
            if bias.dtype != "int32" or scale is value:
                continue
            node = Node("dequantize_sum", [to_int.inputs[0], scale, bias], list(mul.outputs),
                        {"activation": mul.attrs.get("activation")}, name=mul.name)
            readers.substitute(graph, [to_int, add, to_float], mul, node)
            fused += 1
            break
    return fused
