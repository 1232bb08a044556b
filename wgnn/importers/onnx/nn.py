"""ONNX converters: convolution, pooling, normalization, matrix products, recurrent layers, resize."""

from __future__ import annotations

import math

import numpy as np

from ...errors import GraphError
from ...ops.activation import make as make_activation
from .common import (
    axis_pads,
    broadcast_to,
    converts,
    legacy_nearest,
    lifts_1d,
    spatial_pads,
    static,
    text,
    transpose_pads,
    window,
)


@converts("Conv")
@lifts_1d
def _conv(b, node, ins, attrs):
    x, w = ins[0], ins[1]
    kernel, strides, dil = window(node, x, attrs, "convolution", w.shape[2:])
    padding = spatial_pads(node, attrs, x.shape[2:], kernel, strides, dil)
    bias = ins[2] if len(ins) > 2 else None
    if len(ins) > 3 or (bias is not None and bias.shape != (w.shape[0],)):
        got = f"{len(ins)} inputs" + (f", bias {bias.shape}" if bias is not None else "")
        raise GraphError(f"Conv node {node.name!r}: expected inputs X, W and an optional bias of shape "
                         f"({w.shape[0]},), got {got}")
    if bias is not None and b.static_value(bias) is None:  # computed at run time: added after the conv
        y = b.conv2d(x, w, strides=strides, padding=padding, dilations=dil, groups=attrs.get("group", 1),
                     name=node.name + "/conv")
        return b.add(y, b.reshape(bias, [bias.size, 1, 1], name=node.name + "/bias"), name=node.name)
    return b.conv2d(x, w, bias=bias, strides=strides, padding=padding, dilations=dil, groups=attrs.get("group", 1),
                    name=node.name)


@converts("ConvTranspose")
@lifts_1d
def _conv_transpose(b, node, ins, attrs):
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    if x.rank == 5:
        kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
        strides, dil = tuple(attrs.get("strides", (1, 1, 1))), tuple(attrs.get("dilations", (1, 1, 1)))
        out_pad = tuple(attrs.get("output_padding", (0, 0, 0)))
        pads, target = transpose_pads(attrs, x.shape[2:], kernel, strides, dil, out_pad)
        return b.conv_transpose3d(x, w, bias=bias, strides=strides, padding=pads, dilations=dil,
                                  output_padding=out_pad, groups=attrs.get("group", 1), output_size=target,
                                  name=node.name)
    kernel, strides, dil = window(node, x, attrs, "transposed convolution", w.shape[2:])
    out_pad = tuple(attrs.get("output_padding", (0, 0)))
    pads, target = transpose_pads(attrs, x.shape[2:], kernel, strides, dil, out_pad)
    return b.conv_transpose2d(x, w, bias=bias, strides=strides, padding=pads[0] + pads[1], dilations=dil,
                              output_padding=out_pad, groups=attrs.get("group", 1), output_size=target,
                              name=node.name)


