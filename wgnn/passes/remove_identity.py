"""Drop Identity nodes (ONNX Identity and Dropout at inference become them): readers read the source."""

from __future__ import annotations

from ..graph import Graph


def remove_identity(graph: Graph) -> int:
    removed = 0
    kept = []
    for node in graph.nodes:
        if node.op == "identity" or (node.op == "cast" and node.attrs["to"] == node.inputs[0].dtype):
            graph.replace_uses(node.outputs[0], node.inputs[0])
            removed += 1
        else:
            kept.append(node)
    graph.nodes = kept
    return removed
