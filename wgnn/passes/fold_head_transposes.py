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

A dynamically quantized projection (T5's, BERT's through ``quantize_dynamic``) scales the product's
integer sums by a number computed at run time (the input's scale times the weights') before the
split, and may add its bias: element-wise steps by one number, or by a constant per column, commute
with the views (the constant split into heads as the columns are), so they move after them
(``_scale_after_split``) and the product still stores the heads apart; the steps then read and
write the split tensor in its order, where the attention product wanted a copy of it (T5's encoder
16 dispatches fewer, its decoder 48; a dynamically quantized MiniLM 12).
"""

from __future__ import annotations

from ..graph import Graph, Operand, fresh_name
from .patterns import Readers

SWAP, KEYS = (0, 2, 1, 3), (0, 2, 3, 1)


def _fits(matmul, d: int) -> bool:
    out = matmul.outputs[0]
    return (matmul.attrs.get("heads") is None and len(matmul.inputs) <= 3 and matmul.attrs.get("requantize") is None
            and d % 4 == 0 and out.shape[-1] % 4 == 0 and out.dtype == "float32")


def _per_column(other: Operand, n: int) -> bool:
    """Whether ``other`` is a constant of one value per column (of ``n``), broadcast over the rest."""
    return other.is_constant and other.size == n and other.rank >= 1 and other.shape[-1] == n


def _scale_after_split(graph: Graph) -> int:
    """matmul -> element-wise steps, each with a one-value tensor or a constant per column (a
    dynamically quantized product's scale, then its bias) -> reshape -> transpose (a head split)
    becomes matmul -> reshape -> transpose -> the steps, on the split tensor (a constant per column
    split into heads as the product's columns are)."""
    readers = Readers(graph)
    moved = 0
    for node in list(graph.nodes):
        if node.op != "matmul" or node.outputs[0].rank != 3:
            continue
        out = node.outputs[0]
        n = out.shape[-1]
        steps, cur = [], out  # (step, its other operand, whether the chain is its first input)
        while True:
            step = readers.sole(cur)
            if (step is None or step.op != "binary" or step.attrs.get("activation") is not None
                    or step.attrs["kind"] not in ("mul", "div", "add", "sub") or len(step.inputs) != 2
                    or step.inputs[0] is step.inputs[1]):
                break
            first = step.inputs[0] is cur
            other = step.inputs[1] if first else step.inputs[0]
            if (not (other.size == 1 or _per_column(other, n)) or step.outputs[0].shape != out.shape
                    or step.outputs[0].dtype != out.dtype):
                break
            steps.append((step, other, first))
            cur = step.outputs[0]
        reshape = readers.sole(cur) if steps else None
        if reshape is None or reshape.op != "reshape" or reshape.inputs[0] is not cur:
            continue
        split = reshape.outputs[0]
        transpose = readers.sole(split)
        perm = tuple(transpose.attrs["perm"]) if transpose is not None and transpose.op == "transpose" else None
        if (perm not in (SWAP, KEYS) or split.rank != 4 or split.shape[:2] != out.shape[:2]
                or not _fits(node, split.shape[3])):
            continue
        heads, d = split.shape[2], split.shape[3]
        column_shape = (1, heads, 1, d) if perm == SWAP else (1, heads, d, 1)  # (where the split puts a column)
        result = transpose.outputs[0]
        prev = Operand(fresh_name(f"{result.name}_unscaled"), result.shape, result.dtype, producer=transpose)
        reshape.inputs = [out] + reshape.inputs[1:]
        transpose.outputs = [prev]
        for step, _, _ in steps:
            graph.nodes.remove(step)
        at = graph.nodes.index(transpose) + 1
        for k, (step, other, first) in enumerate(steps):
            if other.size != 1:
                other = Operand(fresh_name(f"{other.name}_heads"), column_shape, other.dtype,
                                value=other.value.reshape(column_shape))
            made = result if k == len(steps) - 1 else Operand(fresh_name(f"{result.name}_step{k}"), result.shape,
                                                            result.dtype)
            step.inputs = [prev, other] if first else [other, prev]
            step.outputs = [made]
            made.producer = step
            graph.nodes.insert(at + k, step)
            prev = made
        readers = Readers(graph)
        moved += 1
    return moved


def fold_head_transposes(graph: Graph) -> int:
    _scale_after_split(graph)
    readers = Readers(graph)
    folded = 0
    for node in list(graph.nodes):
        if node.op != "matmul" or node not in graph.nodes:
            continue
        out = node.outputs[0]
        first = readers.sole(out)
        if first is None:
            continue
        second_out = first.outputs[0]
        second = readers.sole(second_out)
        if second is None:
            continue
        # (second_out: the middle tensor, the Reshape's or the Transpose's result)
        split = (out.rank == 3 and first.op == "reshape" and second.op == "transpose" and second_out.rank == 4
                 and second_out.shape[:2] == out.shape[:2] and _fits(node, second_out.shape[3]))
        if split and tuple(second.attrs["perm"]) == SWAP:
            heads = ("split", second_out.shape[2])  # (B, S, N) -> (B, S, H, D) -> (B, H, S, D)
        elif split and tuple(second.attrs["perm"]) == KEYS:
            heads = ("split_t", second_out.shape[2])  # (B, S, N) -> (B, S, H, D) -> (B, H, D, S)
        elif (out.rank == 4 and first.op == "transpose" and tuple(first.attrs["perm"]) == SWAP
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