@converts("Resize")
def _resize(b, node, ins, attrs):
    x = ins[0]
    if x.rank != 4:
        raise node.unsupported(f"input of rank {x.rank}: only 4-D NCHW tensors")
    mode = text(attrs, "mode", "nearest")
    coords = text(attrs, "coordinate_transformation_mode", "half_pixel" if node.opset >= 11 else "asymmetric")
    nearest = text(attrs, "nearest_mode", "round_prefer_floor")
    if mode not in ("nearest", "linear", "cubic"):
        raise node.unsupported(f"mode {mode!r}")
    if mode == "nearest" and attrs.get("antialias", 0):
        raise node.unsupported("antialias=1 with nearest mode")
    policy = text(attrs, "keep_aspect_ratio_policy", "stretch")
    if policy not in ("stretch", "not_larger", "not_smaller"):
        raise node.unsupported(f"keep_aspect_ratio_policy {policy!r}")
    axes = [int(a) % x.rank for a in attrs.get("axes", range(x.rank))]  # scales and sizes cover these
    scales_in = ins[1] if node.opset < 11 else (ins[2] if len(ins) > 2 else None)
    sizes_in = ins[3] if node.opset >= 11 and len(ins) > 3 else None
    given_sizes = static(b, node, sizes_in, "sizes")
    given_scales = static(b, node, scales_in, "scales")
    scales = [1.0] * x.rank
    sizes = list(x.shape)
    if given_sizes is not None and given_sizes.size:
        wanted = [int(d) for d in given_sizes]
        if policy == "stretch":
            for a, d in zip(axes, wanted):
                sizes[a] = d
            scales = None
        else:  # one scale for every axis in ``axes``: the largest that fits, or the smallest that covers
            pick = min if policy == "not_larger" else max
            scale = pick(d / x.shape[a] for a, d in zip(axes, wanted))
            for a in axes:
                scales[a] = scale
                sizes[a] = int(round(scale * x.shape[a]))
    elif given_scales is not None and given_scales.size:
        for a, f in zip(axes, given_scales):
            scales[a] = float(f)
            sizes[a] = int(math.floor(x.shape[a] * float(f)))
    else:
        raise node.unsupported("neither scales nor sizes given")
    if sizes[:2] != list(x.shape[:2]):
        raise node.unsupported(f"resizing the batch or channel axis ({x.shape} -> {sizes})")
    if node.opset < 11:  # Resize-10 as Upsample: asymmetric coordinates, ONNX Runtime's rounding
        nearest = legacy_nearest(scales[2:])
    roi = None
    if coords == "tf_crop_and_resize":
        given = static(b, node, ins[1] if node.opset >= 11 and len(ins) > 1 else None, "roi")
        full = [0.0] * x.rank + [1.0] * x.rank
        if given is not None and given.size:
            for k, a in enumerate(axes):
                full[a], full[a + x.rank] = float(given[k]), float(given[k + len(axes)])
        if full[:2] != [0.0, 0.0] or full[x.rank:x.rank + 2] != [1.0, 1.0]:
            raise node.unsupported(f"a roi {full} that crops the batch or channel axis")
        roi = [(full[2], full[2 + x.rank]), (full[3], full[3 + x.rank])]
    return b.resize(x, sizes[2:], mode=mode, coordinate_mode=coords, nearest_mode=nearest,
                    scales=None if scales is None else scales[2:], cubic_coeff_a=attrs.get("cubic_coeff_a", -0.75),
                    exclude_outside=bool(attrs.get("exclude_outside", 0)), antialias=bool(attrs.get("antialias", 0)),
                    roi=roi, extrapolation_value=attrs.get("extrapolation_value", 0.0), name=node.name)


@converts("BatchNormalization")
def _batchnorm(b, node, ins, attrs):
    x, scale, bias, mean, var = ins[:5]
    eps = attrs.get("epsilon", 1e-5)
    if not attrs.get("training_mode", 0):
        return b.batch_normalization(x, mean, var, scale=scale, bias=bias, epsilon=eps, name=node.name)
    # Training mode: normalize by this batch's statistics, and output the updated running ones.
    return b.batch_normalization_training(x, scale, bias, mean, var, epsilon=eps, momentum=attrs.get("momentum", 0.9),
                                          name=node.name)


def _pool3d(b, node, x, attrs, mode: str):
    kernel = tuple(attrs["kernel_shape"])
    strides, dil = tuple(attrs.get("strides", (1, 1, 1))), tuple(attrs.get("dilations", (1, 1, 1)))
    return b.pool3d(x, mode, window=kernel, strides=strides, padding=axis_pads(node, attrs, x.shape[2:], kernel,
                                                                                strides, dil),
                    dilations=dil, ceil_mode=bool(attrs.get("ceil_mode", 0)),
                    count_include_pad=bool(attrs.get("count_include_pad", 0)), name=node.name)


def _pool_args(node, x, attrs):
    kernel, strides, dil = window(node, x, attrs, "pooling", None)
    return kernel, strides, dil, spatial_pads(node, attrs, x.shape[2:], kernel, strides, dil)


@converts("MaxPool")
@lifts_1d
def _maxpool(b, node, ins, attrs):
    if ins[0].rank == 5:
        if node.outputs > 1:
            raise node.unsupported("the Indices output of 3-D pooling")
        return _pool3d(b, node, ins[0], attrs, "max")
    kernel, strides, dil, padding = _pool_args(node, ins[0], attrs)
    args = dict(window=kernel, strides=strides, padding=padding, dilations=dil,
                ceil_mode=bool(attrs.get("ceil_mode", 0)), name=node.name)
    if node.outputs > 1:  # the Indices output
        return list(b.max_pool2d_with_indices(ins[0], storage_order=attrs.get("storage_order", 0), **args))
    return b.max_pool2d(ins[0], **args)


@converts("AveragePool")
@lifts_1d
def _avgpool(b, node, ins, attrs):
    if ins[0].rank == 5:
        return _pool3d(b, node, ins[0], attrs, "avg")
    kernel, strides, dil, padding = _pool_args(node, ins[0], attrs)
    return b.average_pool2d(ins[0], window=kernel, strides=strides, padding=padding, dilations=dil,
                            ceil_mode=bool(attrs.get("ceil_mode", 0)),
                            count_include_pad=bool(attrs.get("count_include_pad", 0)), name=node.name)


