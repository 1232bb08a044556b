"""Quantize straight into the shifted integers a product reads: where a quantized tensor is only
converted to float and its zero point subtracted (``cast(q) - cast(zero_point)``, how wgnn imports
MatMulInteger and ConvInteger on ONNX Runtime's dynamic quantization), the quantize writes
``q - zero_point`` in float itself (its ``shifted`` attribute, as ``integer_conv`` uses it): one
pass over the activations instead of three.
"""

from __future__ import annotations

from ..graph import Graph, Node, fresh_name
from .patterns import Readers, made_by


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
