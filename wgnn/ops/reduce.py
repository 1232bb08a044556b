"""Reductions over a set of axes: sum, mean, max, min, prod, sum_square, l1, l2, log_sum_exp."""

from __future__ import annotations

import numpy as np

from .registry import fail, normalize_axis, register

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
