"""Reductions over a set of axes: sum, mean, max, min, prod, sum_square, l1, l2, log_sum_exp."""

from __future__ import annotations

import numpy as np

from ..layout import logical_strides
from . import fail, normalize_axis, register
from .elementwise import MAX_RANK, merge_dims, pack_dims

# kind -> (init, map, combine, finish) of reduce.wgsl
KINDS = {
    "sum": ("sum", "plain", "SUM", "plain"),
    "mean": ("sum", "plain", "SUM", "mean"),
    "max": ("max", "plain", "MAX", "plain"),
    "min": ("min", "plain", "MIN", "plain"),
    "prod": ("prod", "plain", "PROD", "plain"),
    "sum_square": ("sum", "square", "SUM", "plain"),
    "l1": ("sum", "abs", "SUM", "plain"),
    "l2": ("sum", "square", "SUM", "sqrt"),
    "log_sum_exp": ("sum", "exp", "SUM", "log"),
}


def _numpy(kind: str, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    x = x.astype(np.float64)
    if kind == "log_sum_exp":
        m = x.max(axis=axes, keepdims=True) if x.size else np.zeros_like(x.sum(axis=axes, keepdims=True))
        return np.log(np.exp(x - m).sum(axis=axes, keepdims=True)) + m
    if kind in ("max", "min"):  # over an empty set: -inf and inf, as ONNX says
        fn = np.max if kind == "max" else np.min
        return fn(x, axis=axes, keepdims=True, initial=-np.inf if kind == "max" else np.inf)
    fn = {"sum": np.sum, "mean": np.mean, "prod": np.prod}.get(kind)
    if fn is not None:
        return fn(x, axis=axes, keepdims=True)
    if kind == "sum_square":
        return (x * x).sum(axis=axes, keepdims=True)
    if kind == "l1":
        return np.abs(x).sum(axis=axes, keepdims=True)
    return np.sqrt((x * x).sum(axis=axes, keepdims=True))


@register("reduce")
class Reduce:
    """attrs kind, axes (normalized, sorted), keepdims. Results are stored in f32 in fp16 mode
    (``wide_output``): sums outgrow f16's range long before their inputs do."""

    traits = ("wide_output",)

    @staticmethod
    def flops(node):
        return node.inputs[0].size * (2 if node.attrs["kind"] in ("sum_square", "l2", "log_sum_exp") else 1)

    @staticmethod
    def infer(node):
        x, a = node.inputs[0], node.attrs
        if a["kind"] not in KINDS:
            raise fail(node, f"unknown reduction {a['kind']!r}")
        if any(not 0 <= ax < x.rank for ax in a["axes"]):
            raise fail(node, f"axes {a['axes']} out of range for shape {x.shape}")
        if a["keepdims"]:
            shape = tuple(1 if k in a["axes"] else d for k, d in enumerate(x.shape))
        else:
            shape = tuple(d for k, d in enumerate(x.shape) if k not in a["axes"])
        return [(shape, x.dtype)]

    @staticmethod
    def reference(node, ins):
        a = node.attrs
        with np.errstate(invalid="ignore", divide="ignore"):
            y = _numpy(a["kind"], ins[0], tuple(a["axes"]))
        out_shape = Reduce.infer(node)[0][0]
        dtype = np.dtype(ins[0].dtype)
        if dtype.kind in "iub" and a["kind"] in ("max", "min"):  # an empty set's infinities, in range
            low, high = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
            y = np.clip(np.nan_to_num(y, posinf=high, neginf=low), low, high)
        return [y.reshape(out_shape).astype(ins[0].dtype)]

    @staticmethod
    def layout(node, perms):
        perm = perms[id(node.inputs[0])]
        axes = node.attrs["axes"]
        if node.attrs["keepdims"]:
            return [None], [perm]
        kept = [p for p in perm if p not in axes]
        renumber = {old: new for new, old in enumerate(sorted(kept))}
        return [None], [tuple(renumber[p] for p in kept)]

    @staticmethod
    def lower(node, ctx):
        x, out = node.inputs[0], node.outputs[0]
        axes = set(node.attrs["axes"])
        in_perm = ctx.perm(x)
        strides = logical_strides(x.shape, in_perm)
        # Kept axes in the output's physical order (so writes are contiguous); reduced axes in the input's.
        kept_logical = [k for k in range(x.rank) if k not in axes]
        out_perm = ctx.perm(out)
        if node.attrs["keepdims"]:
            kept_order = [a for a in out_perm if a not in axes]
        else:
            kept_order = [kept_logical[a] for a in out_perm]
        red_order = [a for a in in_perm if a in axes]
        out_shape, (out_strides,) = merge_dims([x.shape[a] for a in kept_order] or [1],
                                               [[strides[a] for a in kept_order] or [0]])
        red_shape, (red_strides,) = merge_dims([x.shape[a] for a in red_order] or [1],
                                               [[strides[a] for a in red_order] or [0]])
        if len(out_shape) > MAX_RANK or len(red_shape) > MAX_RANK:
            raise ctx.error(node, f"more than {MAX_RANK} non-trivial dimensions")
        count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64)) if axes else 1
        init, mapping, combine, finish = KINDS[node.attrs["kind"]]
        params = {"outputs": out.size, "reduce_size": count, "inv_count": 1.0 / max(count, 1),
                  "out_shape": pack_dims(out_shape, 1), "out_strides": pack_dims(out_strides, 0),
                  "red_shape": pack_dims(red_shape, 1), "red_strides": pack_dims(red_strides, 0)}
        template = {"out_rank": len(out_shape), "red_rank": len(red_shape), "init": init, "map": mapping,
                    "combine": combine, "finish": finish, "needs_max": node.attrs["kind"] == "log_sum_exp"}
        ctx.dispatch("reduce", node=node, template=template, params=params,
                     bindings=[ctx.tensor(x), ctx.tensor(out)], workgroups=out.size)


