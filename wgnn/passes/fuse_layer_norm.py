"""Recognise layer normalization written out as reductions and element-wise ops, and make it one
``layer_norm`` node (one dispatch of the compute backend's row kernel instead of nine).

The pattern is what wgnn's own LayerNormalization lowers to and what exporters wrote before ONNX
had the op (opset < 17): over trailing axes A,

    mean = ReduceMean(x, A); c = x - mean; var = ReduceMean(c * c, A)   (or Pow(c, 2))
    y = c / Sqrt(var + eps)   (or c * Reciprocal(Sqrt(var + eps)), the reciprocal also as 1 / ...)
    then, optionally, y * gamma and + beta (constants over the normalized axes);

and RMS normalization, the same without the mean (T5's, LLaMA's, ONNX's RMSNormalization,
ONNX Runtime's SimplifiedLayerNormalization: three dispatches, Pow, ReduceMean and the rest fused,
become one): y = x / Sqrt(ReduceMean(x * x, A) + eps) (or Pow(x, 2), or a reciprocal's product).

A mean or deviation that something else reads (LayerNormalization's optional outputs) leaves the
pattern as it is.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name
from .patterns import Readers, made_by, other, scalar


def _trailing_mean(node: Node | None, x: Operand) -> tuple[int, ...] | None:
    """The axes of ``node`` when it is a keepdims mean of ``x`` over its trailing axes."""
    if node is None or node.attrs.get("kind") != "mean" or not node.attrs.get("keepdims") or node.inputs[0] is not x:
        return None
    axes = tuple(sorted(node.attrs["axes"]))
    return axes if axes and axes == tuple(range(x.rank - len(axes), x.rank)) else None


def _affine(value: Operand | None, x: Operand, axis: int) -> np.ndarray | None:
    """A float constant that broadcasts over the normalized axes alone, as one value per element
    of a row (their product), else None."""
    if value is None or not value.is_constant or value.dtype != "float32" or value.rank > x.rank:
        return None
    shape = (1,) * (x.rank - value.rank) + tuple(value.shape)
    if any(d != 1 for d in shape[:axis]):
        return None
    try:
        row = np.broadcast_to(value.value.reshape(shape[axis:]), x.shape[axis:])
    except ValueError:
        return None
    return np.ascontiguousarray(row.reshape(-1), np.float32)


def _root_of_mean_square(node: Node, c: Operand, readers: Readers):
    """(epsilon, the mean of squares' axes, its nodes) when ``node`` is c / Sqrt(mean(c * c) + eps)
    or c * Reciprocal(Sqrt(...)) (the reciprocal also as 1 / Sqrt(...)), the mean over trailing
    axes, each step read by the next alone; else None."""
    d = other(node, c)
    if node.attrs["kind"] == "div":
        if node.inputs[0] is not c:
            return None
        chain = []
    else:
        recip = made_by(d, "activation", "reciprocal") or made_by(d, "binary", "div")
        if recip is None or (recip.op == "binary" and scalar(recip.inputs[0]) != 1.0) or not readers.only(d, node):
            return None
        chain, d = [recip], recip.inputs[-1]
    sqrt = made_by(d, "activation", "sqrt")
    plus = made_by(sqrt.inputs[0], "binary", "add") if sqrt is not None else None
    if plus is None or not readers.only(d, chain[0] if chain else node) or not readers.only(sqrt.inputs[0], sqrt):
        return None
    var_out = next((i for i in plus.inputs if made_by(i, "reduce") is not None), None)
    epsilon = scalar(other(plus, var_out)) if var_out is not None else None
    var = made_by(var_out, "reduce")
    square_out = var.inputs[0] if var is not None else None
    if epsilon is None or epsilon < 0 or not readers.only(var_out, plus) or not readers.only(square_out, var):
        return None
    square = made_by(square_out, "binary", "mul") or made_by(square_out, "binary", "pow")
    axes = _trailing_mean(var, square_out)
    if square is None or square.inputs[0] is not c or axes is None:
        return None
    if square.attrs["kind"] == "mul" and square.inputs[1] is not c:
        return None
    if square.attrs["kind"] == "pow" and scalar(square.inputs[1]) != 2.0:
        return None
    return epsilon, axes, [square, var, plus, sqrt] + chain


def _match(node: Node, readers: Readers):
    """(x, axis, epsilon, rms, the pattern's nodes) when ``node`` ends the normalization itself:
    of x's deviation from its mean, or (rms) of x itself."""
    if node.op != "binary" or node.attrs.get("activation") is not None or node.attrs["kind"] not in ("div", "mul"):
        return None
    for c in node.inputs[:1] if node.attrs["kind"] == "div" else node.inputs:
        found = _root_of_mean_square(node, c, readers)
        if found is None:
            continue
        epsilon, axes, chain = found
        sub = made_by(c, "binary", "sub")
        x, mean_out = sub.inputs if sub is not None else (None, None)
        if (sub is not None and _trailing_mean(made_by(mean_out, "reduce"), x) == axes
                and readers.only(mean_out, sub) and id(c) not in readers.outputs
                and {id(u) for u in readers.users.get(id(c), [])} == {id(chain[0]), id(node)}):
            return x, axes[0], epsilon, False, [made_by(mean_out, "reduce"), sub] + chain
        # else RMS normalization of c (T5's, LLaMA's, SimplifiedLayerNormalization's)
        return c, axes[0], epsilon, True, chain
    return None


def fuse_layer_norm(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for node in list(graph.nodes):
        if node not in graph.nodes:
            continue
        found = _match(node, readers)
        if found is None:
            continue
        x, axis, epsilon, rms, pattern = found
        if x.dtype != "float32" or node.outputs[0].shape != x.shape:
            continue
        steps, inputs = [node], [x]
        # gamma, then beta, where they follow as constants over the row
        for kind in ("mul", "add"):
            out = steps[-1].outputs[0]
            step = readers.sole(out)
            row = _affine(other(step, out), x, axis) if made_by(step and step.outputs[0], "binary", kind) else None
            if row is None or step.outputs[0].shape != x.shape:
                inputs.append(None)
                continue
            inputs.append(Operand(fresh_name(f"{step.name}_{'scale' if kind == 'mul' else 'bias'}"), (row.size,),
                                  "float32", value=row))
            steps.append(step)
        while inputs[-1] is None:
            inputs.pop()
        last = steps[-1]
        result = last.outputs[0]
        attrs = {"axis": axis, "epsilon": float(epsilon)} | ({"rms": True} if rms else {})
        fused_node = Node("layer_norm", inputs, [result], attrs, name=last.name)
        readers.substitute(graph, pattern + steps[:-1], last, fused_node)
        fused += 1
    return fused
