"""Recognise hard swish and swish (SiLU) written out and fold each into one activation.

Exporters for opsets before 14 (which has HardSwish) write x * relu6(x + 3) / 6: Add, Clip (0, 6),
Mul, Div (or Mul by 1/6), in either grouping, or x * HardSigmoid(x) with alpha 1/6 and beta 0.5.
As one ``hard_swish`` activation it runs in the epilogue of the convolution before it (paddle2onnx's
PaddleOCR models: 28 in the recognizer, 24 in the detector, three dispatches each).

ONNX has no SiLU before opset 24's Swish: PyTorch writes x * Sigmoid(x), two dispatches after every
convolution of a YOLO detector (NudeNet's YOLOv8n: 57 of them, YOLOX's 71). ``fuse_swish`` makes it
one ``swish`` activation (alpha 1), which the convolution's epilogue then takes.
"""

from __future__ import annotations

from ..graph import Graph, Node, Operand
from ..ops.activation import Activation
from .patterns import Readers, live, made_by, near, other, scalar


def _relu6_of_x_plus_3(t: Operand, readers: Readers, reader: Node) -> tuple[Operand, list[Node]] | None:
    """(x, its nodes) when ``t`` is clip(x + 3, 0, 6) (a Clip after the Add, or in its epilogue)
    read by ``reader`` alone."""
    if t is None or not readers.only(t, reader):
        return None
    node = t.producer
    act = node.attrs.get("activation") if node is not None else None
    if node is not None and node.op == "activation" and act.kind == "clip":
        add = made_by(node.inputs[0], "binary", "add")
        nodes = [node, add]
        if add is None or not readers.only(node.inputs[0], node):
            return None
    elif node is not None and node.op == "binary" and node.attrs["kind"] == "add" and act is not None \
            and act.kind == "clip":
        add, nodes = node, [node]
    else:
        return None
    if not (act.alpha == 0.0 and near(act.beta, 6.0)):
        return None
    three = next((i for i in add.inputs if near(scalar(i), 3.0)), None)
    if three is None:
        return None
    return other(add, three), nodes


def _gate(t: Operand, readers: Readers, reader: Node) -> tuple[Operand, float, list[Node]] | None:
    """(x, the gate's scale, its nodes) when ``t`` is relu6(x + 3) (scale 6), relu6(x + 3) / 6 or
    HardSigmoid(x, 1/6, 0.5) (scale 1)."""
    found = _relu6_of_x_plus_3(t, readers, reader)
    if found is not None:
        return found[0], 6.0, found[1]
    node = t.producer if t is not None else None
    if node is None or not readers.only(t, reader):
        return None
    if node.op == "activation" and node.attrs["activation"].kind == "hard_sigmoid":
        act = node.attrs["activation"]
        if near(act.alpha, 1 / 6) and near(act.beta, 0.5):
            return node.inputs[0], 1.0, [node]
        return None
    if node.op == "binary" and node.attrs.get("activation") is None and node.attrs["kind"] in ("div", "mul"):
        k = scalar(node.inputs[1])
        if (node.attrs["kind"] == "div" and near(k, 6.0)) or (node.attrs["kind"] == "mul" and near(k, 1 / 6)):
            inner = _relu6_of_x_plus_3(node.inputs[0], readers, node)
            if inner is not None:
                return inner[0], 1.0, inner[1] + [node]
    return None


def fuse_hard_swish(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for node in list(graph.nodes):
        if node.op != "binary" or node.attrs.get("activation") is not None or node not in graph.nodes:
            continue
        kind, out = node.attrs["kind"], node.outputs[0]
        found = None
        if kind in ("div", "mul") and (near(scalar(node.inputs[1]), 6.0) if kind == "div" else
                                       near(scalar(node.inputs[1]), 1 / 6)):
            product = made_by(node.inputs[0], "binary", "mul")  # (x * relu6(x + 3)) / 6
            if product is not None and readers.only(node.inputs[0], node):
                for g in product.inputs:
                    gate = _gate(g, readers, product)
                    if gate is not None and gate[1] == 6.0 and gate[0] is other(product, g):
                        found = (gate[0], gate[2] + [product])
                        break
        elif kind == "mul":  # x * (relu6(x + 3) / 6), x * HardSigmoid(x)
            for g in node.inputs:
                gate = _gate(g, readers, node)
                if gate is not None and gate[1] == 1.0 and gate[0] is other(node, g):
                    found = (gate[0], gate[2])
                    break
        if found is None or found[0].shape != out.shape:
            continue
        x, dead = found
        swish = Node("activation", [x], [out], {"activation": Activation("hard_swish", 1 / 6, 0.5)}, name=node.name)
        readers.substitute(graph, dead, node, swish)
        fused += 1
    return fused


def fuse_swish(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for node in live(graph, "binary", "mul"):
        for gate in node.inputs:
            sigmoid = made_by(gate, "activation", "sigmoid")
            if sigmoid is None or sigmoid.inputs[0] is not other(node, gate) or not readers.only(gate, node):
                continue
            x, out = sigmoid.inputs[0], node.outputs[0]
            if x.shape != out.shape:
                continue
            swish = Node("activation", [x], [out], {"activation": Activation("swish", 1.0)}, name=node.name)
            readers.substitute(graph, [sigmoid], node, swish)
            fused += 1
            break
    return fused
