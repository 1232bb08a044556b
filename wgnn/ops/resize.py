"""Resizing the two spatial axes of an NCHW tensor: nearest-neighbour, (bi)linear and (bi)cubic.

Every coordinate convention (ONNX's ``coordinate_transformation_mode``, TFLite's ``align_corners``
and ``half_pixel_centers``) is the same affine map from an output index to a source position,
``src = (dst + in_offset) * scale - out_offset``, with its own three numbers per axis; so one
kernel and one reference serve them all. The host computes each axis's positions once
(``source_positions``): the kernel reads them from a table instead of redoing the arithmetic in
float32, where a fused multiply-add on one GPU and not on another would move a half-way point.

Linear and cubic are one separable filter: along each axis the taps ``floor(src) + i`` for ``i``
in ``[start, start + taps)`` weigh ``filter((i - frac(src)) * support_scale)``, normalized to sum 1.
Without antialiasing ``support_scale`` is 1 (two taps for the triangle, four for Keys' cubic with
coefficient ``A``); antialiased downsampling stretches the filter by 1 / scale, with more taps.
Taps past the edge read the edge pixel, or (``exclude_outside``) drop out of the sum. With
``extrapolation`` set (ONNX's tf_crop_and_resize), a source position outside the image gives that
value instead.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ..layout import NHWC
from .registry import fail, register, require_nchw

COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
                    "half_pixel_symmetric", "tf_crop_and_resize")
NEAREST_MODES = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")
MODES = ("nearest", "linear", "cubic")
MAX_TAPS = 64  # per axis: an antialiased downsampling by more than 16x (cubic) or 32x (linear) is refused


def axis_map(mode: str, in_size: int, out_size: int, scale: float | None = None,
             roi: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float, float]:
    """(scale, in_offset, out_offset) of one axis. ``scale`` is the output/input ratio when the
    model gives one (ONNX ``scales``); otherwise it follows from the sizes. ``roi`` (start, end,
    as fractions of the input) is tf_crop_and_resize's crop."""
    ratio = in_size / out_size if scale is None else 1.0 / scale
    out_float = out_size if scale is None else in_size * scale  # ONNX's output_width, before flooring
    if mode == "half_pixel":
        return ratio, 0.5, 0.5
    if mode == "pytorch_half_pixel":
        return (ratio, 0.5, 0.5) if out_size > 1 else (0.0, 0.0, 0.0)
    if mode == "align_corners":
        return ((in_size - 1) / (out_float - 1), 0.0, 0.0) if out_float != 1 else (0.0, 0.0, 0.0)
    if mode == "asymmetric":
        return ratio, 0.0, 0.0
    if mode == "tf_half_pixel_for_nn":
        return ratio, 0.5, 0.0
    if mode == "half_pixel_symmetric":
        # half_pixel, shifted so that the centre of the input maps to the centre of the output
        offset = in_size / 2 * (1 - out_size / out_float)
        return ratio, 0.5, 0.5 - offset
    if mode == "tf_crop_and_resize":
        lo, hi = roi
        if out_size == 1:
            return 0.0, 0.0, -(lo + hi) * (in_size - 1) / 2
        return (hi - lo) * (in_size - 1) / (out_size - 1), 0.0, -lo * (in_size - 1)
    raise ConfigError(f"unknown coordinate mode {mode!r}; expected one of {COORDINATE_MODES}")


def filter_taps(mode: str, scale: float, antialias: bool) -> tuple[float, int, int]:
    """(support_scale, start, taps) of the linear or cubic filter along an axis of ``scale``."""
    support = min(scale, 1.0) if antialias else 1.0
    reach = 1.0 if mode == "linear" else 2.0
    start = int(math.floor(-reach / support)) + 1
    return support, start, 2 - 2 * start


def _round(src: np.ndarray, nearest: str) -> np.ndarray:
    if nearest == "floor":
        return np.floor(src)
    if nearest == "ceil":
        return np.ceil(src)
    if nearest == "round_prefer_ceil":
        return np.floor(src + 0.5)
    return np.ceil(src - 0.5)


