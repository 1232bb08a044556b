"""ONNX converters for ops written as a few of wgnn's own: what ONNX itself defines as a function of
other ops (MeanVarianceNormalization, GroupNormalization, CastLike), the deprecated Upsample (a
Resize), and ops whose one varying part is a comparison with a constant (Trilu, OneHot, Hardmax,
EyeLike)."""

from __future__ import annotations

import numpy as np

from ...composite import normalize
from ...errors import GraphError
from .common import ONNX_DTYPES, NodeInfo, broadcast_to, converts, legacy_nearest, lifts_1d, static, static_scalar, text


@converts("CastLike")
def _cast_like(b, node, ins, attrs):
    return b.cast(ins[0], ins[1].dtype, name=node.name)


@converts("Upsample")
def _upsample(b, node, ins, attrs):
    """Upsample (opsets 7 and 9, deprecated since 10): a Resize with the asymmetric coordinates and,
    for nearest, the source pixel rounded down, as ONNX Runtime runs it (an integer scale repeats
    each pixel, as ONNX's reference does)."""
    x = ins[0]
    mode = text(attrs, "mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise node.unsupported(f"mode {mode!r}")
    scales = attrs.get("scales") if len(ins) < 2 else static(b, node, ins[1], "scales")
    if scales is None:
        raise node.unsupported("no scales")
    scales = [float(s) for s in np.asarray(scales).reshape(-1)]
    if len(scales) != x.rank or x.rank != 4 or scales[:2] != [1.0, 1.0]:
        raise node.unsupported(f"scales {scales} of a rank-{x.rank} input: only the two spatial axes of a 4-D "
                               "NCHW tensor")
    if min(scales) < 1:
        raise node.unsupported(f"scales {scales}: Upsample's are at least 1")
    sizes = [int(np.floor(d * s)) for d, s in zip(x.shape[2:], scales[2:])]
    return b.resize(x, sizes, mode="nearest" if mode == "nearest" else "linear", coordinate_mode="asymmetric",
                    nearest_mode=legacy_nearest(scales[2:]), scales=scales[2:], name=node.name)


@converts("ReduceLogSum")
def _reduce_log_sum(b, node, ins, attrs):
    from .tensor import _reduce

    total = _reduce(b, NodeInfo(node.name + "/sum", "ReduceSum", node.opset), ins, attrs)
    return b.activation(total, "log", name=node.name)


@converts("EyeLike")
def _eye_like(b, node, ins, attrs):
    x = ins[0]
    if x.rank != 2:
        raise node.unsupported(f"input of rank {x.rank}: EyeLike takes a matrix")
    dtype = ONNX_DTYPES.get(attrs["dtype"]) if "dtype" in attrs else x.dtype
    if dtype is None or dtype == "float64":
        raise node.unsupported(f"dtype {attrs.get('dtype')}")
    return b.constant(np.eye(*x.shape, k=int(attrs.get("k", 0)), dtype=dtype), name=node.name)


@converts("Trilu")
def _trilu(b, node, ins, attrs):
    """The upper (or lower) triangle of the last two axes: ``where`` with a constant mask."""
    x = ins[0]
    if x.rank < 2:
        raise node.unsupported(f"input of rank {x.rank}: Trilu takes matrices")
    k = int(static_scalar(b, node, ins[1] if len(ins) > 1 else None, "k", 0))
    rows, cols = x.shape[-2:]
    ones = np.ones((rows, cols), bool)
    mask = np.triu(ones, k) if attrs.get("upper", 1) else np.tril(ones, k)
    return b.where(b.constant(mask), x, b.constant(np.zeros((), x.dtype)), name=node.name)


def _along(values: np.ndarray, axis: int, rank: int) -> np.ndarray:
    """``values`` (1-D) laid along ``axis`` of a tensor of ``rank`` axes (1 elsewhere), to broadcast."""
    shape = [1] * rank
    shape[axis] = values.size
    return values.reshape(shape)


@converts("OneHot")
def _one_hot(b, node, ins, attrs):
    """``on`` where an index equals its position along the new axis, else ``off``: indices (negative
    ones count from the end) compared with a constant range."""
    indices, values = ins[0], ins[2]
    depth = int(static_scalar(b, node, ins[1], "depth"))
    if depth < 1:
        raise node.unsupported(f"depth {depth}")
    rank = indices.rank + 1
    axis = int(attrs.get("axis", -1))
    if not -rank <= axis < rank:
        raise node.unsupported(f"axis {axis} for indices of rank {indices.rank}")
    axis %= rank
    if indices.dtype not in ("int32", "int64"):  # ONNX: other types are cast to int64 first
        indices = b.cast(indices, "int64", name=node.name + "/int")
    negative = b.lesser(indices, b.constant(np.zeros((), indices.dtype)), name=node.name + "/negative")
    wrapped = b.add(indices, b.constant(np.array(depth, indices.dtype)), name=node.name + "/wrapped")
    indices = b.where(negative, wrapped, indices, name=node.name + "/index")
    hot = b.equal(b.unsqueeze(indices, [axis], name=node.name + "/axis"),
                  b.constant(_along(np.arange(depth, dtype=indices.dtype), axis, rank)), name=node.name + "/hot")
    if values.is_constant:
        off, on = (b.constant(np.asarray(v).reshape(())) for v in values.value.reshape(-1)[:2])
    else:
        off, on = (b.reshape(b.slice(values, [k], [k + 1], name=f"{node.name}/v{k}"), [], name=f"{node.name}/s{k}")
                   for k in (0, 1))
    return b.where(hot, on, off, name=node.name)


@converts("Hardmax")
def _hardmax(b, node, ins, attrs):
    """1 at the first largest value along ``axis``, 0 elsewhere (before opset 13, over the input
    flattened to 2-D at ``axis``)."""
    x = ins[0]
    if node.opset < 13:
        axis = int(attrs.get("axis", 1)) % max(x.rank, 1)
        flat = b.flatten(x, axis=axis, name=node.name + "/2d")
        hard = _hardmax_along(b, node.name + "/hard", flat, 1)
        return b.reshape(hard, list(x.shape), name=node.name)
    return _hardmax_along(b, node.name, x, int(attrs.get("axis", -1)) % max(x.rank, 1))


def _hardmax_along(b, name: str, x, axis: int):
    first = b.arg_max(x, axis, keepdims=True, name=name + "/argmax")
    hot = b.equal(first, b.constant(_along(np.arange(x.shape[axis], dtype=np.int64), axis, x.rank)),
                  name=name + "/hot")
    return b.cast(hot, x.dtype, name=name)


@converts("MeanVarianceNormalization")
def _mean_variance_normalization(b, node, ins, attrs):
    """ONNX's own definition: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9) over ``axes``."""
    x, name = ins[0], node.name
    axes = [int(a) for a in attrs.get("axes", (0, 2, 3))]
    mean = b.reduce(x, "mean", axes, keepdims=True, name=name + "/mean")
    mean_of_squares = b.reduce(b.mul(x, x, name=name + "/square"), "mean", axes, keepdims=True,
                               name=name + "/mean_square")
    variance = b.sub(mean_of_squares, b.mul(mean, mean, name=name + "/mean_squared"), name=name + "/variance")
    std = b.add(b.activation(variance, "sqrt", name=name + "/std"), b.constant(np.float32(1e-9)),
                name=name + "/std_eps")
    return b.div(b.sub(x, mean, name=name + "/centred"), std, name=name)


@converts("LpNormalization")
def _lp_normalization(b, node, ins, attrs):
    """x over its L1 or L2 norm along ``axis``; a vector of zeros stays zeros (ONNX's reference)."""
    x, p = ins[0], int(attrs.get("p", 2))
    if p not in (1, 2):
        raise node.unsupported(f"p={p}: only 1 and 2")
    axis = int(attrs.get("axis", -1))
    norm = b.reduce(x, "l1" if p == 1 else "l2", [axis], keepdims=True, name=node.name + "/norm")
    zero = b.constant(np.zeros((), x.dtype))
    quotient = b.div(x, norm, name=node.name + "/quotient")
    return b.where(b.equal(norm, zero, name=node.name + "/zero"), zero, quotient, name=node.name)  # 0 for 0/0


@converts("GroupNormalization")
def _group_normalization(b, node, ins, attrs):
    """Each sample's channels in ``num_groups`` groups, each group normalized over its channels and
    spatial positions, then scaled and shifted per channel (opset 21; per group before it)."""
    x, scale, bias = ins[:3]
    name, groups = node.name, int(attrs["num_groups"])
    if x.rank < 3:
        raise node.unsupported(f"input of rank {x.rank}: expected (N, C, D1, ...)")
    n, c = x.shape[:2]
    if groups < 1 or c % groups:
        raise node.unsupported(f"num_groups {groups} does not divide the {c} channels")
    grouped = b.reshape(x, [n, groups, -1], name=name + "/groups")
    normalized = normalize(b, grouped, [2], float(attrs.get("epsilon", 1e-5)), name)[0]
    normalized = b.reshape(normalized, list(x.shape), name=name + "/back")
    per_channel = []
    for k, t in enumerate((scale, bias)):
        if t.shape == (groups,) and groups != c:  # opset 18: one value per group, for its channels
            t = b.gather(t, b.constant(np.repeat(np.arange(groups), c // groups).astype(np.int64)),
                         name=f"{name}/per_channel{k}")
        per_channel.append(b.reshape(t, [c] + [1] * (x.rank - 2), name=f"{name}/channel{k}"))
    return b.add(b.mul(normalized, per_channel[0], name=name + "/scaled"), per_channel[1], name=name)


@converts("Einsum")
def _einsum(b, node, ins, attrs):
    """An Einsum of one or more operands as transposes, reshapes, sums and batched matrix products,
    contracting the operands left to right. An index repeated within one operand (a diagonal) and
    "..." broadcasting between sizes that differ are not supported."""
    equation = text(attrs, "equation", "").replace(" ", "")
    lhs, arrow, out = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ins):
        raise node.unsupported(f"equation {equation!r} for {len(ins)} inputs")
    ellipsis_rank = max([t.rank - len(term.replace("...", "")) for term, t in zip(terms, ins) if "..." in term],
                        default=0)
    spare = "".join(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in equation)[:ellipsis_rank]

    def letters(term: str, rank: int) -> str:
        if "..." in term:
            own = rank - len(term.replace("...", ""))
            term = term.replace("...", spare[ellipsis_rank - own:])
        return term

    subs = [letters(term, t.rank) for term, t in zip(terms, ins)]
    sizes: dict[str, int] = {}
    for sub, t in zip(subs, ins):
        if len(sub) != t.rank:
            raise node.unsupported(f"term {sub!r} for an input of rank {t.rank}")
        if len(set(sub)) != len(sub):
            raise node.unsupported(f"the repeated index in {sub!r} (a diagonal)")
        for c, d in zip(sub, t.shape):
            if sizes.setdefault(c, d) != d:
                raise node.unsupported(f"index {c!r} of sizes {sizes[c]} and {d} (broadcasting)")
    if arrow:
        out = letters(out, len(out.replace("...", "")) + ellipsis_rank)
    else:  # implicit output: the ellipsis, then the indices seen once, in order
        counts = "".join(subs)
        out = spare + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in spare))
    x, sub = ins[0], subs[0]
    for k in range(1, len(ins)):
        later = set(out).union(*subs[k + 1:])
        x, sub = _contract(b, f"{node.name}/{k}", x, sub, ins[k], subs[k], later)
    # sum what the output leaves out, then order the rest as it asks
    summed = [i for i, c in enumerate(sub) if c not in out]
    if summed:
        x = b.reduce(x, "sum", summed, keepdims=False, name=f"{node.name}/sum")
        sub = "".join(c for c in sub if c in out)
    if sub != out:
        x = b.transpose(x, [sub.index(c) for c in out], name=f"{node.name}/order")
    return b.identity(x, name=node.name)


