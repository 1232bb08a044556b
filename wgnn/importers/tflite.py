"""TFLite -> OpBuilder: subgraph 0 of a ``.tflite`` flatbuffer, parsed with the ``tflite`` package.

TFLite tensors are channels-last (NHWC). The IR is logical NCHW with channels-last *storage* for
image tensors (``wgnn.layout``), so a 4-D activation is imported as ``transpose(x, (0, 3, 1, 2))``,
a view that changes no bytes: the graph input's NHWC buffer is exactly what the convolutions read.
Each TFLite tensor is kept in whichever of the two logical orders its producer made, and turned
into the other (again a free view) only where a consumer needs it; the outputs come back NHWC, as
TFLite returns them. So the only copies are those TFLite itself implies (depth-to-space, say).

Constant-only ops — DEQUANTIZE of float16 or int8 weights, DENSIFY of sparse weights — are folded
here, at load time. Every operator's fused activation becomes the builder's activation, which the
passes fuse into the epilogue again.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..builder import OpBuilder
from ..errors import GraphError, ModelLoadError, UnsupportedOperatorError
from ..graph import Graph, Operand
from ..ops.activation import Activation, make

try:
    import tflite
except ImportError as exc:  # pragma: no cover
    raise ImportError("reading TFLite models needs the tflite package: pip install tflite") from exc

TFL_IDENTIFIER = b"TFL3"
TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)
NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)  # NHWC axis k is NCHW axis NHWC_TO_NCHW_AXIS[k]

OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
NUMPY_TYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "INT64": np.int64,
               "UINT8": np.uint8, "INT8": np.int8, "INT16": np.int16, "BOOL": np.bool_, "FLOAT64": np.float64}
QUANTIZED_TYPES = ("INT8", "UINT8", "INT16")
# The operators that read or write quantized activations (each tested against LiteRT): they run as
# dequantize -> the float operator -> quantize, and convolutions then on integers
# (``passes.integer_conv``).
QUANTIZED_OPS = frozenset({"QUANTIZE", "DEQUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD",
                           "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "CONCATENATION", "MEAN",
                           # data movement (one scale in and out)
                           "TRANSPOSE", "PAD", "STRIDED_SLICE", "SLICE", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH",
                           "SQUEEZE", "EXPAND_DIMS", "GATHER", "MAXIMUM", "MINIMUM",
                           # arithmetic and activations, requantized
                           "SUB", "MUL", "RELU", "RELU6", "LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU", "SOFTMAX",
                           "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "REDUCE_MAX"})
# TFLite's ActivationFunctionType -> the activation wgnn fuses (SIGN_BIT, 5, is not supported)
FUSED = {0: None, 1: make("relu"), 2: make("clip", -1.0, 1.0), 3: make("relu6"), 4: make("tanh")}


def is_tflite(data: bytes) -> bool:
    """TFLite flatbuffers carry the file identifier ``TFL3`` at byte 4."""
    return len(data) >= 8 and data[4:8] == TFL_IDENTIFIER


@dataclass
class Value:
    """One TFLite tensor as imported: its operand, and whether that operand is the NCHW view."""

    operand: Operand
    nchw: bool = False


class TFLiteImporter:
    """Walks subgraph 0's operators in order, calling a converter per operator code (and an IF's
    branches' where it meets one)."""

    def __init__(self, data: bytes, source: str):
        self.data, self.source = data, source
        try:
            self.model = tflite.Model.GetRootAsModel(data, 0)
            self.graph = self.model.Subgraphs(0)
            self.tensors = [self.graph.Tensors(i) for i in range(self.graph.TensorsLength())]
        except Exception as exc:
            raise ModelLoadError(f"{source} is not a valid TFLite model (flatbuffer parse failed: "
                                 f"{type(exc).__name__})") from None
        if self.model.SubgraphsLength() < 1 or self.graph is None:
            raise ModelLoadError(f"{source} holds no subgraph")
        self.b = OpBuilder()
        self.values: dict[int, Value] = {}
        self.constants: dict[int, np.ndarray] = {}
        self.quantized: dict[int, tuple[Operand, bool]] = {}  # quantized results: (integers, NCHW)
        self.prefix = ""  # of the node names of a subgraph's operators (an IF's branches)
        # inputs given sizes the model fixes otherwise (LiteRT's resize_tensor_input): the stored
        # shapes of computed tensors are then placeholders, as where the model leaves them dynamic
        self.resized = False

    # -- tensors --------------------------------------------------------------------------------

    def tensor_name(self, index: int) -> str:
        return self.tensors[index].Name().decode("utf-8", "replace")

    def tensor_type(self, index: int) -> str:
        return TYPE_NAMES.get(self.tensors[index].Type(), str(self.tensors[index].Type()))

    def tensor_signature(self, index: int) -> tuple[int, ...]:
        """The tensor's shape with -1 where the model leaves a dimension dynamic (shape_signature);
        every dimension of a computed tensor where the inputs are resized beyond what the model
        fixes (``resized``: its stored shapes then hold for the stored inputs only)."""
        t = self.tensors[index]
        if self.resized and not self._stored(t):
            return (-1,) * len(self.tensor_shape(index))
        if t.ShapeSignatureLength():
            return tuple(int(d) for d in t.ShapeSignatureAsNumpy())
        return self.tensor_shape(index)

    def _stored(self, t) -> bool:
        """Whether tensor ``t`` holds data in the file (a constant)."""
        buf = self.model.Buffers(t.Buffer())
        return buf is not None and (buf.Offset() > 1 or buf.DataLength() > 0)

    def tensor_shape(self, index: int) -> tuple[int, ...]:
        shape = self.tensors[index].ShapeAsNumpy()
        return tuple(int(d) for d in shape) if not isinstance(shape, int) else ()

    def buffer_data(self, index: int) -> np.ndarray | None:
        """The tensor's stored bytes as an array of its type and shape, or None if it has none."""
        t = self.tensors[index]
        buf = self.model.Buffers(t.Buffer())
        raw: bytes | None = None
        if buf is not None and buf.Offset() > 1:  # large models keep data after the flatbuffer
            raw = self.data[buf.Offset():buf.Offset() + buf.Size()]
        elif buf is not None and buf.DataLength() > 0:
            raw = buf.DataAsNumpy().tobytes()
        if raw is None:
            return None
        kind = self.tensor_type(index)
        if kind not in NUMPY_TYPES:
            raise ModelLoadError(f"tensor {self.tensor_name(index)!r} has TFLite type {kind}, which wgnn cannot read")
        array = np.frombuffer(raw, NUMPY_TYPES[kind])
        if t.Sparsity() is not None:
            return array  # the stored values of a sparse tensor; DENSIFY gives them a shape
        shape = self.tensor_shape(index)
        if array.size != int(np.prod(shape, dtype=np.int64)):
            raise ModelLoadError(f"tensor {self.tensor_name(index)!r}: buffer holds {array.size} values, "
                                 f"shape {shape} needs {int(np.prod(shape))}")
        return array.reshape(shape)

    def quantization(self, index: int) -> Quant | None:
        """The tensor's quantization (per tensor, or per ``axis``) where it is an integer tensor
        that has one."""
        if self.tensor_type(index) not in QUANTIZED_TYPES + ("INT32",):
            return None
        q = self.tensors[index].Quantization()
        if q is None or not q.ScaleLength():
            return None
        scale = q.ScaleAsNumpy().astype(np.float32)
        zero = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scale.size, np.int64)
        return Quant(scale, zero, int(q.QuantizedDimension()) if scale.size > 1 else None)

    def const(self, index: int) -> np.ndarray | None:
        """A constant tensor's value; a quantized one (weights) dequantized to float32."""
        if index not in self.constants:
            data = self.buffer_data(index)
            if data is None:
                return None
            quant = self.quantization(index)
            self.constants[index] = data if quant is None else quant.dequantize(data)
        return self.constants[index]

    def quantized_const(self, index: int, transform: Callable[[np.ndarray], np.ndarray], axis: int = 0) -> Operand:
        """A constant as the IR holds it after ``transform`` (a reordering of its axes); a quantized one
        as a dequantize of its integers, which ``passes.integer_conv`` reads (per-channel scales
        along ``axis`` of the transformed array)."""
        quant = self.quantization(index)
        if quant is None:
            return self.b.constant(transform(_float32(self.const(index))), name=self.tensor_name(index))
        q = transform(self.buffer_data(index))
        name = self.tensor_name(index)
        scale, zero = quant.scale, quant.zero.astype(q.dtype)
        if quant.axis is None:
            scale, zero = scale.reshape(()), zero.reshape(())
        return self.b.dequantize_linear(self.b.constant(q, name=name + "/q"), self.b.constant(scale),
                                        self.b.constant(zero), axis=axis, name=name)

    def const_ints(self, index: int, what: str, node: str) -> list[int]:
        """A constant integer tensor (axes, sizes, paddings) as a flat list."""
        return [int(v) for v in np.asarray(self.require_const(index, what, node)).reshape(-1)]

    def require_const(self, index: int, what: str, node: str) -> np.ndarray:
        value = self.const(index)
        if value is None:
            raise GraphError(f"node {node!r}: {what} (tensor {self.tensor_name(index)!r}) must be a constant")
        return value

    def operand(self, index: int) -> Operand:
        """The tensor in TFLite's own (NHWC) order."""
        value = self.values.get(index)
        if value is None:
            array = self.const(index)
            if array is None:
                raise GraphError(f"tensor {self.tensor_name(index)!r} is read before any operator writes it")
            return self.b.constant(_float32(array), name=self.tensor_name(index))
        if value.nchw:
            nhwc = self.b.transpose(value.operand, TO_NHWC, name=self.tensor_name(index) + "/nhwc")
            self.values[index] = Value(nhwc)
            return nhwc
        return value.operand

    def nchw(self, index: int) -> Operand:
        """A 4-D tensor in the IR's NCHW order (free: a transposed view, or transposed weights)."""
        value = self.values.get(index)
        if value is not None and value.nchw:
            return value.operand
        if value is None and self.const(index) is not None:
            return self.b.constant(_float32(self.const(index)).transpose(TO_NCHW), name=self.tensor_name(index))
        return self.b.transpose(self.operand(index), TO_NCHW, name=self.tensor_name(index) + "/nchw")

    def like(self, index: int, rank: int, nchw: bool) -> Operand:
        """Input ``index`` broadcast-aligned to an output of ``rank`` held in NCHW (``nchw``) or TFLite order."""
        if not nchw:
            return self.operand(index)
        if self.tensor_shape(index) and len(self.tensor_shape(index)) == rank:
            return self.nchw(index)
        array = self.const(index)
        if array is not None:  # numpy-broadcast the constant to rank 4 in NHWC, then transpose
            array = _float32(array).reshape((1,) * (rank - array.ndim) + array.shape)
            return self.b.constant(array.transpose(TO_NCHW), name=self.tensor_name(index))
        x = self.operand(index)
        x = self.b.reshape(x, (1,) * (rank - x.rank) + x.shape, name=self.tensor_name(index) + "/rank4")
        return self.b.transpose(x, TO_NCHW, name=self.tensor_name(index) + "/nchw")

    def set(self, index: int, operand: Operand, nchw: bool = False) -> None:
        expected = self.tensor_shape(index)
        got = tuple(operand.shape[a] for a in TO_NHWC) if nchw else operand.shape
        if self.dynamic:  # dimensions the model leaves dynamic take the size the inputs give them
            expected = tuple(g if s == -1 else e for e, s, g in zip(expected, self.tensor_signature(index), got)) \
                if len(got) == len(expected) else expected
        if expected and got != expected:
            raise GraphError(f"tensor {self.tensor_name(index)!r}: the model says shape {expected}, the import "
                             f"computed {got}")
        self.values[index] = Value(operand, nchw)

    def shape_of(self, index: int, size: int) -> tuple[int, ...]:
        """Tensor ``index``'s shape as computed from ``size`` elements: the stored one, unless the
        model leaves one of its dimensions dynamic (the stored size is then a conversion's
        placeholder): that one takes what the others leave of ``size``."""
        signature = list(self.tensor_signature(index)) if self.dynamic else list(self.tensor_shape(index))
        if signature.count(-1) == 1 and not _fill_dynamic(signature, size):
            raise GraphError(f"tensor {self.tensor_name(index)!r}: {size} elements do not make shape "
                             f"{tuple(signature)}")
        if any(d < 0 for d in signature) or (not signature and size != 1):
            raise GraphError(f"tensor {self.tensor_name(index)!r}: shape {tuple(signature)} is not static")
        return tuple(signature)

    def is_4d_activation(self, index: int) -> bool:
        return len(self.tensor_shape(index)) == 4 and self.const(index) is None

    # -- the walk -------------------------------------------------------------------------------

    def run(self, input_shapes: dict[str, tuple[int, ...]] | None) -> Graph:
        """The graph; a malformed file (offsets, lengths or indices out of range, missing tables) is a
        ``ModelLoadError`` saying what was being read."""
        self.where = "the model's header"
        try:
            return self._run(input_shapes)
        except (GraphError, UnsupportedOperatorError, ModelLoadError):
            raise
        except (struct.error, TypeError, AttributeError, IndexError, ValueError, KeyError, OverflowError,
                UnicodeDecodeError, MemoryError) as exc:
            raise ModelLoadError(f"{self.source} is not a valid TFLite model: {type(exc).__name__} ({exc}) while "
                                 f"reading {self.where}") from None

    def _run(self, input_shapes: dict[str, tuple[int, ...]] | None) -> Graph:
        g = self.graph
        symbolic, resized = {}, False
        for k in range(g.InputsLength()):
            signature = self.tensor_signature(g.Inputs(k))
            name = self.tensor_name(g.Inputs(k))
            pinned = (input_shapes or {}).get(name)
            if name not in (input_shapes or {}) and -1 in signature:
                symbolic[name] = tuple(None if d == -1 else d for d in signature)
            resized = resized or (pinned is not None and beyond_signature(pinned, signature))
        self.dynamic, self.resized = bool(input_shapes) or bool(symbolic), resized
        for k in range(g.InputsLength()):
            self.where = f"input {k}"
            index = g.Inputs(k)
            name = self.tensor_name(index)
            dtype = self.tensor_type(index).lower()
            quant = self.quantization(index)
            if dtype not in ("float32", "float16") and not (quant is not None and dtype in ("int8", "uint8")):
                raise ModelLoadError(f"input {name!r} has TFLite type {dtype.upper()}; wgnn takes float inputs "
                                     "and quantized int8 or uint8 ones")
            shape = tuple((input_shapes or {}).get(name, self.tensor_shape(index)))
            x = self.b.input(name, shape, dtype)
            if quant is not None:
                x = self.b.dequantize_linear(x, *self._per_tensor(quant, dtype, name), name=name + "/dq")
            self.values[index] = Value(x)
        self._operators(g, 0)
        outputs: dict[str, Operand] = {}
        self.where = "the outputs"
        for k in range(g.OutputsLength()):
            index = g.Outputs(k)
            if index in self.quantized:  # a quantized output comes back as its integers
                q, nchw = self.quantized[index]
                outputs[self.tensor_name(index)] = (self.b.transpose(q, TO_NHWC, name=self.tensor_name(index) + "/nhwc")
                                                    if nchw else q)
            else:
                outputs[self.tensor_name(index)] = self.operand(index)
        graph = self.b.build_graph(outputs)
        graph.symbolic_dims = symbolic
        return graph

    def _operators(self, g, subgraph: int) -> None:
        """Convert subgraph ``subgraph``'s (``g``'s) operators in order."""
        for k in range(g.OperatorsLength()):
            self.where = f"operator {k}" + (f" of subgraph {subgraph}" if subgraph else "")
            op = g.Operators(k)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            kind = OP_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
            if kind == "CUSTOM":
                kind = code.CustomCode().decode("utf-8", "replace")
            outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
            name = self.prefix + (self.tensor_name(outs[0]) if outs else f"{kind}_{k}")
            convert = CONVERTERS.get(kind)
            if convert is None:
                raise UnsupportedOperatorError(kind, name, detail=f"operator {k} of subgraph {subgraph}",
                                               format="TFLite")
            ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            quantized = [i for i in ins + outs if i >= 0 and self.tensor_type(i) in QUANTIZED_TYPES
                         and self.const(i) is None]
            if quantized and kind not in QUANTIZED_OPS:
                raise UnsupportedOperatorError(kind, name, detail=f"on quantized ({self.tensor_type(quantized[0])}) "
                                               f"tensors; quantized models may use {sorted(QUANTIZED_OPS)}",
                                               format="TFLite")
            try:
                convert(self, Op(op, kind, name, ins, outs))
            except (GraphError, UnsupportedOperatorError):
                raise
            except (ValueError, IndexError) as exc:
                raise GraphError(f"TFLite {kind} node {name!r}: {exc}") from None
            for index in outs:  # a quantized result: quantized here, dequantized for its readers
                quant = self.quantization(index)
                if quant is not None and index in self.values:
                    value, name = self.values[index], self.tensor_name(index)
                    scale, zero = self._per_tensor(quant, self.tensor_type(index).lower(), name)
                    q = self.b.quantize_linear(value.operand, scale, zero, name=name + "/q")
                    self.quantized[index] = (q, value.nchw)
                    self.values[index] = Value(self.b.dequantize_linear(q, scale, zero, name=name + "/dq"), value.nchw)

    def subgraph(self, index: int, args: list[Operand], prefix: str) -> list[Operand]:
        """The outputs of subgraph ``index`` (an IF's branch) computed from ``args`` (its inputs, in
        TFLite's order), its nodes named after ``prefix``."""
        if not 0 < index < self.model.SubgraphsLength():
            raise GraphError(f"{prefix}: subgraph {index} does not exist")
        saved = (self.graph, self.tensors, self.values, self.constants, self.quantized, self.prefix)
        try:
            g = self.graph = self.model.Subgraphs(index)
            self.tensors = [g.Tensors(i) for i in range(g.TensorsLength())]
            self.values, self.constants, self.quantized, self.prefix = {}, {}, {}, prefix + "/"
            if g.InputsLength() != len(args):
                raise GraphError(f"{prefix}: subgraph {index} takes {g.InputsLength()} inputs, given {len(args)}")
            for k, arg in enumerate(args):
                self.values[g.Inputs(k)] = Value(arg)
            self._operators(g, index)
            return [self.operand(g.Outputs(k)) for k in range(g.OutputsLength())]
        finally:
            self.graph, self.tensors, self.values, self.constants, self.quantized, self.prefix = saved

    def _per_tensor(self, quant: Quant, dtype: str, name: str) -> tuple[Operand, Operand]:
        """An activation's scale and zero point (of ``dtype``) as scalar constants."""
        if quant.axis is not None:
            raise GraphError(f"tensor {name!r}: activations quantized per axis are not supported (per tensor only)")
        return self.b.constant(quant.scale.reshape(())), self.b.constant(quant.zero.reshape(()).astype(dtype))


