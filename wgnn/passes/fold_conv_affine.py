"""Fold a per-channel scale or shift after a convolution (or a transposed one) into its weights and bias.

conv(x, W, b) followed by Mul, Div, Add or Sub of a constant with one value per output channel (or
one in all) is conv(x, W * k, b * k) or conv(x, W, b + d): what ``fold_batchnorm`` does for a
BatchNormalization, for exporters that write the batch norm out as Mul and Add (paddle2onnx's
PaddleOCR models, 28 of them in the recognizer; and the bias and batch norm after PP-OCR's
detector's transposed convolutions). The scale or shift then costs nothing.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Operand, fresh_name
from .patterns import Readers, other, per_channel


def _scaled(w: np.ndarray, value: np.ndarray, kind: str, op: str, groups: int) -> np.ndarray:
    """A convolution's weights with each output channel's scaled by ``value`` (mul) or by its inverse
    (div), in float64, as float32."""
    vec = value.reshape(-1).astype(np.float64)
    k = vec if kind == "mul" else 1.0 / vec  # (float64: w's values widened as they are read)
    if op == "conv_transpose2d":  # [Cin, Cout/groups, KH, KW]: output channels on axis 1 per group
        cin, opg = w.shape[:2]
        k = np.broadcast_to(k, (groups * opg,))
        return (w.reshape(groups, cin // groups, opg, *w.shape[2:]) * k.reshape(groups, 1, opg, 1, 1)
                ).reshape(w.shape).astype(np.float32)
    return (w * np.broadcast_to(k, (w.shape[0],)).reshape(-1, 1, 1, 1)).astype(np.float32)


def fold_conv_affine(graph: Graph) -> int:
    readers = Readers(graph)
    folded = 0
    for conv in list(graph.nodes):
        if (conv.op not in ("conv2d", "conv_transpose2d") or conv not in graph.nodes or len(conv.inputs) > 3
                or conv.attrs.get("activation") is not None or not conv.inputs[1].is_constant
                or any(conv.attrs.get(k) is not None for k in ("x_zero", "int8_offset", "requantize"))
                or conv.attrs.get("exact")):
            continue
        while _fold_next(graph, conv, readers):  # a scale then a shift: both, before anything fuses them
            folded += 1
    return folded


def _fold_next(graph: Graph, conv, readers: Readers) -> bool:
    """Fold the step after ``conv`` into it, if it is a per-channel scale or shift."""
    bias = conv.inputs[2] if len(conv.inputs) > 2 else None
    out = conv.outputs[0]
    step = readers.sole(out)
    if (step is None or step.op != "binary" or step.attrs.get("activation") is not None
            or step.attrs["kind"] not in ("mul", "div", "add", "sub") or step.outputs[0].shape != out.shape
            or (bias is not None and not bias.is_constant)):
        return False
    kind = step.attrs["kind"]
    if kind in ("div", "sub") and step.inputs[0] is not out:  # k / conv, d - conv: not affine in the sums
        return False
    vec = per_channel(other(step, out), out)
    if vec is None or (kind == "div" and not np.all(vec)):
        return False
    b = bias.value.astype(np.float64) if bias is not None else np.zeros(out.shape[1])
    if kind in ("mul", "div"):  # (computed once for a session's plans: Graph.derive)
        w = graph.derive(_scaled, conv.inputs[1].value, other(step, out).value, kind, conv.op, conv.attrs["groups"])
        b = b * (vec if kind == "mul" else 1.0 / vec)
    else:
        w = conv.inputs[1].value.astype(np.float32, copy=False)
        b = b + vec if kind == "add" else b - vec
    weights = Operand(fresh_name(conv.inputs[1].name + "_affine"), w.shape, "float32", value=w)
    conv.inputs = [conv.inputs[0], weights,
                   Operand(fresh_name(conv.name + "_bias"), b.shape, "float32", value=b.astype(np.float32))]
    readers.take_over(graph, [step], step.outputs[0], out)
    return True