def _sum_alone(b, name: str, t, ts: str, needed: set):
    """t (indices ``ts``) summed over the indices that nothing in ``needed`` has."""
    alone = [i for i, c in enumerate(ts) if c not in needed]
    if not alone:
        return t, ts
    return b.reduce(t, "sum", alone, keepdims=False, name=name + "/sum"), "".join(c for c in ts if c in needed)


def _contract(b, name: str, x, xs: str, y, ys: str, keep: set):
    """x (indices ``xs``) times y (``ys``), summing the indices they share that ``keep`` lacks:
    [batch, M, K] x [batch, K, N] as a matrix product. Returns the result and its indices."""
    x, xs = _sum_alone(b, f"{name}/a", x, xs, set(ys) | keep)
    y, ys = _sum_alone(b, f"{name}/b", y, ys, set(xs) | keep)
    batch = [c for c in xs if c in ys and c in keep]
    contracted = [c for c in xs if c in ys and c not in keep]
    left = [c for c in xs if c not in ys]
    right = [c for c in ys if c not in xs]
    size = dict(zip(xs, x.shape)) | dict(zip(ys, y.shape))

    def prod(cs) -> int:
        return int(np.prod([size[c] for c in cs], dtype=np.int64))

    def arranged(t, ts, order, shape, tag):
        if list(ts) != order:
            t = b.transpose(t, [ts.index(c) for c in order], name=f"{name}/{tag}t")
        return b.reshape(t, shape, name=f"{name}/{tag}r")

    a = arranged(x, xs, batch + left + contracted, [prod(batch), prod(left), prod(contracted)], "a")
    c = arranged(y, ys, batch + contracted + right, [prod(batch), prod(contracted), prod(right)], "b")
    result = b.matmul(a, c, name=f"{name}/matmul")
    dims = [size[ch] for ch in batch + left + right]
    return b.reshape(result, dims, name=f"{name}/result"), "".join(batch + left + right)


