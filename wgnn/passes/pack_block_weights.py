"""Keep a matrix product's blocked 4-bit (or 2- or 8-bit) weights packed: ONNX's own form of
weight-only quantization (opset 21's DequantizeLinear of int4 / uint4 weights in blocks along K,
what ONNX Runtime's ``MatMulNBitsQuantizer`` writes with ``quant_format=QDQ``).

A constant weight matrix W = DequantizeLinear(q, scale, zero_point, axis=0, block_size) read by
MatMul would fold into an f32 constant of K x N, and the product would run on the float kernels.
This rule folds it first, as ``fold_constants`` would (``fold``), and hands each product that
reads it as its weights the packed form too (``ops.quant.BlockWeights`` in ``attrs["nbits"]``:
the integers offset to unsigned, packed into words per column, each block's scale and zero
point), which the compute backend's ``nbits`` kernels read instead. Runs before the integer
rules: a product whose input is dequantized too (a statically quantized one) is left to them.
"""

from __future__ import annotations

import numpy as np

from ..graph import NARROW, Graph, Operand
from ..ops.quant import BlockWeights, pack_words
from .fold_constants import fold
from .patterns import Readers


def pack_block_weights(graph: Graph) -> int:
    if not any(node.op == "dequantize_linear" and node.attrs.get("block") for node in graph.nodes):
        return 0  # (the usual case: no readers to gather)
    readers = Readers(graph)
    packed = 0
    kept = []
    for node in graph.nodes:
        blocks = _blocks(node)
        users = readers.users.get(id(node.outputs[0]), []) if blocks is not None else []
        products = [u for u in users if u.op == "matmul" and len(u.inputs) > 1 and u.inputs[1] is node.outputs[0]
                    and not _dequantized(u.inputs[0])]
        if not products or id(node.outputs[0]) in readers.outputs:
            kept.append(node)
            continue
        x, scale, zero = (i.value for i in node.inputs)
        (const,) = fold(graph, node)
        bits, signed = NARROW[node.inputs[0].dtype]
        offset = 1 << (bits - 1) if signed else 0  # (q - z) = (q + offset) - (z + offset): unsigned
        zero = np.broadcast_to(zero.astype("int64"), x.shape)  # (none given: 0)
        described = BlockWeights(const.value, pack_words((x.astype("int64") + offset).T, bits),
                                 scale[::blocks].T.astype("float32"), (zero[::blocks] + offset).T.astype("float32"),
                                 bits, blocks)
        for product in products:
            product.attrs["nbits"] = described
        packed += 1
    graph.nodes = kept
    return packed


def _blocks(node) -> int | None:
    """The block size of a DequantizeLinear of constant 2-, 4- or 8-bit weights [K, N] in blocks of
    whole u32 words along K (its first axis), else None."""
    if node.op != "dequantize_linear" or not all(i is not None and i.is_constant for i in node.inputs):
        return None
    axis, block = node.attrs.get("block", (None, 0))
    x, scale, zero = node.inputs
    bits = NARROW.get(x.dtype, (0,))[0]
    if (bits not in (2, 4, 8) or x.rank != 2 or axis != 0 or not block or block * bits % 32
            or x.shape[0] % block or scale.shape != x.shape or zero.shape not in (x.shape, ())):
        return None
    return block


def _dequantized(operand: Operand | None) -> bool:
    return operand is not None and operand.producer is not None and operand.producer.op == "dequantize_linear"
