"""Ops made of other ops, for every front end (``OpBuilder``'s methods call these): 3-D transposed
convolution and 3-D pooling from their 2-D kernels, training-mode batch normalization, dropout with a
seeded mask, instance and layer normalization. Each takes the builder and adds ordinary graph ops.
"""

from __future__ import annotations

import numpy as np

from .errors import GraphError
from .graph import Operand

Pads = tuple[tuple[int, int], ...]  # (begin, end) per spatial axis


def conv_transpose3d(b, x: Operand, w: Operand, bias: Operand | None, *, strides, pads: Pads, dilations,
                     output_padding, groups: int, output_size, name: str) -> Operand:
    """3-D transposed convolution from 2-D ones: depth moves into the batch, each depth tap of the
    filter is one 2-D transposed convolution over (H, W), and its output rows land along depth at
    d * stride + tap * dilation - pad_front (stride - 1 zero rows between inputs), summed over taps.
    ``w`` is [Cin, Cout / groups, KD, KH, KW]; ``output_size`` (D, H, W) or None."""
    if x.rank != 5 or w.rank != 5:
        raise GraphError(f"conv_transpose3d node {name!r}: expected a 5-D input and filter, got {x.shape} and "
                         f"{w.shape}")
    n, c, depth, height, width = x.shape
    kd = w.shape[2]
    (front, back), sd, dd = pads[0], strides[0], dilations[0]
    out_d = output_size[0] if output_size is not None else \
        sd * (depth - 1) + output_padding[0] + (kd - 1) * dd + 1 - front - back
    if out_d < 1:
        raise GraphError(f"conv_transpose3d node {name!r}: output depth {out_d} is empty")
    planes = b.reshape(b.transpose(x, (0, 2, 1, 3, 4), name=name + "/d_first"), [n * depth, c, height, width],
                       name=name + "/planes")
    total = None
    for tap in range(kd):
        w_tap = b.reshape(b.slice(w, [tap], [tap + 1], axes=[2], name=f"{name}/w{tap}"),
                          [w.shape[0], w.shape[1], w.shape[3], w.shape[4]], name=f"{name}/w{tap}_2d")
        y = b.conv_transpose2d(planes, w_tap, strides=strides[1:], padding=pads[1] + pads[2],
                               dilations=dilations[1:], output_padding=output_padding[1:], groups=groups,
                               output_size=output_size[1:] if output_size is not None else None,
                               name=f"{name}/tap{tap}")
        m, oh, ow = y.shape[1:]
        rows = b.reshape(y, [n, depth, 1, m * oh * ow], name=f"{name}/tap{tap}_rows")
        if sd > 1:  # row j of the strided result holds input depth j / stride
            rows = b.pad(rows, [0, 0, 0, 0, 0, 0, sd - 1, 0], name=f"{name}/tap{tap}_stride")
        rows = b.reshape(rows, [n, depth * sd, m * oh * ow], name=f"{name}/tap{tap}_strided")
        shift = tap * dd - front  # output row i reads strided row i - shift
        grow_front, start = max(shift, 0), max(-shift, 0)
        grow_back = max(0, start + out_d - (depth * sd + grow_front))
        if grow_front or grow_back:
            rows = b.pad(rows, [0, grow_front, 0, 0, grow_back, 0], name=f"{name}/tap{tap}_shift")
        rows = b.slice(rows, [start], [start + out_d], axes=[1], name=f"{name}/tap{tap}_crop")
        total = rows if total is None else b.add(total, rows, name=f"{name}/sum{tap}")
    y = b.transpose(b.reshape(total, [n, out_d, m, oh, ow], name=name + "/volume"), (0, 2, 1, 3, 4),
                    name=name + ("/nobias" if bias is not None else ""))
    if bias is not None:
        y = b.add(y, b.reshape(bias, [1, m, 1, 1, 1], name=name + "/bias"), name=name)
    return y


def pool3d(b, x: Operand, mode: str, *, window, strides, pads: Pads, dilations, ceil_mode: bool,
           count_include_pad: bool, name: str) -> Operand:
    """3-D pooling as two 2-D poolings: over (H, W) with depth folded into the channels, then over D
    with H and W flattened. Max and average pooling are separable, average pooling too whatever
    its padding rule: a window's element count is the product of its counts along each axis."""
    if x.rank != 5 or mode not in ("max", "avg"):
        raise GraphError(f"pool3d node {name!r}: expected a 5-D input and mode max or avg, got {x.shape}, {mode!r}")
    n, c, depth, height, width = x.shape
    pool = b.max_pool2d if mode == "max" else b.average_pool2d
    extra = {} if mode == "max" else {"count_include_pad": count_include_pad}
    hw = pool(b.reshape(x, [n, c * depth, height, width], name=name + "/hw_in"), window=window[1:],
              strides=strides[1:], padding=pads[1] + pads[2], dilations=dilations[1:], ceil_mode=ceil_mode,
              name=name + "/hw", **extra)
    oh, ow = hw.shape[2:]
    d = pool(b.reshape(hw, [n, c, depth, oh * ow], name=name + "/d_in"), window=(window[0], 1),
             strides=(strides[0], 1), padding=pads[0] + (0, 0), dilations=(dilations[0], 1), ceil_mode=ceil_mode,
             name=name + "/d", **extra)
    return b.reshape(d, [n, c, d.shape[2], oh, ow], name=name)


