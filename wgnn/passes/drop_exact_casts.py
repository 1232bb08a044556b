"""Drop an integer round trip of exact sums: a float result that holds integers exactly (a
quantized product's sums, marked ``exact``), cast to int32 and straight back to float32, is itself.
ONNX Runtime's dynamic quantization writes MatMulInteger (int32) then Cast (float32); wgnn computes
MatMulInteger's sums in f32, so the pair costs two passes and changes nothing.

``fuse_dequantize_sum`` (compute): after a ConvInteger, quantize_dynamic writes the int32 bias's Add
between the casts, then the Mul by x_scale * w_scale: cast(int32) -> add(int32 bias) ->
cast(float32) -> mul(scale), four passes over the product's result, become one ``dequantize_sum``
(``float32(int32(acc) + bias) * scale``: the same integer sum, rounded to float once as ONNX Runtime
rounds it). Where that int32 bias is itself quantized at run time, cast(floor(bias / scale)) of a
constant float bias (ONNX Runtime's older quantize_dynamic), the ``dequantize_sum`` takes the float
bias and quantizes it itself (attr ``bias_scaled``), and a scale that is a run-time number times a
constant one (x_scale * w_scale) takes the constant as its ``scale``: the three one-value-per-channel
dispatches before each product's dequantization go (ddddocr's older recognizer: 63).
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name
from .patterns import Readers, constant_scale, made_by, other


def drop_exact_casts(graph: Graph) -> int:
    dropped = 0
    exact: dict[int, Operand] = {}  # id(a dropped cast's result) -> the sums it held
    for node in graph.nodes:
        graph.substitute(node, exact)
        if node.op != "cast" or node.attrs["to"] != "float32":
            continue
        inner = made_by(node.inputs[0], "cast")
        if inner is None or inner.attrs["to"] not in ("int32", "int64"):
            continue
        source = inner.inputs[0]
        if not _exact_integers(source):
            continue
        exact[id(node.outputs[0])] = source
        dropped += 1
    if dropped:
        graph.substitute_outputs(exact)
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
    for node in list(graph.nodes):
        if node.op == "dequantize_sum" and _bias_scaled(graph, node, readers):
            fused += 1
            constant_scale(graph, node, 1, readers)
    if fused:
        graph.prune()
    return fused


def _bias_scaled(graph: Graph, node: Node, readers: Readers) -> bool:
    """dequantize_sum(acc, s, [reshape] cast_int32(floor(b / s))), b a constant float bias: the
    dequantize_sum takes b (reshaped as the int32 bias was) and computes int32(floor(b / s)) itself.
    (ONNX Runtime's quantizer writes x_scale * w_scale twice, for the bias and for the
    dequantization: ``eliminate_common_subexpressions`` has made them one tensor by then.)"""
    if node.attrs.get("bias_scaled"):
        return False
    acc, scale, offset = node.inputs
    view = made_by(offset, "reshape")
    inner = view.inputs[0] if view is not None and readers.only(offset, node) else offset
    cast = _integer_cast(inner, "int32", readers, view if inner is not offset else node)
    div = cast.inputs[0].producer if cast is not None else None  # (made_by takes no fused activation)
    if div is None or div.op != "binary" or div.attrs["kind"] != "div" or not readers.only(cast.inputs[0], cast):
        return False
    act = div.attrs.get("activation")
    if act is None or act.kind != "floor":
        return False
    bias, divisor = div.inputs
    if not bias.is_constant or bias.dtype != "float32" or bias.size != offset.size or divisor is not scale:
        return False
    value = np.asarray(bias.value, np.float32).reshape(offset.shape)
    node.inputs = [acc, scale, Operand(fresh_name(bias.name + "_bias"), value.shape, "float32", value=value)]
    node.attrs = dict(node.attrs, bias_scaled=True)
    for dead in [cast, div] + ([view] if inner is not offset else []):
        graph.nodes.remove(dead)
        readers.drop(dead)
    return True