@register("arg_reduce")
class ArgReduce:
    """ArgMax / ArgMin along one axis: attrs kind ("max" | "min"), axis, keepdims,
    select_last_index. The result is int64 (stored as i32 on the GPU)."""

    @staticmethod
    def flops(node):
        return node.inputs[0].size

    @staticmethod
    def infer(node):
        x, a = node.inputs[0], node.attrs
        if a["kind"] not in ("max", "min"):
            raise fail(node, f"unknown arg reduction {a['kind']!r}")
        axis = normalize_axis(node, a["axis"], x.rank)
        if x.rank and x.shape[axis] == 0:
            raise fail(node, f"arg{a['kind']} over axis {axis} of size 0 has no answer")
        if a["keepdims"]:
            shape = tuple(1 if k == axis else d for k, d in enumerate(x.shape))
        else:
            shape = tuple(d for k, d in enumerate(x.shape) if k != axis)
        return [(shape, "int64")]

    @staticmethod
    def reference(node, ins):
        a = node.attrs
        x = ins[0]
        axis = a["axis"] % max(x.ndim, 1)
        pick = np.argmax if a["kind"] == "max" else np.argmin
        if a["select_last_index"]:
            idx = x.shape[axis] - 1 - pick(np.flip(x, axis), axis=axis)
        else:
            idx = pick(x, axis=axis)
        return [idx.astype(np.int64).reshape(ArgReduce.infer(node)[0][0])]

    @staticmethod
    def layout(node, perms):
        return [()], [()]

    @staticmethod
    def lower(node, ctx):
        x, out, a = node.inputs[0], node.outputs[0], node.attrs
        axis = a["axis"] % max(x.rank, 1)
        size = x.shape[axis] if x.rank else 1
        inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
        params = {"total": out.size, "axis_size": size, "inner": inner}
        template = {"better": ">" if a["kind"] == "max" else "<", "or_equal": "=" if a["select_last_index"] else ""}
        ctx.dispatch("arg_reduce", node=node, template=template, params=params,
                     bindings=[ctx.tensor(x), ctx.tensor(out)], threads=out.size)
