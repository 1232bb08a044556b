"""Fuse a constant bias added after a matrix product into the product's epilogue.

y = add(matmul(a, W), c), with c one value per output column (or one in all), becomes
matmul(a, W, bias=c): how exporters write a linear layer (MatMul then Add), one dispatch instead
of two. A product that has a bias already takes the sum of both (an unrolled LSTM adds its input and
recurrent biases to the input projection one after the other). The residual add and activation that
often follow then fuse into the same epilogue.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Operand, fresh_name
from .patterns import Readers, made_by, other


def fuse_matmul_bias(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for node in list(graph.nodes):
        if node.op != "binary" or node.attrs["kind"] != "add" or node.attrs.get("activation") is not None:
            continue
        out = node.outputs[0]
        for product in node.inputs:
            matmul = made_by(product, "matmul")
            bias = other(node, product)
            if (matmul is None or len(matmul.inputs) not in (2, 3) or matmul.attrs.get("activation") is not None
                    or (len(matmul.inputs) == 3 and (matmul.inputs[2] is None or not matmul.inputs[2].is_constant))
                    or matmul.attrs.get("exact")  # a quantized product's integer sums (passes/integer_conv.py)
                    or matmul.attrs.get("heads") is not None
                    or product.dtype != "float32" or not bias.is_constant or bias.dtype != "float32"
                    or out.shape != product.shape or not readers.only(product, node) or product.rank == 0):
                continue
            n = product.shape[-1]
            if bias.size not in (1, n) or (bias.size == n > 1 and bias.shape[-1] != n) or bias.rank > product.rank:
                continue
            vector = np.broadcast_to(bias.value.reshape(-1), (n,)).astype(np.float32)
            if len(matmul.inputs) == 3:  # a bias already there (an LSTM's two): one sum of both
                vector = matmul.inputs[2].value.astype(np.float32) + vector
            matmul.inputs = matmul.inputs[:2] + [Operand(fresh_name(bias.name + "_columns"), (n,), "float32",
                                                         value=np.ascontiguousarray(vector))]
            graph.nodes.remove(node)
            graph.replace_uses(out, product)
            product.name, out.name = out.name, product.name  # keep the user-visible name on the result
            fused += 1
            break
    return fused
