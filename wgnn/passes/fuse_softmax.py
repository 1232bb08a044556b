"""Softmax as one node: written out op by op, and with attention's scaling and mask folded in.

``softmax_written_out``: exp(x - max(x)) / sum(exp(x - max(x))) over the last axis, as JAX and
TensorFlow export ``jax.nn.softmax`` (Magika's classifier: a max, a subtraction with its exp, a
sum and a division, the reductions' results reshaped to broadcast back), becomes one softmax node:
one dispatch instead of four.

``fuse_softmax``: softmax(x / s + m) (or x * s, or either alone) over the last axis becomes one
softmax node with attribute ``scale`` and the additive mask ``m`` as a second input, which the
compute kernel adds as it reads each row (broadcasting it as numpy does): two passes over the
scores saved per attention layer.
"""

from __future__ import annotations

from ..graph import Graph, Node, Operand
from .patterns import Readers, live, made_by, other, scalar


def _row_reduction(operand: Operand, kind: str, x: Operand, readers: Readers, reader: Node) -> list[Node] | None:
    """[the reduction, any reshape after it] when ``operand`` is a ``kind`` reduction of ``x`` over
    its last axis (reshaped, if at all, to broadcast back over that axis), read by ``reader``
    alone; else None."""
    back = operand.shape  # what broadcasts back over x
    nodes = []
    if made_by(operand, "reshape") is not None:
        nodes.append(operand.producer)
        if not readers.only(operand, reader):
            return None
        reader, operand = operand.producer, operand.producer.inputs[0]
    reduce = made_by(operand, "reduce")
    if (reduce is None or reduce.attrs["kind"] != kind or reduce.inputs[0] is not x
            or tuple(reduce.attrs["axes"]) != (x.rank - 1,) or not readers.only(operand, reader)):
        return None
    return [reduce] + nodes if (1,) * (x.rank - len(back)) + tuple(back) == x.shape[:-1] + (1,) else None


def softmax_written_out(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for div in live(graph, "binary", "div"):
        e, total = div.inputs
        sub = e.producer
        act = sub.attrs.get("activation") if sub is not None and sub.op == "binary" else None
        if (act is None or act.kind != "exp" or sub.attrs["kind"] != "sub" or e.dtype != "float32"
                or e.shape != div.outputs[0].shape or id(e) in readers.outputs):
            continue
        x, peak = sub.inputs
        if x.shape != e.shape:
            continue
        top = _row_reduction(peak, "max", x, readers, sub)
        sums = _row_reduction(total, "sum", e, readers, div)
        users = readers.users.get(id(e), [])
        if top is None or sums is None or {id(u) for u in users} != {id(div), id(sums[0])} or len(users) != 2:
            continue
        node = Node("softmax", [x], list(div.outputs), {"axis": x.rank - 1}, name=div.name)
        readers.substitute(graph, top + [sub] + sums, div, node)
        fused += 1
    return fused


def fuse_softmax(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for node in list(graph.nodes):
        if node.op != "softmax" or len(node.inputs) != 1 or node.attrs["axis"] % max(node.inputs[0].rank, 1) != \
                node.inputs[0].rank - 1 or node.inputs[0].dtype != "float32":
            continue
        x, scale, mask, dead = node.inputs[0], node.attrs.get("scale", 1.0), None, []
        # (a mask under a scale already taken, softmax((x + m) * s), is no mask: the kernel adds it
        # unscaled, after x * s)
        plus = made_by(x, "binary", "add") if scale == 1.0 else None
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