def _filter(mode: str, d: np.ndarray, a: float) -> np.ndarray:
    d = np.abs(d)
    if mode == "linear":
        return np.clip(1 - d, 0, 1)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def source_positions(attrs: dict, axis: int, size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(the source position of each output index along ``axis``, which of them lie outside the input).
    Computed in float64 and rounded to float32, the precision the kernel reads, so a position that is
    exact in theory (a half-way point of nearest rounding, a whole pixel) stays exact on every GPU,
    whatever its division or fused multiply-adds. Nearest mode gives the chosen, clamped index.
    With ``float32_positions`` (TFLite's models) each step is float32 arithmetic, as TFLite computes
    them: its align_corners scale (in - 1) / (out - 1) rounded to float32, times the index, can
    fall short of a half-way point (11 x 13 / 22: 6.4999996, which TFLite rounds to 6)."""
    scale, off_in, off_out = attrs["maps"][axis]
    if attrs.get("float32_positions"):
        f32 = np.float32
        src = ((np.arange(size_out, dtype=f32) + f32(off_in)) * f32(scale) - f32(off_out)).astype(np.float64)
    else:
        src = ((np.arange(size_out) + off_in) * scale - off_out).astype(np.float32).astype(np.float64)
    outside = (src < 0) | (src > size_in - 1)
    if attrs["mode"] == "nearest":
        nearest = attrs["nearest"]  # one mode, or one per axis
        src = np.clip(_round(src, nearest if isinstance(nearest, str) else nearest[axis]), 0, size_in - 1)
    return src, outside


def _weights(attrs: dict, axis: int, size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(the [out, in] interpolation matrix of one axis, which outputs extrapolate)."""
    src, outside = source_positions(attrs, axis, size_in, size_out)
    w = np.zeros((size_out, size_in))
    if attrs["mode"] == "nearest":
        w[np.arange(size_out), src.astype(int)] = 1
        return w, outside
    support, start, taps = attrs["filters"][axis]
    base = np.floor(src)
    for i in range(start, start + taps):
        idx = base + i
        tap = _filter(attrs["mode"], (i - (src - base)) * support, attrs["cubic_a"])
        if attrs["exclude_outside"]:
            tap = np.where((idx < 0) | (idx > size_in - 1), 0, tap)
        np.add.at(w, (np.arange(size_out), np.clip(idx, 0, size_in - 1).astype(int)), tap)
    return w / w.sum(axis=1, keepdims=True), outside


@register("resize")
class Resize:
    """attrs: mode (nearest | linear | cubic), size (OH, OW), maps ((scale, in_offset, out_offset)
    for H and W), nearest (rounding of nearest mode), filters ((support_scale, start, taps) for H
    and W), cubic_a, exclude_outside, extrapolation (a value, or None to clamp to the edge)."""

    @staticmethod
    def flops(node):
        if node.attrs["mode"] == "nearest":
            return 0
        (_, _, th), (_, _, tw) = node.attrs["filters"]
        return node.outputs[0].size * 3 * th * tw

    @staticmethod
    def infer(node):
        x, a = node.inputs[0], node.attrs
        require_nchw(node, x)
        oh, ow = a["size"]
        if oh < 1 or ow < 1:
            raise fail(node, f"output size {oh}x{ow} is empty")
        if a["mode"] not in MODES:
            raise fail(node, f"mode {a['mode']!r} is not one of {MODES}")
        if a["mode"] != "nearest" and max(taps for _, _, taps in a["filters"]) > MAX_TAPS:
            raise fail(node, f"antialiased downsampling needs {[t for _, _, t in a['filters']]} taps per axis, "
                             f"more than {MAX_TAPS}")
        return [((x.shape[0], x.shape[1], oh, ow), x.dtype)]

    @staticmethod
    def reference(node, ins):
        x = ins[0].astype(np.float64)
        a = node.attrs
        (wy, out_y), (wx, out_x) = (_weights(a, k, x.shape[2 + k], a["size"][k]) for k in range(2))
        y = np.einsum("nchw,oh,pw->ncop", x, wy, wx)
        if a["extrapolation"] is not None:
            y = np.where((out_y[:, None] | out_x[None, :])[None, None], a["extrapolation"], y)
        return [y.astype(ins[0].dtype)]

    @staticmethod
    def layout(node, perms):
        return [NHWC], [NHWC]
