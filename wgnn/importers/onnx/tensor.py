"""ONNX converters: shapes, data movement, reductions, constants, casts, identity, dropout and linear
quantization."""

from __future__ import annotations

import numpy as np

from ...errors import GraphError
from ...ops.quant import QUANT_RANGES
from .common import (
    ONNX_DTYPES,
    broadcast_to,
    converts,
    host_dtype,
    static,
    static_scalar,
    tensor_value,
    text,
)
from .proto import to_array


@converts("Size")
def _size(b, node, ins, attrs):
    return b.constant(np.array(ins[0].size, np.int64), name=node.name)


@converts("Range")
def _range(b, node, ins, attrs):
    # The output's length depends on the values: they must be known at compile time.
    start, limit, delta = (static(b, node, t, what).reshape(()) for t, what in zip(ins, ("start", "limit", "delta")))
    if delta == 0:
        raise GraphError(f"Range node {node.name!r}: delta is 0")
    count = max(int(np.ceil((limit - start) / delta)), 0)
    return b.constant((start + np.arange(count) * delta).astype(ins[0].dtype), name=node.name)


@converts("Expand")
def _expand(b, node, ins, attrs):
    shape = [int(d) for d in static(b, node, ins[1], "shape")]
    return broadcast_to(b, ins[0], shape, node.name)


@converts("Tile")
def _tile(b, node, ins, attrs):
    x = ins[0]
    repeats = [int(r) for r in static(b, node, ins[1], "repeats")]
    if len(repeats) != x.rank or any(r < 0 for r in repeats):
        raise GraphError(f"Tile node {node.name!r}: repeats {repeats} for a rank-{x.rank} input")
    for axis, r in enumerate(repeats):
        if r != 1:
            x = b.concat([x] * r, axis=axis, name=f"{node.name}/{axis}") if r else b.slice(
                x, [0], [0], axes=[axis], name=f"{node.name}/{axis}")
    return b.identity(x, name=node.name) if all(r == 1 for r in repeats) else x


