"""A sum of squares read from a product of a tensor with itself: ``reduce(x * x, "sum")`` becomes
``reduce(x, "sum_square")``, which squares each value as it reads it (the same f32 products, the
same sums). Flax's layer normalization (E[x^2] - E[x]^2) and the l2 norms exporters write out
(Magika's) square a whole tensor only for one reduction to read it: a pass over the tensor and its
copy in memory saved."""

from __future__ import annotations

from ..graph import Graph
from .patterns import Readers, live, made_by


def fold_square_into_reduce(graph: Graph) -> int:
    readers = Readers(graph)
    folded = 0
    for node in live(graph, "reduce"):
        square = made_by(node.inputs[0], "binary", "mul")
        if (node.attrs["kind"] != "sum" or square is None or square.inputs[0] is not square.inputs[1]
                or not readers.only(node.inputs[0], node)):
            continue
        readers.bypass(graph, square, node, [square.inputs[0]])
        node.inputs = [square.inputs[0]]
        node.attrs["kind"] = "sum_square"
        folded += 1
    return folded
