"""Drop nodes that pass their input through: Identity (ONNX Identity and Dropout at inference
become it), a cast to the type the tensor has, and arithmetic with a constant that changes nothing
(x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1, max(x, -inf), min(x, inf), the constant all zeros, ones or
infinities and no larger than x:
an unrolled LSTM's first step adds the product of its zero initial state). Readers read the source."""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand

# binary kind -> (the neutral value, whether it may stand first); max(x, -inf) is jax's softmax's
# maximum with an initial value (Magika)
NEUTRAL = {"add": (0, True), "sub": (0, False), "mul": (1, True), "div": (1, False), "max": (-np.inf, True),
           "min": (np.inf, True)}


def _passed_through(node: Node) -> Operand | None:
    """The input ``node`` passes through unchanged, or None."""
    if node.op == "identity" or (node.op == "cast" and node.attrs["to"] == node.inputs[0].dtype):
        return node.inputs[0]
    if node.op != "binary" or node.attrs["kind"] not in NEUTRAL or node.attrs.get("activation") is not None:
        return None
    value, either = NEUTRAL[node.attrs["kind"]]
    out = node.outputs[0]
    for x, c in (node.inputs, node.inputs[::-1]) if either else (node.inputs,):
        if (c.is_constant and not x.is_constant and x.shape == out.shape and x.dtype == out.dtype
                and np.all(np.asarray(c.value) == value)):
            return x
    return None


def remove_identity(graph: Graph) -> int:
    removed = 0
    kept = []
    passed: dict[int, Operand] = {}  # id(a removed node's output) -> what it passed through
    for node in graph.nodes:
        graph.substitute(node, passed)
        source = _passed_through(node)
        if source is not None:
            passed[id(node.outputs[0])] = source
            removed += 1
        else:
            kept.append(node)
    graph.substitute_outputs(passed)
    graph.nodes = kept
    return removed
