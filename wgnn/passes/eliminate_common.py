"""Compute once what a graph computes several times: nodes of the same op, the same attributes and
the same inputs become one (ONNX Runtime's common-subexpression elimination). Quantizers write such
graphs: a MatMulInteger converts and shifts its quantized input, and the three products of
attention's Q, K and V read one input, so each did it three times.

Nodes whose attributes hold arrays are left alone (no cheap exact comparison), and a node whose
output is a graph output is kept (others may be folded onto it).
"""

from __future__ import annotations

from ..graph import Graph

_SIMPLE = (int, float, str, bool, type(None))


def _frozen(value):
    """``value`` as a hashable key, or raise TypeError where it cannot be compared exactly."""
    if isinstance(value, _SIMPLE):
        return (type(value).__name__, value)
    if isinstance(value, (tuple, list)):
        return tuple(_frozen(v) for v in value)
    hash(value)  # frozen dataclasses (an Activation, a fused requantize) compare by their fields
    if type(value).__eq__ is object.__eq__:
        raise TypeError(f"{type(value).__name__} compares by identity")
    return (type(value).__name__, value)


def eliminate_common_subexpressions(graph: Graph) -> int:
    outputs = graph.output_ids()
    seen: dict[tuple, object] = {}
    kept, merged = [], 0
    for node in graph.nodes:
        try:
            key = (node.op, tuple(None if i is None else id(i) for i in node.inputs),
                   tuple(sorted((k, _frozen(v)) for k, v in node.attrs.items())))
        except TypeError:
            kept.append(node)
            continue
        first = seen.get(key)
        if first is None or any(id(o) in outputs for o in node.outputs) or len(first.outputs) != len(node.outputs):
            seen.setdefault(key, node)
            kept.append(node)
            continue
        for old, new in zip(node.outputs, first.outputs):
            graph.replace_uses(old, new)
        merged += 1
    graph.nodes = kept
    return merged
