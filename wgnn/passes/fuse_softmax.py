"""Fold attention's scaling and mask into the softmax that follows them.

softmax(x / s + m) (or x * s, or either alone) over the last axis becomes one softmax node with
attribute ``scale`` and the additive mask ``m`` as a second input, which the compute kernel adds
as it reads each row (broadcasting it as numpy does): two passes over the scores saved per
attention layer.
"""

from __future__ import annotations

from ..graph import Graph
from .patterns import Readers, made_by, other, scalar


def fuse_softmax(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for node in list(graph.nodes):
        if node.op != "softmax" or len(node.inputs) != 1 or node.attrs["axis"] % max(node.inputs[0].rank, 1) != \
                node.inputs[0].rank - 1 or node.inputs[0].dtype != "float32":
            continue
        x, scale, mask, dead = node.inputs[0], node.attrs.get("scale", 1.0), None, []
        plus = made_by(x, "binary", "add")
        if plus is not None and readers.only(x, node):
            for term in plus.inputs:
                m = other(plus, term)
                if term.shape == x.shape and m is not term and m.dtype == "float32" and m.rank <= x.rank:
                    x, mask = term, m
                    dead.append(plus)
                    break
        scaled = made_by(x, "binary", "div") or made_by(x, "binary", "mul")
        if scaled is not None and readers.only(x, dead[-1] if dead else node):
            kind = scaled.attrs["kind"]
            for term in scaled.inputs[:1] if kind == "div" else scaled.inputs:
                s = scalar(other(scaled, term))
                if s is not None and s != 0 and term.shape == x.shape:
                    x, scale = term, scale / s if kind == "div" else scale * s
                    dead.append(scaled)
                    break
        if not dead:
            continue
        for gone in dead:
            graph.nodes.remove(gone)
            readers.drop(gone)
        node.inputs = [x] + ([mask] if mask is not None else [])
        node.attrs["scale"] = float(scale)
        fused += 1
    return fused