@dataclass
class Quant:
    """A TFLite tensor's quantization: real = (q - zero) * scale, per tensor or along ``axis``."""

    scale: np.ndarray
    zero: np.ndarray
    axis: int | None

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        shape = [1] * q.ndim
        if self.axis is not None:
            shape[self.axis] = -1
        return ((q.astype(np.float32) - self.zero.reshape(shape).astype(np.float32))
                * self.scale.reshape(shape)).astype(np.float32)


@dataclass
class Op:
    """One operator: its flatbuffer table, resolved kind, name (its first output's) and tensor indices."""

    table: object
    kind: str
    name: str
    inputs: list[int]
    outputs: list[int]

    def options(self, cls: type):
        """The builtin options table as ``cls`` (``tflite.Conv2DOptions``, ...), or None."""
        table = self.table.BuiltinOptions()
        if table is None:
            return None
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def custom_words(self) -> np.ndarray:
        if not self.table.CustomOptionsLength():
            return np.zeros(0, np.int32)
        raw = self.table.CustomOptionsAsNumpy().tobytes()
        return np.frombuffer(raw[:len(raw) // 4 * 4], np.int32)

    def input(self, k: int) -> int | None:
        return self.inputs[k] if k < len(self.inputs) and self.inputs[k] >= 0 else None


def _float32(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float32) if array.dtype in (np.float16, np.float64) else array


Converter = Callable[[TFLiteImporter, Op], None]
CONVERTERS: dict[str, Converter] = {}


def converts(*kinds: str) -> Callable[[Converter], Converter]:
    def wrap(fn: Converter) -> Converter:
        for kind in kinds:
            CONVERTERS[kind] = fn
        return fn

    return wrap


def _fused(fused: int, name: str) -> Activation | None:
    """The activation of an operator's ``fused_activation_function`` option."""
    if fused not in FUSED:
        raise UnsupportedOperatorError("fused activation", name, detail=f"activation type {fused}", format="TFLite")
    return FUSED[fused]


def _activate(imp: TFLiteImporter, x: Operand, fused: int, name: str) -> Operand:
    """``x`` followed by the fused activation, as its own node (the passes fuse it back)."""
    act = _fused(fused, name)
    if act is None:
        return x
    return imp.b.activation(x, act.kind, alpha=act.alpha, beta=act.beta, name=name + "/act")


def _same_padding(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding of one axis: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _padding(mode: int, hw: tuple[int, int], kernel: tuple[int, int], strides, dilations) -> tuple[int, ...]:
    """(top, bottom, left, right) for TFLite's SAME (0) or VALID (1)."""
    if mode == tflite.Padding.VALID:
        return (0, 0, 0, 0)
    (t, b), (lf, r) = (_same_padding(hw[k], kernel[k], strides[k], dilations[k]) for k in range(2))
    return (t, b, lf, r)


def _transposed_padding(mode: int, out_hw, kernel, strides) -> tuple[int, int, int, int]:
    """Top/left crop of a transposed conv whose output is ``out_hw``: SAME pads as the forward conv
    from the output back to the input would; VALID crops nothing."""
    if mode != tflite.Padding.SAME:
        return (0, 0, 0, 0)
    t, b = _same_padding(out_hw[0], kernel[0], strides[0], 1)
    lf, r = _same_padding(out_hw[1], kernel[1], strides[1], 1)
    return (t, b, lf, r)


# -- convolutions ------------------------------------------------------------------------------


@converts("CONV_2D")
def _conv2d(imp: TFLiteImporter, op: Op) -> None:
    o = op.options(tflite.Conv2DOptions)
    x = imp.nchw(op.inputs[0])
    w = imp.require_const(op.inputs[1], "the filter", op.name)  # [O, KH, KW, I]
    strides, dil = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    c = x.shape[1]
    if c % w.shape[3]:
        raise GraphError(f"TFLite CONV_2D node {op.name!r}: input has {c} channels, filter {w.shape} "
                         "expects a divisor of that")
    bias = op.input(2)
    pads = _padding(o.Padding(), x.shape[2:], w.shape[1:3], strides, dil)
    y = imp.b.conv2d(x, imp.quantized_const(op.inputs[1], lambda v: v.transpose(0, 3, 1, 2)),
                     bias=None if bias is None else imp.quantized_const(bias, lambda v: v),
                     strides=strides, padding=pads, dilations=dil, groups=c // w.shape[3],
                     activation=_fused(o.FusedActivationFunction(), op.name), name=op.name)
    imp.set(op.outputs[0], y, nchw=True)


@converts("DEPTHWISE_CONV_2D")
def _depthwise(imp: TFLiteImporter, op: Op) -> None:
    o = op.options(tflite.DepthwiseConv2DOptions)
    x = imp.nchw(op.inputs[0])
    w = imp.require_const(op.inputs[1], "the filter", op.name)  # [1, KH, KW, C * multiplier]
    strides, dil = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    c = x.shape[1]
    bias = op.input(2)
    pads = _padding(o.Padding(), x.shape[2:], w.shape[1:3], strides, dil)
    y = imp.b.conv2d(x, imp.quantized_const(op.inputs[1], lambda v: v[0].transpose(2, 0, 1)[:, None]),
                     bias=None if bias is None else imp.quantized_const(bias, lambda v: v),
                     strides=strides, padding=pads, dilations=dil, groups=c,
                     activation=_fused(o.FusedActivationFunction(), op.name), name=op.name)
    imp.set(op.outputs[0], y, nchw=True)


def _conv_transpose(imp: TFLiteImporter, op: Op, x_index: int, w_index: int, bias_index: int | None,
                    padding: int, strides: tuple[int, int], fused: int) -> None:
    x = imp.nchw(x_index)
    w = imp.require_const(w_index, "the filter", op.name)  # [O, KH, KW, I]
    out_shape = imp.tensor_shape(op.outputs[0])
    if len(out_shape) != 4:
        raise GraphError(f"TFLite {op.kind} node {op.name!r}: output shape {out_shape} is not 4-D")
    out_hw = out_shape[1:3]
    pads = _transposed_padding(padding, out_hw, w.shape[1:3], strides)
    y = imp.b.conv_transpose2d(x, imp.b.constant(_float32(w).transpose(3, 0, 1, 2)),
                               bias=None if bias_index is None else imp.b.constant(_float32(imp.const(bias_index))),
                               strides=strides, padding=pads, output_size=out_hw,
                               activation=_fused(fused, op.name), name=op.name)
    imp.set(op.outputs[0], y, nchw=True)


@converts("TRANSPOSE_CONV")
def _transpose_conv(imp: TFLiteImporter, op: Op) -> None:
    o = op.options(tflite.TransposeConvOptions)
    fused = o.FusedActivationFunction() if hasattr(o, "FusedActivationFunction") else 0
    _conv_transpose(imp, op, op.inputs[2], op.inputs[1], op.input(3), o.Padding(), (o.StrideH(), o.StrideW()),
                    fused)


@converts("Convolution2DTransposeBias")
def _mediapipe_transpose_conv_bias(imp: TFLiteImporter, op: Op) -> None:
    """MediaPipe's custom op: inputs (x, filter, bias); options are three int32s — padding
    (1 SAME, 2 VALID, as TfLitePadding), stride W, stride H."""
    words = op.custom_words()
    if words.size < 3 or words[0] not in (1, 2):
        raise GraphError(f"Convolution2DTransposeBias node {op.name!r}: unreadable options {words.tolist()}")
    padding = tflite.Padding.SAME if words[0] == 1 else tflite.Padding.VALID
    _conv_transpose(imp, op, op.inputs[0], op.inputs[1], op.input(2), padding, (int(words[2]), int(words[1])), 0)


@converts("FULLY_CONNECTED")
def _fully_connected(imp: TFLiteImporter, op: Op) -> None:
    o = op.options(tflite.FullyConnectedOptions)
    if o is not None and o.WeightsFormat() != 0:
        raise UnsupportedOperatorError("FULLY_CONNECTED", op.name, detail="shuffled weights", format="TFLite")
    w = imp.const(op.inputs[1])
    x = imp.operand(op.inputs[0])
    k = imp.tensor_shape(op.inputs[1])[1]
    x2 = imp.b.reshape(x, (-1, k), name=op.name + "/rows")
    wt = imp.b.constant(_float32(w).T) if w is not None else imp.b.transpose(imp.operand(op.inputs[1]), (1, 0))
    bias = op.input(2)
    y = imp.b.gemm(x2, wt, None if bias is None else imp.operand(bias), name=op.name)
    y = _activate(imp, y, o.FusedActivationFunction() if o is not None else 0, op.name)
    out_shape = imp.shape_of(op.outputs[0], y.size) if imp.tensor_shape(op.outputs[0]) else ()
    if out_shape and out_shape != y.shape:
        y = imp.b.reshape(y, out_shape, name=op.name + "/shape")
    imp.set(op.outputs[0], y)


# -- element-wise ------------------------------------------------------------------------------

BINARY = {"ADD": ("add", tflite.AddOptions), "SUB": ("sub", tflite.SubOptions), "MUL": ("mul", tflite.MulOptions),
          "DIV": ("div", tflite.DivOptions), "MAXIMUM": ("max", None), "MINIMUM": ("min", None),
          "POW": ("pow", None), "EQUAL": ("equal", None), "GREATER": ("greater", None),
          "GREATER_EQUAL": ("greater_or_equal", None), "LESS": ("lesser", None),
          "LESS_EQUAL": ("lesser_or_equal", None), "LOGICAL_AND": ("logical_and", None),
          "LOGICAL_OR": ("logical_or", None)}


def _pair(imp: TFLiteImporter, op: Op) -> tuple[Operand, Operand, bool]:
    """The two inputs of an element-wise op aligned to its output (NCHW views where a 4-D activation is)."""
    rank = len(imp.tensor_shape(op.outputs[0]))
    nchw = rank == 4 and any(imp.is_4d_activation(i) for i in op.inputs[:2])
    a, b = (imp.like(i, rank, nchw) for i in op.inputs[:2])
    return a, b, nchw


@converts(*BINARY)
def _binary(imp: TFLiteImporter, op: Op) -> None:
    method, options = BINARY[op.kind]
    a, b, nchw = _pair(imp, op)
    y = getattr(imp.b, method)(a, b, name=op.name)
    o = op.options(options) if options is not None else None
    fused = o.FusedActivationFunction() if o is not None and hasattr(o, "FusedActivationFunction") else 0
    imp.set(op.outputs[0], _activate(imp, y, fused, op.name), nchw=nchw)


def _unary(fn: Callable[[OpBuilder, Operand, str], Operand]) -> Converter:
    def convert(imp: TFLiteImporter, op: Op) -> None:
        value = imp.values.get(op.inputs[0])
        nchw = value is not None and value.nchw
        x = value.operand if value is not None else imp.operand(op.inputs[0])
        imp.set(op.outputs[0], fn(imp.b, x, op.name), nchw=nchw)

    return convert


converts("RELU")(_unary(lambda b, x, n: b.relu(x, name=n)))
converts("RELU6")(_unary(lambda b, x, n: b.activation(x, "relu6", name=n)))
converts("RELU_N1_TO_1")(_unary(lambda b, x, n: b.clamp(x, min_value=-1.0, max_value=1.0, name=n)))
converts("LOGISTIC")(_unary(lambda b, x, n: b.sigmoid(x, name=n)))
converts("TANH")(_unary(lambda b, x, n: b.tanh(x, name=n)))
converts("HARD_SWISH")(_unary(lambda b, x, n: b.hard_swish(x, name=n)))
converts("ELU")(_unary(lambda b, x, n: b.activation(x, "elu", name=n)))
for _op, _kind in (("EXP", "exp"), ("LOG", "log"), ("SQRT", "sqrt"), ("ABS", "abs"), ("NEG", "neg"), ("SIN", "sin"),
                   ("COS", "cos"), ("FLOOR", "floor"), ("CEIL", "ceil"), ("ROUND", "round"), ("SIGN", "sign")):
    converts(_op)(_unary(lambda b, x, n, kind=_kind: b.activation(x, kind, name=n)))
converts("RSQRT")(_unary(lambda b, x, n: b.activation(b.activation(x, "sqrt", name=n + "/sqrt"), "reciprocal",
                                                      name=n)))


@converts("GELU")
def _gelu(imp: TFLiteImporter, op: Op) -> None:
    options = op.options(tflite.GeluOptions)
    approximate = bool(options.Approximate()) if options is not None else False
    _unary(lambda b, x, n: b.activation(x, "gelu", alpha=1.0 if approximate else 0.0, name=n))(imp, op)


@converts("LOG_SOFTMAX")
def _log_softmax(imp: TFLiteImporter, op: Op) -> None:
    imp.set(op.outputs[0], imp.b.log_softmax(imp.operand(op.inputs[0]), axis=-1, name=op.name))


@converts("LEAKY_RELU")
def _leaky_relu(imp: TFLiteImporter, op: Op) -> None:
    alpha = op.options(tflite.LeakyReluOptions).Alpha()
    _unary(lambda b, x, n: b.leaky_relu(x, alpha=alpha, name=n))(imp, op)


@converts("PRELU")
def _prelu(imp: TFLiteImporter, op: Op) -> None:
    rank = len(imp.tensor_shape(op.outputs[0]))
    nchw = rank == 4 and imp.is_4d_activation(op.inputs[0])
    x = imp.nchw(op.inputs[0]) if nchw else imp.operand(op.inputs[0])
    imp.set(op.outputs[0], imp.b.prelu(x, imp.like(op.inputs[1], rank, nchw), name=op.name), nchw=nchw)


@converts("SOFTMAX")
def _softmax(imp: TFLiteImporter, op: Op) -> None:
    beta = op.options(tflite.SoftmaxOptions).Beta()
    x = imp.operand(op.inputs[0])
    if beta != 1.0:
        x = imp.b.mul(x, imp.b.constant(np.float32(beta)), name=op.name + "/beta")
    imp.set(op.outputs[0], imp.b.softmax(x, axis=-1, name=op.name))


# -- pooling and reductions --------------------------------------------------------------------


def _pool_window(imp: TFLiteImporter, op: Op):
    """(options, NCHW input, window, strides, padding) of a pooling operator."""
    o = op.options(tflite.Pool2DOptions)
    x = imp.nchw(op.inputs[0])
    window, strides = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
    return o, x, window, strides, _padding(o.Padding(), x.shape[2:], window, strides, (1, 1))


@converts("MAX_POOL_2D", "AVERAGE_POOL_2D")
def _pool(imp: TFLiteImporter, op: Op) -> None:
    o, x, window, strides, pads = _pool_window(imp, op)
    if op.kind == "MAX_POOL_2D":
        y = imp.b.max_pool2d(x, window=window, strides=strides, padding=pads, name=op.name)
    else:  # TFLite averages over the valid pixels only
        y = imp.b.average_pool2d(x, window=window, strides=strides, padding=pads, count_include_pad=False,
                                 name=op.name)
    imp.set(op.outputs[0], _activate(imp, y, o.FusedActivationFunction(), op.name), nchw=True)


REDUCERS = {"MEAN": "mean", "SUM": "sum", "REDUCE_MAX": "max", "REDUCE_MIN": "min", "REDUCE_PROD": "prod"}


@converts(*REDUCERS)
def _reduce(imp: TFLiteImporter, op: Op) -> None:
    axes = imp.const_ints(op.inputs[1], "the axes", op.name)
    keep = op.options(tflite.ReducerOptions).KeepDims()
    rank = len(imp.tensor_shape(op.inputs[0]))
    axes = [a % rank for a in axes]
    if imp.is_4d_activation(op.inputs[0]):
        x = imp.nchw(op.inputs[0])
        y = imp.b.reduce(x, REDUCERS[op.kind], [NHWC_TO_NCHW_AXIS[a] for a in axes], keepdims=True, name=op.name)
        if keep:
            imp.set(op.outputs[0], y, nchw=True)
            return
        y = imp.b.transpose(y, TO_NHWC, name=op.name + "/nhwc")
    else:
        y = imp.b.reduce(imp.operand(op.inputs[0]), REDUCERS[op.kind], axes, keepdims=True, name=op.name)
    imp.set(op.outputs[0], imp.b.reshape(y, tuple(d for k, d in enumerate(y.shape) if k not in axes),
                                         name=op.name + "/squeeze") if not keep else y)


# -- shapes and data movement ------------------------------------------------------------------


@converts("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def _reshape(imp: TFLiteImporter, op: Op) -> None:
    x = imp.operand(op.inputs[0])
    imp.set(op.outputs[0], imp.b.reshape(x, _reshaped(imp, op, x), name=op.name))


def beyond_signature(shape, signature) -> bool:
    """Whether ``shape`` changes a dimension that ``signature`` (a tensor's shape signature: -1
    where the model leaves a dimension dynamic) fixes, or its rank."""
    return len(shape) != len(signature) or any(s != -1 and d != s for d, s in zip(shape, signature))


def _fill_dynamic(dims: list[int], size: int) -> bool:
    """Give the one -1 of ``dims`` what its other dimensions leave of ``size`` elements; False (and
    ``dims`` as they were) where they leave no whole number."""
    rest = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
    if rest <= 0 or size % rest:
        return False
    dims[dims.index(-1)] = size // rest
    return True


def _reshaped(imp: TFLiteImporter, op: Op, x: Operand) -> tuple[int, ...]:
    """The output shape of a RESHAPE, SQUEEZE or EXPAND_DIMS of ``x``: the stored one, unless the
    model leaves dimensions dynamic (then the stored sizes are a conversion's placeholders): a
    squeeze or an added axis follows ``x``'s shape, a reshape's one dynamic dimension takes what
    the others leave of ``x``'s elements (``shape_of``), or its shape input says it."""
    if op.kind == "SQUEEZE" and imp.dynamic:
        o = op.options(tflite.SqueezeOptions)
        dims = {int(d) % x.rank for d in o.SqueezeDimsAsNumpy()} if o is not None and o.SqueezeDimsLength() \
            else {k for k, d in enumerate(x.shape) if d == 1}
        return tuple(d for k, d in enumerate(x.shape) if k not in dims)
    if op.kind == "EXPAND_DIMS" and imp.dynamic:
        axis = imp.const_ints(op.inputs[1], "the axis", op.name)[0]
        axis = axis + x.rank + 1 if axis < 0 else axis
        return x.shape[:axis] + (1,) + x.shape[axis:]
    if (imp.dynamic and op.kind == "RESHAPE" and list(imp.tensor_signature(op.outputs[0])).count(-1) > 1
            and (said := _new_shape(imp, op)) is not None):  # (the shape it says it computes)
        shape = said
        if shape.count(-1) == 1:
            _fill_dynamic(shape, x.size)
        if all(d >= 0 for d in shape) and int(np.prod(shape, dtype=np.int64)) == x.size:
            return tuple(shape)
    try:
        return imp.shape_of(op.outputs[0], x.size)
    except GraphError as exc:
        raise GraphError(f"TFLite {op.kind} node {op.name!r}: cannot reshape {x.shape}: {exc}") from None


def _new_shape(imp: TFLiteImporter, op: Op) -> list[int] | None:
    """The shape a RESHAPE says it computes: its shape input where that is constant, else its
    options' ``new_shape``; None where it says none."""
    if op.input(1) is not None and imp.const(op.inputs[1]) is not None:
        return imp.const_ints(op.inputs[1], "the shape", op.name)
    o = op.options(tflite.ReshapeOptions)
    if o is not None and o.NewShapeLength():
        return [int(d) for d in o.NewShapeAsNumpy()]
    return None


@converts("CONCATENATION")
def _concat(imp: TFLiteImporter, op: Op) -> None:
    o = op.options(tflite.ConcatenationOptions)
    rank = len(imp.tensor_shape(op.outputs[0]))
    axis = o.Axis() % rank
    nchw = rank == 4 and any(imp.is_4d_activation(i) for i in op.inputs)
    parts = [imp.like(i, rank, nchw) for i in op.inputs]
    y = imp.b.concat(parts, NHWC_TO_NCHW_AXIS[axis] if nchw else axis, name=op.name)
    imp.set(op.outputs[0], _activate(imp, y, o.FusedActivationFunction(), op.name), nchw=nchw)


@converts("PAD", "PADV2")
def _pad(imp: TFLiteImporter, op: Op) -> None:
    pads = np.reshape(imp.const_ints(op.inputs[1], "the paddings", op.name), (-1, 2))
    value = 0.0
    if op.kind == "PADV2" and op.input(2) is not None:
        value = float(np.asarray(imp.require_const(op.inputs[2], "the pad value", op.name)).reshape(-1)[0])
    if imp.is_4d_activation(op.inputs[0]):
        pads = pads[list(TO_NCHW)]
        y = imp.b.pad(imp.nchw(op.inputs[0]), list(pads[:, 0]) + list(pads[:, 1]), value=value, name=op.name)
        imp.set(op.outputs[0], y, nchw=True)
        return
    y = imp.b.pad(imp.operand(op.inputs[0]), list(pads[:, 0]) + list(pads[:, 1]), value=value, name=op.name)
    imp.set(op.outputs[0], y)


@converts("TRANSPOSE")
def _transpose(imp: TFLiteImporter, op: Op) -> None:
    perm = imp.const_ints(op.inputs[1], "the permutation", op.name)
    imp.set(op.outputs[0], imp.b.transpose(imp.operand(op.inputs[0]), perm, name=op.name))


@converts("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR")
def _resize(imp: TFLiteImporter, op: Op) -> None:
    bilinear = op.kind == "RESIZE_BILINEAR"
    o = op.options(tflite.ResizeBilinearOptions if bilinear else tflite.ResizeNearestNeighborOptions)
    size = imp.const_ints(op.inputs[1], "the size", op.name)
    align, half = bool(o.AlignCorners()), bool(o.HalfPixelCenters())
    if align:
        coords = "align_corners"
    elif half:
        coords = "half_pixel" if bilinear else "tf_half_pixel_for_nn"
    else:
        coords = "asymmetric"
    # TFLite rounds nearest positions half away from zero with align_corners, else floors them.
    nearest = "round_prefer_ceil" if align else "floor"
    y = imp.b.resize(imp.nchw(op.inputs[0]), size, mode="linear" if bilinear else "nearest", coordinate_mode=coords,
                     nearest_mode=nearest, float32_positions=True, name=op.name)
    imp.set(op.outputs[0], y, nchw=True)


@converts("DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
def _depth_space(imp: TFLiteImporter, op: Op) -> None:
    to_space = op.kind == "DEPTH_TO_SPACE"
    bs = (op.options(tflite.DepthToSpaceOptions if to_space else tflite.SpaceToDepthOptions)).BlockSize()
    x = imp.operand(op.inputs[0])
    n, h, w, c = x.shape
    if to_space:  # channel (i * bs + j) * C' + c goes to pixel (h * bs + i, w * bs + j)
        x = imp.b.reshape(x, (n, h, w, bs, bs, c // (bs * bs)), name=op.name + "/split")
    else:
        x = imp.b.reshape(x, (n, h // bs, bs, w // bs, bs, c), name=op.name + "/split")
    x = imp.b.transpose(x, (0, 1, 3, 2, 4, 5), name=op.name + "/interleave")
    shape = (n, h * bs, w * bs, c // (bs * bs)) if to_space else (n, h // bs, w // bs, c * bs * bs)
    imp.set(op.outputs[0], imp.b.reshape(x, shape, name=op.name))


@converts("STRIDED_SLICE")
def _strided_slice(imp: TFLiteImporter, op: Op) -> None:
    o = op.options(tflite.StridedSliceOptions)
    if o.EllipsisMask() or o.NewAxisMask():
        raise UnsupportedOperatorError("STRIDED_SLICE", op.name, detail="ellipsis_mask and new_axis_mask",
                                       format="TFLite")
    x = imp.operand(op.inputs[0])
    begin, end, strides = (np.asarray(imp.require_const(op.inputs[k], what, op.name)).astype(np.int64).reshape(-1)
                           for k, what in ((1, "begin"), (2, "end"), (3, "strides")))
    offset = hasattr(o, "Offset") and o.Offset()
    starts, ends, steps = [], [], []
    big = np.iinfo(np.int64).max // 2
    for axis in range(len(begin)):
        step = int(strides[axis])
        s, e = int(begin[axis]), int(end[axis]) + (int(begin[axis]) if offset else 0)
        if o.BeginMask() >> axis & 1:
            s = 0 if step > 0 else -1
        if o.EndMask() >> axis & 1:
            e = big if step > 0 else -big
        if o.ShrinkAxisMask() >> axis & 1:
            e, step = s + 1 if s != -1 else big, 1
        starts.append(s)
        ends.append(e)
        steps.append(step)
    y = imp.b.slice(x, starts, ends, axes=list(range(len(begin))), steps=steps, name=op.name)
    shape = tuple(d for k, d in enumerate(y.shape) if not (k < len(begin) and o.ShrinkAxisMask() >> k & 1))
    if y.shape != shape:
        y = imp.b.reshape(y, shape, name=op.name + "/shrink")
    imp.set(op.outputs[0], y)


# -- more element-wise, comparison and logic ops --------------------------------------------------

@converts("NOT_EQUAL", "SQUARED_DIFFERENCE", "FLOOR_DIV", "FLOOR_MOD")
def _elementwise(imp: TFLiteImporter, op: Op) -> None:
    a, b, nchw = _pair(imp, op)
    bb = imp.b
    if op.kind == "NOT_EQUAL":
        y = bb.logical_not(bb.equal(a, b, name=op.name + "/equal"), name=op.name)
    elif op.kind == "SQUARED_DIFFERENCE":
        d = bb.sub(a, b, name=op.name + "/diff")
        y = bb.mul(d, d, name=op.name)
    elif "float" in a.dtype:  # floor(a / b); a - floor(a / b) * b
        q = bb.activation(bb.div(a, b, name=op.name + "/div"), "floor", name=op.name + ("" if op.kind == "FLOOR_DIV"
                                                                                       else "/floor"))
        y = q if op.kind == "FLOOR_DIV" else bb.sub(a, bb.mul(q, b, name=op.name + "/back"), name=op.name)
    else:  # integers: Python's floor division and modulo
        r = bb._binary("mod", a, b, op.name + ("/mod" if op.kind == "FLOOR_DIV" else ""))
        y = r if op.kind == "FLOOR_MOD" else bb.div(bb.sub(a, r, name=op.name + "/exact"), b, name=op.name)
    imp.set(op.outputs[0], y, nchw=nchw)


converts("LOGICAL_NOT")(_unary(lambda b, x, n: b.logical_not(x, name=n)))
converts("SQUARE")(_unary(lambda b, x, n: b.mul(x, x, name=n)))
converts("RELU_0_TO_1")(_unary(lambda b, x, n: b.clamp(x, min_value=0.0, max_value=1.0, name=n)))
converts("ZEROS_LIKE")(_unary(lambda b, x, n: b.mul(x, b.constant(np.zeros((), x.dtype)), name=n)))


@converts("ADD_N")
def _add_n(imp: TFLiteImporter, op: Op) -> None:
    total = imp.operand(op.inputs[0])
    for k, index in enumerate(op.inputs[1:]):
        total = imp.b.add(total, imp.operand(index), name=op.name if k == len(op.inputs) - 2 else f"{op.name}/{k}")
    imp.set(op.outputs[0], total)


@converts("SELECT", "SELECT_V2")
def _select(imp: TFLiteImporter, op: Op) -> None:
    cond, a, b = (imp.operand(i) for i in op.inputs[:3])
    if op.kind == "SELECT" and cond.rank == 1 and a.rank > 1:  # SELECT: a vector condition picks rows
        cond = imp.b.reshape(cond, cond.shape + (1,) * (a.rank - 1), name=op.name + "/rows")
    imp.set(op.outputs[0], imp.b.where(cond, a, b, name=op.name))


@converts("IF")
def _if(imp: TFLiteImporter, op: Op) -> None:
    """Both branches (subgraphs) computed from the IF's inputs, each output taken from the branch
    the condition picks: the condition is computed on the GPU (a wake word model's score against its
    threshold, say), and a branch has no effects but its outputs. A condition known at load time
    imports the branch it picks alone."""
    o = op.options(tflite.IfOptions)
    if o is None:
        raise GraphError(f"TFLite IF node {op.name!r}: no IfOptions (which subgraphs are its branches)")
    args = [imp.operand(i) for i in op.inputs[1:]]
    known = imp.const(op.inputs[0])
    if known is not None:
        index = o.ThenSubgraphIndex() if bool(np.asarray(known).reshape(-1)[0]) else o.ElseSubgraphIndex()
        for out, y in zip(op.outputs, imp.subgraph(index, args, op.name)):
            imp.set(out, y)
        return
    cond = imp.operand(op.inputs[0])
    if cond.size != 1:
        raise GraphError(f"TFLite IF node {op.name!r}: the condition has {cond.size} elements, not one")
    then = imp.subgraph(o.ThenSubgraphIndex(), args, op.name + "/then")
    other = imp.subgraph(o.ElseSubgraphIndex(), args, op.name + "/else")
    if len(then) != len(op.outputs) or len(other) != len(op.outputs):
        raise GraphError(f"TFLite IF node {op.name!r}: its branches give {len(then)} and {len(other)} outputs, "
                         f"it has {len(op.outputs)}")
    for k, (out, a, b) in enumerate(zip(op.outputs, then, other)):
        if a.shape != b.shape or a.dtype != b.dtype:
            raise GraphError(f"TFLite IF node {op.name!r}: output {k} is {a.dtype} {a.shape} in one branch and "
                             f"{b.dtype} {b.shape} in the other")
        imp.set(out, imp.b.where(imp.b.reshape(cond, (), name=f"{op.name}/cond{k}"), a, b, name=f"{op.name}/{k}"))


@converts("CAST")
def _cast(imp: TFLiteImporter, op: Op) -> None:
    to = imp.tensor_type(op.outputs[0]).lower()
    imp.set(op.outputs[0], imp.b.cast(imp.operand(op.inputs[0]), to, name=op.name))


# -- more data movement ----------------------------------------------------------------------------


def _axis_input(imp: TFLiteImporter, op: Op, k: int, rank: int) -> int:
    return imp.const_ints(op.inputs[k], "the axis", op.name)[0] % rank


@converts("GATHER")
def _gather(imp: TFLiteImporter, op: Op) -> None:
    o = op.options(tflite.GatherOptions)
    if o is not None and o.BatchDims():
        raise UnsupportedOperatorError("GATHER", op.name, detail="batch_dims", format="TFLite")
    x = imp.operand(op.inputs[0])
    axis = (o.Axis() if o is not None else 0) % x.rank
    imp.set(op.outputs[0], imp.b.gather(x, imp.operand(op.inputs[1]), axis=axis, name=op.name))


@converts("GATHER_ND")
def _gather_nd(imp: TFLiteImporter, op: Op) -> None:
    imp.set(op.outputs[0], imp.b.gather_nd(imp.operand(op.inputs[0]), imp.operand(op.inputs[1]), name=op.name))


@converts("SLICE")
def _slice(imp: TFLiteImporter, op: Op) -> None:
    x = imp.operand(op.inputs[0])
    begin = imp.const_ints(op.inputs[1], "the begin", op.name)
    size = imp.const_ints(op.inputs[2], "the size", op.name)
    ends = [d if n < 0 else b + n for b, n, d in zip(begin, size, x.shape)]
    imp.set(op.outputs[0], imp.b.slice(x, begin, ends, axes=list(range(len(begin))), name=op.name))


def _split_at(imp: TFLiteImporter, op: Op, x: Operand, axis: int, sizes: list[int]) -> None:
    start = 0
    for index, size in zip(op.outputs, sizes):
        imp.set(index, imp.b.slice(x, [start], [start + size], axes=[axis], name=imp.tensor_name(index)))
        start += size


@converts("SPLIT")
def _split(imp: TFLiteImporter, op: Op) -> None:
    x = imp.operand(op.inputs[1])
    axis = _axis_input(imp, op, 0, x.rank)
    parts = len(op.outputs)
    if x.shape[axis] % parts:
        raise GraphError(f"TFLite SPLIT node {op.name!r}: axis {axis} of size {x.shape[axis]} does not split in "
                         f"{parts}")
    _split_at(imp, op, x, axis, [x.shape[axis] // parts] * parts)


@converts("SPLIT_V")
def _split_v(imp: TFLiteImporter, op: Op) -> None:
    x = imp.operand(op.inputs[0])
    sizes = imp.const_ints(op.inputs[1], "the sizes", op.name)
    axis = _axis_input(imp, op, 2, x.rank)
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    _split_at(imp, op, x, axis, sizes)


@converts("PACK")
def _pack(imp: TFLiteImporter, op: Op) -> None:
    axis = op.options(tflite.PackOptions).Axis()
    parts = [imp.operand(i) for i in op.inputs]
    axis %= parts[0].rank + 1
    rows = [imp.b.reshape(p, p.shape[:axis] + (1,) + p.shape[axis:], name=f"{op.name}/{k}")
            for k, p in enumerate(parts)]
    imp.set(op.outputs[0], imp.b.concat(rows, axis, name=op.name) if len(rows) > 1 else rows[0])


@converts("UNPACK")
def _unpack(imp: TFLiteImporter, op: Op) -> None:
    x = imp.operand(op.inputs[0])
    axis = op.options(tflite.UnpackOptions).Axis() % x.rank
    for k, index in enumerate(op.outputs):
        part = imp.b.slice(x, [k], [k + 1], axes=[axis], name=imp.tensor_name(index) + "/slice")
        imp.set(index, imp.b.reshape(part, x.shape[:axis] + x.shape[axis + 1:], name=imp.tensor_name(index)))


@converts("TILE")
def _tile(imp: TFLiteImporter, op: Op) -> None:
    x = imp.operand(op.inputs[0])
    reps = imp.const_ints(op.inputs[1], "the multiples", op.name)
    for axis, n in enumerate(reps):
        if n != 1:
            x = imp.b.concat([x] * n, axis, name=f"{op.name}/{axis}")
    imp.set(op.outputs[0], x)


@converts("REVERSE_V2")
def _reverse(imp: TFLiteImporter, op: Op) -> None:
    x = imp.operand(op.inputs[0])
    axes = [a % x.rank for a in imp.const_ints(op.inputs[1], "the axes", op.name)]
    big = np.iinfo(np.int64).max // 2
    imp.set(op.outputs[0], imp.b.slice(x, [-1] * len(axes), [-big] * len(axes), axes=axes, steps=[-1] * len(axes),
                                       name=op.name))


@converts("MIRROR_PAD")
def _mirror_pad(imp: TFLiteImporter, op: Op) -> None:
    if op.options(tflite.MirrorPadOptions).Mode() != 0:
        raise UnsupportedOperatorError("MIRROR_PAD", op.name, detail="SYMMETRIC mode (REFLECT runs)", format="TFLite")
    pads = np.reshape(imp.const_ints(op.inputs[1], "the paddings", op.name), (-1, 2))
    imp.set(op.outputs[0], imp.b.pad(imp.operand(op.inputs[0]), list(pads[:, 0]) + list(pads[:, 1]), mode="reflect",
                                     name=op.name))


@converts("ARG_MAX", "ARG_MIN")
def _arg(imp: TFLiteImporter, op: Op) -> None:
    x = imp.operand(op.inputs[0])
    fn = imp.b.arg_max if op.kind == "ARG_MAX" else imp.b.arg_min
    y = fn(x, _axis_input(imp, op, 1, x.rank), keepdims=False, name=op.name + "/index")
    imp.set(op.outputs[0], imp.b.cast(y, imp.tensor_type(op.outputs[0]).lower(), name=op.name))


@converts("TOPK_V2")
def _top_k(imp: TFLiteImporter, op: Op) -> None:
    k = imp.const_ints(op.inputs[1], "k", op.name)[0]
    values, indices = imp.b.top_k(imp.operand(op.inputs[0]), k, axis=-1, name=op.name)
    imp.set(op.outputs[0], values)
    if len(op.outputs) > 1:
        imp.set(op.outputs[1], imp.b.cast(indices, imp.tensor_type(op.outputs[1]).lower(), name=op.name + "/i"))


@converts("CUMSUM")
def _cumsum(imp: TFLiteImporter, op: Op) -> None:
    o = op.options(tflite.CumsumOptions)
    x = imp.operand(op.inputs[0])
    imp.set(op.outputs[0], imp.b.cumulative_sum(x, _axis_input(imp, op, 1, x.rank), exclusive=bool(o.Exclusive()),
                                                reversed=bool(o.Reverse()), name=op.name))


@converts("BROADCAST_TO")
def _broadcast_to(imp: TFLiteImporter, op: Op) -> None:
    x = imp.operand(op.inputs[0])
    shape = imp.tensor_shape(op.outputs[0])
    zeros = np.zeros([d if (k < len(shape) - x.rank or x.shape[k - len(shape) + x.rank] == 1) else 1
                      for k, d in enumerate(shape)], x.dtype)
    imp.set(op.outputs[0], imp.b.add(x, imp.b.constant(zeros), name=op.name))


@converts("L2_NORMALIZATION")
def _l2_normalization(imp: TFLiteImporter, op: Op) -> None:
    """x / max(||x||, 1e-6) along the last axis, as TFLite's reference kernel."""
    x = imp.operand(op.inputs[0])
    norm = imp.b.activation(imp.b.reduce(x, "sum_square", [x.rank - 1], keepdims=True, name=op.name + "/ss"), "sqrt",
                            name=op.name + "/norm")
    y = imp.b.div(x, imp.b.max(norm, imp.b.constant(np.float32(1e-6)), name=op.name + "/eps"), name=op.name)
    o = op.options(tflite.L2NormOptions)
    imp.set(op.outputs[0], _activate(imp, y, o.FusedActivationFunction() if o is not None else 0, op.name))


@converts("LOCAL_RESPONSE_NORMALIZATION")
def _lrn(imp: TFLiteImporter, op: Op) -> None:
    """TFLite's radius r window over the channels: ONNX's size 2r + 1, its alpha scaled by the size."""
    o = op.options(tflite.LocalResponseNormalizationOptions)
    size = 2 * o.Radius() + 1
    y = imp.b.lrn(imp.nchw(op.inputs[0]), size=size, alpha=o.Alpha() * size, beta=o.Beta(), bias=o.Bias(),
                  name=op.name)
    imp.set(op.outputs[0], y, nchw=True)


@converts("L2_POOL_2D")
def _l2_pool(imp: TFLiteImporter, op: Op) -> None:
    o, x, window, strides, pads = _pool_window(imp, op)
    mean = imp.b.average_pool2d(imp.b.mul(x, x, name=op.name + "/sq"), window=window, strides=strides, padding=pads,
                                count_include_pad=False, name=op.name + "/mean")
    y = imp.b.activation(mean, "sqrt", name=op.name)
    imp.set(op.outputs[0], _activate(imp, y, o.FusedActivationFunction(), op.name), nchw=True)


@converts("BATCH_MATMUL")
def _batch_matmul(imp: TFLiteImporter, op: Op) -> None:
    o = op.options(tflite.BatchMatMulOptions)
    a, b = imp.operand(op.inputs[0]), imp.operand(op.inputs[1])

    def swap_last(t, name):
        perm = list(range(t.rank))
        perm[-2:] = perm[-1], perm[-2]
        return imp.b.transpose(t, perm, name=name)

    if o is not None and o.AdjX():
        a = swap_last(a, op.name + "/adj_x")
    if o is not None and o.AdjY():
        b = swap_last(b, op.name + "/adj_y")
    imp.set(op.outputs[0], imp.b.matmul(a, b, name=op.name))


@converts("ONE_HOT")
def _one_hot(imp: TFLiteImporter, op: Op) -> None:
    indices = imp.operand(op.inputs[0])
    depth = imp.const_ints(op.inputs[1], "the depth", op.name)[0]
    on, off = imp.operand(op.inputs[2]), imp.operand(op.inputs[3])
    axis = op.options(tflite.OneHotOptions).Axis() % (indices.rank + 1)
    places = np.arange(depth, dtype=np.int64).reshape([depth if k == axis else 1 for k in range(indices.rank + 1)])
    where = imp.b.reshape(imp.b.cast(indices, "int64", name=op.name + "/i64"),
                          indices.shape[:axis] + (1,) + indices.shape[axis:], name=op.name + "/at")
    hit = imp.b.equal(where, imp.b.constant(places), name=op.name + "/hit")
    imp.set(op.outputs[0], imp.b.where(hit, on, off, name=op.name))


@converts("FILL")
def _fill(imp: TFLiteImporter, op: Op) -> None:
    shape = imp.const_ints(op.inputs[0], "the dims", op.name)
    value = _float32(np.asarray(imp.require_const(op.inputs[1], "the value", op.name)))
    imp.set(op.outputs[0], imp.b.constant(np.full(shape, value.reshape(()), value.dtype), name=op.name))


@converts("SHAPE", "RANK")
def _shape(imp: TFLiteImporter, op: Op) -> None:
    shape = imp.tensor_shape(op.inputs[0])
    value = np.array(shape if op.kind == "SHAPE" else len(shape), NUMPY_TYPES[imp.tensor_type(op.outputs[0])])
    imp.set(op.outputs[0], imp.b.constant(value, name=op.name))


@converts("SPACE_TO_BATCH_ND")
def _space_to_batch(imp: TFLiteImporter, op: Op) -> None:
    """Pad, then each of the block's (i, j) offsets becomes a batch of the pixels at that offset."""
    x = imp.operand(op.inputs[0])
    bh, bw = imp.const_ints(op.inputs[1], "the block shape", op.name)
    pads = np.reshape(imp.const_ints(op.inputs[2], "the paddings", op.name), (-1, 2))
    x = imp.b.pad(x, [0, int(pads[0, 0]), int(pads[1, 0]), 0, 0, int(pads[0, 1]), int(pads[1, 1]), 0],
                  name=op.name + "/pad")
    n, h, w, c = x.shape
    x = imp.b.reshape(x, (n, h // bh, bh, w // bw, bw, c), name=op.name + "/blocks")
    x = imp.b.transpose(x, (2, 4, 0, 1, 3, 5), name=op.name + "/gather")
    imp.set(op.outputs[0], imp.b.reshape(x, (bh * bw * n, h // bh, w // bw, c), name=op.name))


@converts("BATCH_TO_SPACE_ND")
def _batch_to_space(imp: TFLiteImporter, op: Op) -> None:
    """The inverse: each batch (i, j) goes back to its offset in the block, then the crops."""
    x = imp.operand(op.inputs[0])
    bh, bw = imp.const_ints(op.inputs[1], "the block shape", op.name)
    crops = np.reshape(imp.const_ints(op.inputs[2], "the crops", op.name), (-1, 2))
    b, h, w, c = x.shape
    n = b // (bh * bw)
    x = imp.b.reshape(x, (bh, bw, n, h, w, c), name=op.name + "/blocks")
    x = imp.b.transpose(x, (2, 3, 0, 4, 1, 5), name=op.name + "/scatter")
    x = imp.b.reshape(x, (n, h * bh, w * bw, c), name=op.name + "/space")
    imp.set(op.outputs[0], imp.b.slice(x, [int(crops[0, 0]), int(crops[1, 0])],
                                       [h * bh - int(crops[0, 1]), w * bw - int(crops[1, 1])], axes=[1, 2],
                                       name=op.name))


@converts("SCATTER_ND")
def _scatter_nd(imp: TFLiteImporter, op: Op) -> None:
    """Updates summed into zeros of the given shape (duplicates add up, as TFLite's kernel does)."""
    updates = imp.operand(op.inputs[1])
    shape = imp.const_ints(op.inputs[2], "the shape", op.name)
    zeros = imp.b.constant(np.zeros(shape, updates.dtype), name=op.name + "/zeros")
    imp.set(op.outputs[0], imp.b.scatter_nd(zeros, imp.operand(op.inputs[0]), updates, reduction="add", name=op.name))


@converts("EMBEDDING_LOOKUP")
def _embedding_lookup(imp: TFLiteImporter, op: Op) -> None:
    imp.set(op.outputs[0], imp.b.gather(imp.operand(op.inputs[1]), imp.operand(op.inputs[0]), axis=0, name=op.name))


@converts("RANGE")
def _range(imp: TFLiteImporter, op: Op) -> None:
    start, limit, delta = (np.asarray(imp.require_const(op.inputs[k], what, op.name)).reshape(())
                           for k, what in ((0, "the start"), (1, "the limit"), (2, "the delta")))
    dtype = NUMPY_TYPES[imp.tensor_type(op.outputs[0])]
    imp.set(op.outputs[0], imp.b.constant(np.arange(start, limit, delta).astype(dtype), name=op.name))


@converts("REDUCE_ANY", "REDUCE_ALL")
def _reduce_logic(imp: TFLiteImporter, op: Op) -> None:
    x = imp.b.cast(imp.operand(op.inputs[0]), "float32", name=op.name + "/float")
    axes = [a % x.rank for a in imp.const_ints(op.inputs[1], "the axes", op.name)]
    keep = op.options(tflite.ReducerOptions).KeepDims()
    y = imp.b.reduce(x, "max" if op.kind == "REDUCE_ANY" else "min", axes, keepdims=bool(keep), name=op.name + "/r")
    imp.set(op.outputs[0], imp.b.cast(y, "bool", name=op.name))


# -- constant-only ops, folded at load time ----------------------------------------------------


@converts("QUANTIZE")
def _quantize(imp: TFLiteImporter, op: Op) -> None:
    """float -> quantized, or quantized -> quantized with other parameters: the float value passes
    through; quantizing every quantized result (``TFLiteImporter._run``) does the rest."""
    value = imp.values.get(op.inputs[0])
    if value is None:
        raise GraphError(f"TFLite QUANTIZE node {op.name!r}: its input must be computed at run time")
    imp.set(op.outputs[0], value.operand, nchw=value.nchw)


@converts("DEQUANTIZE")
def _dequantize(imp: TFLiteImporter, op: Op) -> None:
    src = op.inputs[0]
    value = imp.const(src)
    if value is None:  # a quantized tensor computed at run time: its readers already see it dequantized
        held = imp.values[src]
        imp.set(op.outputs[0], held.operand, nchw=held.nchw)
        return
    if value.dtype.kind in "iu":
        q = imp.tensors[src].Quantization()
        scale, zero = q.ScaleAsNumpy(), q.ZeroPointAsNumpy()
        axis = q.QuantizedDimension() if np.size(scale) > 1 else None
        shape = [1] * value.ndim
        if axis is not None:
            shape[axis] = -1
        value = (value.astype(np.float32) - np.reshape(zero, shape)) * np.reshape(scale, shape)
    imp.constants[op.outputs[0]] = value.astype(np.float32)


@converts("DENSIFY")
def _densify(imp: TFLiteImporter, op: Op) -> None:
    src = op.inputs[0]
    values = imp.const(src)
    sparsity = imp.tensors[src].Sparsity()
    if values is None or sparsity is None:
        raise GraphError(f"TFLite DENSIFY node {op.name!r}: its input must be a constant sparse tensor")
    imp.constants[op.outputs[0]] = densify(values, imp.tensor_shape(src), sparsity)


def _index_vector(kind: int, table) -> np.ndarray:
    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}.get(kind)
    if cls is None or table is None:
        raise ModelLoadError(f"sparse tensor: unknown index vector type {kind}")
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy().astype(np.int64)


def densify(values: np.ndarray, shape: tuple[int, ...], sparsity) -> np.ndarray:
    """Expand TFLite's sparse format (per traversal level: DENSE, or CSR segments and indices;
    optional block dimensions) into a dense array, one level at a time."""
    order = [int(d) for d in sparsity.TraversalOrderAsNumpy()]
    block_map = [int(d) for d in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    rank = len(shape)
    positions = np.zeros(1, np.int64)  # index of each node at the current level
    coords = np.zeros((1, len(order)), np.int64)  # its coordinate in each traversed dimension
    sizes = [0] * len(order)
    for level, dim in enumerate(order):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == tflite.DimensionType.DENSE:
            size = meta.DenseSize()
            positions = (positions[:, None] * size + np.arange(size)).reshape(-1)
            coords = np.repeat(coords, size, axis=0)
            coords[:, dim] = np.tile(np.arange(size), len(coords) // size)
        else:
            segments = _index_vector(meta.ArraySegmentsType(), meta.ArraySegments())
            indices = _index_vector(meta.ArrayIndicesType(), meta.ArrayIndices())
            counts = segments[positions + 1] - segments[positions]
            coords = np.repeat(coords, counts, axis=0)
            positions = np.concatenate([np.arange(s, e) for s, e in zip(segments[positions], segments[positions + 1])]
                                       ) if len(positions) else positions
            coords[:, dim] = indices[positions]
            size = int(indices.max()) + 1 if indices.size else 0
        sizes[dim] = size
    if len(positions) != values.size:
        raise ModelLoadError(f"sparse tensor: {values.size} stored values, its index arrays describe {len(positions)}")
    full = coords[:, :rank].copy()
    for k, dim in enumerate(block_map):
        block = sparsity.DimMetadata(order.index(rank + k)).DenseSize()
        full[:, dim] = full[:, dim] * block + coords[:, rank + k]
    dense = np.zeros(shape, values.dtype)
    dense[tuple(full.T)] = values.reshape(-1)
    return dense


SUPPORTED_OPS = sorted(CONVERTERS)


def load_model(model: str | Path | bytes, *, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Import subgraph 0 of a TFLite model (a path or its bytes)."""
    return _importer(model).run(input_shapes)


def describe_io(model: str | Path | bytes) -> tuple[list, list]:
    """(inputs, outputs) of subgraph 0 as the model declares them, without importing it: (name,
    dims, dtype) for each; a dimension the model leaves dynamic (-1 in its shape signature) is None."""
    imp = _importer(model)
    g = imp.graph

    def entry(index: int) -> tuple[str, list, str]:
        return (imp.tensor_name(index), [None if d == -1 else d for d in imp.tensor_signature(index)],
                imp.tensor_type(index).lower())

    try:
        return [entry(g.Inputs(k)) for k in range(g.InputsLength())], \
            [entry(g.Outputs(k)) for k in range(g.OutputsLength())]
    except (TypeError, AttributeError, IndexError, ValueError) as exc:
        raise ModelLoadError(f"{imp.source} is not a valid TFLite model: {type(exc).__name__} ({exc}) while "
                             "reading its inputs and outputs") from None


def _importer(model: str | Path | bytes) -> TFLiteImporter:
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.exists():
            raise ModelLoadError(f"model file {str(path)!r} does not exist")
        data, source = path.read_bytes(), repr(str(path))
    else:
        data, source = bytes(model), "the given bytes"
    if not is_tflite(data):
        raise ModelLoadError(f"{source} is not a TFLite model (no TFL3 file identifier)")
    return TFLiteImporter(data, source)
