"""ONNX -> GraphBuilder. Each ONNX op is a small function of (builder, node, inputs, attrs).

Old-style models (initializers also listed as graph inputs) are read as constants. Symbolic input
dimensions default to 1 unless ``input_shapes`` says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..builder import GraphBuilder
from ..errors import GraphError, ModelLoadError, UnsupportedOperatorError
from ..graph import Graph, Operand
from ..ops.activation import KINDS as ACTIVATION_DEFAULTS
from ..ops.activation import make as make_activation

try:
    import onnx
    from onnx import helper, numpy_helper
except ImportError as exc:  # pragma: no cover
    raise ImportError("reading ONNX models needs the onnx package: pip install onnx") from exc

Inputs = list[Operand | None]
Converter = Callable[[GraphBuilder, Any, Inputs, dict], list[Operand] | Operand]
CONVERTERS: dict[str, Converter] = {}
# Ops whose converters take sequence values (a Python list of element operands, see _graph_input).
SEQUENCE_OPS = frozenset({"Identity"})

ONNX_DTYPES = {1: "float32", 10: "float16", 6: "int32", 7: "int64", 9: "bool", 11: "float64"}


def converts(*op_types: str) -> Callable[[Converter], Converter]:
    def wrap(fn: Converter) -> Converter:
        for op in op_types:
            CONVERTERS[op] = fn
        return fn

    return wrap


# -- loading --------------------------------------------------------------------------------------


def read_model(model: str | Path | bytes | Any) -> Any:
    """An ``onnx.ModelProto`` from a path, bytes or a ModelProto, with clear errors."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.exists():
            raise ModelLoadError(f"model file {str(path)!r} does not exist")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read model file {str(path)!r}: {exc}") from exc
        source = repr(str(path))
    elif isinstance(model, (bytes, bytearray, memoryview)):
        data, source = bytes(model), "the given bytes"
    else:
        raise ModelLoadError(f"expected a path, bytes or onnx.ModelProto, got {type(model).__name__}")
    if not data:
        raise ModelLoadError(f"{source} is empty, not an ONNX model")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:
        raise ModelLoadError(f"{source} is not a valid ONNX model (protobuf parse failed: "
                             f"{type(exc).__name__})") from None
    if not proto.HasField("graph") or (not proto.graph.node and not proto.graph.output):
        raise ModelLoadError(f"{source} parsed, but holds no ONNX graph (is it an ONNX model?)")
    return proto


def _static_shape(name: str, ttype, override) -> tuple[tuple[int, ...], str]:
    dtype = ONNX_DTYPES.get(ttype.elem_type)
    if dtype is None:
        raise ModelLoadError(f"input {name!r} has ONNX element type {ttype.elem_type}, which wgnn does not handle")
    if override is not None:
        return tuple(int(d) for d in override), dtype
    dims = []
    for d in ttype.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1)
    return tuple(dims), dtype


def _graph_input(b: GraphBuilder, value_info, overrides: dict) -> Operand | list[Operand]:
    """A graph input: a tensor, or a sequence of tensors (a list of inputs ``name[i]``, as many as
    ``overrides[name]`` gives element shapes). An optional input is its value's type; one fed
    without a value (None) is refused."""
    name, vtype = value_info.name, value_info.type
    override = overrides.get(name)
    if vtype.HasField("optional_type"):
        if name in overrides and override is None:
            raise ModelLoadError(f"optional input {name!r} given without a value: wgnn compiles optional inputs "
                                 "that hold one")
        vtype = vtype.optional_type.elem_type
    if vtype.HasField("sequence_type"):
        elem = vtype.sequence_type.elem_type
        if not elem.HasField("tensor_type"):
            raise ModelLoadError(f"input {name!r} is a sequence of non-tensors, which wgnn does not handle")
        if override is None:
            raise ModelLoadError(f"input {name!r} is a sequence: input_shapes must give the shape of each element, "
                                 f"as in input_shapes={{{name!r}: [(2, 3), (2, 3)]}}")
        return [b.input(f"{name}[{i}]", *_static_shape(name, elem.tensor_type, shape))
                for i, shape in enumerate(override)]
    return b.input(name, *_static_shape(name, vtype.tensor_type, override))