@converts("GlobalAveragePool", "GlobalMaxPool")
@lifts_1d
def _global_pool(b, node, ins, attrs):
    if ins[0].rank != 4:
        raise node.unsupported(f"input of rank {ins[0].rank}: only 4-D NCHW tensors")
    pool = b.average_pool2d if node.op_type == "GlobalAveragePool" else b.max_pool2d
    return pool(ins[0], name=node.name)


@converts("Softmax", "LogSoftmax")
def _softmax(b, node, ins, attrs):
    x = ins[0]
    op = b.log_softmax if node.op_type == "LogSoftmax" else b.softmax
    if node.opset >= 13:
        return op(x, axis=attrs.get("axis", -1), name=node.name)
    # Before opset 13, (Log)Softmax works on the input flattened to 2-D at ``axis``.
    axis = attrs.get("axis", 1) % max(x.rank, 1)
    if axis == x.rank - 1:
        return op(x, axis=-1, name=node.name)
    flat = b.flatten(x, axis=axis, name=node.name + "/flat")
    return b.reshape(op(flat, axis=-1, name=node.name + "/softmax"), x.shape, name=node.name)


@converts("LRN")
def _lrn(b, node, ins, attrs):
    return b.lrn(ins[0], size=attrs["size"], alpha=attrs.get("alpha", 1e-4), beta=attrs.get("beta", 0.75),
                 bias=attrs.get("bias", 1.0), name=node.name)


# ONNX's recurrent activations: wgnn's kind and how many of activation_alpha / activation_beta each takes.
_RNN_ACTIVATIONS = {"Sigmoid": ("sigmoid", 0), "Tanh": ("tanh", 0), "Relu": ("relu", 0),
                    "LeakyRelu": ("leaky_relu", 1), "HardSigmoid": ("hard_sigmoid", 2), "Elu": ("elu", 1),
                    "Softsign": ("softsign", 0), "Softplus": ("softplus", 0)}


def _rnn_activations(node, attrs) -> list | None:
    names = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    if not names:
        return None
    alphas, betas = list(attrs.get("activation_alpha", [])), list(attrs.get("activation_beta", []))
    acts = []
    for act in names:
        if act not in _RNN_ACTIVATIONS:
            raise node.unsupported(f"activation {act!r} (supported: {sorted(_RNN_ACTIVATIONS)})")
        kind, count = _RNN_ACTIVATIONS[act]
        alpha = alphas.pop(0) if count >= 1 and alphas else None
        beta = betas.pop(0) if count >= 2 and betas else None
        acts.append(make_activation(kind, alpha, beta))
    return acts