@converts("ReverseSequence")
def _reverse_sequence(b, node, ins, attrs):
    """Each batch element's first sequence_lens[b] steps reversed: a gather along the time axis of
    indices lens - 1 - t (t below lens, else t itself), computed from the lengths on the GPU."""
    x, lens = ins[0], ins[1]
    batch_axis, time_axis = int(attrs.get("batch_axis", 1)), int(attrs.get("time_axis", 0))
    if x.rank < 2 or {batch_axis, time_axis} != {0, 1}:
        raise node.unsupported(f"batch_axis {batch_axis} and time_axis {time_axis} of a rank-{x.rank} input")
    name = node.name
    lens = b.cast(lens, "int64", name=name + "/lens") if lens.dtype != "int64" else lens
    shape = [1] * x.rank
    shape[batch_axis] = x.shape[batch_axis]
    lens = b.reshape(lens, shape, name=name + "/lens_axis")
    t = b.constant(_along(np.arange(x.shape[time_axis], dtype=np.int64), time_axis, x.rank))
    flipped = b.sub(b.sub(lens, b.constant(np.int64(1)), name=name + "/last"), t, name=name + "/flipped")
    index = b.where(b.lesser(t, lens, name=name + "/inside"), flipped, t, name=name + "/index")
    return b.gather_elements(x, broadcast_to(b, index, x.shape, name + "/full"), axis=time_axis, name=name)


