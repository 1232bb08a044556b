"""A one-hot encoding times a matrix is a lookup of the matrix's rows.

JAX's ``one_hot`` and Keras' embeddings written as dense layers export (through tf2onnx) as
Equal(indices[..., 1], range(K)) -> Cast(float) -> MatMul(W[K, N]): a tensor of K floats per index,
most of them zeros, then a product that multiplies through them. Row ``i`` of W is what that
product gives, and a zero row where the index matches nothing (outside 0..K-1, no wrapping): a
``gather`` of W's rows with ``outside="zero"`` computes the same, exactly, without either. Magika's
first layer (2048 bytes, each one of 257 values, into 64 features): the comparison, the cast and a
product of 67 MFLOP become one copy of 0.5 MB.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name
from .patterns import Readers, made_by


def _indices(equal: Node, k: int) -> Operand | None:
    """The integer operand that ``equal`` compares with range(k) along its last axis, else None."""
    for idx, table in (equal.inputs, equal.inputs[::-1]):
        if (table.is_constant and not idx.is_constant and table.size == k and table.shape[-1] == k
                and np.array_equal(np.asarray(table.value).reshape(-1), np.arange(k))
                and idx.dtype in ("int32", "int64", "uint8", "int8", "int16", "uint16")
                and idx.rank == equal.outputs[0].rank and idx.shape[:-1] == equal.outputs[0].shape[:-1]
                and idx.shape[-1] == 1):
            return idx
    return None


def one_hot_products_as_gathers(graph: Graph) -> int:
    readers = Readers(graph)
    found = 0
    for mm in list(graph.nodes):
        if mm.op != "matmul" or len(mm.inputs) != 2 or mm.attrs.get("activation") is not None:
            continue
        a, w = mm.inputs
        cast = made_by(a, "cast")
        if w is None or not w.is_constant or w.rank != 2 or cast is None or not readers.only(a, mm):
            continue
        equal = made_by(cast.inputs[0], "binary", "equal")
        if (cast.attrs["to"] != w.dtype or equal is None
                or not readers.only(cast.inputs[0], cast) or a.shape[-1] != w.shape[0]):
            continue
        idx = _indices(equal, w.shape[0])
        if idx is None:
            continue
        flat = Operand(fresh_name(idx.name + "_rows"), idx.shape[:-1], idx.dtype)
        reshape = Node("reshape", [idx], [flat], {"shape": flat.shape}, name=flat.name)
        flat.producer = reshape
        gather = Node("gather", [w, flat], mm.outputs, {"axis": 0, "outside": "zero"}, name=mm.name)
        graph.nodes.insert(graph.nodes.index(mm), reshape)
        readers.users.setdefault(id(idx), []).append(reshape)
        readers.substitute(graph, [equal, cast], mm, gather)
        found += 1
    return found