@converts("LSTM", "GRU", "RNN")
def _recurrent(b, node, ins, attrs, product=None):
    """ONNX LSTM, GRU and RNN (``product``: how an LSTM makes its matrix products, see
    ``wgnn.recurrent.lstm``; com.microsoft.DynamicQuantizeLSTM gives one)."""
    ins = ins + [None] * (8 - len(ins))
    x, w, r, bias, lens, h0 = ins[:6]
    layout = attrs.get("layout", 0)
    if layout:
        x = b.transpose(x, [1, 0, 2], name=node.name + "/x")
        h0 = b.transpose(h0, [1, 0, 2], name=node.name + "/h0") if h0 is not None else None
    if lens is not None:
        steps = static(b, node, lens, "sequence_lens")
        if np.any(steps != x.shape[0]):
            raise node.unsupported(f"sequence_lens {steps.tolist()} shorter than the {x.shape[0]} steps")
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[node.op_type]
    hidden = int(attrs.get("hidden_size", w.shape[1] // gates))
    wb = rb = None
    if bias is not None:  # ONNX's B is [directions, 2 * gates * hidden]: W's bias, then R's
        wb = b.slice(bias, [0], [gates * hidden], axes=[1], name=node.name + "/wb")
        rb = b.slice(bias, [gates * hidden], [2 * gates * hidden], axes=[1], name=node.name + "/rb")
    options = dict(hidden_size=hidden, bias=wb, recurrent_bias=rb, initial_hidden_state=h0,
                   direction={"forward": "forward", "reverse": "backward",
                              "bidirectional": "both"}[text(attrs, "direction", "forward")],
                   activations=_rnn_activations(node, attrs), clip=attrs.get("clip"), name=node.name)
    if node.op_type == "LSTM":
        c0, peephole = ins[6], ins[7]
        if layout and c0 is not None:
            c0 = b.transpose(c0, [1, 0, 2], name=node.name + "/c0")
        outs = b.lstm(x, w, r, initial_cell_state=c0, peephole_weight=peephole,
                      couple_input_forget=bool(attrs.get("input_forget", 0)), product=product, **options)
    elif node.op_type == "GRU":
        outs = b.gru(x, w, r, reset_after=bool(attrs.get("linear_before_reset", 0)), **options)
    else:
        outs = b.rnn(x, w, r, **options)
    if layout:  # [steps, directions, batch, hidden] -> [batch, steps, directions, hidden]; states batch-first
        outs = [b.transpose(outs[0], [2, 0, 1, 3], name=node.name + "/y")] + [
            b.transpose(s, [1, 0, 2], name=f"{node.name}/state{k}") for k, s in enumerate(outs[1:])]
    return outs


@converts("InstanceNormalization")
def _instance_norm(b, node, ins, attrs):
    return b.instance_normalization(ins[0], scale=ins[1], bias=ins[2], epsilon=attrs.get("epsilon", 1e-5),
                                    name=node.name)


@converts("LayerNormalization")
def _layer_norm(b, node, ins, attrs):
    return b.layer_normalization(ins[0], scale=ins[1], bias=ins[2] if len(ins) > 2 else None,
                                 axis=attrs.get("axis", -1), epsilon=attrs.get("epsilon", 1e-5), name=node.name)


@converts("MatMul")
def _matmul(b, node, ins, attrs):
    x, y = ins[0], ins[1]
    if x.rank > 2 and y.rank > 2 and x.shape[:-2] != y.shape[:-2]:
        # Batch dimensions broadcast on both sides: expand each to the common batch shape first.
        batch = tuple(np.broadcast_shapes(x.shape[:-2], y.shape[:-2]))
        x, y = (t if t.shape[:-2] == batch else broadcast_to(b, t, batch + (1, 1), f"{node.name}/expand{k}")
                for k, t in enumerate((x, y)))
    return b.matmul(x, y, name=node.name)


@converts("Gemm")
def _gemm(b, node, ins, attrs):
    return b.gemm(ins[0], ins[1], ins[2] if len(ins) > 2 else None, alpha=attrs.get("alpha", 1.0),
                  beta=attrs.get("beta", 1.0), a_transpose=bool(attrs.get("transA", 0)),
                  b_transpose=bool(attrs.get("transB", 0)), name=node.name)


@converts("GridSample")
def _grid_sample(b, node, ins, attrs):
    mode = text(attrs, "mode", "linear" if node.opset >= 20 else "bilinear")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    if ins[0].rank not in (4, 5):
        raise node.unsupported(f"input of rank {ins[0].rank}: 2-D and 3-D sampling only")
    return b.grid_sample(ins[0], ins[1], mode=mode, padding_mode=text(attrs, "padding_mode", "zeros"),
                         align_corners=bool(attrs.get("align_corners", 0)), name=node.name)


@converts("MaxUnpool")
def _max_unpool(b, node, ins, attrs):
    """MaxUnpool into the size the pooling came from; a larger output_shape pads it at the end of
    each axis (the indices are places in the unpadded output, as ONNX Runtime reads them)."""
    x, idx = ins[0], ins[1]
    rank = x.rank - 2
    kernel = [int(k) for k in attrs["kernel_shape"]]
    strides = [int(s) for s in attrs.get("strides", [1] * rank)]
    pads = [int(p) for p in attrs.get("pads", [0] * 2 * rank)]
    shape = list(x.shape[:2]) + [(size - 1) * s - pads[k] - pads[k + rank] + kern
                                 for k, (size, s, kern) in enumerate(zip(x.shape[2:], strides, kernel))]
    given = static(b, node, ins[2], "output_shape") if len(ins) > 2 and ins[2] is not None else None
    want = shape if given is None else [int(d) for d in given.reshape(-1)]
    if len(want) != x.rank or want[:2] != shape[:2] or any(w < s for w, s in zip(want, shape)):
        raise node.unsupported(f"output_shape {want} for an input of shape {x.shape} (at least {shape})")
    y = b.max_unpool(x, idx, shape, name=node.name if want == shape else f"{node.name}/unpool")
    if want == shape:
        return y
    return b.pad(y, [0] * x.rank + [w - s for w, s in zip(want, shape)], name=node.name)


@converts("Det")
def _det(b, node, ins, attrs):
    return b.det(ins[0], name=node.name)
