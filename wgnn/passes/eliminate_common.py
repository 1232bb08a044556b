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


def _attrs_key(node) -> tuple | None:
    """``node``'s attributes as a key, None where they cannot be compared exactly."""
    try:
        return tuple(sorted((k, _frozen(v)) for k, v in node.attrs.items()))
    except TypeError:
        return None


def eliminate_common_subexpressions(graph: Graph) -> int:
    outputs = graph.output_ids()
    # (op, input ids) -> [the first node kept, None] until a second node reads the same inputs with
    # the same op, then [None, {attributes' key: the first node kept with them}]: most nodes are
    # alone, and their attributes' keys are never made
    seen: dict[tuple, list] = {}
    kept, merged = [], 0
    merged_into: dict[int, object] = {}  # id(a merged node's output) -> the first node's
    for node in graph.nodes:
        graph.substitute(node, merged_into)
        reads = (node.op, tuple(None if i is None else id(i) for i in node.inputs))
        entry = seen.get(reads)
        if entry is None:
            seen[reads] = [node, None]
            kept.append(node)
            continue
        if entry[1] is None:
            alone, entry[0], entry[1] = entry[0], None, {}
            if (key := _attrs_key(alone)) is not None:
                entry[1][key] = alone
        key = _attrs_key(node)
        first = entry[1].get(key) if key is not None else None
        if first is None or any(id(o) in outputs for o in node.outputs) or len(first.outputs) != len(node.outputs):
            if key is not None:
                entry[1].setdefault(key, node)
            kept.append(node)
            continue
        for old, new in zip(node.outputs, first.outputs):
            merged_into[id(old)] = new
        merged += 1
    graph.substitute_outputs(merged_into)
    graph.nodes = kept
    return merged
