"""Element-wise ops: broadcasting binary arithmetic and standalone activations.

Both lower to ``shaders/elementwise.wgsl``, a strided kernel: every operand is addressed through
per-axis strides, so broadcasting, any physical layout, slices and transposed reads are the same code.
"""

from __future__ import annotations

import numpy as np

from ..graph import Node, Operand
from ..layout import logical_strides
from . import broadcast_shapes, register
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
        return [(broadcast_shapes(node, a.shape, b.shape), a.dtype)]

    @staticmethod
    def reference(node, ins):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = BINARY[node.attrs["kind"]](ins[0], ins[1]).astype(ins[0].dtype)
        return [apply_fused(node.attrs, y, None)]

    @staticmethod
    def lower(node, ctx):
        out = node.outputs[0]
        strided_dispatch(ctx, node, node.attrs["kind"], out, [node.inputs[0], node.inputs[1]],
                         activation=node.attrs.get("activation"))


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
                     out_strides: list[int] | None = None, out_base: int = 0) -> None:
    """One dispatch of ``elementwise.wgsl`` over ``out_shape`` (logical axes, default: out's shape).

    ``in_strides``/``out_strides`` override the strides derived from each operand's layout; the
    iteration runs in the output's physical order so writes stay contiguous.
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
    params = {
        "out_step": steps[0],
        "a_step": steps[1],
        "b_step": steps[2] if len(inputs) > 1 else 0,
        "total": total,
        "out_base": out_base,
        "a_base": bases[0],
        "b_base": bases[1] if len(inputs) > 1 else 0,
        "alpha": activation.alpha if activation else 0.0,
        "beta": activation.beta if activation else 0.0,
        "shape": pack_dims(merged, 1),
        "out_strides": pack_dims(sets[0], 0),
        "a_strides": pack_dims(sets[1], 0),
        "b_strides": pack_dims(sets[2] if len(inputs) > 1 else [], 0),
    }
    bindings = [ctx.tensor(inputs[0]), ctx.tensor(inputs[1]) if len(inputs) > 1 else ctx.dummy(), ctx.tensor(out)]
    template = {"op": op, "rank": len(merged), "lanes": lanes, "act": activation.kind if activation else "none"}
    ctx.dispatch("elementwise", node=node, template=template, params=params, bindings=bindings, threads=total)
