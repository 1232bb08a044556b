"""Ops that index along an axis or by index tuples: cumulative sums and products, top-k, the
element- and tuple-wise gathers and scatters, and region pooling (ONNX's CumSum, CumProd, TopK,
GatherElements, GatherND, ScatterElements, ScatterND, RoiAlign). All run on tensors in their
logical (row-major) order.

Indices computed at run time are taken as ONNX defines them (negative ones count from the end);
past the axis they are clamped (gathers) or match nothing (scatters), since a shader cannot raise.
Scatters are written as gathers: each output element looks through the updates for those aimed at
it and applies them in the order ONNX lists them, so duplicates and reductions give the same
result on every run, as ONNX Runtime's sequential loop does.
"""

from __future__ import annotations

import numpy as np

from ..graph import is_integer
from .registry import fail, normalize_axis, register

REDUCTIONS = ("none", "add", "mul", "max", "min")


def _logical(n_in: int, n_out: int = 1):
    def layout(node, perms):
        return [()] * n_in, [()] * n_out

    return staticmethod(layout)


def _check_indices(node, indices) -> None:
    if not is_integer(indices.dtype):
        raise fail(node, f"indices must be an integer tensor, got {indices.dtype}")


def _check_reduction(node) -> None:
    if node.attrs["reduction"] not in REDUCTIONS:
        raise fail(node, f"reduction {node.attrs['reduction']!r} is not one of {REDUCTIONS}")


def _wrap(idx: np.ndarray, size) -> np.ndarray:
    idx = idx.astype(np.int64)
    return np.where(idx < 0, idx + size, idx)


_REDUCE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _combine(reduction: str, a, b):
    """What a scatter leaves where ``b`` (an element or a slice) lands on ``a``."""
    return b if reduction == "none" else _REDUCE[reduction](a, b)


@register("cumsum")
class CumSum:
    """inputs [x]; attrs axis, exclusive, reverse, product (running products instead of sums)."""

    layout = _logical(1)

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        normalize_axis(node, node.attrs["axis"], x.rank)
        return [(x.shape, x.dtype)]

    @staticmethod
    def reference(node, ins):
        x = ins[0]
        axis = node.attrs["axis"] % x.ndim
        if node.attrs["reverse"]:
            x = np.flip(x, axis)
        product = node.attrs.get("product", False)
        total = (np.cumprod if product else np.cumsum)(x, axis=axis, dtype=x.dtype)
        if node.attrs["exclusive"]:
            start = np.ones_like if product else np.zeros_like
            total = np.concatenate([start(np.take(total, [0], axis)),
                                    np.take(total, range(x.shape[axis] - 1), axis)], axis)
        return [np.flip(total, axis) if node.attrs["reverse"] else total]


@register("top_k")
class TopK:
    """inputs [x]; attrs k, axis, largest. Outputs the k largest (or smallest) values along the
    axis, in order, and their indices (int64); equal values keep their order along the axis."""

    layout = _logical(1, 2)

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        axis = normalize_axis(node, node.attrs["axis"], x.rank)
        k = node.attrs["k"]
        if not 0 <= k <= x.shape[axis]:
            raise fail(node, f"k={k} for an axis of {x.shape[axis]}")
        shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
        return [(shape, x.dtype), (shape, "int64")]

    @staticmethod
    def reference(node, ins):
        x, axis, k = ins[0], node.attrs["axis"] % ins[0].ndim, node.attrs["k"]
        key = x.astype(np.float64)  # (exact for the integers a GPU stores)
        order = np.argsort(-key if node.attrs["largest"] else key, axis=axis, kind="stable")
        order = np.take(order, range(k), axis)
        return [np.take_along_axis(x, order, axis), order.astype(np.int64)]


