"""A product's scale computed at run time, and the bias after it, into the product's epilogue
(compute backend).

A dynamically quantized product ends in ``muladd(sums, s, bias)`` with ``scale`` k: its integer
sums times x_scale * w_scale (x_scale found at run time, w_scale a constant), plus the float bias;
often an activation (BERT's GELU) or a residual add follows. The matmul takes s as its ``factor``
input (one number read from its own binding) and k as attr ``factor_scale``, the bias as its own
and the muladd's activation: the epilogue computes sums * (s * k) + bias, the muladd's arithmetic
in its order, and a residual add after it then fuses as into any product (``fuse_residual``).
Where the muladd adds a tensor of the result's shape instead of a bias (T5's projections, no bias,
straight into the residual stream), that tensor is the product's residual. A Mul of the result by
such a number alone (T5's attention projections) is the same with no bias. One dispatch and one
pass over the product's result fewer per product: quantized MiniLM's six layers, 36 of them.

The bias must be a constant that is one value per column of the product, also where the product
stores attention's heads apart (``heads``: a bias of shape (1, H, 1, D) after a head split is the
product's column bias, ``fold_head_transposes._scale_after_split`` put it there).
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name
from ..ops.nn import heads_layout
from .patterns import Readers, made_by, per_channel, run_time_times_constant


def _column_bias(c: Operand, product: Node) -> np.ndarray | None:
    """``c`` (a constant added to the product's result) as one value per column of the product, or
    None where it varies otherwise (along rows, the batch, or a merged head's columns)."""
    out, n = product.outputs[0], product.inputs[1].shape[-1]
    heads = product.attrs.get("heads")
    if not c.is_constant or c.dtype != "float32" or c.rank > out.rank or (heads is not None and heads[0] == "merge"):
        return None
    # the product's column at each place of its result, for one row (heads apart: where they go)
    columns = np.arange(n).reshape((1,) * (out.rank - 1) + (n,)) if heads is None else \
        heads_layout(np.arange(n).reshape(1, 1, n), heads)
    value = c.value.reshape((1,) * (out.rank - c.rank) + c.shape)
    if any(d not in (1, o) or (d > 1 and k == 1) for d, o, k in zip(value.shape, out.shape, columns.shape)):
        return None  # (a value that varies where the columns do not)
    bias = np.zeros(n, np.float32)
    bias[columns] = np.broadcast_to(value, columns.shape)
    return bias


def _fuse(graph: Graph, node: Node, readers: Readers) -> bool:
    """``node`` (a muladd of the product's result, a run-time number and a bias or a residual; or a
    Mul of the result by such a number) into the product before it; whether it was."""
    if node.op == "muladd":
        if len(node.inputs) != 3:
            return False
        y, s, c = node.inputs
    else:
        if len(node.inputs) != 2:
            return False
        c = None
        y, s = node.inputs if made_by(node.inputs[0], "matmul") is not None else node.inputs[::-1]
    product = y.producer
    act = node.attrs.get("activation")
    if (product is None or product.op != "matmul" or len(product.inputs) != 2 or not readers.only(y, node)
            or y is s or y.shape != node.outputs[0].shape or y.dtype != "float32" or node.outputs[0].dtype != "float32"
            or s.is_constant or s.size != 1 or s.dtype != "float32" or (act is not None and act.kind == "prelu")
            or any(product.attrs.get(k) is not None for k in ("activation", "requantize", "affine_after", "nbits"))
            or product.inputs[1].rank < 2):
        return False
    n, residual = product.inputs[1].shape[-1], None
    if c is not None and not c.is_constant:  # sums * s + a tensor of the result's shape: its residual
        if c.shape != y.shape or c.dtype != "float32" or c is y or product.attrs.get("heads") is not None:
            return False  # (a residual is read in the product's own order: no heads apart)
        c, residual = None, c
    bias = _column_bias(c, product) if c is not None else np.zeros(n, np.float32)
    if bias is None:
        return False
    # s = x_scale * w_scale (a Mul only this node reads): x_scale the factor, w_scale its scale
    scale = node.attrs.get("scale") if node.op == "muladd" else None
    found = None if scale is not None else run_time_times_constant(s, node, readers)
    factor, k = (s, 1.0 if scale is None else scale) if found is None else found[:2]
    if found is not None:
        graph.nodes.remove(found[2])
        readers.drop(found[2])
    bias_operand = Operand(fresh_name(f"{c.name if c is not None else product.name}_columns"), bias.shape, "float32",
                           value=bias)
    fused = Node("matmul", product.inputs + [bias_operand, residual, None, factor], node.outputs,
                 dict(product.attrs, activation=act, factor_scale=float(k)), name=product.name)
    readers.substitute(graph, [product], node, fused)
    return True


def fuse_product_factor(graph: Graph) -> int:
    readers = Readers(graph)
    scalings = [node for node in graph.nodes
                if node.op == "muladd" or (node.op == "binary" and node.attrs["kind"] == "mul")]
    return sum(_fuse(graph, node, readers) for node in scalings if node in graph.nodes)


def _fuse_into_conv(graph: Graph, node: Node, readers: Readers) -> bool:
    """``node`` (a dequantize_sum of a quantized convolution's integer sums, a run-time number and
    an integer or float bias) into the convolution's epilogue; whether it was."""
    acc, s, c = node.inputs
    conv = acc.producer
    act = node.attrs.get("activation")
    if (conv is None or conv.op != "conv2d" or not conv.attrs.get("exact") or not readers.only(acc, node)
            or conv.attrs["groups"] != 1 or any(t is not None for t in conv.inputs[2:])
            or any(conv.attrs.get(k) is not None for k in ("activation", "requantize", "affine_after", "x_zero",
                                                            "int8_offset", "factor_scale"))
            or s.is_constant or s.size != 1 or s.dtype != "float32" or acc.shape != node.outputs[0].shape
            or node.outputs[0].dtype != "float32" or (act is not None and act.kind == "prelu")):
        return False
    # (the offset or bias one value per output channel; int32 offsets exact in f32)
    bias = np.zeros(acc.shape[1]) if c is None else per_channel(c, acc, ("float32", "int32"))
    if bias is None or (c is not None and c.dtype == "int32" and np.abs(bias).max(initial=0) >= 2**24):
        return False
    bias = bias.astype(np.float32)
    bias_operand = Operand(fresh_name(f"{conv.name}_offsets"), bias.shape, "float32", value=bias)
    fused = Node("conv2d", [conv.inputs[0], conv.inputs[1], bias_operand, None, None, None, s], node.outputs,
                 dict(conv.attrs, activation=act, factor_scale=float(node.attrs.get("scale", 1.0)),
                      offset_bias="floor" if node.attrs.get("bias_scaled") else "exact"), name=conv.name)
    readers.substitute(graph, [conv], node, fused)
    return True


def fuse_dequantize_sum_into_conv(graph: Graph) -> int:
    """A dynamically quantized convolution's tail, ``dequantize_sum(sums, x_scale, bias)`` (its
    ``scale`` w_scale, ``passes.drop_exact_casts``), into the convolution's epilogue: the bias one
    value per output channel (an int32 one exact in f32), added to the integer sums before the
    factor x_scale * w_scale as the dequantize_sum adds it (``fused_epilogue``'s ``offset_bias``),
    then its activation. The factor is the convolution's seventh input (its sixth, an x_scale, is
    never there: such a convolution has a float input). ddddocr's older recognizer: 21 dispatches
    fewer."""
    readers = Readers(graph)
    return sum(_fuse_into_conv(graph, node, readers) for node in list(graph.nodes)
               if node.op == "dequantize_sum" and node in graph.nodes)
