"""Element-wise ops: broadcasting binary arithmetic, comparisons and logic, where, and standalone
activations."""

from __future__ import annotations

import numpy as np

from ..graph import is_integer
from .activation import apply_fused
from .registry import broadcast_shapes, fail, register

BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "max": np.maximum,
    "min": np.minimum,
    "pow": np.power,
    "prelu": lambda a, b: np.where(a >= 0, a, a * b),
}
# Kinds whose result is a bool tensor, and kinds that take bools only.
COMPARE = {"equal": np.equal, "greater": np.greater, "less": np.less, "greater_equal": np.greater_equal,
           "less_equal": np.less_equal}
LOGICAL = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}
BINARY.update(COMPARE)
BINARY.update(LOGICAL)


def _integer_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero (C's and WGSL's, ONNX's reference for Div)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.trunc(a.astype(np.float64) / b)
    return np.where(b == 0, a, q).astype(a.dtype)


@register("binary")
class Binary:
    """attrs: kind (a key of BINARY), activation (fused, optional)."""

    traits = ("fusable", "layout_free")

    @staticmethod
    def flops(node):
        return node.outputs[0].size

    @staticmethod
    def infer(node):
        a, b = node.inputs[0], node.inputs[1]
        kind = node.attrs["kind"]
        if kind not in BINARY:
            raise fail(node, f"unknown binary kind {kind!r}")
        if kind in LOGICAL and (a.dtype != "bool" or b.dtype != "bool"):
            raise fail(node, f"{kind} takes bool tensors, got {a.dtype} and {b.dtype}")
        shape = broadcast_shapes(node, a.shape, b.shape)
        return [(shape, "bool" if kind in COMPARE or kind in LOGICAL else a.dtype)]

    @staticmethod
    def reference(node, ins):
        kind, dtype = node.attrs["kind"], node.outputs[0].dtype
        a, b = ins
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if kind == "div" and a.dtype.kind in "iu" and np.asarray(b).dtype.kind in "iu":
                y = _integer_div(a, np.asarray(b))
            else:
                y = BINARY[kind](a, b).astype(dtype)
        return [apply_fused(node.attrs, y, None)]


@register("where")
class Where:
    """inputs [condition (bool), x, y]: x where the condition holds, else y; all three broadcast."""

    traits = ("layout_free",)

    @staticmethod
    def infer(node):
        cond, x, y = node.inputs
        if cond.dtype != "bool":
            raise fail(node, f"the condition must be a bool tensor, got {cond.dtype}")
        if x.dtype != y.dtype:
            raise fail(node, f"x and y must have one dtype, got {x.dtype} and {y.dtype}")
        return [(broadcast_shapes(node, cond.shape, x.shape, y.shape), x.dtype)]

    @staticmethod
    def reference(node, ins):
        return [np.where(ins[0].astype(bool), ins[1], ins[2]).astype(node.outputs[0].dtype)]


@register("logical_not")
class LogicalNot:
    traits = ("layout_free",)

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        if x.dtype != "bool":
            raise fail(node, f"expected a bool tensor, got {x.dtype}")
        return [(x.shape, "bool")]

    @staticmethod
    def reference(node, ins):
        return [np.logical_not(ins[0])]


# Activations defined on integer tensors too (the others need floats; none takes bool).
INTEGER_KINDS = frozenset({"abs", "neg", "sign", "relu"})


@register("activation")
class ActivationOp:
    """A standalone activation: inputs [x, slope?]; attrs activation."""

    traits = ("layout_free",)

    @staticmethod
    def flops(node):
        return node.outputs[0].size

    @staticmethod
    def infer(node):
        x, kind = node.inputs[0], node.attrs["activation"].kind
        if x.dtype == "bool" or (is_integer(x.dtype) and kind not in INTEGER_KINDS):
            raise fail(node, f"{kind} of a {x.dtype} tensor: it takes float tensors"
                             + (f" (integer ones too for {sorted(INTEGER_KINDS)})" if x.dtype != "bool" else ""))
        return [(x.shape, x.dtype)]

    @staticmethod
    def reference(node, ins):
        return [apply_fused(node.attrs, ins[0], ins[1] if len(ins) > 1 else None)]