@register("gather_elements")
class GatherElements:
    """inputs [data, indices] of the same rank; attrs axis. out[c] = data[c with c[axis] =
    indices[c]]."""

    layout = _logical(2)

    @staticmethod
    def infer(node):
        data, idx = node.inputs
        normalize_axis(node, node.attrs["axis"], data.rank)
        _check_indices(node, idx)
        if idx.rank != data.rank:
            raise fail(node, f"indices of rank {idx.rank} for data of rank {data.rank}: they must be equal")
        axis = node.attrs["axis"] % data.rank
        if any(i > d for a, (i, d) in enumerate(zip(idx.shape, data.shape)) if a != axis):
            raise fail(node, f"indices {idx.shape} reach past data {data.shape} off the axis {axis}")
        return [(idx.shape, data.dtype)]

    @staticmethod
    def reference(node, ins):
        data, idx = ins
        axis = node.attrs["axis"] % data.ndim
        return [np.take_along_axis(data, _wrap(idx, data.shape[axis]), axis)]


@register("gather_nd")
class GatherND:
    """inputs [data, indices]; attrs batch_dims. Each row of indices' last axis is a tuple that
    picks a slice of data (after the first batch_dims axes, which data and indices share)."""

    layout = _logical(2)

    @staticmethod
    def infer(node):
        data, idx = node.inputs
        b = node.attrs["batch_dims"]
        _check_indices(node, idx)
        if idx.rank < 1 or not 0 <= b < min(data.rank, idx.rank) or data.shape[:b] != idx.shape[:b]:
            raise fail(node, f"batch_dims {b} for data {data.shape} and indices {idx.shape}")
        q = idx.shape[-1]
        if b + q > data.rank:
            raise fail(node, f"index tuples of {q} for data of rank {data.rank} after {b} batch axes")
        return [(idx.shape[:-1] + data.shape[b + q:], data.dtype)]

    @staticmethod
    def reference(node, ins):
        data, idx = ins
        b = node.attrs["batch_dims"]
        q = idx.shape[-1]
        batch = int(np.prod(data.shape[:b], dtype=np.int64))
        d = data.reshape((batch,) + data.shape[b:])
        rows = idx.reshape(batch, -1, q)
        out = [d[n][tuple(_wrap(row, data.shape[b:b + q]))] for n in range(batch) for row in rows[n]]
        shape = idx.shape[:-1] + data.shape[b + q:]
        return [np.array(out, dtype=data.dtype).reshape(shape)]


@register("scatter_elements")
class ScatterElements:
    """inputs [data, indices, updates]; attrs axis, reduction. A copy of data where
    updates[c] goes to c with c[axis] = indices[c], combined by ``reduction`` in order."""

    layout = _logical(3)

    @staticmethod
    def infer(node):
        data, idx, upd = node.inputs
        normalize_axis(node, node.attrs["axis"], data.rank)
        _check_indices(node, idx)
        if idx.shape != upd.shape or idx.rank != data.rank:
            raise fail(node, f"indices {idx.shape} and updates {upd.shape} must have one shape, of data's rank "
                             f"{data.rank}")
        _check_reduction(node)
        return [(data.shape, data.dtype)]

    @staticmethod
    def reference(node, ins):
        data, idx, upd = ins
        axis = node.attrs["axis"] % data.ndim
        out = data.copy()
        for pos in np.ndindex(idx.shape):
            target = list(pos)
            target[axis] = int(_wrap(np.array(idx[pos]), data.shape[axis]))
            out[tuple(target)] = _combine(node.attrs["reduction"], out[tuple(target)], upd[pos])
        return [out]


@register("scatter_nd")
class ScatterND:
    """inputs [data, indices, updates]; attrs reduction. A copy of data where each row of
    indices' last axis names a slice that takes the matching slice of updates, in order."""

    layout = _logical(3)

    @staticmethod
    def infer(node):
        data, idx, upd = node.inputs
        _check_indices(node, idx)
        q = idx.shape[-1] if idx.rank else 0
        if idx.rank < 1 or q > data.rank or upd.shape != idx.shape[:-1] + data.shape[q:]:
            raise fail(node, f"updates {upd.shape} must be indices' {idx.shape[:-1]} then data's {data.shape[q:]}")
        _check_reduction(node)
        return [(data.shape, data.dtype)]

    @staticmethod
    def reference(node, ins):
        data, idx, upd = ins
        q = idx.shape[-1]
        out = data.copy()
        rows, slices = idx.reshape(-1, q), upd.reshape((-1,) + data.shape[q:])
        for row, piece in zip(rows, slices):
            target = tuple(_wrap(row, data.shape[:q]))
            out[target] = _combine(node.attrs["reduction"], out[target], piece)
        return [out]