@converts("CenterCropPad")
def _center_crop_pad(b, node, ins, attrs):
    """Each axis cropped about its centre, or padded with zeros about it, to the shape given."""
    x = ins[0]
    target = [int(d) for d in static(b, node, ins[1], "shape").reshape(-1)]
    axes = [int(a) % x.rank for a in attrs.get("axes", range(x.rank))]
    if len(target) != len(axes):
        raise node.unsupported(f"shape {target} for axes {axes}")
    starts, ends, crop_axes, pads = [], [], [], [0] * (2 * x.rank)
    for a, want in zip(axes, target):
        have = x.shape[a]
        if want < have:
            begin = (have - want) // 2
            starts.append(begin), ends.append(begin + want), crop_axes.append(a)
        elif want > have:
            pads[a] = (want - have) // 2
            pads[a + x.rank] = want - have - pads[a]
    if crop_axes:
        x = b.slice(x, starts, ends, axes=crop_axes, name=node.name + "/crop")
    if any(pads):
        x = b.pad(x, pads, name=node.name + "/pad")
    return b.identity(x, name=node.name)


def _power(b, name: str, x, p: float):
    if p == 1:
        return b.activation(x, "abs", name=name)
    if p == 2:
        return b.mul(x, x, name=name)
    return b.pow(b.activation(x, "abs", name=name + "/abs"), b.constant(np.float32(p)), name=name)


@converts("LpPool")
@lifts_1d
def _lp_pool(b, node, ins, attrs):
    """(sum of |x|^p over each window)^(1/p): an average pool of |x|^p that counts the padding,
    times the window's size."""
    from .nn import _pool3d, _pool_args

    x, p = ins[0], float(attrs.get("p", 2))
    powered = _power(b, node.name + "/power", x, p)
    if x.rank == 5:
        kernel = attrs["kernel_shape"]
        mean = _pool3d(b, NodeInfo(node.name + "/mean", node.op_type, node.opset), powered,
                       dict(attrs, count_include_pad=1), "avg")
    else:
        kernel, strides, dil, padding = _pool_args(node, x, attrs)
        mean = b.average_pool2d(powered, window=kernel, strides=strides, padding=padding, dilations=dil,
                                ceil_mode=bool(attrs.get("ceil_mode", 0)), count_include_pad=True,
                                name=node.name + "/mean")
    total = b.mul(mean, b.constant(np.float32(np.prod(kernel))), name=node.name + "/sum")
    return b.pow(total, b.constant(np.float32(1 / p)), name=node.name)


@converts("GlobalLpPool")
def _global_lp_pool(b, node, ins, attrs):
    x, p = ins[0], float(attrs.get("p", 2))
    axes = list(range(2, x.rank))
    if p in (1, 2):
        return b.reduce(x, "l1" if p == 1 else "l2", axes, keepdims=True, name=node.name)
    total = b.reduce(_power(b, node.name + "/power", x, p), "sum", axes, keepdims=True, name=node.name + "/sum")
    return b.pow(total, b.constant(np.float32(1 / p)), name=node.name)


