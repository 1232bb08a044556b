"""Quantize straight into the shifted integers a product reads: where a quantized tensor is only
converted to float and its zero point subtracted (``cast(q) - cast(zero_point)``, how wgnn imports
MatMulInteger and ConvInteger on ONNX Runtime's dynamic quantization), the quantize writes
``q - zero_point`` in float itself (its ``shifted`` attribute, as ``integer_conv`` uses it): one
pass over the activations instead of three.
"""

from __future__ import annotations

from ..graph import Graph, Node, fresh_name
from ..ops.quant import quant_range
from .patterns import Readers, channel_tail_pad, made_by


def shift_quantized(graph: Graph) -> int:
    readers = Readers(graph)
    rewritten = 0
    for node in list(graph.nodes):
        if node.op != "binary" or node.attrs["kind"] != "sub" or node.attrs.get("activation") is not None:
            continue
        to_float, zero_float = (made_by(t, "cast") for t in node.inputs)
        if to_float is None or zero_float is None or node.outputs[0].dtype != "float32":
            continue
        q = to_float.inputs[0]
        quantize = made_by(q, "quantize_linear")
        if (quantize is None or quantize.attrs.get("shifted") or zero_float.inputs[0] is not quantize.inputs[2]
                or quantize.inputs[0].dtype != "float32" or q.shape != node.outputs[0].shape
                or {id(u) for u in readers.users.get(id(q), [])} != {id(to_float)} or id(q) in readers.outputs):
            continue
        out = node.outputs[0]
        shifted = Node("quantize_linear", list(quantize.inputs), [out], dict(quantize.attrs, shifted=True),
                       name=fresh_name(quantize.name + "_shifted"))
        readers.substitute(graph, [], node, shifted)
        rewritten += 1
    if rewritten:
        graph.prune()
    return rewritten


def quantize_in_channel_pad(graph: Graph) -> int:
    """pad(quantize_linear(x, scale, zero, shifted), zero channels at the end of a 4-D tensor) ->
    pad(x, scale, zero) with attr ``quantize`` (the quantize's bounds): per-tensor constant scale
    and zero point, x float32, the quantized tensor read by the pad alone."""
    readers = Readers(graph)
    fused = 0
    for node in graph.nodes:
        quantize = made_by(node.inputs[0], "quantize_linear") if node.op == "pad" else None
        if quantize is None or not quantize.attrs.get("shifted") or not (channel_tail_pad(node) or 0) > 0:
            continue
        x, scale, zero = quantize.inputs
        if (x.rank != 4 or x.dtype != "float32" or not scale.is_constant or not zero.is_constant
                or scale.size != 1 or zero.size != 1 or not readers.only(node.inputs[0], node)):
            continue
        node.inputs = [x, scale, zero]
        node.attrs = dict(node.attrs, quantize=tuple(quantize.attrs.get("range") or quant_range(zero.dtype)))
        fused += 1
    if fused:
        graph.prune()
    return fused
