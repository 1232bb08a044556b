"""Element-wise ops: broadcasting binary arithmetic and standalone activations.

Both lower to ``shaders/elementwise.wgsl``, a strided kernel: every operand is addressed through
per-axis strides, so broadcasting, any physical layout, slices and transposed reads are the same code.
It computes in f32, or in i32 where all operands are integer or bool tensors (comparisons, logic,
integer arithmetic, casts). ``where`` is its three-operand sibling (``shaders/where.wgsl``).
"""

from __future__ import annotations

import numpy as np

from ..graph import Node, Operand, is_integer
from ..layout import logical_strides
from . import broadcast_shapes, fail, register
from .activation import Activation, apply_fused

MAX_RANK = 8

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
# Activations that int_ops.wgsl computes on integer tensors.
INTEGER_ACTIVATIONS = {"abs", "neg", "sign", "relu"}


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

    @staticmethod
    def lower(node, ctx):
        out = node.outputs[0]
        strided_dispatch(ctx, node, node.attrs["kind"], out, [node.inputs[0], node.inputs[1]],
                         activation=node.attrs.get("activation"))


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

    @staticmethod
    def lower(node, ctx):
        strided_dispatch(ctx, node, "where", node.outputs[0], list(node.inputs), kernel="where")


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

    @staticmethod
    def lower(node, ctx):
        strided_dispatch(ctx, node, "not", node.outputs[0], [node.inputs[0]])


@register("activation")
class ActivationOp:
    """A standalone activation: inputs [x, slope?]; attrs activation."""

    traits = ("layout_free",)

    @staticmethod
    def flops(node):
        return node.outputs[0].size

    @staticmethod
    def infer(node):
        return [(node.inputs[0].shape, node.inputs[0].dtype)]

    @staticmethod
    def reference(node, ins):
        return [apply_fused(node.attrs, ins[0], ins[1] if len(ins) > 1 else None)]

    @staticmethod
    def lower(node, ctx):
        act: Activation = node.attrs["activation"]
        if is_integer(node.inputs[0].dtype):
            if act.kind not in INTEGER_ACTIVATIONS:
                raise ctx.unsupported(node, f"{act.kind} of a {node.inputs[0].dtype} tensor on the GPU "
                                            f"(integer tensors take {sorted(INTEGER_ACTIVATIONS)})")
            strided_dispatch(ctx, node, act.kind, node.outputs[0], [node.inputs[0]])
            return
        if act.kind == "prelu":
            strided_dispatch(ctx, node, "prelu", node.outputs[0], [node.inputs[0], node.inputs[1]])
        else:
            strided_dispatch(ctx, node, "first", node.outputs[0], [node.inputs[0]], activation=act)

# ---------------------------------------------------------------------------------------------


def broadcast_strides(operand: Operand, out_shape: tuple[int, ...], perm: tuple[int, ...]) -> list[int]:
    """Strides of ``operand`` (stored in ``perm``) per *logical* axis of ``out_shape`` (0 = broadcast)."""
    own = logical_strides(operand.shape, perm)
    lead = len(out_shape) - operand.rank
    return [0] * lead + [0 if operand.shape[k] == 1 else own[k] for k in range(operand.rank)]


def merge_dims(shape: list[int], stride_sets: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 axes and merge neighbours that every operand walks contiguously."""
    keep = [k for k, d in enumerate(shape) if d != 1] or [len(shape) - 1] if shape else []
    shape = [shape[k] for k in keep] if shape else [1]
    sets = [[s[k] for k in keep] if keep else [0] for s in stride_sets]
    k = len(shape) - 2
    while k >= 0:
        if all(s[k] == s[k + 1] * shape[k + 1] for s in sets):
            shape[k] *= shape[k + 1]
            del shape[k + 1]
            for s in sets:
                s[k] = s[k + 1]
                del s[k + 1]
        k -= 1
    return shape, sets


def pack_dims(values: list[int], fill: int) -> list[list[int]]:
    padded = list(values) + [fill] * (MAX_RANK - len(values))
    return [padded[0:4], padded[4:8]]


def strided_dispatch(ctx, node: Node, op: str, out: Operand, inputs: list[Operand], *,
                     activation: Activation | None = None, in_strides: list[list[int]] | None = None,
                     in_bases: list[int] | None = None, out_shape: tuple[int, ...] | None = None,
                     out_strides: list[int] | None = None, out_base: int = 0, kernel: str = "elementwise") -> None:
    """One dispatch of ``elementwise.wgsl`` (or ``where.wgsl``, three inputs) over ``out_shape``
    (logical axes, default: out's shape).

    ``in_strides``/``out_strides`` override the strides derived from each operand's layout; the
    iteration runs in the output's physical order so writes stay contiguous. The arithmetic is i32
    when every input is an integer or bool tensor, else f32.
    """
    shape = out_shape or out.shape
    out_perm = ctx.perm(out)
    if in_strides is None:
        in_strides = [broadcast_strides(t, shape, ctx.perm(t)) for t in inputs]
    if out_strides is None:
        out_strides = logical_strides(shape, out_perm)
    order = list(out_perm) if len(out_perm) == len(shape) else list(range(len(shape)))
    phys_shape = [shape[a] for a in order]
    sets = [[s[a] for a in order] for s in [out_strides] + in_strides]
    merged, sets = merge_dims(phys_shape, sets)
    if len(merged) > MAX_RANK:
        raise ctx.error(node, f"tensors of more than {MAX_RANK} non-trivial dimensions are not supported")
    # Four neighbours along the innermost axis per invocation when it divides by 4.
    lanes = 4 if merged[-1] % 4 == 0 else 1
    steps = [s[-1] for s in sets]
    if lanes == 4:
        merged = merged[:-1] + [merged[-1] // 4]
        sets = [s[:-1] + [s[-1] * 4] for s in sets]
    total = int(np.prod(merged))
    bases = in_bases or [0] * len(inputs)
    names = "abc"[: 3 if kernel == "where" else 2]
    params = {"out_step": steps[0], "total": total, "out_base": out_base, "shape": pack_dims(merged, 1),
              "out_strides": pack_dims(sets[0], 0)}
    for k, letter in enumerate(names):
        present = k < len(inputs)
        params[f"{letter}_step"] = steps[k + 1] if present else 0
        params[f"{letter}_base"] = bases[k] if present else 0
        params[f"{letter}_strides"] = pack_dims(sets[k + 1] if present else [], 0)
    bindings = [ctx.tensor(t) for t in inputs] + [ctx.dummy()] * (len(names) - len(inputs)) + [ctx.tensor(out)]
    template = {"rank": len(merged), "lanes": lanes}
    if kernel == "elementwise":
        integer = all(is_integer(t.dtype) for t in inputs)
        if integer and activation is not None:
            raise ctx.unsupported(node, f"a fused {activation.kind} on integer tensors")
        params["alpha"] = activation.alpha if activation else 0.0
        params["beta"] = activation.beta if activation else 0.0
        template.update(calc="i32" if integer else "f32", fn=f"op_{op}_i32" if integer else f"op_{op}",
                        act=activation.kind if activation else "none")
    ctx.dispatch(kernel, node=node, template=template, params=params, bindings=bindings, threads=total)