def batch_normalization_training(b, x: Operand, scale: Operand, bias: Operand, running_mean: Operand,
                                 running_var: Operand, *, epsilon: float, momentum: float, name: str) -> list[Operand]:
    """Normalize by this batch's statistics (over every axis but 1); returns [y, updated running mean,
    updated running variance], where updated = running * momentum + batch * (1 - momentum)."""
    axes = [0] + list(range(2, x.rank))
    batch_mean = b.reduce(x, "mean", axes, keepdims=False, name=f"{name}/mean")
    centered = b.sub(x, b.reshape(batch_mean, [x.shape[1]] + [1] * (x.rank - 2), name=f"{name}/m"),
                     name=f"{name}/c")
    batch_var = b.reduce(b.mul(centered, centered, name=f"{name}/sq"), "mean", axes, keepdims=False,
                         name=f"{name}/var")
    y = b.batch_normalization(x, batch_mean, batch_var, scale=scale, bias=bias, epsilon=epsilon, name=name)
    keep, take = (b.constant(np.array(k, np.float32).astype(x.dtype)) for k in (momentum, 1 - momentum))
    running = [b.add(b.mul(old, keep, name=f"{name}/{tag}k"), b.mul(new, take, name=f"{name}/{tag}t"),
                     name=f"{name}/running_{tag}")
               for tag, old, new in (("mean", running_mean, batch_mean), ("var", running_var, batch_var))]
    return [y] + running


def dropout(b, x: Operand, *, ratio: float, seed: int | None, name: str) -> list[Operand]:
    """Training-mode dropout: returns [y, mask]. The mask is ONNX's reference implementation's (numpy's
    RandomState(seed) drawing uniform [0, 1) numbers, keeping those >= ratio), drawn once, when the
    graph is built: every run drops the same elements, as every run of the reference with that seed
    does. Without a seed that promise cannot be kept, so it is refused. A ratio of 0 keeps all."""
    if not 0 <= ratio < 1:
        raise GraphError(f"dropout node {name!r}: ratio {ratio} outside [0, 1)")
    if ratio == 0:
        return [b.identity(x, name=name), b.constant(np.ones(x.shape, bool), name=name + "/mask")]
    if seed is None:
        raise GraphError(f"dropout node {name!r}: training-mode dropout needs a seed: its mask is drawn once, "
                         "when the graph is built, so only a seed makes it reproducible")
    keep = np.random.RandomState(seed % 2**32).uniform(0.0, 1.0, x.shape) >= ratio
    scale = np.float32(1) / (np.float32(1) - np.float32(ratio))
    y = b.mul(x, b.constant(keep.astype(np.float32) * scale, name=name + "/scaled_mask"), name=name)
    return [y, b.constant(keep, name=name + "/mask")]


def normalize(b, x: Operand, axes: list[int], epsilon: float, name: str) -> list[Operand]:
    """[(x - mean) / sqrt(var + epsilon), mean, 1 / sqrt(var + epsilon)] over ``axes`` (dims kept)."""
    mean = b.reduce(x, "mean", axes, keepdims=True, name=name + "/mean")
    centred = b.sub(x, mean, name=name + "/centred")
    var = b.reduce(b.mul(centred, centred, name=name + "/square"), "mean", axes, keepdims=True, name=name + "/var")
    std = b.activation(b.add(var, b.constant(np.array(epsilon, np.float32)), name=name + "/var_eps"), "sqrt",
                       name=name + "/std")
    inv = b.activation(std, "reciprocal", name=name + "/inv_std")
    return [b.mul(centred, inv, name=name + "/normalized"), mean, inv]


def instance_normalization(b, x: Operand, scale: Operand | None, bias: Operand | None, *, epsilon: float,
                           name: str) -> Operand:
    """Normalize each (sample, channel) over its spatial axes, then scale and shift per channel."""
    y = normalize(b, x, list(range(2, x.rank)), epsilon, name)[0]
    per_channel = (x.shape[1],) + (1,) * (x.rank - 2)
    if scale is not None:
        y = b.mul(y, b.reshape(scale, per_channel, name=name + "/scale"),
                  name=name + "/scaled" if bias is not None else name)
    if bias is not None:
        y = b.add(y, b.reshape(bias, per_channel, name=name + "/bias"), name=name)
    return y


def layer_normalization(b, x: Operand, scale: Operand | None, bias: Operand | None, *, axis: int, epsilon: float,
                        name: str) -> list[Operand]:
    """Normalize over ``axis`` and the axes after it, then scale and shift (broadcasting); returns
    [y, mean, 1 / standard deviation] (ONNX's three outputs)."""
    axis = axis % max(x.rank, 1)
    y, mean, inv = normalize(b, x, list(range(axis, x.rank)), epsilon, name)
    if scale is not None:
        y = b.mul(y, scale, name=name + "/scaled" if bias is not None else name)
    if bias is not None:
        y = b.add(y, bias, name=name)
    return [y, mean, inv]
