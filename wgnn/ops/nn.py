"""Convolution, matrix multiply, normalization, pooling and softmax."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..layout import NHWC
from . import fail, normalize_axis, register, require_nchw
from .activation import apply_fused

# ---------------------------------------------------------------------------------------------
# conv2d: inputs [x, w, bias?, residual?, slope?]; attrs strides, pads (t, l, b, r), dilations,
# groups, activation. ``residual`` is a tensor of the output's shape added before the activation,
# ``slope`` the per-channel PRelu slope; both appear only after fusion.


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
        oh = conv_out_size(h, kh, sh, pt + pb, dh)
        ow = conv_out_size(wd, kw, sw, pl + pr, dw)
        if oh < 1 or ow < 1:
            raise fail(node, f"the {kh}x{kw} filter does not fit the padded {h}x{wd} input")
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        if bias is not None and bias.shape != (o,):
            raise fail(node, f"bias must have shape ({o},), got {bias.shape}")
        return [((n, o, oh, ow), x.dtype)]

    @staticmethod
    def reference(node, ins):
        x, w = ins[0], ins[1]
        a = node.attrs
        y = conv_reference(x, w, a["strides"], a["pads"], a["dilations"], a["groups"])
        bias, residual, slope = (ins + [None, None, None])[2:5]
        if bias is not None:
            y = y + bias.reshape(1, -1, 1, 1)
        if residual is not None:
            y = y + residual
        y = y.astype(np.float32)
        return [apply_fused(a, y, None if slope is None else slope.reshape(1, -1, 1, 1))]

    @staticmethod
    def layout(node, perms):
        # Weights computed at run time are read in logical OIHW order (constants are packed at load).
        return [NHWC, (), None, NHWC, None], [NHWC]

    @staticmethod
    def lower(node, ctx):
        lower_conv2d(node, ctx)


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

    @staticmethod
    def lower(node, ctx):
        lower_conv_transpose2d(node, ctx)


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
# matmul: numpy semantics over inputs [a, b, bias?, residual?, slope?] (bias along the last axis).


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
        return [(out, a.dtype)]

    @staticmethod
    def reference(node, ins):
        a, b = ins[0], ins[1]
        y = np.matmul(a.astype(np.float64), b.astype(np.float64))
        bias, residual, slope = (ins + [None, None, None])[2:5]
        if bias is not None:
            y = y + bias
        if residual is not None:
            y = y + residual
        return [apply_fused(node.attrs, y.astype(np.float32), slope)]

    @staticmethod
    def layout(node, perms):
        return [()] * 2 + [None, (), None], [()]

    @staticmethod
    def lower(node, ctx):
        lower_matmul(node, ctx)


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

    @staticmethod
    def lower(node, ctx):
        lower_pool2d(node, ctx)


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
    traits = ("layout_free",)

    @staticmethod
    def flops(node):
        return 4 * node.outputs[0].size  # max, subtract and exp, sum, divide

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        normalize_axis(node, node.attrs["axis"], x.rank)
        return [(x.shape, x.dtype)]

    @staticmethod
    def reference(node, ins):
        x = ins[0].astype(np.float64)
        axis = node.attrs["axis"]
        shifted = x - x.max(axis=axis, keepdims=True)
        if node.attrs.get("log"):
            return [(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(np.float32)]
        e = np.exp(shifted)
        return [(e / e.sum(axis=axis, keepdims=True)).astype(np.float32)]

    @staticmethod
    def lower(node, ctx):
        lower_softmax(node, ctx)


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

    @staticmethod
    def lower(node, ctx):
        lower_lrn(node, ctx)


# ---------------------------------------------------------------------------------------------
# GPU lowering. Weights are packed here, once, into the layout their kernel reads.

TILE_X = 4  # output pixels per invocation in conv2d and depthwise
TILE_M = 4  # output rows per invocation in matmul


@dataclass
class Epilogue:
    """What a fused conv/matmul epilogue needs, whichever backend lowers it: the per-channel bias
    and PRelu slope (None without PRelu), the residual tensor, and the template and uniforms."""

    bias: np.ndarray
    residual: object
    slope: np.ndarray | None
    template: dict
    params: dict


def fused_epilogue(node, ctx, channels: int) -> Epilogue:
    act = node.attrs.get("activation")
    ins = node.inputs + [None] * (5 - len(node.inputs))
    bias, residual, slope = ins[2], ins[3], ins[4]
    for t, what in ((bias, "bias"), (slope, "PRelu slope")):
        if t is not None and not t.is_constant:
            raise ctx.unsupported(node, f"a {what} computed at run time")
    bias_v = np.zeros(channels, np.float32) if bias is None else bias.value.astype(np.float32).reshape(-1)
    slope_v = None
    if act is not None and act.kind == "prelu":
        slope_v = np.broadcast_to(slope.value.astype(np.float32).reshape(-1), (channels,))
    template = {"act": act.kind if act else "none", "residual": residual is not None}
    params = {"alpha": act.alpha if act else 0.0, "beta": act.beta if act else 0.0}
    return Epilogue(bias_v, residual, slope_v, template, params)


def _epilogue(node, ctx, channels: int, vec4: bool):
    """Bias, residual and PRelu-slope bindings plus template/params for the compute kernels."""
    e = fused_epilogue(node, ctx, channels)
    pad = (-channels % 4) if vec4 else 0
    refs = [ctx.const(np.pad(e.bias, (0, pad))),
            ctx.tensor(e.residual) if e.residual is not None else ctx.dummy(),
            ctx.const(np.pad(e.slope, (0, pad))) if e.slope is not None else ctx.dummy()]
    return refs, e.template, e.params


def lower_conv2d(node, ctx):
    x, w = node.inputs[0], node.inputs[1]
    out = node.outputs[0]
    n, c, h, wd = x.shape
    o, cpg, kh, kw = w.shape
    _, _, oh, ow = out.shape
    g = node.attrs["groups"]
    (sh, sw), (dh, dw), (pt, pl, _, _) = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
    opg = o // g
    if not w.is_constant:
        # Weights computed at run time (or fed as an input) are read as they are, OIHW, by the
        # scalar kernel: the tiled kernels need them packed, which happens at load time.
        _conv_generic(node, ctx, ctx.tensor(w))
        return
    weights = w.value.astype(np.float32)

    if g == c == o and c % 4 == 0:
        refs, template, params = _epilogue(node, ctx, o, vec4=True)
        tiles = -(-ow // TILE_X)
        params.update(batch=n, in_h=h, in_w=wd, c4=c // 4, out_h=oh, out_w=ow, tiles_w=tiles, kernel_h=kh,
                      stride_h=sh, dil_h=dh, pad_top=pt, pad_left=pl)
        template.update(tile_x=TILE_X, kernel_w=kw, stride_w=sw, dil_w=dw)
        packed = weights[:, 0].transpose(1, 2, 0)  # KH, KW, C
        ctx.dispatch("depthwise", node=node, template=template, params=params,
                     bindings=[ctx.tensor(x), ctx.const(packed)] + refs + [ctx.tensor(out)],
                     threads=n * oh * tiles * (c // 4))
        return

    if (kh, kw, sh, sw) == (1, 1, 1, 1) and node.attrs["pads"] == (0, 0, 0, 0) and g == 1 \
            and c % 4 == 0 and o % 4 == 0:
        # A pointwise convolution is a matrix multiply over the NHWC rows.
        _matmul_call(node, ctx, ctx.tensor(x), ctx.const(weights[:, :, 0, 0].T), m=n * h * wd, k=c, cols=o,
                     batch=1, a_stride=0, b_stride=0, b_const=True)
        return

    if cpg % 4 == 0 and opg % 4 == 0:
        refs, template, params = _epilogue(node, ctx, o, vec4=True)
        tiles = -(-ow // TILE_X)
        params.update(batch=n, in_h=h, in_w=wd, in_c4=c // 4, out_h=oh, out_w=ow, out_c4=o // 4, tiles_w=tiles,
                      cin4_per_group=cpg // 4, cout4_per_group=opg // 4, kernel_h=kh, kernel_w=kw,
                      stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
        template.update(tile_x=TILE_X)
        packed = weights.transpose(2, 3, 1, 0)  # KH, KW, Cin/group, Cout
        ctx.dispatch("conv2d", node=node, template=template, params=params,
                     bindings=[ctx.tensor(x), ctx.const(packed)] + refs + [ctx.tensor(out)],
                     threads=n * oh * tiles * (o // 4))
        return

    _conv_generic(node, ctx, ctx.const(weights))


def _conv_generic(node, ctx, weights) -> None:
    """Any convolution on the scalar kernel, its weights (a binding) in OIHW order."""
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    _, _, oh, ow = out.shape
    (sh, sw), (dh, dw), (pt, pl, _, _) = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
    refs, template, params = _epilogue(node, ctx, o, vec4=False)
    template["w_access"] = "read" if w.is_constant else "read_write"
    params.update(batch=n, in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=o, groups=node.attrs["groups"],
                  kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
    ctx.dispatch("conv2d_generic", node=node, template=template, params=params,
                 bindings=[ctx.tensor(x), weights] + refs + [ctx.tensor(out)], threads=out.size)


def lower_conv_transpose2d(node, ctx):
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    n, c, h, wd = x.shape
    _, o, oh, ow = out.shape
    g = node.attrs["groups"]
    _, opg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, _, _) = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
    if w.is_constant:  # [Cin, Cout/g, KH, KW] -> [Cout][KH][KW][Cin/g]: the inner loop walks input channels
        cpg = c // g
        weights = ctx.const(w.value.astype(np.float32).reshape(g, cpg, opg, kh, kw).transpose(0, 2, 3, 4, 1))
    else:  # computed at run time: read in ONNX's order (its logical order: the layout pass keeps it so)
        weights = ctx.tensor(w)
    refs, template, params = _epilogue(node, ctx, o, vec4=False)
    template["packed"] = w.is_constant
    template["w_access"] = "read" if w.is_constant else "read_write"
    params.update(batch=n, in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=o, groups=g, kernel_h=kh,
                  kernel_w=kw, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
    ctx.dispatch("conv_transpose", node=node, template=template, params=params,
                 bindings=[ctx.tensor(x), weights] + refs + [ctx.tensor(out)], threads=out.size)


def _matmul_call(node, ctx, a_ref, b_ref, *, m, k, cols, batch, a_stride, b_stride, b_const):
    out = node.outputs[0]
    aligned = k % 4 == 0 and cols % 4 == 0
    refs, template, params = _epilogue(node, ctx, cols, vec4=aligned)
    template["b_access"] = "read" if b_const else "read_write"
    if aligned:
        template["tile_m"] = TILE_M
        tiles = -(-m // TILE_M)
        params.update(m=m, k4=k // 4, n4=cols // 4, m_tiles=tiles, batch=batch,
                      a_batch_stride=a_stride // 4, b_batch_stride=b_stride // 4)
        ctx.dispatch("matmul", node=node, template=template, params=params,
                     bindings=[a_ref, b_ref] + refs + [ctx.tensor(out)], threads=batch * tiles * (cols // 4))
    else:
        params.update(m=m, k=k, n=cols, batch=batch, a_batch_stride=a_stride, b_batch_stride=b_stride)
        ctx.dispatch("matmul_generic", node=node, template=template, params=params,
                     bindings=[a_ref, b_ref] + refs + [ctx.tensor(out)], threads=batch * m * cols)


def lower_matmul(node, ctx):
    a, b = node.inputs[0], node.inputs[1]
    sa = a.shape if a.rank > 1 else (1,) + a.shape
    sb = b.shape if b.rank > 1 else b.shape + (1,)
    m, k, cols = sa[-2], sa[-1], sb[-1]
    batch_shape = tuple(np.broadcast_shapes(sa[:-2], sb[:-2]))
    batch = int(np.prod(batch_shape, dtype=np.int64))

    def stride(shape, per_matrix):
        full = tuple(shape[:-2])
        if int(np.prod(full, dtype=np.int64)) == 1:
            return 0
        if (1,) * (len(batch_shape) - len(full)) + full != batch_shape:
            raise ctx.unsupported(node, f"MatMul batch broadcasting between {a.shape} and {b.shape}")
        return per_matrix

    a_stride, b_stride = stride(sa, m * k), stride(sb, k * cols)
    b_ref = ctx.const(b.value.astype(np.float32)) if b.is_constant else ctx.tensor(b)
    _matmul_call(node, ctx, ctx.tensor(a), b_ref, m=m, k=k, cols=cols, batch=batch, a_stride=a_stride,
                 b_stride=b_stride, b_const=b.is_constant)


def lower_pool2d(node, ctx):
    x, out = node.inputs[0], node.outputs[0]
    a = node.attrs
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = a["kernel"], a["strides"], a["pads"], a["dilations"]
    window = dict(batch=n, in_h=h, in_w=w, out_h=out.shape[2], out_w=out.shape[3], kernel_h=kh, kernel_w=kw,
                  stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
    if a["mode"] == "argmax":
        params = dict(window, c=c, storage_order=int(a["storage_order"]))
        ctx.dispatch("pool_argmax", node=node, template={}, params=params,
                     bindings=[ctx.tensor(x), ctx.tensor(out), ctx.tensor(node.outputs[1])], threads=out.size)
        return
    lanes = 4 if c % 4 == 0 else 1  # four channels per invocation, as one vec4, when they divide
    params = dict(window, c=c // lanes, pad_bottom=pb, pad_right=pr, count_include_pad=int(a["count_include_pad"]))
    vec = lanes == 4
    template = {"mode": a["mode"], "lanes": lanes, "v_type": "vec4<f32>" if vec else "f32",
                "x_type": "vec4<x_elem>" if vec else "x_elem", "y_type": "vec4<y_elem>" if vec else "y_elem"}
    ctx.dispatch("pool", node=node, template=template, params=params,
                 bindings=[ctx.tensor(x), ctx.tensor(out)], threads=out.size // lanes)


def lower_softmax(node, ctx):
    x, out = node.inputs[0], node.outputs[0]
    perm = ctx.perm(x)
    k = perm.index(node.attrs["axis"] % x.rank)
    phys = [x.shape[p] for p in perm]
    outer, inner = int(np.prod(phys[:k], dtype=np.int64)), int(np.prod(phys[k + 1:], dtype=np.int64))
    ctx.dispatch("softmax", node=node, template={"log": node.attrs.get("log", False)},
                 params={"rows": outer * inner, "axis_size": phys[k], "inner": inner},
                 bindings=[ctx.tensor(x), ctx.tensor(out)], workgroups=outer * inner)


def lower_lrn(node, ctx):
    x, out = node.inputs[0], node.outputs[0]
    a = node.attrs
    params = {"total": out.size, "c": x.shape[1], "size": a["size"], "alpha": a["alpha"], "beta": a["beta"],
              "bias": a["bias"]}
    ctx.dispatch("lrn", node=node, template={}, params=params, bindings=[ctx.tensor(x), ctx.tensor(out)],
                 threads=out.size)
