"""Data movement: reshape and transpose views, concat, slice, pad, gather, and compile-time-only ops."""

from __future__ import annotations

import numpy as np

from ..layout import NHWC, reshaped_perm, transposed_perm
from .registry import fail, normalize_axis, register


@register("reshape")
class Reshape:
    """A view: attrs shape (fully resolved). Flatten, squeeze and unsqueeze are reshapes too. It keeps
    its input's order where the bytes can stay as they lie (``reshaped_perm``: a squeeze of a
    channels-last tensor); else it wants the logical order."""

    traits = ("view",)

    @staticmethod
    def infer(node):
        x, shape = node.inputs[0], tuple(node.attrs["shape"])
        if int(np.prod(shape, dtype=np.int64)) != x.size:
            raise fail(node, f"cannot reshape {x.shape} ({x.size} elements) to {shape}")
        return [(shape, x.dtype)]

    @staticmethod
    def reference(node, ins):
        return [ins[0].reshape(node.attrs["shape"])]

    @staticmethod
    def layout(node, perms):
        x, out = node.inputs[0], node.outputs[0]
        kept = reshaped_perm(x.shape, perms[id(x)], out.shape) if not x.is_constant else None
        return ([None], [kept]) if kept is not None else ([()], [()])


@register("transpose")
class Transpose:
    """A view: attrs perm. The bytes stay; only the physical layout record changes."""

    traits = ("view",)

    @staticmethod
    def infer(node):
        x, perm = node.inputs[0], tuple(node.attrs["perm"])
        if sorted(perm) != list(range(x.rank)):
            raise fail(node, f"perm {perm} is not a permutation of the {x.rank} axes of {x.shape}")
        return [(tuple(x.shape[a] for a in perm), x.dtype)]

    @staticmethod
    def reference(node, ins):
        return [np.transpose(ins[0], node.attrs["perm"])]

    @staticmethod
    def layout(node, perms):
        return [None], [transposed_perm(perms[id(node.inputs[0])], node.attrs["perm"])]


@register("identity")
class Identity:
    """Removed by the ``remove_identity`` pass; lowered as a copy if it survives (graph in == out)."""

    traits = ("layout_free",)

    @staticmethod
    def infer(node):
        return [(node.inputs[0].shape, node.inputs[0].dtype)]

    @staticmethod
    def reference(node, ins):
        return [ins[0].copy()]


