"""Compute a float16 model's graph as float32 inside, float16 at its edges.

A float16 ONNX model (ONNX Runtime's ``convert_float_to_float16`` writes them) has float16 tensors
throughout. wgnn's fp16 sessions store float tensors as f16 and compute in f32 whatever their
logical type, so a float16 tensor and a float32 one run alike, but the fusions are written for
float32 (a product's bias, layer norm, softmax, attention's heads, element-wise chains): the
converted all-MiniLM-L6-v2 ran 293 dispatches against 79 for the float32 file in an fp16 session.

This rule makes every float16 tensor inside the graph float32 (constants converted exactly; a Cast
to float16 becomes one to float32, its rounding left to the storage), and keeps the graph's
float16 inputs and outputs as they are, with a Cast after each input and before each output. The
session then takes and returns float16 arrays as before, and an fp16 session stores what it stored
before, but the graph the passes see is a float32 one. Runs once, first; a graph that reinterprets
float16 bits (BitCast) is left as it is.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name


def float32_inside(graph: Graph) -> int:
    edges = {id(o) for o in graph.inputs.values()} | graph.output_ids()
    inner = {}
    for node in graph.nodes:
        for t in node.inputs + node.outputs:
            if t is not None and t.dtype == "float16" and id(t) not in edges:
                inner[id(t)] = t
    edge_casts = [n for n in graph.nodes if n.op == "cast" and n.attrs.get("edge")]
    # (float16 inputs read by more than their casts; float16 outputs that no cast makes)
    open_inputs = any(t.dtype == "float16" and _read_inside(graph, t, edge_casts) for t in graph.inputs.values())
    open_outputs = any(t.dtype == "float16" and t.producer is not None and t.producer.op != "cast"
                       for t in graph.outputs.values())
    if not (inner or open_inputs or open_outputs):
        return 0
    if any(n.op == "bitcast" and "float16" in (n.attrs["to"], n.inputs[0].dtype) for n in graph.nodes):
        return 0
    widened = {}  # id(float16 value) -> its float32 copy
    changed = 0
    for t in inner.values():
        t.dtype = "float32"
        if t.value is not None:
            widened[id(t.value)] = t.value = t.value.astype(np.float32)
        changed += 1
    for node in graph.nodes:  # (a product's packed weights describe its weights' new array)
        packed = node.attrs.get("nbits")
        if packed is not None and id(packed.values) in widened:
            node.attrs = dict(node.attrs, nbits=dataclasses.replace(packed, values=widened[id(packed.values)]))
    for node in graph.nodes:
        if node.op == "cast" and node.attrs["to"] == "float16" and not node.attrs.get("edge"):
            node.attrs = dict(node.attrs, to="float32")
    casts = []
    for x in graph.inputs.values():
        if x.dtype == "float16" and _read_inside(graph, x, edge_casts):
            wide = Operand(fresh_name(x.name + "_f32"), x.shape, "float32")
            cast = Node("cast", [x], [wide], {"to": "float32", "edge": True}, name=wide.name)
            wide.producer = cast
            _reroute(graph, x, wide)
            casts.append(cast)
            changed += 1
    graph.nodes = casts + graph.nodes
    for y in list(graph.outputs.values()):
        producer = y.producer
        if y.dtype != "float16" or producer is None or y.is_input or (producer.op == "cast" and
                                                                       producer.attrs.get("edge")):
            continue
        wide = Operand(fresh_name(y.name + "_f32"), y.shape, "float32", producer=producer)
        producer.outputs = [wide if t is y else t for t in producer.outputs]
        _reroute(graph, y, wide)
        cast = Node("cast", [wide], [y], {"to": "float16", "edge": True}, name=fresh_name(y.name + "_f16"))
        y.producer = cast
        graph.nodes.append(cast)
        changed += 1
    return changed


def _read_inside(graph: Graph, x: Operand, edge_casts: list[Node]) -> bool:
    """Whether a node other than the edge casts reads graph input ``x``."""
    return any(t is x for node in graph.nodes if node not in edge_casts for t in node.inputs)


def _reroute(graph: Graph, old: Operand, new: Operand) -> None:
    """Every node that reads ``old`` reads ``new`` (not the graph's outputs, as ``replace_uses``
    would: an edge keeps its float16 operand)."""
    for node in graph.nodes:
        node.inputs = [new if t is old else t for t in node.inputs]
