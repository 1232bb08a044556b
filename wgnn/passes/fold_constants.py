"""Evaluate, once at compile time, every node whose inputs are all known: constants, initializers,
and shapes (every shape is static, so Shape -> Gather -> Concat chains and ConstantOfShape fold)."""

from __future__ import annotations

from .. import ops
from ..graph import Graph, Operand


def fold_constants(graph: Graph) -> int:
    folded = 0
    kept = []
    for node in graph.nodes:
        known = node.op == "shape" or all(i is None or i.is_constant for i in node.inputs)
        if not known or node.op == "relayout":
            kept.append(node)
            continue
        fold(graph, node)
        folded += 1
    graph.nodes = kept
    return folded


def fold(graph: Graph, node) -> list[Operand]:
    """Evaluate ``node``, whose inputs are all known, and make its readers read the constants it
    gives (returned); the caller drops the node from ``graph.nodes``."""
    args = [None if i is None else i.value for i in node.inputs]
    if node.op == "shape":
        args = [node.inputs[0]]  # the reference only needs .shape
    consts = []
    for out, value in zip(node.outputs, ops.get(node.op).reference(node, args)):
        # (as it is where it has the dtype already: a transposed or sliced view of a weight stays a
        # view of it, which the plans of other shapes then recognise, Graph.derive)
        const = Operand(out.name, out.shape, out.dtype, value=value.astype(out.dtype, copy=False).reshape(out.shape))
        graph.replace_uses(out, const)
        consts.append(const)
    return consts