@converts("DepthToSpace", "SpaceToDepth")
def _depth_space(b, node, ins, attrs):
    x = ins[0]
    if x.rank != 4:
        raise GraphError(f"{node.op_type} node {node.name!r}: expected a 4-D NCHW input, got {x.shape}")
    n, c, h, w = x.shape
    bs = int(attrs["blocksize"])
    if node.op_type == "SpaceToDepth":
        x = b.reshape(x, (n, c, h // bs, bs, w // bs, bs), name=node.name + "/split")
        crd = text(attrs, "mode", "DCR") == "CRD"  # channel c * bs * bs + i * bs + j, else (i * bs + j) * C + c
        x = b.transpose(x, (0, 1, 3, 5, 2, 4) if crd else (0, 3, 5, 1, 2, 4), name=node.name + "/interleave")
        return b.reshape(x, (n, c * bs * bs, h // bs, w // bs), name=node.name)
    if text(attrs, "mode", "DCR") == "DCR":  # channel (i * bs + j) * C' + c goes to pixel (h * bs + i, w * bs + j)
        x = b.reshape(x, (n, bs, bs, c // (bs * bs), h, w), name=node.name + "/split")
        x = b.transpose(x, (0, 3, 4, 1, 5, 2), name=node.name + "/interleave")
    else:  # CRD: channel c * bs * bs + i * bs + j
        x = b.reshape(x, (n, c // (bs * bs), bs, bs, h, w), name=node.name + "/split")
        x = b.transpose(x, (0, 1, 4, 2, 5, 3), name=node.name + "/interleave")
    return b.reshape(x, (n, c // (bs * bs), h * bs, w * bs), name=node.name)


@converts("Split")
def _split(b, node, ins, attrs):
    x = ins[0]
    axis = attrs.get("axis", 0) % max(x.rank, 1)
    size = x.shape[axis]
    sizes = attrs.get("split")  # before opset 13 an attribute, then an optional input
    if len(ins) > 1 and ins[1] is not None:
        sizes = static(b, node, ins[1], "split")
    if sizes is None:
        parts = attrs.get("num_outputs", node.outputs)
        chunk = -(-size // parts)  # the last part may be smaller (opset 18)
        sizes = [min(chunk, size - i * chunk) for i in range(parts)]
    sizes = [int(s) for s in np.ravel(sizes)]
    if sum(sizes) != size or any(s < 0 for s in sizes):
        raise GraphError(f"Split node {node.name!r}: sizes {sizes} do not add up to axis {axis}'s {size}")
    outs, start = [], 0
    for i, s in enumerate(sizes):
        outs.append(b.slice(x, [start], [start + s], axes=[axis], name=f"{node.name}/{i}"))
        start += s
    return outs


@converts("Concat")
def _concat(b, node, ins, attrs):
    return b.concat([i for i in ins if i is not None], axis=attrs["axis"], name=node.name)


@converts("Reshape")
def _reshape(b, node, ins, attrs):
    x = ins[0]
    if node.opset < 5:
        return b.reshape(x, [x.shape[k] if d == 0 else d for k, d in enumerate(attrs["shape"])], name=node.name)
    if attrs.get("allowzero", 0):  # a 0 in the shape is a dimension of size 0, not "copy this one"
        return b.reshape(x, [int(d) for d in static(b, node, ins[1], "shape")], name=node.name)
    return b.reshape(x, ins[1], name=node.name)


@converts("Flatten")
def _flatten(b, node, ins, attrs):
    return b.flatten(ins[0], axis=attrs.get("axis", 1), name=node.name)


def _axes(b, node, ins, attrs, index=1):
    if node.opset >= 13 and len(ins) > index and ins[index] is not None:
        return [int(a) for a in static(b, node, ins[index], "axes").reshape(-1)]  # (a scalar too, as ORT takes)
    return attrs.get("axes")


@converts("Squeeze")
def _squeeze(b, node, ins, attrs):
    return b.squeeze(ins[0], _axes(b, node, ins, attrs), name=node.name)


@converts("Unsqueeze")
def _unsqueeze(b, node, ins, attrs):
    axes = _axes(b, node, ins, attrs)
    if axes is None:
        raise node.unsupported("Unsqueeze without axes")
    return b.unsqueeze(ins[0], axes, name=node.name)


@converts("Transpose")
def _transpose(b, node, ins, attrs):
    return b.transpose(ins[0], attrs.get("perm"), name=node.name)


@converts("SequenceConstruct")
def _sequence_construct(b, node, ins, attrs):
    """A sequence of the tensors given (one output: the list of its elements, each a copy)."""
    if any(t is None for t in ins) or len({t.dtype for t in ins}) > 1:
        raise GraphError(f"SequenceConstruct node {node.name!r}: its inputs must be tensors of one type, got "
                         f"{[None if t is None else t.dtype for t in ins]}")
    return [_copies(b, node, ins)]


def _copies(b, node, tensors) -> list:
    """A sequence's elements copied, one identity each (``node[i]``)."""
    return [b.identity(t, name=f"{node.name}[{i}]") for i, t in enumerate(tensors)]


# Sequences are lists of operands at import: their ops move elements about at compile time, with
# positions known then.

def _sequence(node, value) -> list:
    if not isinstance(value, list):
        raise GraphError(f"{node.op_type} node {node.name!r}: expected a sequence input, got a tensor")
    return value


def _position(b, node, operand, length: int, default: int, *, insert: bool = False) -> int:
    pos = int(static_scalar(b, node, operand, "position", default))
    end = length + (1 if insert else 0)
    if not -end <= pos < end + (0 if not insert else 0):
        raise GraphError(f"{node.op_type} node {node.name!r}: position {pos} is outside a sequence of {length}")
    return pos % end if end else 0


@converts("SequenceEmpty")
def _sequence_empty(b, node, ins, attrs):
    return [[]]


@converts("SequenceLength")
def _sequence_length(b, node, ins, attrs):
    return b.constant(np.array(len(_sequence(node, ins[0])), np.int64), name=node.name)


@converts("SequenceAt")
def _sequence_at(b, node, ins, attrs):
    seq = _sequence(node, ins[0])
    return b.identity(seq[_position(b, node, ins[1], len(seq), 0)], name=node.name)


@converts("SequenceInsert")
def _sequence_insert(b, node, ins, attrs):
    seq = list(_sequence(node, ins[0]))
    pos = len(seq) if len(ins) < 3 or ins[2] is None else _position(b, node, ins[2], len(seq), 0, insert=True)
    seq.insert(pos, ins[1])
    return [_copies(b, node, seq)]


@converts("SequenceErase")
def _sequence_erase(b, node, ins, attrs):
    seq = list(_sequence(node, ins[0]))
    if not seq:
        raise GraphError(f"SequenceErase node {node.name!r}: the sequence is empty")
    del seq[_position(b, node, ins[1] if len(ins) > 1 else None, len(seq), -1)]
    return [_copies(b, node, seq)]


@converts("SplitToSequence")
def _split_to_sequence(b, node, ins, attrs):
    x = ins[0]
    axis = int(attrs.get("axis", 0)) % max(x.rank, 1)
    size = x.shape[axis]
    split = static(b, node, ins[1] if len(ins) > 1 else None, "split")
    if split is None:
        parts, squeeze = [1] * size, not attrs.get("keepdims", 1)
    elif split.ndim == 0:
        step = int(split)
        parts, squeeze = [min(step, size - k) for k in range(0, size, step)], False
    else:
        parts, squeeze = [int(p) for p in split], False
    if sum(parts) != size:
        raise GraphError(f"SplitToSequence node {node.name!r}: parts {parts} do not add up to the axis's {size}")
    out, start = [], 0
    for k, n in enumerate(parts):
        piece = b.slice(x, [start], [start + n], axes=[axis], name=f"{node.name}[{k}]")
        out.append(b.squeeze(piece, [axis], name=f"{node.name}[{k}]s") if squeeze else piece)
        start += n
    return [out]


@converts("ConcatFromSequence")
def _concat_from_sequence(b, node, ins, attrs):
    seq = _sequence(node, ins[0])
    if not seq:
        raise GraphError(f"ConcatFromSequence node {node.name!r}: the sequence is empty")
    axis = int(attrs["axis"])
    if attrs.get("new_axis", 0):
        axis %= seq[0].rank + 1
        seq = [b.unsqueeze(t, [axis], name=f"{node.name}/{k}") for k, t in enumerate(seq)]
    return b.concat(seq, axis=axis, name=node.name)


@converts("Identity", "Dropout")
def _identity(b, node, ins, attrs):
    if node.op_type != "Dropout":
        if isinstance(ins[0], list):  # a sequence: one output, the list of its elements' copies
            return [_copies(b, node, ins[0])]
        return b.identity(ins[0], name=node.name)
    x = ins[0]
    training = len(ins) > 2 and ins[2] is not None and bool(static(b, node, ins[2], "training_mode").reshape(-1)[0])
    ratio = static(b, node, ins[1], "ratio").reshape(-1)[0] if training and len(ins) > 1 and ins[1] is not None \
        else np.float32(0.5)
    if not training or ratio == 0:
        # Inference (or a ratio of 0): the input unchanged, and a mask that keeps everything.
        return [b.identity(x, name=node.name), b.constant(np.ones(x.shape, bool), name=node.name + "/mask")]
    if "seed" not in attrs:
        raise node.unsupported("training_mode=True without a seed: the mask is drawn once, when the model "
                               "compiles, so it needs the seed attribute to be reproducible")
    return b.dropout(x, ratio=float(ratio), seed=int(attrs["seed"]), name=node.name)


@converts("Constant")
def _constant(b, node, ins, attrs):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = attrs[key]
            if key == "value":
                return b.constant(tensor_value(b, value), name=node.name)
            if key in ("value_int", "value_ints"):
                value = np.array(value, np.int64)
            else:
                value = np.array(value, np.float32)
            return b.constant(host_dtype(np.asarray(value)), name=node.name)
    raise node.unsupported(f"Constant with attributes {sorted(attrs)}")


@converts("ConstantOfShape")
def _constant_of_shape(b, node, ins, attrs):
    value = to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
    return b.constant_of_shape(ins[0], host_dtype(value.reshape(-1)[:1]).reshape(()), name=node.name)


@converts("Shape")
def _shape(b, node, ins, attrs):
    shape = b.shape(ins[0], name=node.name)
    start, end = attrs.get("start", 0), attrs.get("end", None)
    if start == 0 and end is None:
        return shape
    return b.slice(shape, [start], [ins[0].rank if end is None else end], name=node.name + "/range")


@converts("Gather")
def _gather(b, node, ins, attrs):
    return b.gather(ins[0], ins[1], axis=attrs.get("axis", 0), name=node.name)


_REDUCTIONS = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
               "ReduceProd": "prod", "ReduceSumSquare": "sum_square", "ReduceL1": "l1", "ReduceL2": "l2",
               "ReduceLogSumExp": "log_sum_exp"}


@converts(*_REDUCTIONS)
def _reduce(b, node, ins, attrs):
    # Axes are an attribute until opset 18 (13 for ReduceSum), an optional input after.
    axes = attrs.get("axes")
    if len(ins) > 1 and ins[1] is not None:
        axes = [int(a) for a in static(b, node, ins[1], "axes").reshape(-1)]
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return b.identity(ins[0], name=node.name)
        axes = None
    return b.reduce(ins[0], _REDUCTIONS[node.op_type], axes, keepdims=bool(attrs.get("keepdims", 1)),
                    name=node.name)


@converts("Pad")
def _pad(b, node, ins, attrs):
    x = ins[0]
    mode = text(attrs, "mode", "constant")
    if node.opset < 11:
        pads, value = list(attrs["pads"]), attrs.get("value", 0.0)
    else:
        pads = [int(p) for p in static(b, node, ins[1], "pads")]
        cv = static(b, node, ins[2] if len(ins) > 2 else None, "constant_value")
        value = 0.0 if cv is None or cv.size == 0 else float(cv.reshape(-1)[0])
        axes = static(b, node, ins[3] if len(ins) > 3 else None, "axes")
        if axes is not None:
            full = [0] * (2 * x.rank)
            for k, a in enumerate(int(a) % x.rank for a in axes):
                full[a], full[a + x.rank] = pads[k], pads[k + len(axes)]
            pads = full
    if mode == "wrap":  # a gather per padded axis, of indices that wrap around it
        for axis in range(x.rank):
            begin, end, size = pads[axis], pads[axis + x.rank], x.shape[axis]
            if begin or end:
                indices = np.arange(-begin, size + end) % max(size, 1)
                x = b.gather(x, b.constant(indices.astype(np.int64)), axis=axis, name=f"{node.name}/{axis}")
        return b.identity(x, name=node.name)
    return b.pad(x, pads, mode=mode, value=value, name=node.name)


@converts("Slice")
def _slice(b, node, ins, attrs):
    x = ins[0]
    if node.opset < 10:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts = static(b, node, ins[1], "starts")
        ends = static(b, node, ins[2], "ends")
        axes = static(b, node, ins[3] if len(ins) > 3 else None, "axes")
        steps = static(b, node, ins[4] if len(ins) > 4 else None, "steps")
    clamp = np.iinfo(np.int64).max // 2
    starts = [int(np.clip(s, -clamp, clamp)) for s in np.asarray(starts).reshape(-1)]
    ends = [int(np.clip(e, -clamp, clamp)) for e in np.asarray(ends).reshape(-1)]
    return b.slice(x, starts, ends, axes=None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)],
                   steps=None if steps is None else [int(s) for s in np.asarray(steps).reshape(-1)],
                   name=node.name)


@converts("Cast")
def _cast(b, node, ins, attrs):
    to = ONNX_DTYPES.get(attrs["to"])
    if to is None or to == "float64":
        raise node.unsupported(f"cast to ONNX type {attrs['to']}")
    return b.cast(ins[0], to, name=node.name)


@converts("BitCast")
def _bitcast(b, node, ins, attrs):
    to = ONNX_DTYPES.get(attrs["to"])
    if to is None or to in ("float64", "int64", "uint64"):
        raise node.unsupported(f"bitcast to ONNX type {attrs['to']}")
    return b.bitcast(ins[0], to, name=node.name)


# -- quantization ---------------------------------------------------------------------------------

def _quant_attrs(node, attrs) -> dict:
    return {"axis": int(attrs.get("axis", 1)), "block_size": int(attrs.get("block_size", 0))}


@converts("QuantizeLinear")
def _quantize_linear(b, node, ins, attrs):
    zero = ins[2] if len(ins) > 2 else None
    dtype = "uint8"
    if zero is None and attrs.get("output_dtype"):
        dtype = ONNX_DTYPES.get(int(attrs["output_dtype"]))
        if dtype not in QUANT_RANGES or dtype == "int32":
            raise node.unsupported(f"quantizing to ONNX type {attrs['output_dtype']}")
    if zero is not None and zero.dtype not in QUANT_RANGES:
        raise node.unsupported(f"quantizing to {zero.dtype}")
    return b.quantize_linear(ins[0], ins[1], zero, dtype=dtype, name=node.name, **_quant_attrs(node, attrs))


@converts("DequantizeLinear")
def _dequantize_linear(b, node, ins, attrs):
    zero = ins[2] if len(ins) > 2 else None
    return b.dequantize_linear(ins[0], ins[1], zero, name=node.name, **_quant_attrs(node, attrs))


@converts("DynamicQuantizeLinear")
def _dynamic_quantize_linear(b, node, ins, attrs):
    return list(b.dynamic_quantize_linear(ins[0], name=node.name))


# -- indexing -------------------------------------------------------------------------------------

def _reduction(node, attrs) -> str:
    reduction = text(attrs, "reduction", "none")
    if reduction not in ("none", "add", "mul", "max", "min"):
        raise node.unsupported(f"reduction {reduction!r}")
    return reduction


@converts("GatherElements")
def _gather_elements(b, node, ins, attrs):
    return b.gather_elements(ins[0], ins[1], axis=attrs.get("axis", 0), name=node.name)


@converts("RoiAlign")
def _roi_align(b, node, ins, attrs):
    mode = text(attrs, "coordinate_transformation_mode", "half_pixel" if node.opset >= 16 else "output_half_pixel")
    if mode not in ("half_pixel", "output_half_pixel"):
        raise node.unsupported(f"coordinate_transformation_mode {mode!r}")
    return b.roi_align(ins[0], ins[1], ins[2], (attrs.get("output_height", 1), attrs.get("output_width", 1)),
                       sampling_ratio=attrs.get("sampling_ratio", 0), spatial_scale=attrs.get("spatial_scale", 1.0),
                       half_pixel=mode == "half_pixel", mode=text(attrs, "mode", "avg"), name=node.name)


@converts("MaxRoiPool")
def _max_roi_pool(b, node, ins, attrs):
    return b.max_roi_pool(ins[0], ins[1], tuple(attrs["pooled_shape"]), spatial_scale=attrs.get("spatial_scale", 1.0),
                          name=node.name)


@converts("GatherND")
def _gather_nd(b, node, ins, attrs):
    return b.gather_nd(ins[0], ins[1], batch_dims=attrs.get("batch_dims", 0), name=node.name)


@converts("ScatterElements", "Scatter")
def _scatter_elements(b, node, ins, attrs):
    return b.scatter_elements(ins[0], ins[1], ins[2], axis=attrs.get("axis", 0), reduction=_reduction(node, attrs),
                              name=node.name)


@converts("ScatterND")
def _scatter_nd(b, node, ins, attrs):
    return b.scatter_nd(ins[0], ins[1], ins[2], reduction=_reduction(node, attrs), name=node.name)


@converts("CumSum", "CumProd")
def _cumsum(b, node, ins, attrs):
    axis = int(static_scalar(b, node, ins[1], "axis"))
    running = b.cumulative_product if node.op_type == "CumProd" else b.cumulative_sum
    return running(ins[0], axis, exclusive=bool(attrs.get("exclusive", 0)), reversed=bool(attrs.get("reverse", 0)),
                   name=node.name)


@converts("TopK")
def _top_k(b, node, ins, attrs):
    if node.opset < 10:
        k = attrs["k"]
    else:
        k = int(static_scalar(b, node, ins[1], "K"))
    # (sorted=0 allows any order: the sorted one is one of them)
    return b.top_k(ins[0], k, axis=attrs.get("axis", -1), largest=bool(attrs.get("largest", 1)), name=node.name)


# -- optionals: known when compiling (a value, or None for an empty one) ----------------------------

@converts("Optional")
def _optional(b, node, ins, attrs):
    if not ins or ins[0] is None:
        return [None]  # an empty optional
    return [_copies(b, node, ins[0])] if isinstance(ins[0], list) else b.identity(ins[0], name=node.name)


@converts("OptionalHasElement")
def _optional_has_element(b, node, ins, attrs):
    return b.constant(np.array(bool(ins) and ins[0] is not None), name=node.name)


@converts("OptionalGetElement")
def _optional_get_element(b, node, ins, attrs):
    if not ins or ins[0] is None:
        raise GraphError(f"OptionalGetElement node {node.name!r}: the optional is empty")
    return [_copies(b, node, ins[0])] if isinstance(ins[0], list) else b.identity(ins[0], name=node.name)