def load_model(model: str | Path | bytes | Any, *, input_shapes: dict[str, tuple[int, ...]] | None = None
               ) -> tuple[Graph, int]:
    """Import an ONNX model; returns (graph, default-domain opset)."""
    proto = read_model(model)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    g = proto.graph
    b = GraphBuilder()
    b.opset = opset
    env: dict[str, Operand] = {}
    for init in g.initializer:
        try:
            value = numpy_helper.to_array(init)
        except Exception as exc:
            raise ModelLoadError(f"initializer {init.name!r} cannot be read: {exc}") from None
        env[init.name] = b.constant(_host_dtype(value), name=init.name)
    for vi in g.input:
        if vi.name in env:
            continue  # old-style: initializers repeated as inputs
        env[vi.name] = _graph_input(b, vi, input_shapes or {})

    for index, node in enumerate(g.node):
        name = node.name or f"{node.op_type}_{index}"
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedOperatorError(f"{node.domain}.{node.op_type}", name, opset)
        convert = CONVERTERS.get(node.op_type)
        if convert is None:
            raise UnsupportedOperatorError(node.op_type, name, opset)
        inputs: Inputs = []
        for i in node.input:
            if i == "":
                inputs.append(None)
            elif i not in env:
                raise ModelLoadError(f"node {name!r} ({node.op_type}) reads {i!r}, which no earlier node, "
                                     "input or initializer defines")
            else:
                inputs.append(env[i])
        if node.op_type not in SEQUENCE_OPS and any(isinstance(i, list) for i in inputs):
            raise UnsupportedOperatorError(node.op_type, name, opset, "a sequence input (of the sequence "
                                           f"ops, wgnn has {sorted(SEQUENCE_OPS)})")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        node_info = _NodeInfo(name, node.op_type, opset, len(node.output))
        try:
            result = convert(b, node_info, inputs, attrs)
        except (GraphError, UnsupportedOperatorError):
            raise
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise GraphError(f"{node.op_type} node {name!r}: {exc}") from exc
        outs = result if isinstance(result, list) else [result]
        for out_name, operand in zip(node.output, outs):
            if out_name:
                env[out_name] = operand
        if len([o for o in node.output if o]) > len(outs):
            extra = [o for o in node.output[len(outs):] if o]
            used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
            if any(e in used for e in extra):
                raise UnsupportedOperatorError(node.op_type, name, opset, f"its optional outputs {extra}")

    outputs, sequences = {}, {}
    for vo in g.output:
        if vo.name not in env:
            raise ModelLoadError(f"graph output {vo.name!r} is not produced by any node")
        value = env[vo.name]
        if isinstance(value, list):  # a sequence: one output per element
            sequences[vo.name] = [f"{vo.name}[{i}]" for i in range(len(value))]
            outputs.update(zip(sequences[vo.name], value))
        else:
            outputs[vo.name] = value
    graph = b.build_graph(outputs)
    graph.sequence_inputs = {vi.name: [o.name for o in env[vi.name]] for vi in g.input
                             if isinstance(env[vi.name], list)}
    graph.sequence_outputs = sequences
    return graph, opset


def _host_dtype(value: np.ndarray) -> np.ndarray:
    if value.dtype == np.float64:
        return value.astype(np.float32)
    if value.dtype in (np.int8, np.uint8, np.int16, np.uint16, np.uint32, np.uint64):
        return value.astype(np.int64)
    return value


