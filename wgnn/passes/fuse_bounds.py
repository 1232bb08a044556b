"""Fuse a bound by one number (Max or Min with a constant) into the activation of the op before it.

max(act(y), c) and min(act(y), c), where the op that computes y (a convolution, a matrix product,
an element-wise op: what ``fuse_activation`` fuses into) has no other reader, become one activation
in that op's epilogue:

- no activation, ReLU or Clip(lo, hi): a Clip (max(clip(y, lo, hi), c) is clip(y, max(lo, c),
  max(hi, c)); min, likewise with min; ReLU is clip(y, 0, inf), so TensorFlow's ReLU6 written as
  Relu then Min(6) is Clip(0, 6));
- LeakyReLU then Max: ``leaky_relu_max`` (openWakeWord's speech embedding follows each of its 19
  convolutions' LeakyReLU with max(x, -0.4): 19 passes over their results gone).

NaN stays NaN as in the separate ops (binary max and min propagate it, the clamping activations put
it back). Only float tensors: integer ones keep their own ops.
"""

from __future__ import annotations

import math

from .. import ops
from ..graph import Graph
from ..ops.activation import Activation
from .patterns import Readers, scalar

# (what the producer computes before its epilogue's activation, after which nothing else is applied)
_AFTER_ACTIVATION = ("affine_after", "residual_after", "heads", "requantize", "x_zero", "int8_offset", "exact")


def _bounded(act: Activation | None, kind: str, c: float) -> Activation | None:
    """The one activation that computes ``kind`` (max or min) of ``act``'s result and ``c``, else None."""
    pick = max if kind == "max" else min
    if act is None:
        return Activation("clip", c, math.inf) if kind == "max" else Activation("clip", -math.inf, c)
    if act.kind in ("relu", "clip"):
        lo, hi = (0.0, math.inf) if act.kind == "relu" else (act.alpha, act.beta)
        return Activation("clip", pick(lo, c), pick(hi, c))
    if act.kind == "leaky_relu" and kind == "max":
        return Activation("leaky_relu_max", act.alpha, c)
    return None


def fuse_bounds(graph: Graph) -> int:
    readers = Readers(graph)
    outputs = graph.output_ids()
    fused = 0
    for node in list(graph.nodes):
        if node.op != "binary" or node.attrs["kind"] not in ("max", "min") or node.attrs.get("activation") is not None:
            continue
        out = node.outputs[0]
        for x, bound in (node.inputs, node.inputs[::-1]):
            c, producer = scalar(bound), x.producer
            if (c is None or math.isnan(c) or producer is None or x is bound or x.shape != out.shape
                    or x.dtype not in ("float32", "float16") or out.dtype != x.dtype
                    or not ops.has_trait(producer, "fusable") or len(producer.outputs) != 1
                    or not readers.only(x, node) or id(x) in outputs
                    or any(producer.attrs.get(q) for q in _AFTER_ACTIVATION)):
                continue
            act = _bounded(producer.attrs.get("activation"), node.attrs["kind"], c)
            if act is None:
                continue
            producer.attrs["activation"] = act
            readers.take_over(graph, [node], out, x)
            fused += 1
            break
    return fused