GRID_MODES = ("nearest", "linear", "cubic")
GRID_PADDINGS = ("zeros", "border", "reflection")


def _grid_reflect(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Coordinates reflected at the borders until they lie between them (ONNX GridSample's)."""
    span = hi - lo
    below, above = v < lo, v > hi
    d = np.where(below, lo - v, np.where(above, v - hi, 0.0))
    n = np.trunc(d / span) if span > 0 else np.zeros_like(d)
    r = d - n * span
    even = n % 2 == 0
    low_side = np.where(even, lo + r, hi - r)
    high_side = np.where(even, hi - r, lo + r)
    return np.where(below, low_side, np.where(above, high_side, v))


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    a = -0.75

    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


@register("grid_sample")
class GridSample:
    """inputs [x (N, C, H, W) or (N, C, D, H, W), grid (N, OH, OW, 2) or (N, OD, OH, OW, 3): (x, y[, z])
    in [-1, 1]]; attrs mode, padding, align_corners, pixels (optional: the grid holds pixel
    coordinates instead, as DeformConv samples). Each output pixel samples x where the grid points,
    ONNX GridSample's way."""

    layout = _logical(2)

    @staticmethod
    def infer(node):
        x, grid = node.inputs
        a = node.attrs
        if a["mode"] not in GRID_MODES or a["padding"] not in GRID_PADDINGS:
            raise fail(node, f"mode {a['mode']!r} / padding {a['padding']!r}: expected one of {GRID_MODES} / "
                             f"{GRID_PADDINGS}")
        dims = x.rank - 2
        if dims not in (2, 3) or grid.rank != x.rank or grid.shape[-1] != dims or grid.shape[0] != x.shape[0]:
            raise fail(node, f"expected x (N, C, [D,] H, W) and grid (N, [OD,] OH, OW, 2 or 3), got {x.shape} and "
                             f"{grid.shape}")
        return [((x.shape[0], x.shape[1]) + grid.shape[1:-1], x.dtype)]

    @staticmethod
    def reference(node, ins):
        import itertools

        x, grid = ins[0].astype(np.float64), ins[1].astype(np.float64)
        mode, padding, align = node.attrs["mode"], node.attrs["padding"], node.attrs["align_corners"]
        n, dims = x.shape[0], x.ndim - 2
        sizes = x.shape[2:][::-1]  # W, H[, D]: the grid's order
        axes = []  # per grid coordinate: (position, size, lo, hi)
        for k, size in enumerate(sizes):
            g = grid[..., k]
            v = (g + 1) / 2 * (size - 1) if align else ((g + 1) * size - 1) / 2
            v = g if node.attrs.get("pixels") else v
            v = np.rint(v) if mode == "nearest" else v
            lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
            if padding == "border":
                v = np.where((v < lo) | (v > hi), np.clip(v, 0, size - 1), v)
            elif padding == "reflection":
                v = _grid_reflect(v, lo, hi)
            axes.append((v, size, lo, hi))

        def index(i, size, lo, hi):  # (index, inside) of integer taps under the padding
            if padding == "zeros":
                return np.clip(i, 0, size - 1).astype(np.int64), (i >= 0) & (i < size)
            if padding == "border":
                return np.clip(i, 0, size - 1).astype(np.int64), np.ones(i.shape, bool)
            return np.trunc(_grid_reflect(i.astype(np.float64), lo, hi)).astype(np.int64), np.ones(i.shape, bool)

        def pixel(taps):  # taps: per grid coordinate (W, H[, D]) an integer array; -> (N, C, out...)
            found = [index(t, size, lo, hi) for t, (_, size, lo, hi) in zip(taps, axes)]
            inside = np.logical_and.reduce([ok for _, ok in found])
            batch = np.arange(n).reshape((n,) + (1,) * (grid.ndim - 2))
            vals = x[(batch, slice(None)) + tuple(i for i, _ in found[::-1])]  # (N, out..., C)
            return np.moveaxis(np.where(inside[..., None], vals, 0.0), -1, 1)

        if mode == "nearest":
            out = pixel([np.trunc(v) for v, *_ in axes])
        else:
            offsets = (0, 1) if mode == "linear" else (-1, 0, 1, 2)
            firsts = [np.floor(v) for v, *_ in axes]
            w = [[1 - (v - f), v - f] if mode == "linear" else _cubic_weights(v - f)
                 for (v, *_), f in zip(axes, firsts)]
            out = 0.0
            for picks in itertools.product(range(len(offsets)), repeat=dims):
                weight = np.prod([w[k][j] for k, j in enumerate(picks)], axis=0)
                out = out + weight[:, None] * pixel([f + offsets[j] for f, j in zip(firsts, picks)])
        return [np.asarray(out).astype(ins[0].dtype)]


@register("roi_align")
class RoiAlign:
    """inputs [x (N, C, H, W), rois (R, 4: x1, y1, x2, y2), batch_indices (R)]; attrs output_size
    (oh, ow), sampling_ratio (0: adaptive, ceil of the bin's size), spatial_scale, half_pixel, mode
    ("avg" or "max"). Output (R, C, oh, ow): each bin of each region sampled at a grid of points,
    bilinearly (points more than a pixel outside give 0, others clamp to the edge), then averaged,
    or (max) the largest of each point's four weighted neighbours, as ONNX Runtime does."""

    layout = _logical(3)

    @staticmethod
    def infer(node):
        x, rois, batch = node.inputs
        if x.rank != 4 or rois.rank != 2 or rois.shape[1] != 4 or batch.rank != 1 or batch.shape[0] != rois.shape[0]:
            raise fail(node, f"expected x (N, C, H, W), rois (R, 4) and batch_indices (R), got {x.shape}, "
                             f"{rois.shape} and {batch.shape}")
        _check_indices(node, batch)
        if node.attrs["mode"] not in ("avg", "max"):
            raise fail(node, f"mode must be 'avg' or 'max', got {node.attrs['mode']!r}")
        return [((rois.shape[0], x.shape[1], *node.attrs["output_size"]), x.dtype)]

    @staticmethod
    def reference(node, ins):
        x, rois, batch = ins[0].astype(np.float32), ins[1].astype(np.float32), ins[2].astype(np.int64)
        a = node.attrs
        (oh, ow), scale = a["output_size"], np.float32(a["spatial_scale"])
        _, channels, height, width = x.shape
        out = np.zeros((len(rois), channels, oh, ow), np.float32)
        offset = np.float32(0.5 if a["half_pixel"] else 0.0)
        for r, (x1, y1, x2, y2) in enumerate(rois):
            start_w, start_h = x1 * scale - offset, y1 * scale - offset
            roi_w, roi_h = x2 * scale - offset - start_w, y2 * scale - offset - start_h
            if not a["half_pixel"]:
                roi_w, roi_h = max(roi_w, np.float32(1)), max(roi_h, np.float32(1))
            bin_h, bin_w = roi_h / np.float32(oh), roi_w / np.float32(ow)
            grid_h = a["sampling_ratio"] or int(np.ceil(roi_h / oh))
            grid_w = a["sampling_ratio"] or int(np.ceil(roi_w / ow))
            plane = x[batch[r]]
            for ph in range(oh):
                for pw in range(ow):
                    samples = []
                    for iy in range(grid_h):
                        yy = start_h + ph * bin_h + (np.float32(iy) + np.float32(0.5)) * bin_h / np.float32(grid_h)
                        for ix in range(grid_w):
                            xx = start_w + pw * bin_w + (np.float32(ix) + np.float32(0.5)) * bin_w / np.float32(grid_w)
                            samples.append(_bilinear_terms(plane, yy, xx, height, width))
                    if not samples:
                        continue
                    terms = np.stack(samples)  # (points, 4, C)
                    if a["mode"] == "avg":
                        out[r, :, ph, pw] = terms.sum(axis=(0, 1)) / max(len(samples), 1)
                    else:
                        out[r, :, ph, pw] = terms.max(axis=(0, 1))
        return [out.astype(ins[0].dtype)]


def _bilinear_terms(plane: np.ndarray, y, x, height: int, width: int) -> np.ndarray:
    """(4, C): the four weighted neighbours of the point (y, x) of a (C, H, W) plane, as RoiAlign
    samples them (all zero more than a pixel outside)."""
    if y < -1 or y > height or x < -1 or x > width:
        return np.zeros((4, plane.shape[0]), np.float32)
    y, x = max(y, np.float32(0)), max(x, np.float32(0))
    y0, x0 = int(y), int(x)
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = np.float32(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = np.float32(x0)
    else:
        x1 = x0 + 1
    ly, lx = np.float32(y - y0), np.float32(x - x0)
    hy, hx = np.float32(1) - ly, np.float32(1) - lx
    return np.stack([hy * hx * plane[:, y0, x0], hy * lx * plane[:, y0, x1], ly * hx * plane[:, y1, x0],
                     ly * lx * plane[:, y1, x1]])


@register("max_unpool")
class MaxUnpool:
    """inputs [x, indices (flat places in the output, as MaxPool's Indices give them)]; attrs
    output_shape. Output zeros with x's values at their indices; where several name one place, the
    last of them in x's order wins (as ONNX Runtime's loop leaves it)."""

    layout = _logical(2)

    @staticmethod
    def infer(node):
        x, indices = node.inputs
        _check_indices(node, indices)
        if indices.shape != x.shape:
            raise fail(node, f"indices {indices.shape} must have x's shape {x.shape}")
        return [(tuple(node.attrs["output_shape"]), x.dtype)]

    @staticmethod
    def reference(node, ins):
        x, idx = ins[0].reshape(-1), ins[1].reshape(-1).astype(np.int64)
        out = np.zeros(int(np.prod(node.attrs["output_shape"])), x.dtype)
        inside = np.flatnonzero((idx >= 0) & (idx < out.size))
        _, last = np.unique(idx[inside][::-1], return_index=True)  # the last writer of each place
        keep = inside[::-1][last]
        out[idx[keep]] = x[keep]
        return [out.reshape(node.attrs["output_shape"])]


@register("max_roi_pool")
class MaxRoiPool:
    """inputs [x (N, C, H, W), rois (R, 5: batch, x1, y1, x2, y2)]; attrs output_size, spatial_scale.
    Output (R, C, oh, ow): the largest value of each bin of each region, corners rounded to pixels
    (half away from zero),
    bins split with floor and ceil (ONNX's MaxRoiPool, Caffe's ROIPool); an empty bin gives 0."""

    layout = _logical(2)

    @staticmethod
    def infer(node):
        x, rois = node.inputs
        if x.rank != 4 or rois.rank != 2 or rois.shape[1] != 5:
            raise fail(node, f"expected x (N, C, H, W) and rois (R, 5), got {x.shape} and {rois.shape}")
        return [((rois.shape[0], x.shape[1], *node.attrs["output_size"]), x.dtype)]

    @staticmethod
    def reference(node, ins):
        x, rois = ins[0].astype(np.float32), ins[1].astype(np.float32)
        (oh, ow), scale = node.attrs["output_size"], np.float32(node.attrs["spatial_scale"])
        height, width = x.shape[2:]
        out = np.zeros((len(rois), x.shape[1], oh, ow), np.float32)
        for r, (batch, x1, y1, x2, y2) in enumerate(rois):
            sx, sy, ex, ey = (int(np.sign(v * scale) * np.floor(np.abs(v * scale) + 0.5)) for v in (x1, y1, x2, y2))
            bin_h, bin_w = np.float32(max(ey - sy + 1, 1)) / oh, np.float32(max(ex - sx + 1, 1)) / ow
            for ph in range(oh):
                h0 = min(max(int(np.floor(ph * bin_h)) + sy, 0), height)
                h1 = min(max(int(np.ceil((ph + 1) * bin_h)) + sy, 0), height)
                for pw in range(ow):
                    w0 = min(max(int(np.floor(pw * bin_w)) + sx, 0), width)
                    w1 = min(max(int(np.ceil((pw + 1) * bin_w)) + sx, 0), width)
                    if h1 > h0 and w1 > w0:
                        out[r, :, ph, pw] = x[int(batch), :, h0:h1, w0:w1].max(axis=(1, 2))
        return [out.astype(ins[0].dtype)]