# -- signal processing: windows and mel filters are constants, transforms are matrix products ------

def _output_dtype(node, attrs) -> str:
    dtype = ONNX_DTYPES.get(int(attrs.get("output_datatype", 1)))
    if dtype is None or dtype == "float64":
        raise node.unsupported(f"output_datatype {attrs.get('output_datatype')}")
    return dtype


@converts("HannWindow", "HammingWindow", "BlackmanWindow")
def _window(b, node, ins, attrs):
    """The window (periodic by default, else symmetric) as a constant."""
    size = int(static_scalar(b, node, ins[0], "size"))
    if size < 1:
        raise node.unsupported(f"size {size}")
    span = size if attrs.get("periodic", 1) else max(size - 1, 1)
    phase = 2 * np.pi * np.arange(size) / span
    if node.op_type == "HannWindow":
        value = 0.5 - 0.5 * np.cos(phase)
    elif node.op_type == "HammingWindow":
        value = 25 / 46 - 21 / 46 * np.cos(phase)
    else:
        value = 0.42 - 0.5 * np.cos(phase) + 0.08 * np.cos(2 * phase)
    return b.constant(value.astype(_output_dtype(node, attrs)), name=node.name)


@converts("MelWeightMatrix")
def _mel_weight_matrix(b, node, ins, attrs):
    """[dft_length // 2 + 1, mel bins] triangular filters, evenly spaced on the mel scale between
    the edges, as ONNX defines them (filter edges on whole spectrogram bins)."""
    bins, dft_length, rate, low, high = (
        static_scalar(b, node, t, what) for t, what in zip(ins[:5], ("num_mel_bins", "dft_length", "sample_rate",
                                                                     "lower_edge_hertz", "upper_edge_hertz")))
    bins, dft_length, rate, low, high = int(bins), int(dft_length), int(rate), float(low), float(high)

    def mel(hz):
        return 2595 * np.log10(1 + hz / 700)

    points = np.arange(bins + 2) * (mel(high) - mel(low)) / (bins + 2) + mel(low)  # (the reference's step)
    edges = (((dft_length + 1) * (700 * (10 ** (points / 2595) - 1))) // rate).astype(np.int64)
    value = np.zeros((dft_length // 2 + 1, bins))
    for i in range(bins):
        lo, mid, hi = edges[i:i + 3]
        if mid == lo:
            value[mid, i] = 1
        else:
            value[lo:mid + 1, i] = (np.arange(lo, mid + 1) - lo) / (mid - lo)
        if hi > mid:
            value[mid:hi, i] = (hi - np.arange(mid, hi)) / (hi - mid)
    return b.constant(value.astype(_output_dtype(node, attrs)), name=node.name)


def _fourier(b, name: str, x, axis: int, length: int, inverse: bool, onesided: bool):
    """The DFT of x (its last axis: 1 real part, or 2 real and imaginary) along ``axis``, padded or
    cut to ``length`` samples: two matrix products with cosine and sine tables (f32), the result's
    last axis real and imaginary; ``onesided`` keeps the first length // 2 + 1 frequencies, and
    the inverse divides by the length."""
    rank = x.rank
    parts, order = _components(b, name, x, axis)
    n = x.shape[axis]
    if n > length:
        parts = [b.slice(p, [0], [length], axes=[rank - 2], name=f"{name}/cut{k}") for k, p in enumerate(parts)]
    elif n < length:
        parts = [b.pad(p, [0] * (rank - 1) + [0] * (rank - 2) + [length - n], name=f"{name}/pad{k}")
                 for k, p in enumerate(parts)]
    bins = length // 2 + 1 if onesided else length
    theta = 2 * np.pi * np.outer(np.arange(length), np.arange(bins)) / length
    scale = 1 / length if inverse else 1.0
    cos = b.constant((np.cos(theta) * scale).astype(np.float32))
    sin = b.constant((np.sin(theta) * scale * (1 if inverse else -1)).astype(np.float32))
    # (xr + i xi)(cos + i sin): real xr cos - xi sin, imaginary xr sin + xi cos
    real = b.matmul(parts[0], cos, name=f"{name}/rc")
    imag = b.matmul(parts[0], sin, name=f"{name}/rs")
    if len(parts) > 1:
        real = b.sub(real, b.matmul(parts[1], sin, name=f"{name}/is"), name=f"{name}/real")
        imag = b.add(imag, b.matmul(parts[1], cos, name=f"{name}/ic"), name=f"{name}/imag")
    out = b.concat([b.unsqueeze(real, [rank - 1], name=f"{name}/r1"), b.unsqueeze(imag, [rank - 1], name=f"{name}/i1")],
                   axis=rank - 1, name=f"{name}/complex")
    return _restored(b, name, out, order)


def _components(b, name: str, x, axis: int) -> tuple[list, list[int]]:
    """x's real (and imaginary) parts, its last axis taken apart, with ``axis`` moved last; and
    the order of the axes that moved it."""
    rank = x.rank
    parts = [b.squeeze(b.slice(x, [k], [k + 1], axes=[rank - 1], name=f"{name}/part{k}"), [rank - 1],
                       name=f"{name}/part{k}s") for k in range(x.shape[-1])]
    order = [a for a in range(rank - 1) if a != axis] + [axis]
    if order != list(range(rank - 1)):
        parts = [b.transpose(p, order, name=f"{name}/last{k}") for k, p in enumerate(parts)]
    return parts, order


def _restored(b, name: str, out, order: list[int]):
    """``out`` (the transformed axis next to last, the parts last) with its axes put back."""
    back = list(np.argsort(order)) + [len(order)]
    return b.transpose(out, back, name=name) if back != list(range(len(back))) else b.identity(out, name=name)


@converts("DFT")
def _dft(b, node, ins, attrs):
    x = ins[0]
    if node.opset >= 20:
        axis = int(static_scalar(b, node, ins[2] if len(ins) > 2 else None, "axis", -2))
    else:
        axis = int(attrs.get("axis", 1))
    axis %= x.rank
    inverse, onesided = bool(attrs.get("inverse", 0)), bool(attrs.get("onesided", 0))
    if axis == x.rank - 1 or x.shape[-1] not in (1, 2):
        raise node.unsupported(f"axis {axis} of an input {x.shape}: the last axis holds 1 or 2 (real, imaginary)")
    given = static_scalar(b, node, ins[1] if len(ins) > 1 else None, "dft_length")
    given = None if given is None else int(given)
    if inverse and onesided:
        return _real_inverse(b, node.name, x, axis, given or 2 * (x.shape[axis] - 1))
    return _fourier(b, node.name, x, axis, x.shape[axis] if given is None else given, inverse, onesided)


def _real_inverse(b, name: str, x, axis: int, length: int):
    """The real signal of ``length`` samples whose one-sided spectrum x is (numpy's irfft): the
    frequencies between the first and the middle count twice, their mirror images being their
    conjugates; x's imaginary parts of the first and the middle frequency do not count."""
    rank = x.rank
    parts, order = _components(b, name, x, axis)
    bins = min(x.shape[axis], length // 2 + 1)
    if x.shape[axis] > bins:
        parts = [b.slice(p, [0], [bins], axes=[rank - 2], name=f"{name}/cut{k}") for k, p in enumerate(parts)]
    weight = np.full(bins, 2.0)
    weight[0] = 1.0
    if length % 2 == 0 and bins == length // 2 + 1:
        weight[-1] = 1.0
    theta = 2 * np.pi * np.outer(np.arange(bins), np.arange(length)) / length
    cos = b.constant((weight[:, None] * np.cos(theta) / length).astype(np.float32))
    out = b.matmul(parts[0], cos, name=f"{name}/real")
    if len(parts) > 1:
        sin = b.constant((weight[:, None] * np.sin(theta) / length).astype(np.float32))
        out = b.sub(out, b.matmul(parts[1], sin, name=f"{name}/imag"), name=f"{name}/signal")
    return _restored(b, name, b.unsqueeze(out, [rank - 1], name=f"{name}/one"), order)


@converts("STFT")
def _stft(b, node, ins, attrs):
    """Frames of the signal (a constant gather), times the window, each transformed: [batch,
    frames, frequencies, 2]."""
    x = ins[0]
    step = int(static_scalar(b, node, ins[1], "frame_step"))
    window = ins[2] if len(ins) > 2 else None
    frame = static_scalar(b, node, ins[3] if len(ins) > 3 else None, "frame_length",
                          window.shape[0] if window is not None else None)
    frame = None if frame is None else int(frame)
    if x.rank != 3 or frame is None or step < 1 or frame > x.shape[1]:
        raise node.unsupported(f"signal {x.shape}, frame_step {step}, frame_length {frame}")
    frames = 1 + (x.shape[1] - frame) // step
    index = (np.arange(frames)[:, None] * step + np.arange(frame)[None, :]).astype(np.int64)
    framed = b.gather(x, b.constant(index), axis=1, name=node.name + "/frames")  # [batch, frames, frame, c]
    if window is not None:
        framed = b.mul(framed, b.reshape(window, [frame, 1], name=node.name + "/window"), name=node.name + "/windowed")
    return _fourier(b, node.name, framed, 2, frame, False, bool(attrs.get("onesided", 1)))


@converts("Col2Im")
def _col2im(b, node, ins, attrs):
    """Col2Im as a transposed convolution: the columns (N, C * prod(block), L) reshaped into their
    grid of blocks, each group of prod(block) channels spread back by a one-hot filter onto its
    channel's image, overlaps summed."""
    image = [int(v) for v in static(b, node, ins[1], "image_shape")]
    block = [int(v) for v in static(b, node, ins[2], "block_shape")]
    rank, x = len(image), ins[0]
    if rank not in (2, 3) or len(block) != rank:
        raise node.unsupported(f"image_shape {image} and block_shape {block}: 2-D and 3-D images")
    strides = [int(v) for v in attrs.get("strides", [1] * rank)]
    dil = [int(v) for v in attrs.get("dilations", [1] * rank)]
    pads = [int(v) for v in attrs.get("pads", [0] * 2 * rank)]
    taps = int(np.prod(block))
    blocks = [(image[i] + pads[i] + pads[i + rank] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1
              for i in range(rank)]
    if x.rank != 3 or x.shape[1] % taps or int(np.prod(blocks)) != x.shape[2]:
        raise node.unsupported(f"input {x.shape}: expected (N, C * {taps}, {int(np.prod(blocks))}) for blocks "
                               f"{block} over image {image}")
    channels = x.shape[1] // taps
    one_hot = np.zeros((channels, taps, 1, taps), np.float32)
    one_hot[:, np.arange(taps), 0, np.arange(taps)] = 1
    w = b.constant(one_hot.reshape(channels * taps, 1, *block))
    cols = b.reshape(x, (x.shape[0], x.shape[1], *blocks))
    pairs = [(pads[i], pads[i + rank]) for i in range(rank)]
    if rank == 2:
        return b.conv_transpose2d(cols, w, strides=strides, padding=pairs[0] + pairs[1], dilations=dil,
                                  groups=channels, output_size=image, name=node.name)
    return b.conv_transpose3d(cols, w, strides=strides, padding=pairs, dilations=dil, output_padding=(0, 0, 0),
                              groups=channels, output_size=image, name=node.name)


@converts("TensorScatter")
def _tensor_scatter(b, node, ins, attrs):
    """TensorScatter (a KV cache's update) as a gather: each position p along ``axis`` of batch row
    n takes update[p - write_indices[n]] (modulo the axis' length when ``mode`` is circular) where
    that lies within the update, else keeps past_cache's value."""
    past, update = ins[0], ins[1]
    indices = ins[2] if len(ins) > 2 else None
    axis = int(attrs.get("axis", -2)) % past.rank
    mode = text(attrs, "mode", "linear")
    if mode not in ("linear", "circular"):
        raise node.unsupported(f"mode {mode!r}")
    if axis == 0 or update.rank != past.rank or any(u != p for k, (u, p) in enumerate(zip(update.shape, past.shape))
                                                   if k != axis):
        raise node.unsupported(f"past_cache {past.shape} and update {update.shape} along axis {axis}: they must "
                               "agree but for that axis, which is not the batch axis")
    length, count = past.shape[axis], update.shape[axis]
    lead = [1] * past.rank
    lead[axis] = length
    position = b.constant(np.arange(length, dtype=np.int64).reshape(lead))
    if indices is None:
        offset = position
    else:
        row = [1] * past.rank
        row[0] = past.shape[0]
        offset = b.sub(position, b.reshape(b.cast(indices, "int64"), row))
    if mode == "circular":
        offset = b._binary("mod", offset, b.constant(np.int64(length)), f"{node.name}/wrap")
    inside = b.logical_and(b.greater_or_equal(offset, b.constant(np.int64(0))),
                           b.lesser(offset, b.constant(np.int64(count))))
    picked = b.max(b.min(offset, b.constant(np.int64(count - 1))), b.constant(np.int64(0)))
    every = broadcast_to(b, picked, update.shape[:axis] + (length,) + update.shape[axis + 1:], f"{node.name}/where")
    gathered = b.gather_elements(update, every, axis=axis)
    return b.where(inside, gathered, past, name=node.name)


@converts("DeformConv")
def _deform_conv(b, node, ins, attrs):
    """DeformConv (2-D) as sampling, then a convolution: per offset group one GridSample (bilinear,
    zeros outside, in pixel coordinates) gathers every filter tap's shifted input points at once, its grid the taps'
    places plus their offsets (the rows of the grid are tap by output row); the samples, times the
    mask, rearranged as (group, tap, channel) channels, meet the filter as a grouped 1x1
    convolution, which runs on the tiled kernels."""
    x, w, offset = ins[0], ins[1], ins[2]
    bias = ins[3] if len(ins) > 3 else None
    mask = ins[4] if len(ins) > 4 else None
    if x.rank != 4 or w.rank != 4 or offset.rank != 4:
        raise node.unsupported(f"inputs {x.shape}, {w.shape}, {offset.shape}: 2-D deformable convolutions only")
    n, channels, height, width = x.shape
    out_c, per_group, kh, kw = w.shape
    groups, offset_groups = int(attrs.get("group", 1)), int(attrs.get("offset_group", 1))
    sh, sw = (int(s) for s in attrs.get("strides", (1, 1)))
    dh, dw = (int(d) for d in attrs.get("dilations", (1, 1)))
    top, left, bottom, right = (int(p) for p in attrs.get("pads", (0, 0, 0, 0)))
    oh, ow = offset.shape[2:]
    taps = kh * kw
    want = ((height + top + bottom - dh * (kh - 1) - 1) // sh + 1, (width + left + right - dw * (kw - 1) - 1) // sw + 1)
    if (oh, ow) != want or (mask is not None and tuple(mask.shape) != (n, offset_groups * taps, oh, ow)):
        raise GraphError(f"DeformConv node {node.name!r}: offset {offset.shape} (and mask "
                         f"{None if mask is None else mask.shape}) must cover the convolution's output {want}")
    if channels != per_group * groups or channels % offset_groups or offset.shape[1] != 2 * offset_groups * taps:
        raise node.unsupported(f"x {x.shape}, W {w.shape}, offset {offset.shape} with group {groups} and "
                               f"offset_group {offset_groups} do not agree")
    rows = np.arange(oh) * sh - top
    cols = np.arange(ow) * sw - left
    tap_y = (np.arange(kh) * dh).repeat(kw)
    tap_x = np.tile(np.arange(kw) * dw, kh)
    base_y = (tap_y[:, None, None] + rows[None, :, None] + np.zeros((1, 1, ow))).reshape(1, taps * oh, ow, 1)
    base_x = (tap_x[:, None, None] + cols[None, None, :] + np.zeros((1, oh, 1))).reshape(1, taps * oh, ow, 1)
    shifts = b.reshape(offset, (n, offset_groups, taps, 2, oh, ow))
    per_offset_group = channels // offset_groups
    parts = []
    for g in range(offset_groups):
        def along(k, g=g):  # (n, taps * oh, ow, 1): the offsets of this group along y (k=0) or x (k=1)
            part = b.slice(shifts, [g, k], [g + 1, k + 1], axes=[1, 3])
            return b.reshape(part, (n, taps * oh, ow, 1))

        gy = b.add(along(0), b.constant(base_y.astype(np.float32)))  # pixel coordinates
        gx = b.add(along(1), b.constant(base_x.astype(np.float32)))
        source = b.slice(x, [g * per_offset_group], [(g + 1) * per_offset_group], axes=[1])
        sampled = b.grid_sample(source, b.concat([gx, gy], 3), mode="linear", padding_mode="zeros", pixels=True,
                                name=f"{node.name}/sample{g}")  # (n, c, taps * oh, ow)
        if mask is not None:
            weight = b.slice(mask, [g * taps], [(g + 1) * taps], axes=[1])
            sampled = b.mul(sampled, b.reshape(weight, (n, 1, taps * oh, ow)))
        parts.append(sampled)
    samples = parts[0] if len(parts) == 1 else b.concat(parts, 1)  # (n, channels, taps * oh, ow)
    columns = b.reshape(b.transpose(b.reshape(samples, (n, groups, per_group, taps, oh, ow)), (0, 1, 3, 2, 4, 5)),
                        (n, groups * taps * per_group, oh, ow))
    filters = b.reshape(b.transpose(b.reshape(w, (out_c, per_group, taps)), (0, 2, 1)), (out_c, taps * per_group, 1, 1))
    if bias is None or b.static_value(bias) is not None:
        return b.conv2d(columns, filters, bias=bias, groups=groups, name=node.name)
    out = b.conv2d(columns, filters, groups=groups, name=f"{node.name}/conv")  # a bias computed at run time: added
    return b.add(out, b.reshape(bias, (1, out_c, 1, 1)), name=node.name)
