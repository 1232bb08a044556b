"""Compute lowerings of the ops of ``ops/indexing.py``: cumulative sums, top-k, and the gathers and
scatters by element and by index tuple. Each is one dispatch over its output in logical order
(top-k: over its input; a cumulative sum along a long axis: its blocks' sums first), with a kernel
of its own in ``shaders/compute``."""

from __future__ import annotations

import numpy as np

from ...graph import is_integer, is_unsigned32
from ...layout import logical_strides
from ..common import MAX_RANK, pack_dims
from .context import LoweringContext, lowers

_COMBINE = {"none": "b", "add": "a + b", "mul": "a * b", "max": "max(a, b)", "min": "min(a, b)"}


def _around(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """(outer, length, inner) of a row-major tensor split at ``axis``."""
    return (int(np.prod(shape[:axis], dtype=np.int64)), shape[axis], int(np.prod(shape[axis + 1:], dtype=np.int64)))


def _check_rank(ctx: LoweringContext, node, *tensors) -> None:
    if any(t.rank > MAX_RANK for t in tensors):
        raise ctx.error(node, f"tensors of more than {MAX_RANK} dimensions are not supported")


def _check_constant_indices(ctx: LoweringContext, node, idx, sizes) -> None:
    """Constant indices past their axes are a model error, said at compile time (``sizes``: the
    size each index addresses, broadcast against the indices)."""
    if idx.is_constant and idx.size:
        values = idx.value.astype(np.int64)
        sizes = np.broadcast_to(sizes, values.shape)
        if (values < -sizes).any() or (values >= sizes).any():
            raise ctx.error(node, f"indices {values.reshape(-1)[:16].tolist()} reach past the axes of sizes "
                                  f"{sorted(set(np.asarray(sizes).reshape(-1).tolist()))}")


# Longest axis a cumulative sum walks in one pass (an invocation an output, looping up to the
# whole axis); a longer one is cut into blocks of about its square root, combined first (cumsum.wgsl)
CUMSUM_ONE_PASS = 256


@lowers("cumsum")
def lower_cumsum(node, ctx: LoweringContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    outer, length, inner = _around(x.shape, node.attrs["axis"] % x.rank)
    acc = "i32" if is_integer(x.dtype) else "f32"
    template = {"exclusive": bool(node.attrs["exclusive"]), "reverse": bool(node.attrs["reverse"]),
                "product": bool(node.attrs.get("product", False)), "acc": acc}
    block = max(1, length if length <= CUMSUM_ONE_PASS else int(np.ceil(np.sqrt(length))))
    blocks = -(-length // block)
    params = {"total": out.size, "inner": inner, "length": length, "block": block, "blocks": blocks}
    part = ctx.dummy()
    if blocks > 1:  # each block combined first
        part = ctx.temporary(node, (outer, blocks, inner), "blocks", acc)
        ctx.dispatch("cumsum", node=node, template=template, params=dict(params, total=outer * blocks * inner, stage=0),
                     bindings=[ctx.tensor(x), ctx.tensor(out), part], threads=outer * blocks * inner,
                     flops_share=0.5, loops=block)
    ctx.dispatch("cumsum", node=node, template=template, params=dict(params, stage=1),
                 bindings=[ctx.tensor(x), ctx.tensor(out), part], threads=out.size,
                 flops_share=0.5 if blocks > 1 else None, loops=blocks + block)


@lowers("top_k")
def lower_top_k(node, ctx: LoweringContext) -> None:
    x = node.inputs[0]
    values, indices = node.outputs
    if is_unsigned32(x.dtype):
        raise ctx.unsupported(node, "uint32 values (compared as signed)")
    _, length, inner = _around(x.shape, node.attrs["axis"] % x.rank)
    ctx.dispatch("top_k", node=node, template={"largest": bool(node.attrs["largest"])},
                 params={"total": x.size, "inner": inner, "length": length, "k": node.attrs["k"]},
                 bindings=[ctx.tensor(x), ctx.tensor(values), ctx.tensor(indices)],
                 threads=x.size if node.attrs["k"] else 0, loops=length)


@lowers("gather_elements")
def lower_gather_elements(node, ctx: LoweringContext) -> None:
    data, idx = node.inputs
    out = node.outputs[0]
    axis = node.attrs["axis"] % data.rank
    _check_rank(ctx, node, data)
    _check_constant_indices(ctx, node, idx, data.shape[axis])
    params = {"total": out.size, "axis": axis, "axis_size": data.shape[axis], "shape": pack_dims(list(idx.shape), 1),
              "data_strides": pack_dims(list(logical_strides(data.shape, tuple(range(data.rank)))), 0)}
    ctx.dispatch("gather_elements", node=node, template={"rank": max(data.rank, 1)}, params=params,
                 bindings=[ctx.tensor(data), ctx.tensor(idx), ctx.tensor(out)], threads=out.size)


def _region_params(x, out) -> dict:
    """The uniforms both region poolings share: an invocation per output bin, the image's size."""
    return {"total": out.size, "channels": x.shape[1], "height": x.shape[2], "width": x.shape[3],
            "out_h": out.shape[2], "out_w": out.shape[3]}


@lowers("roi_align")
def lower_roi_align(node, ctx: LoweringContext) -> None:
    x, rois, batch = node.inputs
    out, a = node.outputs[0], node.attrs
    params = dict(_region_params(x, out), sampling_ratio=a["sampling_ratio"], spatial_scale=a["spatial_scale"],
                  offset=0.5 if a["half_pixel"] else 0.0, min_size=-3.0e38 if a["half_pixel"] else 1.0)
    _check_constant_indices(ctx, node, batch, x.shape[0])
    ctx.dispatch("roi_align", node=node, template={"max_mode": a["mode"] == "max"}, params=params,
                 bindings=[ctx.tensor(x), ctx.tensor(rois), ctx.tensor(batch), ctx.tensor(out)], threads=out.size)


@lowers("max_roi_pool")
def lower_max_roi_pool(node, ctx: LoweringContext) -> None:
    x, rois = node.inputs
    out = node.outputs[0]
    params = dict(_region_params(x, out), spatial_scale=node.attrs["spatial_scale"])
    ctx.dispatch("max_roi_pool", node=node, template={}, params=params,
                 bindings=[ctx.tensor(x), ctx.tensor(rois), ctx.tensor(out)], threads=out.size)


@lowers("max_unpool")
def lower_max_unpool(node, ctx: LoweringContext) -> None:
    x, idx = node.inputs
    out = node.outputs[0]
    claims = ctx.temporary(node, (out.size,), "claims", dtype="i32")
    bindings = [ctx.tensor(x), ctx.tensor(idx), claims, ctx.tensor(out)]
    for step, count in ((0, out.size), (1, x.size), (2, out.size)):
        ctx.dispatch("max_unpool", node=node, template={"step": step}, params={"total": count, "places": out.size},
                     bindings=bindings, threads=count)


@lowers("gather_nd")
def lower_gather_nd(node, ctx: LoweringContext) -> None:
    data, idx = node.inputs
    out = node.outputs[0]
    b, q = node.attrs["batch_dims"], idx.shape[-1]
    if q > MAX_RANK:
        raise ctx.error(node, f"index tuples of more than {MAX_RANK} values are not supported")
    dims = list(data.shape[b:b + q])
    _check_constant_indices(ctx, node, idx, np.array(dims or [1], np.int64))
    strides = [int(np.prod(data.shape[b + m + 1:], dtype=np.int64)) for m in range(q)]
    batches = int(np.prod(data.shape[:b], dtype=np.int64))
    params = {"total": out.size, "slice": max(int(np.prod(data.shape[b + q:], dtype=np.int64)), 1), "q": q,
              "rows_per_batch": max(int(np.prod(idx.shape[:-1], dtype=np.int64)) // max(batches, 1), 1),
              "batch_stride": int(np.prod(data.shape[b:], dtype=np.int64)),
              "dims": pack_dims(dims, 1), "strides": pack_dims(strides, 0)}
    ctx.dispatch("gather_nd", node=node, template={}, params=params,
                 bindings=[ctx.tensor(data), ctx.tensor(idx), ctx.tensor(out)], threads=out.size)


def _scatter(node, ctx: LoweringContext, *, elements: bool, params: dict) -> None:
    data, idx, upd = node.inputs
    out = node.outputs[0]
    reduction = node.attrs["reduction"]
    if is_unsigned32(data.dtype) and reduction in ("max", "min"):
        raise ctx.unsupported(node, f"reduction {reduction!r} of uint32 values (compared as signed)")
    _check_rank(ctx, node, data, idx)
    full = dict(total=out.size, axis=0, rows=0, q=0, slice=1, shape=pack_dims(list(data.shape), 1),
                idx_shape=pack_dims([], 1), idx_strides=pack_dims([], 0))
    full.update(params)
    ctx.dispatch("scatter", node=node, template={"rank": max(data.rank, 1), "elements": elements,
                                                 "combine": _COMBINE[reduction]},
                 params=full, bindings=[ctx.tensor(data), ctx.tensor(idx), ctx.tensor(upd), ctx.tensor(out)],
                 threads=out.size)


@lowers("scatter_elements")
def lower_scatter_elements(node, ctx: LoweringContext) -> None:
    data, idx = node.inputs[:2]
    axis = node.attrs["axis"] % data.rank
    _check_constant_indices(ctx, node, idx, data.shape[axis])
    _scatter(node, ctx, elements=True, params={
        "axis": axis, "idx_shape": pack_dims(list(idx.shape), 1),
        "idx_strides": pack_dims(list(logical_strides(idx.shape, tuple(range(idx.rank)))), 0)})


@lowers("scatter_nd")
def lower_scatter_nd(node, ctx: LoweringContext) -> None:
    data, idx = node.inputs[:2]
    q = idx.shape[-1]
    _check_constant_indices(ctx, node, idx, np.array(data.shape[:q] or (1,), np.int64))
    _scatter(node, ctx, elements=False, params={
        "rows": int(np.prod(idx.shape[:-1], dtype=np.int64)), "q": q,
        "slice": int(np.prod(data.shape[q:], dtype=np.int64))})


@lowers("grid_sample")
def lower_grid_sample(node, ctx: LoweringContext) -> None:
    x, grid = node.inputs
    out = node.outputs[0]
    dims = x.rank - 2
    n, c = x.shape[:2]
    d, h, w = (1,) * (3 - dims) + tuple(x.shape[2:])
    od, oh, ow = (1,) * (3 - dims) + tuple(out.shape[2:])
    a = node.attrs
    template = {"mode": ("nearest", "linear", "cubic").index(a["mode"]), "dims": dims,
                "padding": ("zeros", "border", "reflection").index(a["padding"]), "align": bool(a["align_corners"]),
                "pixels": bool(a.get("pixels", False))}
    ctx.dispatch("grid_sample", node=node, template=template,
                 params={"total": out.size, "channels": c, "in_d": d, "in_h": h, "in_w": w, "out_d": od, "out_h": oh,
                         "out_w": ow},
                 bindings=[ctx.tensor(x), ctx.tensor(grid), ctx.tensor(out)], threads=out.size)
