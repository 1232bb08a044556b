"""Element-wise ops: broadcasting binary arithmetic, comparisons and logic, where, and standalone
activations."""

from __future__ import annotations

import numpy as np

from ..graph import is_integer
from .activation import Activation, apply_fused
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
# Kinds for integer tensors only: bits, shifts (ONNX's BitShift, of unsigned types).
BITWISE = {"bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor,
           "shift_left": np.left_shift, "shift_right": np.right_shift}
BINARY.update(COMPARE)
BINARY.update(LOGICAL)
BINARY.update(BITWISE)
# Remainders: "mod" takes the divisor's sign (Python's, ONNX Mod with fmod=0), "fmod" the dividend's.
BINARY.update(mod=np.mod, fmod=np.fmod)


def _integer_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero (C's and WGSL's, ONNX's reference for Div)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.trunc(a.astype(np.float64) / b)
    return np.where(b == 0, a, q).astype(a.dtype)


def _shift(a: np.ndarray, b: np.ndarray, left: bool) -> np.ndarray:
    """ONNX's BitShift: by a negative amount or the type's width or more, 0 (right: -1 for a negative
    signed value); a signed left shift as the unsigned bits."""
    a, b = np.broadcast_arrays(a, b.astype(np.int64))
    inside = (b >= 0) & (b < a.dtype.itemsize * 8)
    amount = np.where(inside, b, 0).astype(np.uint64)
    if left:
        unsigned = a.view(np.dtype(f"u{a.dtype.itemsize}")).astype(np.uint64)
        shifted = (unsigned << amount).astype(np.dtype(f"u{a.dtype.itemsize}")).view(a.dtype)
        return np.where(inside, shifted, 0).astype(a.dtype)
    shifted = a.astype(np.int64) >> amount.astype(np.int64) if a.dtype.kind == "i" else a >> amount.astype(a.dtype)
    return np.where(inside, shifted, np.where(a < 0, -1, 0)).astype(a.dtype)


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
        if kind in BITWISE and (not is_integer(a.dtype) or not is_integer(b.dtype) or "bool" in (a.dtype, b.dtype)):
            raise fail(node, f"{kind} takes integer tensors, got {a.dtype} and {b.dtype}")
        shape = broadcast_shapes(node, a.shape, b.shape)
        return [(shape, "bool" if kind in COMPARE or kind in LOGICAL else a.dtype)]

    @staticmethod
    def reference(node, ins):
        kind, dtype = node.attrs["kind"], node.outputs[0].dtype
        a, b = ins
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if kind == "div" and a.dtype.kind in "iu" and np.asarray(b).dtype.kind in "iu":
                y = _integer_div(a, np.asarray(b))
            elif kind in ("shift_left", "shift_right"):
                y = _shift(a, np.asarray(b), kind == "shift_left")
            else:
                y = BINARY[kind](a, b).astype(dtype)
        return [apply_fused(node.attrs, y, None)]


FLOAT_CLASSES = {"nan": np.isnan, "inf": np.isinf, "pos_inf": np.isposinf, "neg_inf": np.isneginf}


@register("float_class")
class FloatClass:
    """attrs kind (a key of FLOAT_CLASSES): whether each element is NaN, or infinite (either sign,
    or one of them); a bool tensor."""

    traits = ("layout_free",)

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        if node.attrs["kind"] not in FLOAT_CLASSES:
            raise fail(node, f"unknown kind {node.attrs['kind']!r}; expected one of {sorted(FLOAT_CLASSES)}")
        if is_integer(x.dtype):
            raise fail(node, f"expected a float tensor, got {x.dtype}")
        return [(x.shape, "bool")]

    @staticmethod
    def reference(node, ins):
        return [FLOAT_CLASSES[node.attrs["kind"]](ins[0])]


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


@register("muladd")
class MulAdd:
    """inputs [a, b, c] (float, broadcasting) and optionally a factor (one number computed at run
    time): a * b + c in one pass (``passes/fuse_muladd.py`` makes it from a Mul and the Add after
    it), then the fused activation if any; with attr scale (a number) and the factor,
    a * (b * scale * factor) + c."""

    traits = ("fusable", "layout_free")

    @staticmethod
    def flops(node):
        return 2 * node.outputs[0].size

    @staticmethod
    def infer(node):
        a, b, c, *factor = node.inputs
        if any(t.dtype not in ("float32", "float16") for t in [a, b, c] + factor):
            raise fail(node, f"takes float tensors, got {', '.join(t.dtype for t in [a, b, c] + factor)}")
        if len(factor) > 1 or factor and factor[0].size != 1:
            raise fail(node, f"takes one factor of one number, got {[t.shape for t in factor]}")
        return [(broadcast_shapes(node, a.shape, b.shape, c.shape), a.dtype)]

    @staticmethod
    def reference(node, ins):
        a, b, c, *factor = (np.asarray(t, np.float32) for t in ins)
        if node.attrs.get("scale") is not None:
            b = (b * np.float32(node.attrs["scale"])).astype(np.float32)
        if factor:
            b = (b * factor[0].reshape(())).astype(np.float32)
        return [apply_fused(node.attrs, (a * b + c).astype(np.float32), None).astype(node.outputs[0].dtype)]


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


# The binary kinds a fused element-wise program may hold (float arithmetic; binary_ops.wgsl's op_*).
FUSED_BINARY = ("add", "sub", "mul", "div", "max", "min", "pow", "prelu", "mod", "fmod")


@register("fused_elementwise")
class FusedElementwise:
    """A chain (a DAG) of float element-wise ops run as one pass (``passes/fuse_elementwise.py``).

    inputs: the tensors the chain reads from outside it (each broadcast to the output's shape, as
    numpy would: a composition of broadcasting element-wise ops is each input broadcast to the
    result). attrs ``steps``: the ops in order, each ``(kind, args, activation)`` with kind a key of
    ``FUSED_BINARY``, ``"activation"`` or ``"muladd"`` (a * b + c), and args that name input k as k
    and step j's result as -(j + 1); the last step's result is the output; activation None or
    (kind, alpha, beta). attrs ``constants``: float32 numbers the steps name as ("constant", i)
    (scalar constants of the ops fused, and activations' alpha and beta)."""

    traits = ("layout_free",)

    @staticmethod
    def flops(node):
        return len(node.attrs["steps"]) * node.outputs[0].size

    @staticmethod
    def infer(node):
        if any(t.dtype != "float32" for t in node.inputs):
            raise fail(node, f"takes float32 tensors, got {', '.join(t.dtype for t in node.inputs)}")
        # (the numbers it took into its constants may have had more axes: the output keeps them)
        known = [node.outputs[0].shape] if node.outputs and node.outputs[0].shape is not None else []
        return [(broadcast_shapes(node, *(t.shape for t in node.inputs), *known), "float32")]

    @staticmethod
    def reference(node, ins):
        constants = node.attrs["constants"]
        results: list[np.ndarray] = []

        def value(arg):
            if isinstance(arg, tuple):
                return np.float32(constants[arg[1]])
            return np.asarray(ins[arg] if arg >= 0 else results[-arg - 1], np.float32)

        for kind, args, activation in node.attrs["steps"]:
            operands = [value(a) for a in args]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                if kind == "activation":
                    y = np.asarray(operands[0], np.float32)
                elif kind == "muladd":
                    y = (operands[0] * operands[1] + operands[2]).astype(np.float32)
                else:
                    y = np.asarray(BINARY[kind](operands[0], operands[1]), np.float32)
                if activation is not None:  # (kind, its alpha and beta as constants)
                    y = Activation(activation[0], value(activation[1]), value(activation[2])).apply(y)
                results.append(y.astype(np.float32))
        return [np.broadcast_to(results[-1], node.outputs[0].shape).astype(np.float32)]