@register("depth_to_space")
class DepthToSpace:
    """(N, KH * KW * C, H, W) -> (N, C, H * KH, W * KW): channel (a * KW + b) * C + c goes to pixel
    (h * KH + a, w * KW + b) (ONNX DepthToSpace's DCR order); attrs block (KH, KW). Made by the
    compute backend's ``transposed_as_pixel_shuffle``; one strided copy, in the input's order."""

    @staticmethod
    def infer(node):
        x, (kh, kw) = node.inputs[0], node.attrs["block"]
        if x.rank != 4 or x.shape[1] % (kh * kw):
            raise fail(node, f"expected a 4-D input with channels divisible by {kh * kw}, got {x.shape}")
        n, c, h, w = x.shape
        return [((n, c // (kh * kw), h * kh, w * kw), x.dtype)]

    @staticmethod
    def reference(node, ins):
        x, (kh, kw) = ins[0], node.attrs["block"]
        n, c, h, w = x.shape
        y = x.reshape(n, kh, kw, c // (kh * kw), h, w).transpose(0, 3, 4, 1, 5, 2)
        return [y.reshape(n, c // (kh * kw), h * kh, w * kw)]

    @staticmethod
    def layout(node, perms):
        return [None], [NHWC if perms.get(id(node.inputs[0])) == NHWC else ()]


@register("relayout")
class Relayout:
    """Copy into another physical layout (attrs perm); inserted by ``assign_layouts``."""

    @staticmethod
    def infer(node):
        return [(node.inputs[0].shape, node.inputs[0].dtype)]

    @staticmethod
    def reference(node, ins):
        return [ins[0]]

    @staticmethod
    def layout(node, perms):
        return [None], [node.attrs["perm"]]


@register("concat")
class Concat:
    traits = ("layout_free",)

    @staticmethod
    def infer(node):
        first = node.inputs[0]
        axis = normalize_axis(node, node.attrs["axis"], first.rank)
        total = 0
        for t in node.inputs:
            if t.rank != first.rank or any(t.shape[k] != first.shape[k] for k in range(t.rank) if k != axis):
                raise fail(node, f"inputs {[i.shape for i in node.inputs]} differ outside axis {axis}")
            total += t.shape[axis]
        return [(first.shape[:axis] + (total,) + first.shape[axis + 1:], first.dtype)]

    @staticmethod
    def reference(node, ins):
        return [np.concatenate(ins, axis=node.attrs["axis"])]

    @staticmethod
    def layout(node, perms):
        perm = perms[id(node.inputs[0])]
        return [perm] * len(node.inputs), [perm]


@register("slice")
class Slice:
    """attrs starts, steps (one per axis, resolved and clamped) and shape (the output's)."""

    traits = ("layout_free",)

    @staticmethod
    def infer(node):
        return [(tuple(node.attrs["shape"]), node.inputs[0].dtype)]

    @staticmethod
    def reference(node, ins):
        a = node.attrs
        index = tuple(slice(s, s + n * st if s + n * st >= 0 else None, st) if n else slice(0, 0)
                      for s, st, n in zip(a["starts"], a["steps"], a["shape"]))
        return [ins[0][index]]

    @staticmethod
    def layout(node, perms):
        return [None], [perms[id(node.inputs[0])]]  # the output keeps the input's axis order


@register("pad")
class Pad:
    """attrs pads (begin..., end...), mode ("constant" | "edge" | "reflect"), value; with attr
    ``quantize`` (bounds lo, hi; ``passes.quantize_in_channel_pad``), inputs [x, scale, zero point]:
    x quantized first, shifted (``quantize_linear``'s ``clamp(round(x / scale) + zero) - zero``, in x's
    float type), then padded."""

    traits = ("layout_free",)

    @staticmethod
    def infer(node):
        x, pads = node.inputs[0], node.attrs["pads"]
        if node.attrs.get("quantize") and len(node.inputs) != 3:
            raise fail(node, f"a quantizing pad takes x, scale and zero point, got {len(node.inputs)} inputs")
        r = x.rank
        if len(pads) != 2 * r:
            raise fail(node, f"expected {2 * r} pads for a rank-{r} input, got {len(pads)}")
        shape = tuple(d + pads[k] + pads[k + r] for k, d in enumerate(x.shape))
        if min(shape, default=1) < 0:
            raise fail(node, f"pads {pads} remove more than the input {x.shape} has")
        if node.attrs["mode"] == "reflect" and any(
                p >= d and p > 0 for k, d in enumerate(x.shape) for p in (pads[k], pads[k + r])):
            raise fail(node, "reflect padding must be smaller than the padded dimension")
        return [(shape, x.dtype)]

    @staticmethod
    def reference(node, ins):
        a = node.attrs
        r = ins[0].ndim
        width = [(a["pads"][k], a["pads"][k + r]) for k in range(r)]
        crop = tuple(slice(max(0, -b), ins[0].shape[k] - max(0, -e)) for k, (b, e) in enumerate(width))
        x = ins[0][crop]
        if a.get("quantize"):
            from .quant import quantized_shifted

            x = quantized_shifted(x, ins[1], ins[2], a["quantize"]).astype(ins[0].dtype)
        width = [(max(0, b), max(0, e)) for b, e in width]
        if a["mode"] == "constant":
            return [np.pad(x, width, mode="constant", constant_values=a["value"])]
        return [np.pad(x, width, mode=a["mode"])]

    @staticmethod
    def layout(node, perms):
        return [None], [perms[id(node.inputs[0])]]  # the output keeps the input's axis order


@register("gather")
class Gather:
    """inputs [data, indices]; attrs axis, and ``outside``: "zero" where an index outside
    0..size-1 gives zeros and a negative one does not count from the end (a one-hot product,
    ``passes/one_hot_gather.py``). Constant indices are checked against the axis at compile time;
    indices computed at run time are clamped into it on the GPU."""

    @staticmethod
    def infer(node):
        data, idx = node.inputs
        axis = normalize_axis(node, node.attrs["axis"], data.rank)
        if idx.is_constant and idx.size and node.attrs.get("outside") is None:
            values = np.asarray(idx.value).astype(np.int64)
            size = data.shape[axis]
            if values.min() < -size or values.max() >= size:
                bad = values[(values < -size) | (values >= size)].reshape(-1)[0]
                raise fail(node, f"index {int(bad)} is out of range for axis {axis} of size {size}")
        return [(data.shape[:axis] + idx.shape + data.shape[axis + 1:], data.dtype)]

    @staticmethod
    def reference(node, ins):
        idx, axis = ins[1].astype(np.int64), node.attrs["axis"]
        if node.attrs.get("outside") != "zero":
            return [np.take(ins[0], idx, axis=axis)]
        size = ins[0].shape[axis]
        inside = (idx >= 0) & (idx < size)
        y = np.take(ins[0], np.where(inside, idx, 0), axis=axis)
        axis = axis % ins[0].ndim
        mask = inside.reshape((1,) * axis + idx.shape + (1,) * (ins[0].ndim - axis - 1))
        return [np.where(mask, y, np.zeros((), y.dtype))]

    @staticmethod
    def layout(node, perms):
        return [(), ()], [()]


# Ops that only exist at compile time: the constant-folding pass replaces them by their value.


@register("shape")
class ShapeOp:
    traits = ("compile_time",)

    @staticmethod
    def infer(node):
        return [((node.inputs[0].rank,), "int64")]

    @staticmethod
    def reference(node, ins):
        return [np.array(ins[0].shape, np.int64)]


@register("constant_of_shape")
class ConstantOfShape:
    """inputs [shape]; attrs value (a numpy scalar with the dtype)."""

    traits = ("compile_time",)

    @staticmethod
    def infer(node):
        shape = node.attrs["resolved_shape"]
        return [(tuple(shape), str(node.attrs["value"].dtype))]

    @staticmethod
    def reference(node, ins):
        value = node.attrs["value"]
        return [np.full(tuple(int(d) for d in ins[0]), value, dtype=value.dtype)]


BIT_WIDTHS = {"bool": 8, "int8": 8, "uint8": 8, "int16": 16, "uint16": 16, "float16": 16, "int32": 32, "uint32": 32,
              "float32": 32}


@register("bitcast")
class BitCast:
    """attrs to (a dtype name of the input's width): each element's bits read as that type (ONNX's
    BitCast). Between integer types (and bool) that is the wrapping cast; with a float type on
    either side the kernel moves the bits themselves (a float result may be any value: f32 in fp16
    sessions too)."""

    traits = ("layout_free", "wide_output")

    @staticmethod
    def infer(node):
        src, to = node.inputs[0].dtype, node.attrs["to"]
        if src not in BIT_WIDTHS or to not in BIT_WIDTHS or BIT_WIDTHS[src] != BIT_WIDTHS[to]:
            raise fail(node, f"bitcast needs two types of one width among {sorted(BIT_WIDTHS)}, got {src} -> {to}")
        return [(node.inputs[0].shape, to)]

    @staticmethod
    def reference(node, ins):
        return [np.ascontiguousarray(ins[0]).view(node.attrs["to"])]


@register("cast")
class Cast:
    """attrs to (a dtype name): float to integer truncates toward zero, anything to bool is a test
    against zero. A NaN or infinity cast to an integer has no value ONNX defines (T5's relative
    position buckets take the log of 0 in a branch a Where then drops): numpy's, without its warning."""

    traits = ("layout_free",)

    @staticmethod
    def infer(node):
        return [(node.inputs[0].shape, node.attrs["to"])]

    @staticmethod
    def reference(node, ins):
        with np.errstate(invalid="ignore"):
            return [ins[0].astype(node.attrs["to"])]