class _NodeInfo:
    def __init__(self, name: str, op_type: str, opset: int, outputs: int = 1):
        self.name, self.op_type, self.opset, self.outputs = name, op_type, opset, outputs

    def unsupported(self, detail: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(self.op_type, self.name, self.opset, detail)


def _static(b: GraphBuilder, node: _NodeInfo, operand: Operand | None, what: str) -> np.ndarray | None:
    if operand is None:
        return None
    return b.require_static(operand, f"{node.op_type}'s {what}", node.name)


def _text(attrs: dict, key: str, default: str) -> str:
    """A string attribute (the onnx package gives bytes) or its default."""
    value = attrs.get(key, default)
    return value.decode() if isinstance(value, bytes) else value


def _axis_pads(node: _NodeInfo, attrs: dict, sizes, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(begin, end) padding of each spatial axis from ONNX pads / auto_pad."""
    auto = _text(attrs, "auto_pad", "NOTSET")
    rank = len(sizes)
    if auto in ("NOTSET", ""):
        pads = list(attrs.get("pads", [0] * 2 * rank))
        if len(pads) != 2 * rank:
            raise node.unsupported(f"pads {pads} for {rank} spatial axes")
        return [(pads[k], pads[k + rank]) for k in range(rank)]
    if auto == "VALID":
        return [(0, 0)] * rank
    out = []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        out.append((small, large) if auto == "SAME_UPPER" else (large, small))
    return out


def _spatial_pads(node: _NodeInfo, attrs: dict, in_hw, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """WebNN-order padding (top, bottom, left, right) of a 2-D window."""
    (top, bottom), (left, right) = _axis_pads(node, attrs, in_hw, kernel, strides, dilations)
    return top, bottom, left, right


# -- converters -----------------------------------------------------------------------------------


def _window(node: _NodeInfo, x: Operand, attrs: dict, what: str, default_kernel) -> tuple[tuple, tuple, tuple]:
    """Kernel shape, strides and dilations of a 2-D convolution or pooling (4-D NCHW input only);
    ``default_kernel`` where the attribute may be left out (a convolution's filter shape)."""
    if x.rank != 4:
        raise node.unsupported(f"input of rank {x.rank}: only 2-D {what} (4-D NCHW tensors)")
    kernel = tuple(attrs["kernel_shape"] if default_kernel is None else attrs.get("kernel_shape", default_kernel))
    return kernel, tuple(attrs.get("strides", (1, 1))), tuple(attrs.get("dilations", (1, 1)))


def _lifts_1d(fn: Converter) -> Converter:
    """Run a 2-D convolution or pooling converter on a 3-D (N, C, L) input as (N, C, 1, L): 1-D ops
    become 2-D ones over a height of 1 (their weights too), and the result loses that axis again."""

    def wrapper(b, node, ins, attrs):
        x = ins[0]
        if x is None or x.rank != 3:
            return fn(b, node, ins, attrs)
        lifted = dict(attrs)
        for key in ("kernel_shape", "strides", "dilations", "output_padding", "output_shape"):
            if key in attrs:
                lifted[key] = [0 if key == "output_padding" else 1] + list(attrs[key])
        if "pads" in attrs:
            begin, end = attrs["pads"]
            lifted["pads"] = [0, begin, 0, end]
        ins = [b.unsqueeze(x, [2], name=node.name + "/2d")] + [
            b.unsqueeze(t, [2], name=f"{node.name}/w2d") if k == 1 and t is not None and t.rank == 3 else t
            for k, t in enumerate(ins[1:], start=1)]
        out = fn(b, node, ins, lifted)
        outs = out if isinstance(out, list) else [out]
        back = [b.squeeze(o, [2], name=f"{node.name}/1d{i}") for i, o in enumerate(outs)]
        return back if isinstance(out, list) else back[0]

    return wrapper


@converts("Conv")
@_lifts_1d
def _conv(b, node, ins, attrs):
    x, w = ins[0], ins[1]
    kernel, strides, dil = _window(node, x, attrs, "convolution", w.shape[2:])
    padding = _spatial_pads(node, attrs, x.shape[2:], kernel, strides, dil)
    bias = ins[2] if len(ins) > 2 else None
    if bias is not None and b.static_value(bias) is None:  # computed at run time: added after the conv
        y = b.conv2d(x, w, strides=strides, padding=padding, dilations=dil, groups=attrs.get("group", 1),
                     name=node.name + "/conv")
        return b.add(y, b.reshape(bias, [bias.size, 1, 1], name=node.name + "/bias"), name=node.name)
    return b.conv2d(x, w, bias=bias, strides=strides, padding=padding, dilations=dil, groups=attrs.get("group", 1),
                    name=node.name)


@converts("ConvTranspose")
@_lifts_1d
def _conv_transpose(b, node, ins, attrs):
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    if x.rank == 5:
        return _conv_transpose3d(b, node, x, w, bias, attrs)
    kernel, strides, dil = _window(node, x, attrs, "transposed convolution", w.shape[2:])
    out_pad = tuple(attrs.get("output_padding", (0, 0)))
    pads, target = _transpose_pads(attrs, x.shape[2:], kernel, strides, dil, out_pad)
    return b.conv_transpose2d(x, w, bias=bias, strides=strides, padding=pads[0] + pads[1], dilations=dil,
                              output_padding=out_pad, groups=attrs.get("group", 1), output_size=target,
                              name=node.name)


def _transpose_pads(attrs: dict, sizes, kernel, strides, dil, out_pad) -> tuple[list[tuple[int, int]], list | None]:
    """((begin, end) cropping of each spatial axis, the output_shape asked for or None) of ONNX's
    ConvTranspose: from output_shape or auto_pad (the padding that gives that size) or pads."""
    rank = len(sizes)
    auto = _text(attrs, "auto_pad", "NOTSET")
    target = attrs.get("output_shape")
    if target is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        target = [size * s for size, s in zip(sizes, strides)]
    if target is not None:
        target = list(target)[-rank:]
        pads = []
        for size, k, s, d, op, want in zip(sizes, kernel, strides, dil, out_pad, target):
            total = s * (size - 1) + op + (k - 1) * d + 1 - want
            pads.append((total // 2, total - total // 2) if auto == "SAME_UPPER" else (total - total // 2, total // 2))
        return pads, target
    if auto == "VALID":
        return [(0, 0)] * rank, None
    p = list(attrs.get("pads", [0] * 2 * rank))
    return [(p[k], p[k + rank]) for k in range(rank)], None


def _conv_transpose3d(b, node, x, w, bias, attrs):
    """3-D transposed convolution from 2-D ones: depth moves into the batch, each depth tap of the
    filter is one 2-D transposed convolution over (H, W), and its output rows land along depth at
    d * stride + tap * dilation - pad_front (stride - 1 zero rows between inputs), summed over taps."""
    n, c, depth, height, width = x.shape
    kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
    strides = tuple(attrs.get("strides", (1, 1, 1)))
    dil = tuple(attrs.get("dilations", (1, 1, 1)))
    out_pad = tuple(attrs.get("output_padding", (0, 0, 0)))
    groups = attrs.get("group", 1)
    pads, target = _transpose_pads(attrs, x.shape[2:], kernel, strides, dil, out_pad)
    (front, back), sd, dd = pads[0], strides[0], dil[0]
    out_d = target[0] if target is not None else sd * (depth - 1) + out_pad[0] + (kernel[0] - 1) * dd + 1 - front - back
    if out_d < 1:
        raise ValueError(f"output depth {out_d} is empty")
    planes = b.reshape(b.transpose(x, (0, 2, 1, 3, 4), name=node.name + "/d_first"), [n * depth, c, height, width],
                       name=node.name + "/planes")
    total = None
    for tap in range(kernel[0]):
        w_tap = b.reshape(b.slice(w, [tap], [tap + 1], axes=[2], name=f"{node.name}/w{tap}"),
                          [w.shape[0], w.shape[1], w.shape[3], w.shape[4]], name=f"{node.name}/w{tap}_2d")
        y = b.conv_transpose2d(planes, w_tap, strides=strides[1:], padding=pads[1] + pads[2], dilations=dil[1:],
                               output_padding=out_pad[1:], groups=groups,
                               output_size=target[1:] if target is not None else None, name=f"{node.name}/tap{tap}")
        m, oh, ow = y.shape[1:]
        rows = b.reshape(y, [n, depth, 1, m * oh * ow], name=f"{node.name}/tap{tap}_rows")
        if sd > 1:  # row j of the strided result holds input depth j / stride
            rows = b.pad(rows, [0, 0, 0, 0, 0, 0, sd - 1, 0], name=f"{node.name}/tap{tap}_stride")
        rows = b.reshape(rows, [n, depth * sd, m * oh * ow], name=f"{node.name}/tap{tap}_strided")
        shift = tap * dd - front  # output row i reads strided row i - shift
        grow_front, start = max(shift, 0), max(-shift, 0)
        grow_back = max(0, start + out_d - (depth * sd + grow_front))
        if grow_front or grow_back:
            rows = b.pad(rows, [0, grow_front, 0, 0, grow_back, 0], name=f"{node.name}/tap{tap}_shift")
        rows = b.slice(rows, [start], [start + out_d], axes=[1], name=f"{node.name}/tap{tap}_crop")
        total = rows if total is None else b.add(total, rows, name=f"{node.name}/sum{tap}")
    y = b.transpose(b.reshape(total, [n, out_d, m, oh, ow], name=node.name + "/volume"), (0, 2, 1, 3, 4),
                    name=node.name + ("/nobias" if bias is not None else ""))
    if bias is not None:
        y = b.add(y, b.reshape(bias, [1, m, 1, 1, 1], name=node.name + "/bias"), name=node.name)
    return y


@converts("Resize")
def _resize(b, node, ins, attrs):
    x = ins[0]
    if x.rank != 4:
        raise node.unsupported(f"input of rank {x.rank}: only 4-D NCHW tensors")
    mode = _text(attrs, "mode", "nearest")
    coords = _text(attrs, "coordinate_transformation_mode", "half_pixel")
    nearest = _text(attrs, "nearest_mode", "round_prefer_floor")
    if mode not in ("nearest", "linear", "cubic"):
        raise node.unsupported(f"mode {mode!r}")
    if mode == "nearest" and attrs.get("antialias", 0):
        raise node.unsupported("antialias=1 with nearest mode")
    policy = _text(attrs, "keep_aspect_ratio_policy", "stretch")
    if policy not in ("stretch", "not_larger", "not_smaller"):
        raise node.unsupported(f"keep_aspect_ratio_policy {policy!r}")
    axes = [int(a) % x.rank for a in attrs.get("axes", range(x.rank))]  # scales and sizes cover these
    scales_in = ins[1] if node.opset < 11 else (ins[2] if len(ins) > 2 else None)
    sizes_in = ins[3] if node.opset >= 11 and len(ins) > 3 else None
    given_sizes = _static(b, node, sizes_in, "sizes")
    given_scales = _static(b, node, scales_in, "scales")
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
    roi = None
    if coords == "tf_crop_and_resize":
        given = _static(b, node, ins[1] if node.opset >= 11 and len(ins) > 1 else None, "roi")
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
    n = node.name
    axes = [0] + list(range(2, x.rank))
    batch_mean = b.reduce(x, "mean", axes, keepdims=False, name=f"{n}/mean")
    centered = b.sub(x, b.reshape(batch_mean, [x.shape[1]] + [1] * (x.rank - 2), name=f"{n}/m"), name=f"{n}/c")
    batch_var = b.reduce(b.mul(centered, centered, name=f"{n}/sq"), "mean", axes, keepdims=False, name=f"{n}/var")
    y = b.batch_normalization(x, batch_mean, batch_var, scale=scale, bias=bias, epsilon=eps, name=n)
    momentum = attrs.get("momentum", 0.9)
    keep, take = (b.constant(np.array(k, np.float32).astype(x.dtype)) for k in (momentum, 1 - momentum))
    running = [b.add(b.mul(old, keep, name=f"{n}/{tag}k"), b.mul(new, take, name=f"{n}/{tag}t"),
                     name=f"{n}/running_{tag}") for tag, old, new in (("mean", mean, batch_mean),
                                                                      ("var", var, batch_var))]
    return [y] + running


_SIMPLE_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hard_swish",
                       "Abs": "abs", "Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
                       "Reciprocal": "reciprocal", "Floor": "floor", "Ceil": "ceil", "Round": "round", "Sin": "sin",
                       "Cos": "cos", "Erf": "erf", "Sign": "sign", "Softplus": "softplus", "Softsign": "softsign"}


@converts(*_SIMPLE_ACTIVATIONS)
def _activation(b, node, ins, attrs):
    return b.activation(ins[0], _SIMPLE_ACTIVATIONS[node.op_type], name=node.name)


@converts("Elu", "Selu", "Celu")
def _exponential_unit(b, node, ins, attrs):
    kind = node.op_type.lower()
    alpha, beta = ACTIVATION_DEFAULTS[kind]
    return b.activation(ins[0], kind, alpha=attrs.get("alpha", alpha), beta=attrs.get("gamma", beta), name=node.name)


@converts("Gelu")
def _gelu(b, node, ins, attrs):
    approximate = _text(attrs, "approximate", "none")
    if approximate not in ("none", "tanh"):
        raise node.unsupported(f"approximate={approximate!r}")
    return b.activation(ins[0], "gelu", alpha=1.0 if approximate == "tanh" else 0.0, name=node.name)


@converts("LeakyRelu")
def _leaky(b, node, ins, attrs):
    return b.leaky_relu(ins[0], alpha=attrs.get("alpha", 0.01), name=node.name)


@converts("HardSigmoid")
def _hard_sigmoid(b, node, ins, attrs):
    return b.hard_sigmoid(ins[0], alpha=attrs.get("alpha", 0.2), beta=attrs.get("beta", 0.5), name=node.name)


@converts("PRelu")
def _prelu(b, node, ins, attrs):
    return b.prelu(ins[0], ins[1], name=node.name)


@converts("Clip")
def _clip(b, node, ins, attrs):
    if node.opset < 11:
        lo, hi = attrs.get("min", -np.inf), attrs.get("max", np.inf)
    else:
        lo_v = _static(b, node, ins[1] if len(ins) > 1 else None, "min")
        hi_v = _static(b, node, ins[2] if len(ins) > 2 else None, "max")
        lo = -np.inf if lo_v is None else float(lo_v)
        hi = np.inf if hi_v is None else float(hi_v)
    return b.clamp(ins[0], min_value=lo, max_value=hi, name=node.name)


_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Max": "max", "Min": "min",
           "Sum": "add"}


@converts(*_BINARY)
def _binary(b, node, ins, attrs):
    kind = _BINARY[node.op_type]
    if len(ins) == 1:
        return b.identity(ins[0], name=node.name)
    acc = ins[0]
    for k, other in enumerate(ins[1:], start=1):
        last = k == len(ins) - 1
        acc = b._binary(kind, acc, other, node.name if last else f"{node.name}/{k}")
    return acc


_COMPARISONS = {"Equal": "equal", "Greater": "greater", "Less": "less", "GreaterOrEqual": "greater_equal",
                "LessOrEqual": "less_equal", "And": "and", "Or": "or", "Xor": "xor"}


@converts(*_COMPARISONS)
def _compare(b, node, ins, attrs):
    return b._binary(_COMPARISONS[node.op_type], ins[0], ins[1], node.name)


@converts("Not")
def _not(b, node, ins, attrs):
    return b.logical_not(ins[0], name=node.name)


@converts("Where")
def _where(b, node, ins, attrs):
    return b.where(ins[0], ins[1], ins[2], name=node.name)


@converts("ArgMax", "ArgMin")
def _arg(b, node, ins, attrs):
    kind = "max" if node.op_type == "ArgMax" else "min"
    return b._arg(kind, ins[0], attrs.get("axis", 0), bool(attrs.get("keepdims", 1)),
                  bool(attrs.get("select_last_index", 0)), node.name)


@converts("Size")
def _size(b, node, ins, attrs):
    return b.constant(np.array(ins[0].size, np.int64), name=node.name)


@converts("Range")
def _range(b, node, ins, attrs):
    # The output's length depends on the values: they must be known at compile time.
    start, limit, delta = (_static(b, node, t, what).reshape(()) for t, what in zip(ins, ("start", "limit", "delta")))
    if delta == 0:
        raise GraphError(f"Range node {node.name!r}: delta is 0")
    count = max(int(np.ceil((limit - start) / delta)), 0)
    return b.constant((start + np.arange(count) * delta).astype(ins[0].dtype), name=node.name)


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


@converts("LSTM", "GRU")
def _recurrent(b, node, ins, attrs):
    ins = ins + [None] * (8 - len(ins))
    x, w, r, bias, lens, h0 = ins[:6]
    layout = attrs.get("layout", 0)
    if layout:
        x = b.transpose(x, [1, 0, 2], name=node.name + "/x")
        h0 = b.transpose(h0, [1, 0, 2], name=node.name + "/h0") if h0 is not None else None
    if lens is not None:
        steps = _static(b, node, lens, "sequence_lens")
        if np.any(steps != x.shape[0]):
            raise node.unsupported(f"sequence_lens {steps.tolist()} shorter than the {x.shape[0]} steps")
    hidden = int(attrs.get("hidden_size", w.shape[1] // (4 if node.op_type == "LSTM" else 3)))
    gates = 4 if node.op_type == "LSTM" else 3
    wb = rb = None
    if bias is not None:  # ONNX's B is [directions, 2 * gates * hidden]: W's bias, then R's
        wb = b.slice(bias, [0], [gates * hidden], axes=[1], name=node.name + "/wb")
        rb = b.slice(bias, [gates * hidden], [2 * gates * hidden], axes=[1], name=node.name + "/rb")
    options = dict(hidden_size=hidden, bias=wb, recurrent_bias=rb, initial_hidden_state=h0,
                   direction={"forward": "forward", "reverse": "backward",
                              "bidirectional": "both"}[_text(attrs, "direction", "forward")],
                   activations=_rnn_activations(node, attrs), clip=attrs.get("clip"), name=node.name)
    if node.op_type == "LSTM":
        c0, peephole = ins[6], ins[7]
        if layout and c0 is not None:
            c0 = b.transpose(c0, [1, 0, 2], name=node.name + "/c0")
        outs = b.lstm(x, w, r, initial_cell_state=c0, peephole_weight=peephole,
                      couple_input_forget=bool(attrs.get("input_forget", 0)), **options)
    else:
        outs = b.gru(x, w, r, reset_after=bool(attrs.get("linear_before_reset", 0)), **options)
    if layout:  # [steps, directions, batch, hidden] -> [batch, steps, directions, hidden]; states batch-first
        outs = [b.transpose(outs[0], [2, 0, 1, 3], name=node.name + "/y")] + [
            b.transpose(s, [1, 0, 2], name=f"{node.name}/state{k}") for k, s in enumerate(outs[1:])]
    return outs


@converts("Mean")
def _mean(b, node, ins, attrs):
    total = _binary(b, _NodeInfo(node.name + "/sum", "Sum", node.opset), ins, attrs)
    return b.mul(total, b.constant(np.array(1.0 / len(ins), np.float32)), name=node.name)


@converts("Expand")
def _expand(b, node, ins, attrs):
    shape = [int(d) for d in _static(b, node, ins[1], "shape")]
    return _broadcast_to(b, ins[0], shape, node.name)


def _broadcast_to(b, x: Operand, shape, name: str) -> Operand:
    """``x`` broadcast with ``shape``, as x + 0 with zeros only as large as the broadcast dimensions
    (the element-wise kernel broadcasts)."""
    out = np.broadcast_shapes(x.shape, tuple(shape))
    lead = len(out) - x.rank
    zeros = [d if (k < lead or x.shape[k - lead] == 1) else 1 for k, d in enumerate(out)]
    return b.add(x, b.constant(np.zeros(zeros, x.dtype)), name=name)


@converts("Tile")
def _tile(b, node, ins, attrs):
    x = ins[0]
    repeats = [int(r) for r in _static(b, node, ins[1], "repeats")]
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
        crd = _text(attrs, "mode", "DCR") == "CRD"  # channel c * bs * bs + i * bs + j, else (i * bs + j) * C + c
        x = b.transpose(x, (0, 1, 3, 5, 2, 4) if crd else (0, 3, 5, 1, 2, 4), name=node.name + "/interleave")
        return b.reshape(x, (n, c * bs * bs, h // bs, w // bs), name=node.name)
    if _text(attrs, "mode", "DCR") == "DCR":  # channel (i * bs + j) * C' + c goes to pixel (h * bs + i, w * bs + j)
        x = b.reshape(x, (n, bs, bs, c // (bs * bs), h, w), name=node.name + "/split")
        x = b.transpose(x, (0, 3, 4, 1, 5, 2), name=node.name + "/interleave")
    else:  # CRD: channel c * bs * bs + i * bs + j
        x = b.reshape(x, (n, c // (bs * bs), bs, bs, h, w), name=node.name + "/split")
        x = b.transpose(x, (0, 1, 4, 2, 5, 3), name=node.name + "/interleave")
    return b.reshape(x, (n, c // (bs * bs), h * bs, w * bs), name=node.name)


def _normalize(b, name: str, x, axes: list[int], epsilon: float):
    """(x - mean) / sqrt(var + epsilon) over ``axes``, and the mean and 1 / sqrt(var + epsilon) (kept dims)."""
    mean = b.reduce(x, "mean", axes, keepdims=True, name=name + "/mean")
    centred = b.sub(x, mean, name=name + "/centred")
    var = b.reduce(b.mul(centred, centred, name=name + "/square"), "mean", axes, keepdims=True, name=name + "/var")
    std = b.activation(b.add(var, b.constant(np.array(epsilon, np.float32)), name=name + "/var_eps"), "sqrt",
                       name=name + "/std")
    inv = b.activation(std, "reciprocal", name=name + "/inv_std")
    return b.mul(centred, inv, name=name + "/normalized"), mean, inv


@converts("InstanceNormalization")
def _instance_norm(b, node, ins, attrs):
    x, scale, bias = ins[:3]
    c = x.shape[1]
    y, _, _ = _normalize(b, node.name, x, list(range(2, x.rank)), attrs.get("epsilon", 1e-5))
    per_channel = (c,) + (1,) * (x.rank - 2)
    y = b.mul(y, b.reshape(scale, per_channel, name=node.name + "/scale"), name=node.name + "/scaled")
    return b.add(y, b.reshape(bias, per_channel, name=node.name + "/bias"), name=node.name)


@converts("LayerNormalization")
def _layer_norm(b, node, ins, attrs):
    x, scale = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    axis = attrs.get("axis", -1) % max(x.rank, 1)
    y, mean, inv = _normalize(b, node.name, x, list(range(axis, x.rank)), attrs.get("epsilon", 1e-5))
    y = b.mul(y, scale, name=node.name + "/scaled" if bias is not None else node.name)
    if bias is not None:
        y = b.add(y, bias, name=node.name)
    return [y, mean, inv]


@converts("MatMul")
def _matmul(b, node, ins, attrs):
    x, y = ins[0], ins[1]
    if x.rank > 2 and y.rank > 2 and x.shape[:-2] != y.shape[:-2]:
        # Batch dimensions broadcast on both sides: expand each to the common batch shape first.
        batch = tuple(np.broadcast_shapes(x.shape[:-2], y.shape[:-2]))
        x, y = (t if t.shape[:-2] == batch else _broadcast_to(b, t, batch + (1, 1), f"{node.name}/expand{k}")
                for k, t in enumerate((x, y)))
    return b.matmul(x, y, name=node.name)


@converts("Gemm")
def _gemm(b, node, ins, attrs):
    return b.gemm(ins[0], ins[1], ins[2] if len(ins) > 2 else None, alpha=attrs.get("alpha", 1.0),
                  beta=attrs.get("beta", 1.0), a_transpose=bool(attrs.get("transA", 0)),
                  b_transpose=bool(attrs.get("transB", 0)), name=node.name)


def _pool_args(node, x, attrs):
    kernel, strides, dil = _window(node, x, attrs, "pooling", None)
    return kernel, strides, dil, _spatial_pads(node, attrs, x.shape[2:], kernel, strides, dil)


def _pool3d(b, node, x, attrs, mode: str):
    """3-D pooling as two 2-D poolings: over (H, W) with depth folded into the channels, then over D
    with H and W flattened. Max and average pooling are separable, average pooling too whatever
    its padding rule: a window's element count is the product of its counts along each axis."""
    n, c, depth, height, width = x.shape
    kernel = tuple(attrs["kernel_shape"])
    strides = tuple(attrs.get("strides", (1, 1, 1)))
    dil = tuple(attrs.get("dilations", (1, 1, 1)))
    pads = _axis_pads(node, attrs, x.shape[2:], kernel, strides, dil)
    pool = b.max_pool2d if mode == "max" else b.average_pool2d
    extra = {} if mode == "max" else {"count_include_pad": bool(attrs.get("count_include_pad", 0))}
    ceil = bool(attrs.get("ceil_mode", 0))
    hw = pool(b.reshape(x, [n, c * depth, height, width], name=node.name + "/hw_in"), window=kernel[1:],
              strides=strides[1:], padding=pads[1] + pads[2], dilations=dil[1:], ceil_mode=ceil,
              name=node.name + "/hw", **extra)
    oh, ow = hw.shape[2:]
    d = pool(b.reshape(hw, [n, c, depth, oh * ow], name=node.name + "/d_in"), window=(kernel[0], 1),
             strides=(strides[0], 1), padding=pads[0] + (0, 0), dilations=(dil[0], 1), ceil_mode=ceil,
             name=node.name + "/d", **extra)
    return b.reshape(d, [n, c, d.shape[2], oh, ow], name=node.name)


@converts("MaxPool")
@_lifts_1d
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
@_lifts_1d
def _avgpool(b, node, ins, attrs):
    if ins[0].rank == 5:
        return _pool3d(b, node, ins[0], attrs, "avg")
    kernel, strides, dil, padding = _pool_args(node, ins[0], attrs)
    return b.average_pool2d(ins[0], window=kernel, strides=strides, padding=padding, dilations=dil,
                            ceil_mode=bool(attrs.get("ceil_mode", 0)),
                            count_include_pad=bool(attrs.get("count_include_pad", 0)), name=node.name)


@converts("GlobalAveragePool", "GlobalMaxPool")
@_lifts_1d
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


@converts("Split")
def _split(b, node, ins, attrs):
    x = ins[0]
    axis = attrs.get("axis", 0) % max(x.rank, 1)
    size = x.shape[axis]
    sizes = attrs.get("split")  # before opset 13 an attribute, then an optional input
    if len(ins) > 1 and ins[1] is not None:
        sizes = _static(b, node, ins[1], "split")
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
        return b.reshape(x, [int(d) for d in _static(b, node, ins[1], "shape")], name=node.name)
    return b.reshape(x, ins[1], name=node.name)


@converts("Flatten")
def _flatten(b, node, ins, attrs):
    return b.flatten(ins[0], axis=attrs.get("axis", 1), name=node.name)


def _axes(b, node, ins, attrs, index=1):
    if node.opset >= 13 and len(ins) > index and ins[index] is not None:
        return [int(a) for a in _static(b, node, ins[index], "axes")]
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


@converts("Identity", "Dropout")
def _identity(b, node, ins, attrs):
    if node.op_type != "Dropout":
        if isinstance(ins[0], list):  # a sequence: one output, the list of its elements' copies
            return [[b.identity(t, name=f"{node.name}[{i}]") for i, t in enumerate(ins[0])]]
        return b.identity(ins[0], name=node.name)
    x = ins[0]
    training = len(ins) > 2 and ins[2] is not None and bool(_static(b, node, ins[2], "training_mode").reshape(-1)[0])
    ratio = _static(b, node, ins[1], "ratio").reshape(-1)[0] if training and len(ins) > 1 and ins[1] is not None \
        else np.float32(0.5)
    if not training or ratio == 0:
        # Inference (or a ratio of 0): the input unchanged, and a mask that keeps everything.
        return [b.identity(x, name=node.name), b.constant(np.ones(x.shape, bool), name=node.name + "/mask")]
    if not 0 <= ratio < 1:
        raise ValueError(f"ratio {ratio} outside [0, 1)")
    if "seed" not in attrs:
        raise node.unsupported("training_mode=True without a seed: the mask is drawn once, when the model "
                               "compiles, so it needs the seed attribute to be reproducible")
    # Training with a seed: the mask of ONNX's reference implementation (numpy's RandomState(seed)
    # drawing uniform [0, 1) numbers, keeping those >= ratio), drawn once at compile time: every run
    # of the session drops the same elements, as every run of the reference with that seed does.
    keep = np.random.RandomState(attrs["seed"] % 2**32).uniform(0.0, 1.0, x.shape) >= ratio
    scale = np.float32(1) / (np.float32(1) - np.float32(ratio))
    y = b.mul(x, b.constant(keep.astype(np.float32) * scale, name=node.name + "/scaled_mask"), name=node.name)
    return [y, b.constant(keep, name=node.name + "/mask")]


@converts("Constant")
def _constant(b, node, ins, attrs):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = attrs[key]
            if key == "value":
                value = numpy_helper.to_array(value)
            elif key in ("value_int", "value_ints"):
                value = np.array(value, np.int64)
            else:
                value = np.array(value, np.float32)
            return b.constant(_host_dtype(np.asarray(value)), name=node.name)
    raise node.unsupported(f"Constant with attributes {sorted(attrs)}")


@converts("ConstantOfShape")
def _constant_of_shape(b, node, ins, attrs):
    value = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
    return b.constant_of_shape(ins[0], _host_dtype(value.reshape(-1)[:1]).reshape(()), name=node.name)


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
        axes = [int(a) for a in _static(b, node, ins[1], "axes").reshape(-1)]
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return b.identity(ins[0], name=node.name)
        axes = None
    return b.reduce(ins[0], _REDUCTIONS[node.op_type], axes, keepdims=bool(attrs.get("keepdims", 1)),
                    name=node.name)


@converts("LRN")
def _lrn(b, node, ins, attrs):
    return b.lrn(ins[0], size=attrs["size"], alpha=attrs.get("alpha", 1e-4), beta=attrs.get("beta", 0.75),
                 bias=attrs.get("bias", 1.0), name=node.name)


@converts("Pad")
def _pad(b, node, ins, attrs):
    x = ins[0]
    mode = _text(attrs, "mode", "constant")
    if node.opset < 11:
        pads, value = list(attrs["pads"]), attrs.get("value", 0.0)
    else:
        pads = [int(p) for p in _static(b, node, ins[1], "pads")]
        cv = _static(b, node, ins[2] if len(ins) > 2 else None, "constant_value")
        value = 0.0 if cv is None or cv.size == 0 else float(cv.reshape(-1)[0])
        axes = _static(b, node, ins[3] if len(ins) > 3 else None, "axes")
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
        starts = _static(b, node, ins[1], "starts")
        ends = _static(b, node, ins[2], "ends")
        axes = _static(b, node, ins[3] if len(ins) > 3 else None, "axes")
        steps = _static(b, node, ins[4] if len(ins) > 4 else None, "steps")
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


SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(CONVERTERS))
