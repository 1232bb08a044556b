"""Resizing the two spatial axes of an NCHW tensor: nearest-neighbour and bilinear.

Every coordinate convention (ONNX's ``coordinate_transformation_mode``, TFLite's ``align_corners``
and ``half_pixel_centers``) is the same affine map from an output index to a source position,
``src = (dst + in_offset) * scale - out_offset``, with its own three numbers per axis; so one
kernel and one reference serve them all. Source positions outside the image clamp to its edge.
"""

from __future__ import annotations

import numpy as np

from ..layout import NHWC
from . import fail, register, require_nchw

COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")
NEAREST_MODES = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")


def axis_map(mode: str, in_size: int, out_size: int, scale: float | None = None) -> tuple[float, float, float]:
    """(scale, in_offset, out_offset) of one axis. ``scale`` is the output/input ratio when the
    model gives one (ONNX ``scales``); otherwise it follows from the sizes."""
    ratio = in_size / out_size if scale is None else 1.0 / scale
    if mode == "half_pixel":
        return ratio, 0.5, 0.5
    if mode == "pytorch_half_pixel":
        return (ratio, 0.5, 0.5) if out_size > 1 else (0.0, 0.0, 0.0)
    if mode == "align_corners":
        return ((in_size - 1) / (out_size - 1), 0.0, 0.0) if out_size > 1 else (0.0, 0.0, 0.0)
    if mode == "asymmetric":
        return ratio, 0.0, 0.0
    if mode == "tf_half_pixel_for_nn":
        return ratio, 0.5, 0.0
    raise ValueError(f"unknown coordinate mode {mode!r}; expected one of {COORDINATE_MODES}")


def _round(src: np.ndarray, nearest: str) -> np.ndarray:
    if nearest == "floor":
        return np.floor(src)
    if nearest == "ceil":
        return np.ceil(src)
    if nearest == "round_prefer_ceil":
        return np.floor(src + 0.5)
    return np.ceil(src - 0.5)


@register("resize")
class Resize:
    """attrs: mode ("nearest" | "linear"), size (OH, OW), maps ((scale, in_offset, out_offset) for
    H and W), nearest (rounding of nearest mode)."""

    @staticmethod
    def flops(node):
        return node.outputs[0].size * (7 if node.attrs["mode"] == "linear" else 0)

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        require_nchw(node, x)
        oh, ow = node.attrs["size"]
        if oh < 1 or ow < 1:
            raise fail(node, f"output size {oh}x{ow} is empty")
        if node.attrs["mode"] not in ("nearest", "linear"):
            raise fail(node, f"mode {node.attrs['mode']!r} is not nearest or linear")
        return [((x.shape[0], x.shape[1], oh, ow), x.dtype)]

    @staticmethod
    def reference(node, ins):
        x = ins[0].astype(np.float64)
        a = node.attrs
        axes = []
        for size_in, size_out, (scale, off_in, off_out) in zip(x.shape[2:], a["size"], a["maps"]):
            src = (np.arange(size_out) + off_in) * np.float32(scale) - off_out
            if a["mode"] == "nearest":
                axes.append((np.clip(_round(src, a["nearest"]), 0, size_in - 1).astype(int),))
            else:
                lo = np.floor(src)
                frac = src - lo
                axes.append((np.clip(lo, 0, size_in - 1).astype(int), np.clip(lo + 1, 0, size_in - 1).astype(int),
                             frac))
        if a["mode"] == "nearest":
            return [x[:, :, axes[0][0]][:, :, :, axes[1][0]].astype(np.float32)]
        (y0, y1, fy), (x0, x1, fx) = axes
        fy, fx = fy[:, None], fx[None, :]
        top = x[:, :, y0][:, :, :, x0] * (1 - fx) + x[:, :, y0][:, :, :, x1] * fx
        bottom = x[:, :, y1][:, :, :, x0] * (1 - fx) + x[:, :, y1][:, :, :, x1] * fx
        return [(top * (1 - fy) + bottom * fy).astype(np.float32)]

    @staticmethod
    def layout(node, perms):
        return [NHWC], [NHWC]

    @staticmethod
    def lower(node, ctx):
        x, out = node.inputs[0], node.outputs[0]
        a = node.attrs
        n, c, h, w = x.shape
        (sh, ih, oh_), (sw, iw, ow_) = a["maps"]
        params = dict(batch=n, in_h=h, in_w=w, c=c, out_h=out.shape[2], out_w=out.shape[3], scale_h=sh,
                      scale_w=sw, in_off_h=ih, in_off_w=iw, out_off_h=oh_, out_off_w=ow_)
        ctx.dispatch("resize", node=node, template={"mode": a["mode"], "nearest": a["nearest"]}, params=params,
                     bindings=[ctx.tensor(x), ctx.tensor(out)], threads=out.size)
