"""Convolution, matrix multiply, normalization, pooling and softmax."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..graph import Node, Operand, is_integer
from ..layout import NHWC
from .activation import apply_epilogue, apply_fused
from .quant import DynamicQuantize, state_values
from .registry import check_window, fail, normalize_axis, register, require_nchw

# ---------------------------------------------------------------------------------------------
# conv2d: inputs [x, w, bias?, residual?, slope?, x_scale?, factor?]; attrs strides, pads (t, l, b, r),
# dilations, groups, activation. ``residual`` is a tensor of the output's shape added before the
# activation (or of fewer channels, zero beyond them: the compute backend's
# ``narrow_padded_residuals``), ``slope`` the per-channel PRelu slope, ``x_scale`` one factor per
# input channel of each image that x is multiplied by first (the compute backend's
# ``fold_channel_scale``), ``factor`` one number computed at run time that a quantized convolution's
# integer sums are scaled by, times attr ``factor_scale``, its bias added to them first where attr
# ``offset_bias`` says how ("floor": floor(bias / scale), "exact"; ``fuse_dequantize_sum_into_conv``);
# all appear only after fusion.


def conv_out_size(size: int, k: int, stride: int, pad: int, dil: int) -> int:
    return (size + pad - dil * (k - 1) - 1) // stride + 1


def conv_reference(x, w, strides, pads, dilations, groups):
    """NCHW x, OIHW w -> NCHW output, accumulated in float64 for a trustworthy oracle."""
    n, c, _, _ = x.shape
    o, cpg, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    pt, pl, pb, pr = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]  # N, C, OH, OW, KH, KW
    opg = o // groups
    w64 = w.astype(np.float64)
    if groups == c and cpg == 1 and opg == 1:
        out = np.einsum("ncyxhw,chw->ncyx", win, w64[:, 0], optimize=True)
    else:
        parts = []
        for g in range(groups):
            wg = win[:, g * cpg:(g + 1) * cpg]
            parts.append(np.tensordot(wg, w64[g * opg:(g + 1) * opg], axes=([1, 4, 5], [1, 2, 3])))
        out = np.concatenate(parts, axis=3).transpose(0, 3, 1, 2)
    return out


FLOATS = ("float32", "float16")


@register("conv2d")
class Conv2d:
    traits = ("fusable", "residual")

    @staticmethod
    def flops(node):
        out, w = node.outputs[0], node.inputs[1]
        return 2 * out.size * w.shape[1] * w.shape[2] * w.shape[3]

    @staticmethod
    def infer(node):
        x, w = node.inputs[0], node.inputs[1]
        if x.rank != 4 or w is None or w.rank != 4:
            raise fail(node, f"expected a 4-D input and 4-D filter, got {x.shape} and {w and w.shape}")
        n, c, h, wd = x.shape
        o, cpg, kh, kw = w.shape
        g = node.attrs["groups"]
        if g < 1 or c % g or o % g or cpg * g != c:
            raise fail(node, f"input has {c} channels and filter {w.shape} with groups={g}: "
                             f"expected filter shape (O, {c // max(g, 1)}, KH, KW) with O divisible by {g}")
        (sh, sw), (dh, dw), (pt, pl, pb, pr) = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
        check_window(node, (sh, sw), (dh, dw), (pt, pl, pb, pr))
        integers = node.attrs.get("x_zero") is not None  # a quantized x read as it is (x - x_zero)
        if (x.dtype not in FLOATS and not integers) or w.dtype not in FLOATS:
            raise fail(node, f"convolution of {x.dtype} input and {w.dtype} weights: both must be float32 or float16")
        oh = conv_out_size(h, kh, sh, pt + pb, dh)
        ow = conv_out_size(wd, kw, sw, pl + pr, dw)
        if oh < 1 or ow < 1:
            raise fail(node, f"the {kh}x{kw} filter does not fit the padded {h}x{wd} input")
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        if bias is not None and bias.shape != (o,):
            raise fail(node, f"bias must have shape ({o},), got {bias.shape}")
        residual = node.inputs[3] if len(node.inputs) > 3 else None
        if residual is not None and (residual.rank != 4 or residual.shape[0] != n or residual.shape[1] > o
                                     or residual.shape[2:] != (oh, ow)):
            raise fail(node, f"a residual of shape {residual.shape} for an output of shape {(n, o, oh, ow)}: "
                             f"expected that shape, or fewer channels (the rest add zero)")
        scale = node.inputs[5] if len(node.inputs) > 5 else None
        if scale is not None and scale.shape != (n, c, 1, 1):
            raise fail(node, f"an input scale of shape {scale.shape}: expected one value per channel, {(n, c, 1, 1)}")
        factor = node.inputs[6] if len(node.inputs) > 6 else None  # (passes.fuse_dequantize_sum_into_conv)
        if factor is not None and (factor.size != 1 or factor.dtype not in FLOATS or scale is not None):
            raise fail(node, f"factor must be one float number (and no input scale), got {factor.dtype} {factor.shape}")
        requantize = node.attrs.get("requantize")  # fused by the compute backend (ops.quant.FusedRequantize)
        return [((n, o, oh, ow), requantize.dtype if requantize is not None else x.dtype)]

    @staticmethod
    def reference(node, ins):
        x, w = ins[0], ins[1]
        a = node.attrs
        if a.get("x_zero") is not None:
            x = x.astype(np.float64) - a["x_zero"]
        if len(ins) > 5 and ins[5] is not None:  # x_scale (passes.fold_channel_scale)
            x = x * ins[5]
        y = conv_reference(x, w, a["strides"], a["pads"], a["dilations"], a["groups"])
        bias, residual, slope = (ins + [None, None, None])[2:5]
        requantize = a.get("requantize")
        factor = ins[6] if len(ins) > 6 else None
        if factor is not None:  # (the kernels' rounding: the factor in f32 first; an offset bias before it)
            s = np.float32(np.float32(factor.reshape(())) * np.float32(a.get("factor_scale", 1.0)))
            if a.get("offset_bias") is None:
                y = y * s
            else:
                b = np.zeros(1) if bias is None else bias.reshape(1, -1, 1, 1).astype(np.float64)
                y = (y + (np.floor(b / s) if a["offset_bias"] == "floor" else b)) * s
                bias = None
        if bias is not None:
            y = y + bias.reshape(1, -1, 1, 1)
        y = apply_epilogue(a, y, residual if requantize is None else None,
                           None if slope is None else slope.reshape(1, -1, 1, 1))
        return [y if requantize is None else requantize.apply(y, residual)]

    @staticmethod
    def layout(node, perms):
        # Weights computed at run time are read in logical OIHW order (constants are packed at load).
        return [NHWC, (), None, NHWC, None], [NHWC]


def conv_transpose_out_size(size: int, k: int, stride: int, pad: int, dil: int, out_pad: int) -> int:
    return (size - 1) * stride + dil * (k - 1) + 1 + out_pad - pad


def conv_transpose_reference(x, w, strides, pads, dilations, groups, out_hw):
    """NCHW x, [Cin, Cout/groups, KH, KW] w -> NCHW output, scattered in float64 then cropped."""
    n, c, h, wd = x.shape
    _, opg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, _, _) = strides, dilations, pads
    oh, ow = out_hw
    full_h = max((h - 1) * sh + (kh - 1) * dh + 1, pt + oh)
    full_w = max((wd - 1) * sw + (kw - 1) * dw + 1, pl + ow)
    full = np.zeros((n, opg * groups, full_h, full_w))
    cpg = c // groups
    for g in range(groups):
        xg = x[:, g * cpg:(g + 1) * cpg].astype(np.float64)
        wg = w[g * cpg:(g + 1) * cpg].astype(np.float64)
        for ky in range(kh):
            for kx in range(kw):
                contrib = np.einsum("nchw,co->nohw", xg, wg[:, :, ky, kx])
                full[:, g * opg:(g + 1) * opg, ky * dh:ky * dh + (h - 1) * sh + 1:sh,
                     kx * dw:kx * dw + (wd - 1) * sw + 1:sw] += contrib
    return full[:, :, pt:pt + oh, pl:pl + ow]


@register("conv_transpose2d")
class ConvTranspose2d:
    """Transposed convolution: inputs [x, w, bias?] with w in ONNX order [Cin, Cout/groups, KH, KW];
    attrs strides, pads (t, l, b, r), dilations, groups, output_size (OH, OW), activation."""

    traits = ("fusable",)

    @staticmethod
    def flops(node):
        x, w = node.inputs[0], node.inputs[1]
        return 2 * x.size * w.shape[1] * w.shape[2] * w.shape[3]

    @staticmethod
    def infer(node):
        x, w = node.inputs[0], node.inputs[1]
        if x.rank != 4 or w is None or w.rank != 4:
            raise fail(node, f"expected a 4-D input and 4-D filter, got {x.shape} and {w and w.shape}")
        n, c = x.shape[:2]
        g = node.attrs["groups"]
        if g < 1 or c % g or w.shape[0] != c:
            raise fail(node, f"input has {c} channels: expected a filter of shape ({c}, Cout/{g}, KH, KW), "
                             f"got {w.shape}")
        o = w.shape[1] * g
        oh, ow = node.attrs["output_size"]
        if oh < 1 or ow < 1:
            raise fail(node, f"output size {oh}x{ow} is empty")
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        if bias is not None and bias.shape != (o,):
            raise fail(node, f"bias must have shape ({o},), got {bias.shape}")
        return [((n, o, oh, ow), x.dtype)]

    @staticmethod
    def reference(node, ins):
        a = node.attrs
        y = conv_transpose_reference(ins[0], ins[1], a["strides"], a["pads"], a["dilations"], a["groups"],
                                     a["output_size"])
        bias = ins[2] if len(ins) > 2 else None
        if bias is not None:
            y = y + bias.reshape(1, -1, 1, 1)
        slope = ins[4] if len(ins) > 4 else None
        return [apply_fused(a, y.astype(np.float32), None if slope is None else slope.reshape(1, -1, 1, 1))]

    @staticmethod
    def layout(node, perms):
        return [NHWC, (), None, None, None], [NHWC]


@register("batch_normalization")
class BatchNormalization:
    """Inference batch norm over axis 1: inputs [x, mean, variance, scale, bias]; attr epsilon.

    Always rewritten before lowering: folded into the conv before it, or turned into mul + add.
    """

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        c = x.shape[1] if x.rank >= 2 else None
        for name, t in zip(("mean", "variance", "scale", "bias"), node.inputs[1:]):
            if t is None or t.shape != (c,):
                raise fail(node, f"{name} must have shape ({c},), got {None if t is None else t.shape}")
        return [(x.shape, x.dtype)]

    @staticmethod
    def reference(node, ins):
        x, mean, var, scale, bias = ins
        shape = (1, -1) + (1,) * (x.ndim - 2)
        inv = scale / np.sqrt(var + node.attrs["epsilon"])
        return [((x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape)).astype(x.dtype)]


# ---------------------------------------------------------------------------------------------
# matmul: numpy semantics over inputs [a, b, bias?, residual?, slope?, factor?] (bias along the last
# axis). ``factor`` (passes/fuse_product_factor.py, the compute backend's): one number computed at
# run time, the sums times factor * attr ``factor_scale`` (a constant) before the bias, as
# dynamic quantization's products are scaled by x_scale * w_scale.
# Attr ``heads`` (from passes/fold_head_transposes.py), ("split", H): the (B, S, N) product is
# stored as (B, H, S, N / H), attention's heads apart; ("split_t", H): as (B, H, N / H, S), each
# head transposed (attention's keys); ("merge", H): the (B, H, S, D) product is stored as
# (B, S, H * D), the heads side by side again.


def heads_layout(y: np.ndarray, heads: tuple[str, int] | None) -> np.ndarray:
    """A product's result as its ``heads`` attribute stores it."""
    if heads is None:
        return y
    kind, h = heads
    if kind in ("split", "split_t"):
        b, s, n = y.shape
        return y.reshape(b, s, h, n // h).transpose((0, 2, 1, 3) if kind == "split" else (0, 2, 3, 1))
    b, _, s, d = y.shape
    return y.transpose(0, 2, 1, 3).reshape(b, s, h * d)


@register("matmul")
class MatMul:
    traits = ("fusable", "residual")

    @staticmethod
    def flops(node):
        a = node.inputs[0]
        return 2 * node.outputs[0].size * (a.shape[-1] if a.rank else 1)

    @staticmethod
    def infer(node):
        a, b = node.inputs[0], node.inputs[1]
        if a.rank < 1 or b.rank < 1:
            raise fail(node, "matmul needs operands of rank >= 1")
        sa = a.shape if a.rank > 1 else (1,) + a.shape
        sb = b.shape if b.rank > 1 else b.shape + (1,)
        if sa[-1] != sb[-2]:
            raise fail(node, f"inner dimensions differ: {a.shape} @ {b.shape}")
        if a.dtype not in FLOATS or b.dtype not in FLOATS:
            raise fail(node, f"matmul of {a.dtype} and {b.dtype}: both must be float32 or float16")
        requantize = node.attrs.get("requantize")  # fused by the compute backend (ops.quant.FusedRequantize)
        try:
            batch = np.broadcast_shapes(sa[:-2], sb[:-2])
        except ValueError:
            raise fail(node, f"batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
        out = tuple(batch) + (sa[-2], sb[-1])
        if a.rank == 1:
            out = out[:-2] + out[-1:]
        if b.rank == 1:
            out = out[:-1]
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        if bias is not None and (not out or bias.shape != (out[-1],)):
            raise fail(node, f"bias must have shape ({out[-1] if out else 1},), got {bias.shape}")
        factor = node.inputs[5] if len(node.inputs) > 5 else None
        if factor is not None and (factor.size != 1 or factor.dtype not in FLOATS or requantize is not None):
            raise fail(node, f"factor must be one float number (and no requantize), got {factor.dtype} "
                             f"{factor.shape}")
        heads = node.attrs.get("heads")
        if heads is not None:
            out = heads_layout(np.empty(out, np.int8), heads).shape
        return [(out, requantize.dtype if requantize is not None else a.dtype)]

    @staticmethod
    def reference(node, ins):
        a, b = ins[0], ins[1]
        y = np.matmul(a.astype(np.float64), b.astype(np.float64))
        bias, residual, slope, factor = (ins + [None] * 4)[2:6]
        requantize = node.attrs.get("requantize")
        if factor is not None:  # (the kernels' rounding: the factor in f32 first)
            y = y * np.float32(np.float32(factor.reshape(())) * np.float32(node.attrs.get("factor_scale", 1.0)))
        if bias is not None:
            y = y + bias
        y = apply_epilogue(node.attrs, y, residual if requantize is None else None, slope)
        y = y if requantize is None else requantize.apply(y, residual)
        return [np.ascontiguousarray(heads_layout(y, node.attrs.get("heads")))]

    @staticmethod
    def layout(node, perms):
        return [()] * 2 + [None, (), None], [()]


# ---------------------------------------------------------------------------------------------
# Pooling: attrs mode ("max" | "avg" | "argmax"), kernel, strides, pads (t, l, b, r), dilations,
# ceil_mode, count_include_pad, and for argmax storage_order. Global pooling is the same op with the
# kernel covering the whole image. argmax is max pooling with a second output: the int64 position
# of each maximum in the input read as a flat NCHW array (ONNX MaxPool's Indices; within each plane
# row-major, or column-major with storage_order 1).


@register("pool2d")
class Pool2d:
    @staticmethod
    def flops(node):
        kh, kw = node.attrs["kernel"]
        return node.outputs[0].size * kh * kw

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        require_nchw(node, x)
        a = node.attrs
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = a["kernel"], a["strides"], a["pads"], a["dilations"]
        check_window(node, (sh, sw, kh, kw), (dh, dw), (pt, pl, pb, pr))
        oh = _pool_size(h, kh, sh, pt, pb, dh, a["ceil_mode"])
        ow = _pool_size(w, kw, sw, pl, pr, dw, a["ceil_mode"])
        if oh < 1 or ow < 1:
            raise fail(node, f"the {kh}x{kw} window does not fit the padded {h}x{w} input")
        if a["mode"] not in ("max", "avg", "argmax"):
            raise fail(node, f"unknown pooling mode {a['mode']!r}")
        if a["mode"] == "argmax":
            return [((n, c, oh, ow), x.dtype), ((n, c, oh, ow), "int64")]
        return [((n, c, oh, ow), x.dtype)]

    @staticmethod
    def reference(node, ins):
        a = node.attrs
        x = ins[0]
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = a["kernel"], a["strides"], a["pads"], a["dilations"]
        oh, ow = Pool2d.infer(node)[0][0][2:]
        out = np.empty((n, c, oh, ow), np.float32)
        where = np.empty((n, c, oh, ow), np.int64)
        planes = np.arange(n * c).reshape(n, c) * h * w
        for oy in range(oh):
            for ox in range(ow):
                ys = np.arange(kh) * dh + oy * sh - pt
                xs = np.arange(kw) * dw + ox * sw - pl
                vy, vx = ys[(ys >= 0) & (ys < h)], xs[(xs >= 0) & (xs < w)]
                win = x[:, :, vy][:, :, :, vx]
                if a["mode"] == "argmax":
                    first = win.reshape(n, c, -1).argmax(axis=2)  # the first maximum in row-major order
                    iy, ix = vy[first // len(vx)], vx[first % len(vx)]
                    out[:, :, oy, ox] = win.max(axis=(2, 3))
                    where[:, :, oy, ox] = planes + (ix * h + iy if a["storage_order"] else iy * w + ix)
                elif a["mode"] == "max":
                    out[:, :, oy, ox] = win.max(axis=(2, 3))
                else:
                    if a["count_include_pad"]:
                        cy = np.sum((ys >= -pt) & (ys < h + pb))
                        cx = np.sum((xs >= -pl) & (xs < w + pr))
                        count = cy * cx
                    else:
                        count = len(vy) * len(vx)
                    out[:, :, oy, ox] = win.astype(np.float64).sum(axis=(2, 3)) / count
        return [out, where] if a["mode"] == "argmax" else [out]

    @staticmethod
    def layout(node, perms):
        return [NHWC], [NHWC] * len(node.outputs)


def _pool_size(size, k, stride, pad_begin, pad_end, dil, ceil_mode):
    span = size + pad_begin + pad_end - dil * (k - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    # A window that would start inside the end padding (possible only with ceil_mode) is dropped.
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


# ---------------------------------------------------------------------------------------------


@register("softmax")
class Softmax:
    """Softmax (or, with ``log``, log-softmax) along ``axis``. After ``fuse_softmax``: of
    x * ``scale`` + mask, where a second input (the mask) broadcasts to x."""

    traits = ("layout_free",)

    @staticmethod
    def flops(node):
        return 4 * node.outputs[0].size  # max, subtract and exp, sum, divide

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        normalize_axis(node, node.attrs["axis"], x.rank)
        if len(node.inputs) > 1:
            try:
                if np.broadcast_shapes(node.inputs[1].shape, x.shape) != x.shape:
                    raise ValueError
            except ValueError:
                raise fail(node, f"the mask's shape {node.inputs[1].shape} does not broadcast to {x.shape}") from None
        return [(x.shape, x.dtype)]

    @staticmethod
    def reference(node, ins):
        x = ins[0].astype(np.float64) * node.attrs.get("scale", 1.0)
        if len(ins) > 1:
            x = x + ins[1]
        axis = node.attrs["axis"]
        shifted = x - x.max(axis=axis, keepdims=True)
        if node.attrs.get("log"):
            return [(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(np.float32)]
        e = np.exp(shifted)
        return [(e / e.sum(axis=axis, keepdims=True)).astype(np.float32)]

    @staticmethod
    def layout(node, perms):
        if len(node.inputs) > 1:  # the mask is read at logical offsets
            return [(), ()], [()]
        perm = perms[id(node.inputs[0])]
        return [None], [perm]


@register("layer_norm")
class LayerNorm:
    """Layer normalization over ``axis`` and the axes after it, in one node (``fuse_layer_norm``
    makes it): inputs [x, scale?, bias?], scale and bias one value per element of a normalized
    row (flattened); attrs epsilon, rms (optional: RMS normalization, x / sqrt(mean(x^2) + epsilon),
    no mean taken out)."""

    @staticmethod
    def flops(node):
        return 8 * node.outputs[0].size

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        axis = normalize_axis(node, node.attrs["axis"], x.rank)
        row = int(np.prod(x.shape[axis:], dtype=np.int64))
        for name, t in zip(("scale", "bias"), node.inputs[1:]):
            if t is not None and t.shape != (row,):
                raise fail(node, f"{name} must have shape ({row},), one value per element of a row, got {t.shape}")
        return [(x.shape, x.dtype)]

    @staticmethod
    def reference(node, ins):
        x = ins[0].astype(np.float64)
        axis = node.attrs["axis"] % x.ndim
        rows = x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)
        c = rows if node.attrs.get("rms") else rows - rows.mean(axis=1, keepdims=True)
        y = c / np.sqrt((c * c).mean(axis=1, keepdims=True) + node.attrs["epsilon"])
        for k, t in ((1, "scale"), (2, "bias")):
            if len(ins) > k and ins[k] is not None:
                y = y * ins[k] if t == "scale" else y + ins[k]
        return [y.reshape(x.shape).astype(np.float32)]

    @staticmethod
    def layout(node, perms):
        return [(), None, None], [()]


@register("lrn")
class Lrn:
    """Local response normalization across channels (axis 1): attrs size, alpha, beta, bias."""

    @staticmethod
    def flops(node):
        return node.outputs[0].size * (2 * node.attrs["size"] + 4)

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        require_nchw(node, x)
        return [(x.shape, x.dtype)]

    @staticmethod
    def reference(node, ins):
        a = node.attrs
        x = ins[0].astype(np.float64)
        c = x.shape[1]
        sq = x * x
        lo, hi = (a["size"] - 1) // 2, a["size"] // 2  # window c-lo .. c+hi (ONNX: floor / ceil)
        acc = np.zeros_like(x)
        for ch in range(c):
            acc[:, ch] = sq[:, max(0, ch - lo):min(c, ch + hi + 1)].sum(axis=1)
        return [(x / (a["bias"] + a["alpha"] / a["size"] * acc) ** a["beta"]).astype(np.float32)]

    @staticmethod
    def layout(node, perms):
        return [NHWC], [NHWC]


@register("det")
class Det:
    """inputs [x (..., n, n)]: the determinant of each matrix (ONNX's Det)."""

    @staticmethod
    def layout(node, perms):
        return [()], [()]

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        if x.rank < 2 or x.shape[-1] != x.shape[-2] or is_integer(x.dtype):
            raise fail(node, f"expected float square matrices (..., n, n), got {x.dtype} {x.shape}")
        return [(x.shape[:-2], x.dtype)]

    @staticmethod
    def reference(node, ins):
        return [np.linalg.det(ins[0].astype(np.float64)).astype(ins[0].dtype)]


@register("lstm_cell")
class LstmCell:
    """One step of an LSTM cell after its gates' pre-activations (``fuse_lstm_cell`` makes it from
    the unrolled layer of ``wgnn.recurrent``): inputs [pre (batch, 4 * hidden), gates in ONNX's
    order i, o, f, c; c_prev (batch, hidden) or None]; attr activations (f, g, h); outputs
    [h, c] with c = f(gf) * c_prev + f(gi) * g(gc) and h = f(go) * h(c)."""

    @staticmethod
    def flops(node):
        return 12 * node.outputs[0].size

    @staticmethod
    def infer(node):
        pre, c_prev = node.inputs
        batch, width = pre.shape if pre.rank == 2 else (0, 1)
        if pre.rank != 2 or width % 4 or (c_prev is not None and c_prev.shape != (batch, width // 4)):
            raise fail(node, f"expected pre (batch, 4 * hidden) and c_prev (batch, hidden), got {pre.shape} and "
                             f"{c_prev and c_prev.shape}")
        return [((batch, width // 4), pre.dtype)] * 2

    @staticmethod
    def reference(node, ins):
        pre, c_prev = ins[0].astype(np.float32), ins[1]
        f, g, h = node.attrs["activations"]
        gi, go, gf, gc = np.split(pre, 4, axis=1)
        c = f.apply(gi) * g.apply(gc)
        if c_prev is not None:
            c = f.apply(gf) * c_prev + c
        return [f.apply(go) * h.apply(c), c]

    @staticmethod
    def layout(node, perms):
        return [(), ()], [(), ()]


@register("lstm_step")
class LstmStep:
    """One whole step of an LSTM layer (``fuse_lstm_step`` makes it from a step's recurrent product
    and its ``lstm_cell``): inputs [h_prev (batch, hidden); r (hidden, 4 * hidden), the recurrent
    weights transposed; bias (4 * hidden) or None; p (batch, 4 * hidden), the step's input
    projection, or None; c_prev (batch, hidden) or None; h_scale, one number or one per row
    (batch, 1), or None; h_zero, with a packed state only]; attrs
    activations (f, g, h), scale (an array of one number or one per column, 4 * hidden; or None);
    outputs [h, c]: the ``lstm_cell`` of pre = (h_prev @ r) * s + bias + p, s = h_scale * scale (a
    dynamically quantized layer: h_prev the quantized state q - zero, h_scale its scale, scale the
    weights'; else s = 1). A packed state (attr words, ``dynamic_quantize``'s words): h_prev is
    (batch, hidden / 4) uint32 words of q - 128 and h_zero the state's zero points (uint8, one or
    one per row), so that q - zero is h_prev's values plus 128 - h_zero."""

    @staticmethod
    def flops(node):
        h_prev, r = node.inputs[:2]
        return 2 * h_prev.shape[0] * r.size + 12 * node.outputs[0].size

    @staticmethod
    def infer(node):
        h_prev, r, bias, p, c_prev, h_scale = node.inputs[:6]
        batch, hidden = h_prev.shape if h_prev.rank == 2 else (0, 0)
        if node.attrs.get("words"):
            hidden *= 4
            h_zero = node.inputs[6] if len(node.inputs) > 6 else None
            if (h_prev.dtype != "uint32" or h_scale is None or h_zero is None
                    or h_zero.size != h_scale.size or h_zero.dtype != "uint8"):
                raise fail(node, f"a packed state takes uint32 words, h_scale and h_zero (uint8) of one size, got "
                                 f"h_prev {h_prev.dtype}, h_zero {None if h_zero is None else h_zero.dtype}")
        wants = {"r": (r, (hidden, 4 * hidden)), "bias": (bias, (4 * hidden,)), "p": (p, (batch, 4 * hidden)),
                 "c_prev": (c_prev, (batch, hidden))}
        wrong = [f"{name} {x.shape} (expected {shape})" for name, (x, shape) in wants.items()
                 if x is not None and x.shape != shape]
        if h_scale is not None and not (h_scale.size == 1 or h_scale.shape == (batch, 1)):
            wrong.append(f"h_scale {h_scale.shape} (expected one number, or one per row: ({batch}, 1))")
        if h_prev.rank != 2 or wrong:
            raise fail(node, f"expected h_prev (batch, hidden) and matching operands, got h_prev {h_prev.shape}"
                             + "".join(f", {w}" for w in wrong))
        return [((batch, hidden), "float32" if node.attrs.get("words") else h_prev.dtype)] * 2

    @staticmethod
    def reference(node, ins):
        h_prev, r, bias, p, c_prev, h_scale = ins[:6]
        if node.attrs.get("words"):
            h_prev = state_values(h_prev, np.asarray(ins[6]).reshape(-1, 1))
        pre = h_prev.astype(np.float64) @ r.astype(np.float64)
        if h_scale is not None:  # (integer sums, exact: scaled, then the bias and p added, in f32 as the kernel does)
            scale = node.attrs.get("scale")
            scale = np.ones(1, np.float32) if scale is None else np.asarray(scale, np.float32).reshape(-1)
            pre = pre.astype(np.float32) * (np.asarray(h_scale, np.float32).reshape(-1, 1) * scale)
        for extra in (bias, p):
            if extra is not None:
                pre = pre + (extra.astype(np.float32) if h_scale is not None else extra)
        return LstmCell.reference(node, [pre.astype(np.float32), c_prev])

    @staticmethod
    def layout(node, perms):
        return [()] * len(node.inputs), [(), ()]


@register("lstm_layer")
class LstmLayer:
    """A whole dynamically quantized LSTM layer, every step of each direction (``passes.lstm_layers``
    makes it from the layer's ``lstm_cell``, ``dynamic_quantize`` and ``lstm_step`` nodes): inputs,
    per direction, [p (steps, batch, 4 * hidden), every step's input projection; r (hidden,
    4 * hidden), the recurrent weights transposed, integers; c0 (batch, hidden) or None; h0 (batch,
    hidden) or None]; attrs activations (f, g, h), forward (per direction: whether it runs from the
    first step), scales (per direction: ``lstm_step``'s scale), whole (the state quantized over its
    whole range, else a range per batch row). Outputs [y (steps * directions, batch, hidden), each
    step's hidden states in time order, the directions' side by side (``recurrent.finish``'s
    sequence); c (directions, batch, hidden), the last cell states]. Without h0 a direction's first
    step is the ``lstm_cell`` of its row of p; every other step quantizes the state (h0 for the
    first: ``dynamic_quantize``, packed) and runs the ``lstm_step`` on it: these nodes' references,
    step by step."""

    @staticmethod
    def flops(node):
        steps, batch = node.inputs[0].shape[:2]
        products = sum(steps - (h0 is None) for h0 in node.inputs[3::4])  # (a first lstm_cell has none)
        return products * 2 * batch * node.inputs[1].size + 12 * node.outputs[0].size

    @staticmethod
    def infer(node):
        if len(node.inputs) % 4 or not node.inputs:
            raise fail(node, f"expected (p, r, c0, h0) per direction, got {len(node.inputs)} inputs")
        p = node.inputs[0]
        steps, batch, width = p.shape if p.rank == 3 else (0, 0, 0)
        hidden = width // 4
        dirs = len(node.inputs) // 4
        for d in range(dirs):
            pd, r, c0, h0 = node.inputs[4 * d:4 * d + 4]
            states = [x.shape for x in (c0, h0) if x is not None]
            if (pd.shape != (steps, batch, 4 * hidden) or r.shape != (hidden, 4 * hidden) or not r.is_constant
                    or any(shape != (batch, hidden) for shape in states) or hidden % 4 or steps < 2):
                raise fail(node, f"direction {d}: expected p (steps >= 2, batch, 4 * hidden), constant r (hidden, "
                                 f"4 * hidden), c0 and h0 (batch, hidden) with the hidden size a multiple of 4, got p "
                                 f"{pd.shape}, r {r.shape}, c0 and h0 {states}")
        return [((steps * dirs, batch, hidden), "float32"), ((dirs, batch, hidden), "float32")]

    @staticmethod
    def reference(node, ins):
        dirs = len(ins) // 4
        steps, batch, width = ins[0].shape
        hidden = width // 4
        y = np.zeros((steps * dirs, batch, hidden), np.float32)
        c_last = np.zeros((dirs, batch, hidden), np.float32)
        state = Operand("h", (batch, hidden))
        quantize = Node("dynamic_quantize", [state], [Operand("words", (batch, hidden // 4), "uint32")],
                        {"words": True, "shifted": True, "rows": not node.attrs["whole"]})
        for d in range(dirs):
            p, r, c, h = ins[4 * d:4 * d + 4]
            step = Node("lstm_step", [], [state], {"activations": node.attrs["activations"], "words": True,
                                                  "scale": node.attrs["scales"][d]})
            times = range(steps) if node.attrs["forward"][d] else range(steps - 1, -1, -1)
            for t in times:
                if h is None:  # (a first step without an initial hidden state)
                    h, c = LstmCell.reference(node, [np.asarray(p[t], np.float32), c])
                else:
                    words, scale, zero = DynamicQuantize.reference(quantize, [h])
                    h, c = LstmStep.reference(step, [words, r, None, p[t], c, scale, zero])
                y[t * dirs + d] = h
            c_last[d] = c
        return [y, c_last]

    @staticmethod
    def layout(node, perms):
        return [()] * len(node.inputs), [(), ()]
