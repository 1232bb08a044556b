"""Let attention's matrix products store their results with the heads apart (or together again),
instead of a copy for each transpose.

Multi-head attention splits a (B, S, N) projection into heads with Reshape (B, S, H, D) and
Transpose (0, 2, 1, 3) (the keys with (0, 2, 3, 1), each head transposed), and joins the
(B, H, S, D) context the other way; each transpose is a copy on the GPU (the next product reads
its operands in logical order). Here the product that makes the tensor takes the pair over (its
``heads`` attribute, ``ops.nn.heads_layout``): its epilogue writes each vec4 where the transposed
tensor has it (``y_slice.wgsl``'s swap), or for the keys its four values S apart (the scatter). Only where
D and N are multiples of 4, so that a vec4 kernel runs it (the scalar one has no such store; a K
that is not, a ragged sequence's probabilities times the values, reads A as scalars), and the
product has no residual (read in its own order).
"""

from __future__ import annotations

from ..graph import Graph
from .patterns import Readers


def _fits(matmul, d: int) -> bool:
    out = matmul.outputs[0]
    return (matmul.attrs.get("heads") is None and len(matmul.inputs) <= 3 and matmul.attrs.get("requantize") is None
            and not matmul.attrs.get("exact") and d % 4 == 0 and out.shape[-1] % 4 == 0
            and out.dtype == "float32")


def fold_head_transposes(graph: Graph) -> int:
    readers = Readers(graph)
    folded = 0
    for node in list(graph.nodes):
        if node.op != "matmul" or node not in graph.nodes:
            continue
        out = node.outputs[0]
        users = readers.users.get(id(out), [])
        first = users[0] if len(users) == 1 and id(out) not in readers.outputs else None
        if first is None:
            continue
        second_out = first.outputs[0]
        then = readers.users.get(id(second_out), [])
        second = then[0] if len(then) == 1 and id(second_out) not in readers.outputs else None
        if second is None:
            continue
        swap, keys = (0, 2, 1, 3), (0, 2, 3, 1)
        # (second_out: the middle tensor, the Reshape's or the Transpose's result)
        split = (out.rank == 3 and first.op == "reshape" and second.op == "transpose" and second_out.rank == 4
                 and second_out.shape[:2] == out.shape[:2] and _fits(node, second_out.shape[3]))
        if split and tuple(second.attrs["perm"]) == swap:
            heads = ("split", second_out.shape[2])  # (B, S, N) -> (B, S, H, D) -> (B, H, S, D)
        elif split and tuple(second.attrs["perm"]) == keys:
            heads = ("split_t", second_out.shape[2])  # (B, S, N) -> (B, S, H, D) -> (B, H, D, S)
        elif (out.rank == 4 and first.op == "transpose" and tuple(first.attrs["perm"]) == swap
              and second.op == "reshape" and second.outputs[0].shape == (out.shape[0], out.shape[2],
                                                                         out.shape[1] * out.shape[3])
              and _fits(node, out.shape[3])):
            heads = ("merge", out.shape[1])  # (B, H, S, D) -> (B, S, H, D) -> (B, S, H * D)
        else:
            continue
        result = second.outputs[0]
        node.attrs["heads"] = heads
        node.outputs = [result]
        result.producer = node
        for dead in (first, second):
            graph.nodes.remove(dead)
            readers.drop(dead)
        folded += 1
    return folded
