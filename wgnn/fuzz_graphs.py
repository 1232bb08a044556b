"""Differential fuzzing: random ONNX and TFLite graphs of the pieces real models are made of, each run by
wgnn and by a reference, so that a result that is silently wrong (a fusion that fires where it
must not, a buffer planned over another) is found and named by the seed that makes it.

    wgnn fuzz --graphs [--count 500] [--seed 0] [--precision fp32] [--backend compute] [--families F]
                       [--kernels random]

Eight families of graphs, each a chain of 2 to 8 random steps, a step reading the last tensor or
(less often) an earlier one, so that tensors are read several times and by several kinds of node:

- ``text``: (B, S, C) activations through matrix products (a bias per column, per row or one
  number; a scale by a number computed at run time), activations, residual adds and products with
  an earlier tensor, scaled softmax, layer normalization, attention's head split, product and join,
  dynamically quantized products (DynamicQuantizeLinear, MatMulInteger, the scales, the bias) and
  mean subtraction;
- ``cnn``: (N, C, H, W) images through convolutions (1x1 and 3x3, strided, depthwise, with or
  without bias, a batch norm after), activations, residual adds and products, pooling, channel
  concats (of a tensor with itself or an earlier one), per-channel scale and shift, a
  squeeze-and-excitation gate, padding.

- ``data``: tensors of rank 2 to 4 and small sizes through data movement (``_data_step``: any
  transpose, reductions, Gather, Where, Expand, Tile, stepped slices, concats along any axis,
  Flatten and Gemm, softmax along any axis);
- ``vision``: (N, C, H, W) images that are not square through decoders' and heads' pieces
  (``_vision_step``: convolutions of any kernel, stride, dilation, group and padding, transposed
  convolutions with padding and output padding, resizing in every mode and coordinate mode, depth
  to space and back, instance normalization, pooling with padding and ceil mode, reflect and edge
  padding, reversed slices, broadcasts along one image axis, activations with parameters);
- ``quant``: (N, C, H, W) tensors of uint8 or int8 codes through what ONNX Runtime's quantizer and
  converters write (``_quant_step``: QLinearConv per tensor or per channel, the com.microsoft QLinear
  ops, max pooling, resizing and moving codes, requantization, QDQ float ops, ConvInteger (also of
  a float tensor quantized at run time, with quantize_dynamic's bias and scaling after it),
  QLinearMatMul), scales as calibration gives them;
- ``seq``: (steps, batch, features) sequences through LSTMs, GRUs and RNNs in every direction, with
  initial states (constants or graph inputs), clips, other activations, peepholes, their last states
  read or given out (``_seq_recurrent``), between the text family's steps;
- ``bert``: token ids and an attention mask (int64 inputs) through word and position embeddings
  and a layer norm, then self-attention as BERT's exports write it (projections, heads split by
  Reshape and Transpose, the mask's additive bias, softmax, heads joined, residual, layer norm), the
  pooler, and the text family's steps (``_bert_embeddings``, ``_bert_attention``);
- ``tflite``: TFLite models (``random_tflite_graph``, written by ``wgnn.tflite_writer``) over NHWC
  images, MediaPipe's and converted models' operators (``_tflite_step``: CONV_2D and
  DEPTHWISE_CONV_2D with SAME or VALID padding and fused activations, binary ops, pooling, PAD,
  CONCATENATION, both resizes in each coordinate mode, activations, MEAN, TRANSPOSE_CONV, SOFTMAX,
  FULLY_CONNECTED, TRANSPOSE, DEPTH_TO_SPACE), against LiteRT's interpreter.

The first two families also take what exporters write op by op (``_text_written_out``,
``_cnn_written_out``: GELU, SiLU, hard swish, RMS normalization, Gemm, split and join, transposed
convolutions, resizing, QDQ) and what the passes fold into epilogues (``_text_epilogues``,
``_cnn_epilogues``: PRelu, bounds, affine and residual after an activation, LSTMs, SPP).

The reference is ONNX Runtime's CPU provider (the graph as written, its optimizations off) where it
is installed, else wgnn's numpy reference of the graph as imported (``InferenceSession.run_reference``:
it shares the importer, so it finds the passes', the planner's and the kernels' faults, not the
importer's). In fp32 a graph matches where
every value of every output is within ``TOLERANCE`` of the reference's largest (at least 0.01: a
result that should be zero is allowed float rounding); in fp16, where f16's rounding of large values
is legitimately a few steps, where each output's relative L2 error is within it (its root mean
square taken as 0.1 at least; a region computed wrong is far more: a layer normalization over a
few near-equal f16 values magnifies their rounding to 1%). Graphs that quantize (QuantizeLinear,
DynamicQuantizeLinear) are judged so too, within 3e-2 (6e-2 in fp16), since a float rounding apart
before a quantizer moves an 8-bit code by one step, as it does between ONNX Runtime's own graphs;
an integer output whose codes are all within one step matches too (a step apart among a few small
codes is a large relative error).
Each graph's session runs twice, the second time with other values (what a run leaves in the planned
buffers must not reach the next), and where x's first axis is symbolic (no constant of the graph
holds its size: most graphs), a third time with one more along it (a plan per shape).
Outcomes: ``match``, ``mismatch``, ``overflow`` (fp16: infinities or NaN where the reference's values
are finite, a value inside the graph past f16's range, which the session warns of: products of a
tensor with itself grow fast), ``refused`` (a ``WgnnError``: a graph wgnn declines, said by name)
and ``exception`` (anything else: a bug).
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .errors import WgnnError

FAMILIES = ("text", "cnn", "data", "vision", "seq", "quant", "tflite", "bert")
OUTCOMES = ("match", "mismatch", "overflow", "refused", "exception")
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}
QUANTIZED_TOLERANCE = 3e-2


class _Chain:
    """The tensors a random graph has made so far, with their shapes (its steps' material), and the
    random numbers that choose."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.tensors: list[tuple] = []  # (a tensor's name or index, its shape)

    def normal(self, *shape: int, scale: float = 1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def pick(self) -> tuple:
        """The last tensor mostly, else an earlier one."""
        return self.tensors[-1] if self.rng.random() < 0.7 else self.tensors[int(self.rng.integers(len(self.tensors)))]

    def same_shape(self, shape: tuple[int, ...]):
        matches = [t for t, s in self.tensors if s == shape]
        return matches[int(self.rng.integers(len(matches)))]


class _Graph(_Chain):
    """An ONNX graph under construction: nodes, initializers, inputs, and the tensors made so far."""

    def __init__(self, rng: np.random.Generator):
        super().__init__(rng)
        self.nodes, self.initializers, self.feeds = [], [], {}
        self._count = 0
        self.first_axis_fixed = False  # (a step wrote x's first axis's size into a constant: not symbolic)
        self.kinds: dict[str, tuple[float, int, int]] = {}  # quantized tensors: (scale, zero point, element type)
        self.mask_bias = ""  # (the bert family's attention bias)

    def name(self, prefix: str = "t") -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def const(self, value) -> str:
        from onnx import numpy_helper

        name = self.name("c")
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attrs) -> str | list[str]:
        from onnx import helper

        names = [self.name() for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, **attrs))
        return names[0] if outputs == 1 else names

    def qparams(self, kind: tuple[float, int, int]) -> list[str]:
        """[scale, zero point] constants of a quantized tensor's ``kind``."""
        from onnx import TensorProto

        scale, zero, elem = kind
        dtype = np.uint8 if elem == TensorProto.UINT8 else np.int8
        return [self.const(np.float32(scale)), self.const(np.array(zero, dtype))]

    def model(self):
        from onnx import TensorProto, helper

        r = self.rng
        outputs = [self.tensors[-1]]
        if len(self.tensors) > 2 and r.random() < 0.3:  # (an intermediate read further on, an output too)
            outputs.append(self.tensors[int(r.integers(1, len(self.tensors) - 1))])
        def declared(n, v):  # (x's first axis symbolic where no constant holds its size)
            return ["N"] + list(v.shape[1:]) if n.startswith("x") and not self.first_axis_fixed else v.shape

        graph = helper.make_graph(
            self.nodes, "random",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), declared(n, v))
             for n, v in self.feeds.items()],
            [helper.make_tensor_value_info(n, self.kinds[n][2] if n in self.kinds else TensorProto.FLOAT, None)
             for n in dict(outputs)], self.initializers)
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
        return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def _text_written_out(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """What exporters write op by op, which passes recognise: GELU (erf form), SiLU, RMS
    normalization, a Gemm with B transposed, a split into halves joined again (or swapped), a slice of
    a slice, a transpose and its inverse."""
    r = g.rng
    c = shape[-1]
    k = r.random()
    if k < 0.2:  # x * 0.5 * (1 + erf(x / sqrt(2)))
        e = g.node("Erf", [g.node("Div", [t, g.const(np.float32(np.sqrt(2)))])])
        y = g.node("Mul", [g.node("Mul", [t, g.const(np.float32(0.5))]), g.node("Add", [e, g.const(np.float32(1))])])
    elif k < 0.35:
        y = g.node("Mul", [t, g.node("Sigmoid", [t])])
    elif k < 0.5:  # x / sqrt(mean(x^2) + eps) * gamma
        mean = g.node("ReduceMean", [g.node("Pow", [t, g.const(np.float32(2))])], axes=[-1], keepdims=1)
        root = g.node("Sqrt", [g.node("Add", [mean, g.const(np.float32(1e-6))])])
        y = g.node("Mul", [g.node("Div", [t, root]), g.const(r.uniform(0.5, 1.5, c).astype(np.float32))])
    elif k < 0.65:  # Gemm over the rows, B stored transposed, a bias
        n = int(r.choice([4, 6, 8, 12]))
        rows = g.node("Reshape", [t, g.const(np.array([-1, c], np.int64))])
        y = g.node("Gemm", [rows, g.const(g.normal(n, c, scale=c ** -0.5)), g.const(g.normal(n))], transB=1)
        y = g.node("Reshape", [y, g.const(np.array([-1] + list(shape[1:-1]) + [n], np.int64))])
        return y, shape[:-1] + (n,)
    elif k < 0.8 and c % 2 == 0:  # halves, joined again in their order or swapped
        a, b = g.node("Split", [t, g.const(np.array([c // 2, c // 2], np.int64))], outputs=2, axis=-1)
        y = g.node("Concat", [a, b] if r.random() < 0.5 else [b, a], axis=-1)
    elif k < 0.9 and c >= 4:  # a slice of a slice
        inner = g.node("Slice", [t, g.const(np.array([1], np.int64)), g.const(np.array([c], np.int64)),
                                 g.const(np.array([-1], np.int64))])
        y = g.node("Slice", [inner, g.const(np.array([0], np.int64)), g.const(np.array([c - 2], np.int64)),
                             g.const(np.array([-1], np.int64))])
        return y, shape[:-1] + (c - 2,)
    else:
        y = g.node("Transpose", [g.node("Transpose", [t], perm=[0, 2, 1])], perm=[0, 2, 1])
    return y, shape


def _text_epilogues(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """What passes fold into a product's epilogue or drop: a PRelu of one slope per column, a Max by
    one number, a scale and shift of single numbers after an activation, a residual added after an
    activation; the same op twice on one input (common subexpressions), x + 0 and x * 1; and an LSTM
    over the sequence (its cell and step fusions)."""
    r = g.rng
    b, seq, c = shape
    k = r.random()
    product = g.node("MatMul", [t, g.const(g.normal(c, c, scale=c ** -0.5))])
    if k < 0.2:
        y = g.node("PRelu", [product, g.const(r.uniform(0.05, 0.3, c).astype(np.float32))])
    elif k < 0.35:
        y = g.node("Max", [product, g.const(np.float32(r.uniform(-0.5, 0.5)))])
    elif k < 0.5:
        y = g.node("Add", [g.node("Mul", [g.node("Relu", [product]), g.const(np.float32(r.uniform(0.5, 2)))]),
                           g.const(np.float32(r.uniform(-1, 1)))])
    elif k < 0.65:
        y = g.node("Add", [g.node(str(r.choice(["Relu", "Sigmoid"])), [product]), t])
    elif k < 0.8:  # the same Sigmoid twice, x + 0, x * 1
        y = g.node("Add", [g.node("Sigmoid", [t]), g.node("Sigmoid", [t])])
        y = g.node("Mul", [g.node("Add", [y, g.const(np.zeros(c, np.float32))]), g.const(np.float32(1))])
    else:  # an LSTM over the sequence, one or both directions, its output back to (B, S, H)
        hidden, dirs = int(r.choice([4, 8])), int(r.choice([1, 2]))
        x = g.node("Transpose", [t], perm=[1, 0, 2])
        w = g.const(g.normal(dirs, 4 * hidden, c, scale=0.5 / np.sqrt(c)))
        rec = g.const(g.normal(dirs, 4 * hidden, hidden, scale=0.5 / np.sqrt(hidden)))
        bias = g.const(g.normal(dirs, 8 * hidden, scale=0.1))
        seq_out = g.node("LSTM", [x, w, rec, bias], outputs=3, hidden_size=hidden,
                         direction="bidirectional" if dirs == 2 else "forward")[0]
        y = g.node("Reshape", [g.node("Transpose", [seq_out], perm=[2, 0, 1, 3]),
                               g.const(np.array([0, 0, dirs * hidden], np.int64))])
        return y, (b, seq, dirs * hidden)
    return y, shape


def _text_step(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    from onnx import TensorProto

    r = g.rng
    k = r.random()
    if k < 0.25:  # a product, then a run-time scale and a bias of some shape
        n = int(r.choice([4, 5, 7, 8, 12, 16]))
        y = g.node("MatMul", [t, g.const(g.normal(shape[-1], n, scale=shape[-1] ** -0.5))])
        if "s" in g.feeds and r.random() < 0.5:
            s = g.node("Mul", ["s", g.const(np.float32(r.uniform(0.1, 2)))]) if r.random() < 0.5 else "s"
            y = g.node("Mul", [y, s] if r.random() < 0.5 else [s, y])
        if r.random() < 0.6:
            bias = [(n,), (1, 1, n), (shape[1], 1), (1,)][int(r.integers(4))]
            y = g.node("Add", [y, g.const(g.normal(*bias))])
        shape = shape[:-1] + (n,)
    elif k < 0.4:
        y = g.node(str(r.choice(["Relu", "Sigmoid", "Tanh", "Erf", "Abs"])), [t])
    elif k < 0.55:  # with an earlier tensor of the same shape (a residual)
        u = g.same_shape(shape)
        y = g.node(str(r.choice(["Add", "Mul", "Sub"])), [t, u] if r.random() < 0.5 else [u, t])
    elif k < 0.65:
        x = g.node("Mul", [t, g.const(np.float32(r.uniform(0.1, 1)))]) if r.random() < 0.5 else t
        y = g.node("Softmax", [x], axis=-1)
    elif k < 0.75:
        y = g.node("LayerNormalization", [t, g.const(r.uniform(0.5, 1.5, shape[-1]).astype(np.float32)),
                                           g.const(g.normal(shape[-1]))], axis=-1)
    elif k < 0.85 and shape[-1] % 2 == 0:  # attention over two heads of the tensor itself
        b, s, c = shape
        split = g.node("Reshape", [t, g.const(np.array([0, 0, 2, c // 2], np.int64))])
        q = g.node("Transpose", [split], perm=[0, 2, 1, 3])
        keys = g.node("Transpose", [split], perm=[0, 2, 3, 1])
        p = g.node("Softmax", [g.node("MatMul", [q, keys])], axis=-1)
        joined = g.node("Transpose", [g.node("MatMul", [p, q])], perm=[0, 2, 1, 3])
        y = g.node("Reshape", [joined, g.const(np.array([0, 0, c], np.int64))])
    elif k < 0.93:  # a dynamically quantized product, as quantize_dynamic writes it
        n = int(r.choice([4, 6, 8, 12]))
        q, x_scale, x_zero = g.node("DynamicQuantizeLinear", [t], outputs=3)
        sums = g.node("MatMulInteger", [q, g.const(r.integers(-127, 128, (shape[-1], n)).astype(np.int8)), x_zero])
        f = g.node("Cast", [sums], to=TensorProto.FLOAT)
        scale = g.node("Mul", [x_scale, g.const(np.float32(r.uniform(0.001, 0.01)))])
        y = g.node("Mul", [f, scale] if r.random() < 0.5 else [scale, f])
        if r.random() < 0.6:
            bias = g.const(g.normal(n))
            y = g.node("Add", [y, bias] if r.random() < 0.5 else [bias, y])
        shape = shape[:-1] + (n,)
    else:
        y = g.node("Sub", [t, g.node("ReduceMean", [t], axes=[-1], keepdims=1)])
    return y, shape


def _cnn_written_out(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """What converters write op by op or in other ops: hard swish as x * clip(x + 3, 0, 6) / 6, SiLU,
    a batch norm as a per-channel Mul and Add after a convolution, a batch norm alone, a transposed
    convolution whose filter is its stride, nearest resizing, channel halves joined again, and a
    convolution between QuantizeLinear and DequantizeLinear (QDQ, per-tensor uint8)."""
    r = g.rng
    n, c, h, w = shape
    k = r.random()
    if k < 0.15:
        plus = g.node("Add", [t, g.const(np.float32(3))])
        clip = g.node("Clip", [plus, g.const(np.float32(0)), g.const(np.float32(6))])
        y = g.node("Div", [g.node("Mul", [t, clip]), g.const(np.float32(6))])
    elif k < 0.25:
        y = g.node("Mul", [t, g.node("Sigmoid", [t])])
    elif k < 0.4 and h >= 3:
        o = int(r.choice([4, 8, 12]))
        y = g.node("Conv", [t, g.const(g.normal(o, c, 3, 3, scale=(c * 9) ** -0.5))], kernel_shape=[3, 3], pads=[1] * 4)
        y = g.node("Add", [g.node("Mul", [y, g.const(r.uniform(0.5, 1.5, (1, o, 1, 1)).astype(np.float32))]),
                           g.const(g.normal(1, o, 1, 1))])
        return y, (n, o, h, w)
    elif k < 0.5:
        gamma, variance = (g.const(r.uniform(0.5, 1.5, c).astype(np.float32)) for _ in range(2))
        y = g.node("BatchNormalization", [t, gamma, g.const(g.normal(c)), g.const(g.normal(c, scale=0.1)), variance])
    elif k < 0.6 and h * w <= 256:
        o = int(r.choice([4, 8]))
        y = g.node("ConvTranspose", [t, g.const(g.normal(c, o, 2, 2, scale=c ** -0.5)), g.const(g.normal(o))],
                   kernel_shape=[2, 2], strides=[2, 2])
        return y, (n, o, 2 * h, 2 * w)
    elif k < 0.7 and h * w <= 256:
        y = g.node("Resize", [t, "", g.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")
        return y, (n, c, 2 * h, 2 * w)
    elif k < 0.85 and c % 2 == 0:
        a, b = g.node("Split", [t, g.const(np.array([c // 2, c // 2], np.int64))], outputs=2, axis=1)
        parts = [a, b, t] if r.random() < 0.5 else [b, a]  # (YOLOv8's C2f: both halves and more)
        return g.node("Concat", parts, axis=1), (n, 2 * c if len(parts) == 3 else c, h, w)
    else:  # QDQ: the input and the weights quantized, the convolution's result too
        o = int(r.choice([4, 8]))
        x_scale, w_scale, y_scale = (g.const(np.float32(v)) for v in (0.02, 0.005, 0.05))
        zero = g.const(np.uint8(128))
        xq = g.node("DequantizeLinear", [g.node("QuantizeLinear", [t, x_scale, zero]), x_scale, zero])
        wq = g.const(r.integers(-127, 128, (o, c, 3, 3)).astype(np.int8))
        wd = g.node("DequantizeLinear", [wq, w_scale, g.const(np.int8(0))])
        y = g.node("Conv", [xq, wd], kernel_shape=[3, 3], pads=[1] * 4)
        y = g.node("DequantizeLinear", [g.node("QuantizeLinear", [y, y_scale, zero]), y_scale, zero])
        return y, (n, o, h, w)
    return y, shape


def _cnn_epilogues(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """What passes fold into a convolution's epilogue or planning: a PRelu of one slope per channel,
    a Min by one number, a scale and shift after an activation, a residual added after the
    activation (YOLO's bottlenecks), a residual padded with zero channels (BlazeFace's), SPP's three
    pools concatenated, channel slices of one tensor concatenated."""
    r = g.rng
    n, c, h, w = shape
    k = r.random()
    conv = g.node("Conv", [t, g.const(g.normal(c, c, 3, 3, scale=(c * 9) ** -0.5)), g.const(g.normal(c))],
                  kernel_shape=[3, 3], pads=[1] * 4)
    if k < 0.15:
        return g.node("PRelu", [conv, g.const(r.uniform(0.05, 0.3, (c, 1, 1)).astype(np.float32))]), shape
    if k < 0.25:
        return g.node("Min", [conv, g.const(np.float32(r.uniform(0.5, 2)))]), shape
    if k < 0.4:
        act = g.node(str(r.choice(["Relu", "Sigmoid"])), [conv])
        return g.node("Add", [g.node("Mul", [act, g.const(np.float32(r.uniform(0.5, 2)))]),
                              g.const(np.float32(r.uniform(-1, 1)))]), shape
    if k < 0.55:
        return g.node("Add", [t, g.node("Mul", [conv, g.node("Sigmoid", [conv])])]), shape
    if k < 0.7 and c % 4 == 0:  # a narrower tensor, zero-padded along the channels, added to a convolution
        half = g.node("Conv", [t, g.const(g.normal(c // 2, c, 1, 1, scale=c ** -0.5))], kernel_shape=[1, 1])
        padded = g.node("Pad", [half, g.const(np.array([0, 0, 0, 0, 0, c // 2, 0, 0], np.int64))])
        return g.node("Relu", [g.node("Add", [conv, padded])]), shape
    if k < 0.85:  # SPP: max pools of 5, 9 and 13, stride 1, padded to keep the size
        pools = [g.node("MaxPool", [t], kernel_shape=[s_, s_], pads=[s_ // 2] * 4) for s_ in (5, 9, 13)]
        return g.node("Concat", [t] + pools, axis=1), (n, 4 * c, h, w)
    if c >= 4:  # channel slices of one tensor, concatenated in another order
        first = g.node("Slice", [conv, g.const(np.array([0], np.int64)), g.const(np.array([c // 2], np.int64)),
                                 g.const(np.array([1], np.int64))])
        second = g.node("Slice", [conv, g.const(np.array([c // 2], np.int64)), g.const(np.array([c], np.int64)),
                                  g.const(np.array([1], np.int64))])
        return g.node("Concat", [second, first, t], axis=1), (n, 2 * c, h, w)
    return conv, shape


def _cnn_step(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    r = g.rng
    n, c, h, w = shape
    k = r.random()
    if k < 0.3 and h >= 3:  # a convolution, maybe depthwise, maybe a batch norm after
        o, size, stride = int(r.choice([3, 4, 6, 8, 12, 16])), int(r.choice([1, 3])), int(r.choice([1, 1, 2]))
        groups = c if size == 3 and r.random() < 0.25 else 1
        o = c if groups > 1 else o
        pad = size // 2 if r.random() < 0.8 else 0
        inputs = [t, g.const(g.normal(o, c // groups, size, size, scale=(c // groups * size * size) ** -0.5))]
        if r.random() < 0.7:
            inputs.append(g.const(g.normal(o)))
        y = g.node("Conv", inputs, kernel_shape=[size, size], strides=[stride, stride], pads=[pad] * 4, group=groups)
        side = (h + 2 * pad - size) // stride + 1
        shape = (n, o, side, side)
        if r.random() < 0.4:
            gamma, variance = (g.const(r.uniform(0.5, 1.5, o).astype(np.float32)) for _ in range(2))
            beta, mean = g.const(g.normal(o)), g.const(g.normal(o, scale=0.1))
            y = g.node("BatchNormalization", [y, gamma, beta, mean, variance])
    elif k < 0.45:
        op = str(r.choice(["Relu", "Sigmoid", "HardSwish", "LeakyRelu", "Clip", "Tanh"]))
        if op == "Clip":
            y = g.node(op, [t, g.const(np.float32(0)), g.const(np.float32(6))])
        else:
            y = g.node(op, [t], **({"alpha": 0.1} if op == "LeakyRelu" else {}))
    elif k < 0.6:
        u = g.same_shape(shape)
        y = g.node(str(r.choice(["Add", "Mul"])), [t, u] if r.random() < 0.5 else [u, t])
    elif k < 0.7 and h >= 2:
        y = g.node(str(r.choice(["MaxPool", "AveragePool"])), [t], kernel_shape=[2, 2], strides=[2, 2])
        shape = (n, c, h // 2, w // 2)
    elif k < 0.8:  # along the channels, with a tensor of the same image size (itself, often)
        fits = [(u, s) for u, s in g.tensors if s[0] == n and s[2:] == shape[2:]]
        u, other = fits[int(r.integers(len(fits)))]
        y = g.node("Concat", [t, u], axis=1)
        shape = (n, c + other[1], h, w)
    elif k < 0.87:
        y = g.node("Mul", [t, g.const(r.uniform(0.5, 1.5, (1, c, 1, 1)).astype(np.float32))])
        if r.random() < 0.5:
            y = g.node("Add", [y, g.const(g.normal(1, c, 1, 1))])
    elif k < 0.94:  # squeeze and excitation's gate
        y = g.node("Mul", [t, g.node("Sigmoid", [g.node("GlobalAveragePool", [t])])])
    else:
        y = g.node("Pad", [t, g.const(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))])
        shape = (n, c, h + 2, w + 2)
    return y, shape


def _data_step(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """Data movement over tensors of rank 2 to 4 and small sizes (axes of 1 often: where layouts are
    alike in buffers and not in texels): a transpose by any permutation, a reduction over any axis
    (kept or not), a gather of constant indices, Where, Expand or Tile, a slice with a step, a concat of
    a tensor with itself along any axis, Exp, Sqrt and Log of what they take, Flatten then Gemm, and a
    softmax along any axis."""
    r = g.rng
    rank = len(shape)
    k = r.random()
    if k < 0.1:
        perm = [int(a) for a in r.permutation(rank)]
        return g.node("Transpose", [t], perm=perm), tuple(shape[a] for a in perm)
    if k < 0.2 and rank > 1:
        axis, keep = int(r.integers(rank)), int(r.integers(2))
        op = str(r.choice(["ReduceSum", "ReduceMax", "ReduceMean", "ReduceMin"]))
        inputs, attrs = ([t, g.const(np.array([axis], np.int64))], {}) if op == "ReduceSum" else ([t], {"axes": [axis]})
        y = g.node(op, inputs, keepdims=keep, **attrs)
        return y, tuple(1 if a == axis else d for a, d in enumerate(shape) if keep or a != axis)
    if k < 0.3 and shape[-1] > 1:
        indices = r.integers(0, shape[-1], int(r.integers(1, 5))).astype(np.int64)
        return g.node("Gather", [t, g.const(indices)], axis=rank - 1), shape[:-1] + (len(indices),)
    if k < 0.4:
        return g.node("Where", [g.node("Greater", [t, g.const(np.float32(0))]), t, g.node("Neg", [t])]), shape
    if k < 0.5:
        if 1 in shape:
            wide = list(shape)
            wide[shape.index(1)] = 3
            g.first_axis_fixed = True
            return g.node("Expand", [t, g.const(np.array(wide, np.int64))]), tuple(wide)
        return g.node("Tile", [t, g.const(np.array([1] * (rank - 1) + [2], np.int64))]), shape[:-1] + (2 * shape[-1],)
    if k < 0.6 and shape[-1] >= 3:
        ends = [g.const(np.array([v], np.int64)) for v in (0, shape[-1], -1, 2)]
        return g.node("Slice", [t] + ends), shape[:-1] + ((shape[-1] + 1) // 2,)
    if k < 0.7:
        axis = int(r.integers(rank))
        return g.node("Concat", [t, t], axis=axis), tuple(2 * d if a == axis else d for a, d in enumerate(shape))
    if k < 0.8:
        op = str(r.choice(["Exp", "Sqrt", "Log"]))
        x = g.node("Tanh", [t]) if op == "Exp" else g.node("Abs", [t])
        return g.node(op, [g.node("Add", [x, g.const(np.float32(1))]) if op == "Log" else x]), shape
    if k < 0.9:
        flat, n = int(np.prod(shape[1:])), int(r.choice([3, 4, 8]))
        y = g.node("Gemm", [g.node("Flatten", [t], axis=1), g.const(g.normal(flat, n, scale=flat ** -0.5)),
                            g.const(g.normal(n))])
        return y, (shape[0], n)
    return g.node("Softmax", [t], axis=int(r.integers(rank))), shape


def _conv_side(size: int, kernel: int, stride: int, dilation: int, pads: int) -> int:
    return (size + pads - dilation * (kernel - 1) - 1) // stride + 1


def _nearest_tie(size: int, out: int, coords: str, rounding: str) -> bool:
    """Whether a nearest resize of ``size`` to ``out`` points, out / size not a float, maps a point
    exactly onto where its rounding turns (an integer for floor and ceil, a half for the others):
    there the scale's float rounding decides, and implementations differ (ONNX Runtime takes 13 / 11
    rounded to f32; 6.5 / that - 0.5 lands just past 5 and its ceil is 6, the spec's is 5)."""
    from fractions import Fraction

    if Fraction(float(np.float32(out / size))) == Fraction(out, size):
        return False
    x = np.arange(out, dtype=np.float64)
    if coords in ("align_corners", "asymmetric"):
        x = x[1:]  # (the first point is 0 in any arithmetic)
    if coords == "align_corners":
        where = x * (size - 1) / max(out - 1, 1)
    elif coords == "asymmetric":
        where = x * size / out
    else:  # half_pixel, pytorch_half_pixel
        where = (x + 0.5) * size / out - 0.5
    turn = where if rounding in ("floor", "ceil") else where + 0.5
    return bool(np.any(np.abs(turn - np.round(turn)) < 1e-9))


def _vision_step(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """Decoders', detection heads' and image models' pieces over (N, C, H, W) images that are not
    square: convolutions of any kernel, stride, dilation, group and (asymmetric or automatic) padding,
    transposed convolutions with padding and output padding, resizing in every mode, coordinate mode
    and rounding, depth to space and back, instance normalization, pooling with padding, ceil mode and
    dilations, padding by reflection and edge, spatial slices (reversed too), broadcasts along one
    image axis, channel softmax, and the activations with parameters."""
    r = g.rng
    n, c, h, w = shape
    k = r.random()
    if k < 0.2:  # a convolution
        (kh, kw), (sh, sw), d = r.choice([1, 3, 5], 2), r.choice([1, 1, 2], 2), int(r.choice([1, 1, 2]))
        kh, kw, sh, sw = int(kh), int(kw), int(sh), int(sw)
        o = int(r.choice([2, 4, 5, 8]))
        groups = 1
        if r.random() < 0.3:
            groups = c if r.random() < 0.5 else (2 if c % 2 == 0 else 1)
            o = c if groups == c else o + o % 2
        attrs = dict(kernel_shape=[kh, kw], strides=[sh, sw], dilations=[d, d], group=groups)
        if d == 1 and r.random() < 0.2:  # output side ceil(side / stride)
            attrs["auto_pad"] = str(r.choice(["SAME_UPPER", "SAME_LOWER"]))
            oh, ow = -(-h // sh), -(-w // sw)
        else:
            # (up to half the window: more makes channels of the bias alone, constant, whose instance
            # norm is float rounding magnified by 1 / sqrt(epsilon), in any implementation)
            pads = [int(r.integers(0, d * (kk - 1) // 2 + 1)) for kk in (kh, kw, kh, kw)]
            attrs["pads"] = pads
            oh, ow = _conv_side(h, kh, sh, d, pads[0] + pads[2]), _conv_side(w, kw, sw, d, pads[1] + pads[3])
        if oh < 1 or ow < 1:
            return t, shape
        inputs = [t, g.const(g.normal(o, c // groups, kh, kw, scale=(c // groups * kh * kw) ** -0.5))]
        if r.random() < 0.6:
            inputs.append(g.const(g.normal(o)))
        return g.node("Conv", inputs, **attrs), (n, o, oh, ow)
    if k < 0.32 and h * w <= 200:  # a transposed convolution
        kk, s = int(r.choice([2, 3, 4])), int(r.choice([1, 2, 2, 3]))
        d = int(r.choice([1, 1, 2])) if s % 2 else 1  # (a dilation of the stride leaves every other output
        # the bias alone: channels constant after a strided sampling, which an instance norm magnifies)
        o = int(r.choice([2, 4, 6]))
        groups = c if r.random() < 0.2 else (2 if c % 2 == 0 and r.random() < 0.2 else 1)
        o = c if groups == c else o
        pads = [int(r.integers(0, kk)) for _ in range(4)]
        out_pad = [int(r.integers(0, s)) for _ in range(2)]
        oh = (h - 1) * s + d * (kk - 1) + 1 - pads[0] - pads[2] + out_pad[0]
        ow = (w - 1) * s + d * (kk - 1) + 1 - pads[1] - pads[3] + out_pad[1]
        if oh < 1 or ow < 1:
            return t, shape
        inputs = [t, g.const(g.normal(c, o // groups, kk, kk, scale=(c * kk * kk / s / s) ** -0.5))]
        if r.random() < 0.6:
            inputs.append(g.const(g.normal(o)))
        y = g.node("ConvTranspose", inputs, kernel_shape=[kk, kk], strides=[s, s], dilations=[d, d], pads=pads,
                   output_padding=out_pad, group=groups)
        return y, (n, o, oh, ow)
    if k < 0.44:  # resizing, up or down, by scales or to sizes
        mode = str(r.choice(["nearest", "linear", "cubic"]))
        coords = str(r.choice(["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]))
        attrs = dict(mode=mode, coordinate_transformation_mode=coords)
        if mode == "nearest":
            attrs["nearest_mode"] = str(r.choice(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]))
        if mode == "cubic":
            attrs["cubic_coeff_a"] = float(r.choice([-0.75, -0.5]))
            attrs["exclude_outside"] = int(r.integers(2))
        if coords != "align_corners" and (r.random() < 0.5 or h * w > 100):
            # (by scales: ONNX Runtime's CPU provider departs from the spec's align_corners there, which
            # wgnn follows as ONNX's reference implementation does)
            fh, fw = (float(f) for f in r.choice([0.5, 0.75, 1.5, 2.0, 3.0] if h * w <= 100 else [0.5, 0.75], 2))
            oh, ow = int(np.floor(h * fh)), int(np.floor(w * fw))
            if oh < 1 or ow < 1:
                return t, shape
            y = g.node("Resize", [t, "", g.const(np.array([1, 1, fh, fw], np.float32))], **attrs)
        elif h * w <= 100:
            oh, ow = int(r.integers(1, 2 * h + 1)), int(r.integers(1, 2 * w + 1))
            if mode == "nearest" and (_nearest_tie(h, oh, coords, attrs["nearest_mode"])
                                      or _nearest_tie(w, ow, coords, attrs["nearest_mode"])):
                return t, shape
            g.first_axis_fixed = True
            y = g.node("Resize", [t, "", "", g.const(np.array([n, c, oh, ow], np.int64))], **attrs)
        else:
            return t, shape
        return y, (n, c, oh, ow)
    if k < 0.5 and c % 4 == 0:
        mode = str(r.choice(["DCR", "CRD"]))
        return g.node("DepthToSpace", [t], blocksize=2, mode=mode), (n, c // 4, 2 * h, 2 * w)
    if k < 0.54 and h % 2 == 0 and w % 2 == 0:
        return g.node("SpaceToDepth", [t], blocksize=2), (n, 4 * c, h // 2, w // 2)
    if k < 0.6:
        return g.node("InstanceNormalization", [t, g.const(r.uniform(0.5, 1.5, c).astype(np.float32)),
                                                 g.const(g.normal(c))], epsilon=1e-5), shape
    if k < 0.7:  # pooling with padding, ceil mode, dilation
        op = str(r.choice(["MaxPool", "AveragePool"]))
        kh, kw = (int(v) for v in r.choice([1, 2, 3], 2))
        s = int(r.choice([1, 2]))
        pads = [int(r.integers(0, kk)) for kk in (kh, kw, kh, kw)]
        ceil = int(r.integers(2))
        attrs = dict(kernel_shape=[kh, kw], strides=[s, s], pads=pads, ceil_mode=ceil)
        d = 1
        if op == "AveragePool":
            attrs["count_include_pad"] = int(r.integers(2))
        elif r.random() < 0.3:
            d = 2
            attrs["dilations"] = [d, d]

        def side(size, kk, lo, hi, ceil):
            span = size + lo + hi - d * (kk - 1) - 1
            return (-(-span // s) if ceil else span // s) + 1

        oh, ow = side(h, kh, pads[0], pads[2], ceil), side(w, kw, pads[1], pads[3], ceil)
        if ceil and ((oh - 1) * s >= h + pads[0] or (ow - 1) * s >= w + pads[1]):
            # (a last window that would start in the padding: ONNX's shape inference keeps it, ONNX
            # Runtime's kernels and PyTorch drop it; not a case to judge by either)
            attrs["ceil_mode"] = 0
            oh, ow = side(h, kh, pads[0], pads[2], 0), side(w, kw, pads[1], pads[3], 0)
        if oh < 1 or ow < 1:
            return t, shape

        def empty_window(size, out, kk, lo):  # a window whose every tap lies in the padding
            return any(all(not 0 <= o * s - lo + d * j < size for j in range(kk)) for o in range(out))

        if op == "MaxPool" and (empty_window(h, oh, kh, pads[0]) or empty_window(w, ow, kw, pads[1])):
            return t, shape  # (its maximum is the lowest float: what follows overflows in any implementation,
            # ONNX Runtime's instance norm to NaN where the spec gives the bias)
        return g.node(op, [t], **attrs), (n, c, oh, ow)
    if k < 0.76:  # padding: constant, reflect, edge
        mode = str(r.choice(["constant", "reflect", "edge"]))
        top, left, bottom, right = (int(r.integers(0, 3)) for _ in range(4))
        if mode == "reflect" and max(top, bottom) >= h or mode == "reflect" and max(left, right) >= w:
            return t, shape
        inputs = [t, g.const(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))]
        if mode == "constant" and r.random() < 0.5:
            inputs.append(g.const(np.float32(r.uniform(-1, 1))))
        return g.node("Pad", inputs, mode=mode), (n, c, h + top + bottom, w + left + right)
    if k < 0.82:  # a spatial slice, forwards with a step or reversed
        axis = int(r.choice([2, 3]))
        size = shape[axis]
        if r.random() < 0.5:
            y = g.node("Slice", [t, g.const(np.array([-1], np.int64)), g.const(np.array([-size - 1], np.int64)),
                                 g.const(np.array([axis], np.int64)), g.const(np.array([-1], np.int64))])
            return y, shape
        start, step = int(r.integers(0, max(1, size - 1))), int(r.choice([1, 2]))
        y = g.node("Slice", [t, g.const(np.array([start], np.int64)), g.const(np.array([size], np.int64)),
                             g.const(np.array([axis], np.int64)), g.const(np.array([step], np.int64))])
        out = list(shape)
        out[axis] = -(-(size - start) // step)
        return y, tuple(out)
    if k < 0.88:  # a broadcast along one image axis, or over the channels
        along = [(1, 1, h, 1), (1, 1, 1, w), (n, 1, h, w), (1, c, 1, w)][int(r.integers(4))]
        g.first_axis_fixed |= along[0] > 1
        op = str(r.choice(["Add", "Mul", "Sub", "Div"]))
        other = g.const(r.uniform(0.5, 1.5, along).astype(np.float32) if op == "Div" else g.normal(*along))
        return g.node(op, [t, other] if op == "Div" or r.random() < 0.5 else [other, t]), shape
    if k < 0.92:
        return g.node("Softmax", [t], axis=1), shape
    if k < 0.96:  # concatenated with itself along an image axis
        axis = int(r.choice([2, 3]))
        out = list(shape)
        out[axis] *= 2
        return g.node("Concat", [t, t], axis=axis), tuple(out)
    op = str(r.choice(["Elu", "Selu", "Celu", "Softplus", "Softsign", "HardSigmoid", "ThresholdedRelu",
                       "LeakyRelu", "PRelu", "Clip"]))
    if op == "PRelu":
        return g.node(op, [t, g.const(r.uniform(0.05, 0.3, (c, 1, 1)).astype(np.float32))]), shape
    if op == "Clip":
        lo = float(r.uniform(-1, 0))
        return g.node(op, [t, g.const(np.float32(lo)), g.const(np.float32(lo + r.uniform(0.1, 2)))]), shape
    attrs = {"Elu": dict(alpha=0.7), "Celu": dict(alpha=1.3), "HardSigmoid": dict(alpha=0.3, beta=0.4),
             "ThresholdedRelu": dict(alpha=0.2), "LeakyRelu": dict(alpha=0.05)}.get(op, {})
    return g.node(op, [t], **attrs), shape


# ONNX's recurrent activations wgnn and ONNX Runtime both take (activation_alpha, activation_beta), and
# those bounded to [0, 1], for gates (an unbounded gate grows the state by its value each step: a chain
# of such layers magnifies float rounding past any tolerance, or overflows the reference)
_RECURRENT_ACTIVATIONS = {"Sigmoid": (), "Tanh": (), "Relu": (), "HardSigmoid": (0.25, 0.5), "LeakyRelu": (0.1,),
                          "Elu": (0.8,), "Softsign": (), "Softplus": ()}
_GATE_ACTIVATIONS = ("Sigmoid", "HardSigmoid")


def _seq_recurrent(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """An LSTM, GRU or RNN over a (steps, batch, features) tensor in any direction, with or without
    biases, initial states (constants or graph inputs), sequence lengths, a cell clip, other
    activations, GRU's linear_before_reset, LSTM's peepholes and coupled gates; what follows reads the
    whole sequence (heads joined) or one of the last states, and the graph's outputs may be any of them."""
    r = g.rng
    steps, batch, features = shape
    op = str(r.choice(["LSTM", "GRU", "RNN"]))
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    hidden, dirs = int(r.choice([3, 4, 8])), int(r.choice([1, 2]))
    attrs = dict(hidden_size=hidden, direction="bidirectional" if dirs == 2 else str(r.choice(["forward", "reverse"])))
    inputs = [t, g.const(g.normal(dirs, gates * hidden, features, scale=0.6 / np.sqrt(features))),
              g.const(g.normal(dirs, gates * hidden, hidden, scale=0.6 / np.sqrt(hidden)))]
    inputs.append(g.const(g.normal(dirs, 2 * gates * hidden, scale=0.2)) if r.random() < 0.7 else "")
    if r.random() < 0.2:
        inputs.append(g.const(np.full(batch, steps, np.int32)))
        g.first_axis_fixed = True
    else:
        inputs.append("")
    states = 2 if op == "LSTM" else 1
    for _ in range(states):
        if r.random() < 0.4:
            state = g.normal(dirs, batch, hidden, scale=0.5)
            if r.random() < 0.5:
                name = g.name("h")
                g.feeds[name] = state
                inputs.append(name)
            else:
                inputs.append(g.const(state))
        else:
            inputs.append("")
    if op == "LSTM" and r.random() < 0.2:
        inputs.append(g.const(g.normal(dirs, 3 * hidden, scale=0.3)))  # peepholes
    if r.random() < 0.2:
        attrs["clip"] = float(r.uniform(0.5, 3))
    if r.random() < 0.2:
        kinds = list(_RECURRENT_ACTIVATIONS)
        names = [str(r.choice(kinds)) for _ in range({"LSTM": 3, "GRU": 2, "RNN": 1}[op])]
        if op != "RNN":  # the gates: bounded, or a ReLU under a clip of at most 1 (a cell state past the clip)
            names[0] = str(r.choice(_GATE_ACTIVATIONS))
            if "clip" in attrs and r.random() < 0.3:
                names[0], attrs["clip"] = "Relu", float(r.uniform(0.5, 1))
        names = names * dirs
        attrs["activations"] = names
        alphas = [a for nm in names for a in _RECURRENT_ACTIVATIONS[nm][:1]]
        betas = [b for nm in names for b in _RECURRENT_ACTIVATIONS[nm][1:]]
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
    if op == "GRU":
        attrs["linear_before_reset"] = int(r.integers(2))
    if op == "LSTM" and r.random() < 0.15:
        attrs["input_forget"] = 1
    while inputs[-1] == "":
        inputs.pop()
    outs = g.node(op, inputs, outputs=1 + states, **attrs)
    last = outs[1:]
    if r.random() < 0.3:  # the last state read, the whole sequence not wanted
        g.nodes[-1].output[0] = ""
        return last[int(r.integers(len(last)))], (dirs, batch, hidden)
    if r.random() < 0.3:  # a last state read too: an output of the graph
        g.tensors.append((last[int(r.integers(len(last)))], (dirs, batch, hidden)))
    y = g.node("Reshape", [g.node("Transpose", [outs[0]], perm=[0, 2, 1, 3]),
                           g.const(np.array([0, 0, dirs * hidden], np.int64))])
    return y, (steps, batch, dirs * hidden)


def _seq_step(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """A recurrent layer, or a step of the text family over the (steps, batch, features) tensor."""
    return (_seq_recurrent if g.rng.random() < 0.5 else _text_step)(g, t, shape)


def _scale(r: np.random.Generator, low: float, high: float) -> float:
    """A quantization scale as calibration gives one (a range over 255: no round number; scales such
    as 0.04, 0.05 and 0.08 make products of codes land exactly on halves, where the float rounding of
    the scales' product decides, and ONNX Runtime's order of operations is not wgnn's)."""
    return float(np.float32(r.uniform(low, high)))


def _quantized(g: _Graph, t: str, kind: tuple[float, int, int] | None = None) -> str:
    """``t`` quantized: as it is where it already is (``g.kinds``), else by a QuantizeLinear to
    ``kind`` (scale, zero point, ONNX element type: uint8 or int8) or a random one."""
    from onnx import TensorProto

    if t in g.kinds and kind is None:
        return t
    r = g.rng
    if kind is None:
        elem = int(r.choice([TensorProto.UINT8, TensorProto.INT8]))
        kind = (_scale(r, 0.02, 0.06), (int(r.choice([0, 128, 100])) if elem == TensorProto.UINT8
                                                      else int(r.choice([0, -20]))), elem)
    source = g.node("DequantizeLinear", [t, *g.qparams(g.kinds[t])]) if t in g.kinds else t
    q = g.node("QuantizeLinear", [source, *g.qparams(kind)])
    g.kinds[q] = kind
    return q


def _dynamic_conv_tail(g: _Graph, t: str, weights: np.ndarray) -> str:
    """A ConvInteger of ``t`` quantized at run time (DynamicQuantizeLinear), as an earlier ONNX
    Runtime quantize_dynamic wrote it (ddddocr's older recognizer): its int32 bias added to the sums
    (a constant, or a float bias quantized at run time by x_scale * w_scale: Div, Floor, Cast, Reshape),
    Cast to float, Mul by x_scale * w_scale, sometimes a swish after."""
    from onnx import TensorProto

    r = g.rng
    o, c = weights.shape[:2]
    q, x_scale, x_zero = g.node("DynamicQuantizeLinear", [t], outputs=3)
    sums = g.node("ConvInteger", [q, g.const(weights), x_zero, g.const(np.uint8(128))], kernel_shape=[3, 3],
                  pads=[1] * 4)
    scale = g.node("Mul", [x_scale, g.const(np.float32(1 / (73 * np.sqrt(9 * c))))])
    if r.random() < 0.5:
        bias = g.const(r.integers(-2000, 2000, (1, o, 1, 1)).astype(np.int32))
    else:
        ratio = g.node("Div", [g.const(g.normal(o)), scale])
        bias = g.node("Reshape", [g.node("Cast", [g.node("Floor", [ratio])], to=TensorProto.INT32),
                                  g.const(np.array([1, -1, 1, 1], np.int64))])
    y = g.node("Mul", [g.node("Cast", [g.node("Add", [sums, bias])], to=TensorProto.FLOAT), scale])
    return g.node("Mul", [y, g.node("Sigmoid", [y])]) if r.random() < 0.5 else y


def _quant_step(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """Integer pieces over (N, C, H, W) tensors of uint8 or int8 codes, as ONNX Runtime's quantizer
    and converters write them: QLinearConv (per-tensor or per-channel weights, a bias or none, strided,
    depthwise), the com.microsoft QLinear ops (Add, Mul of two quantized tensors, Sigmoid, LeakyRelu,
    global and windowed average pooling, Concat), max pooling, resizing, transposes and pads of codes,
    a requantization to another scale and type, a float op between DequantizeLinear and
    QuantizeLinear (QDQ), ConvInteger and QLinearMatMul."""
    from onnx import TensorProto

    r = g.rng
    n, c, h, w = shape
    q = _quantized(g, t)
    s, z, elem = g.kinds[q]
    k = r.random()

    def out_kind() -> tuple[float, int, int]:  # (the type stays: ONNX Runtime's QLinear kernels take one)
        return _scale(r, 0.03, 0.08), int(r.choice([0, 128])) if elem == TensorProto.UINT8 else 0, elem

    def alike(u: str) -> str:  # u quantized to q's type
        u = _quantized(g, u)
        return u if g.kinds[u][2] == elem else _quantized(g, u, (0.05, 128 if elem == TensorProto.UINT8 else 0, elem))

    def result(y, kind, out_shape):
        g.kinds[y] = kind
        return y, out_shape

    if k < 0.25 and h >= 2:  # QLinearConv
        size, stride = int(r.choice([1, 3])), int(r.choice([1, 1, 2]))
        groups = c if size == 3 and r.random() < 0.3 else 1
        o = c if groups > 1 else int(r.choice([4, 8, 12]))
        fan_in = c // groups * size * size
        weights = r.integers(-127, 128, (o, c // groups, size, size)).astype(np.int8)
        spread = r.uniform(0.5, 1.5, o) if r.random() < 0.5 else np.full(1, r.uniform(0.5, 1.5))  # per channel or not
        w_scale = (spread / (73 * np.sqrt(fan_in))).astype(np.float32)
        y_kind = out_kind()
        inputs = [q, *g.qparams((s, z, elem)), g.const(weights), g.const(w_scale if w_scale.size > 1 else w_scale[0]),
                  g.const(np.zeros(w_scale.size, np.int8) if w_scale.size > 1 else np.int8(0)), *g.qparams(y_kind)]
        if r.random() < 0.6:
            inputs.append(g.const(np.round(g.normal(o, scale=0.5) / (s * w_scale)).astype(np.int32)))
        pad = size // 2
        y = g.node("QLinearConv", inputs, kernel_shape=[size, size], strides=[stride, stride], pads=[pad] * 4,
                   group=groups)
        side = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
        return result(y, y_kind, (n, o) + side)
    if k < 0.35:  # QLinearAdd or QLinearMul with an earlier tensor of the shape, quantized its own way
        other = alike(g.same_shape(shape))
        y_kind = out_kind()
        op = str(r.choice(["QLinearAdd", "QLinearMul"]))
        y = g.node(op, [q, *g.qparams(g.kinds[q]), other, *g.qparams(g.kinds[other]), *g.qparams(y_kind)],
                   domain="com.microsoft")
        return result(y, y_kind, shape)
    if k < 0.45:
        op = str(r.choice(["QLinearSigmoid", "QLinearLeakyRelu", "QLinearGlobalAveragePool", "QLinearAveragePool"]))
        if op == "QLinearAveragePool" and min(h, w) < 2:
            op = "QLinearSigmoid"
        attrs = {"QLinearLeakyRelu": dict(alpha=0.1), "QLinearAveragePool": dict(kernel_shape=[2, 2], strides=[2, 2])}
        y_kind = (1 / 256, 0 if elem == TensorProto.UINT8 else -128, elem) if op == "QLinearSigmoid" else out_kind()
        y = g.node(op, [q, *g.qparams(g.kinds[q]), *g.qparams(y_kind)], domain="com.microsoft", **attrs.get(op, {}))
        out = {"QLinearGlobalAveragePool": (n, c, 1, 1), "QLinearAveragePool": (n, c, h // 2, w // 2)}.get(op, shape)
        return result(y, y_kind, out)
    if k < 0.52:  # QLinearConcat along the channels with a tensor of the same image size
        fits = [(u, sh) for u, sh in g.tensors if sh[0] == n and sh[2:] == shape[2:]]
        u, other = fits[int(r.integers(len(fits)))]
        u = alike(u)
        y_kind = out_kind()
        y = g.node("QLinearConcat", [*g.qparams(y_kind), q, *g.qparams(g.kinds[q]), u, *g.qparams(g.kinds[u])],
                   domain="com.microsoft", axis=1)
        return result(y, y_kind, (n, c + other[1], h, w))
    if k < 0.6 and h >= 2 and w >= 2:  # max pooling, or a nearest resize, of the codes themselves
        if r.random() < 0.5:
            y = g.node("MaxPool", [q], kernel_shape=[2, 2], strides=[2, 2])
            return result(y, g.kinds[q], (n, c, h // 2, w // 2))
        if h * w <= 100:
            y = g.node("Resize", [q, "", g.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")
            return result(y, g.kinds[q], (n, c, 2 * h, 2 * w))
    if k < 0.66:  # codes moved: a transpose of the image axes and back, or a pad by the zero point
        if r.random() < 0.5:
            y = g.node("Transpose", [g.node("Transpose", [q], perm=[0, 1, 3, 2])], perm=[0, 1, 3, 2])
            return result(y, g.kinds[q], shape)
        zero = g.const(np.array(z, np.uint8 if elem == TensorProto.UINT8 else np.int8))
        y = g.node("Pad", [q, g.const(np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64)), zero])
        return result(y, g.kinds[q], (n, c, h + 1, w + 1))
    if k < 0.74:  # requantized to another scale and type
        elem2 = int(r.choice([TensorProto.UINT8, TensorProto.INT8]))
        kind = (_scale(r, 0.02, 0.05), int(r.choice([0, 128])) if elem2 == TensorProto.UINT8 else 0, elem2)
        return _quantized(g, q, kind), shape
    if k < 0.86:  # QDQ: a float op between DequantizeLinear and QuantizeLinear
        f = g.node("DequantizeLinear", [q, *g.qparams(g.kinds[q])])
        op = str(r.choice(["Relu", "Sigmoid", "HardSwish", "Add"]))
        if op == "Add":
            u = _quantized(g, g.same_shape(shape))
            y = g.node(op, [f, g.node("DequantizeLinear", [u, *g.qparams(g.kinds[u])])])
        else:
            y = g.node(op, [f])
        kind = out_kind()
        return result(g.node("QuantizeLinear", [y, *g.qparams(kind)]), kind, shape)
    if k < 0.93 and elem == TensorProto.UINT8 and h >= 3:  # ConvInteger, its sums scaled back to float
        o = int(r.choice([4, 8]))
        weights = r.integers(0, 256, (o, c, 3, 3)).astype(np.uint8)
        if t not in g.kinds and r.random() < 0.5:  # (a float input:) quantize_dynamic's older tail
            return _dynamic_conv_tail(g, t, weights), (n, o, h, w)
        sums = g.node("ConvInteger", [q, g.const(weights), g.const(np.uint8(z)), g.const(np.uint8(128))],
                      kernel_shape=[3, 3], pads=[1] * 4)
        scale = g.const(np.float32(s / (73 * np.sqrt(9 * c))))
        y = g.node("Mul", [g.node("Cast", [sums], to=TensorProto.FLOAT), scale])
        return y, (n, o, h, w)
    # QLinearMatMul over the flattened image, back to (N, M, 1, 1)
    flat, m = c * h * w, int(r.choice([4, 8, 10]))
    weights = r.integers(-127, 128, (flat, m)).astype(np.int8)
    y_kind = out_kind()
    rows = g.node("Flatten", [q], axis=1)
    w_params = [g.const(weights), g.const(np.float32(1 / (73 * np.sqrt(flat)))), g.const(np.int8(0))]
    y = g.node("QLinearMatMul", [rows, *g.qparams(g.kinds[q]), *w_params, *g.qparams(y_kind)])
    g.kinds[y] = y_kind
    return result(g.node("Reshape", [y, g.const(np.array([0, m, 1, 1], np.int64))]), y_kind, (n, m, 1, 1))


class _TFLiteGraph(_Chain):
    """A TFLite graph under construction (``wgnn.tflite_writer.ModelWriter``) and its tensors (by
    index, NHWC shapes)."""

    def __init__(self, rng: np.random.Generator):
        from .tflite_writer import ModelWriter

        super().__init__(rng)
        self.m = ModelWriter()

    def weights(self, *shape: int, fan_in: int) -> int:
        return self.m.const(self.normal(*shape, scale=fan_in ** -0.5))


def _tflite_side(size: int, kernel: int, stride: int, dilation: int, same: bool) -> int:
    """TFLite's output side: SAME ceil(size / stride), VALID ceil((size - span + 1) / stride)."""
    return -(-size // stride) if same else -(-(size - dilation * (kernel - 1)) // stride)


def _tflite_step(g: _TFLiteGraph, x: int, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """MediaPipe's and converted models' pieces over (N, H, W, C) tensors: convolutions (SAME or
    VALID, strided, dilated, with a fused activation), depthwise ones with a multiplier, binary ops
    with a constant per channel or another tensor (fused activations), pooling, pads, concats,
    bilinear and nearest resizing in each of its coordinate modes, activations, PRelu, a spatial
    mean, transposed convolutions, softmax, a fully connected layer over the flattened image,
    transposes, depth to space and back."""
    r, m = g.rng, g.m
    n, h, w, c = shape
    k = r.random()
    act = int(r.choice([0, 0, 1, 2, 3]))  # NONE, RELU, RELU_N1_TO_1, RELU6
    same = bool(r.random() < 0.6)
    if k < 0.18:  # CONV_2D
        (kh, kw), o = (int(v) for v in r.choice([1, 3, 5], 2)), int(r.choice([4, 8, 12]))
        stride = int(r.choice([1, 1, 2]))
        dil = int(r.choice([1, 2])) if stride == 1 else 1
        oh, ow = _tflite_side(h, kh, stride, dil, same), _tflite_side(w, kw, stride, dil, same)
        if oh < 1 or ow < 1:
            return x, shape
        inputs = [x, g.weights(o, kh, kw, c, fan_in=kh * kw * c), m.const(g.normal(o, scale=0.3))]
        y = m.op("CONV_2D", inputs, (n, oh, ow, o), "Conv2DOptions", Padding=0 if same else 1, StrideW=stride,
                 StrideH=stride, FusedActivationFunction=act, DilationWFactor=dil, DilationHFactor=dil)
        return y, (n, oh, ow, o)
    if k < 0.28:  # DEPTHWISE_CONV_2D
        size, stride, mult = int(r.choice([3, 5])), int(r.choice([1, 2])), int(r.choice([1, 1, 2]))
        oh, ow = _tflite_side(h, size, stride, 1, same), _tflite_side(w, size, stride, 1, same)
        if oh < 1 or ow < 1:
            return x, shape
        inputs = [x, g.weights(1, size, size, c * mult, fan_in=size * size), m.const(g.normal(c * mult, scale=0.3))]
        y = m.op("DEPTHWISE_CONV_2D", inputs, (n, oh, ow, c * mult), "DepthwiseConv2DOptions", Padding=0 if same else 1,
                 StrideW=stride, StrideH=stride, DepthMultiplier=mult, FusedActivationFunction=act,
                 DilationWFactor=1, DilationHFactor=1)
        return y, (n, oh, ow, c * mult)
    if k < 0.42:  # a binary op with a constant per channel, one per row, or another tensor of the shape
        kind = str(r.choice(["ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM"]))
        other_shape = [(c,), (1, 1, w, c), shape][int(r.integers(3))]
        if other_shape == shape and kind != "DIV":
            other = g.same_shape(shape)
        else:
            values = g.normal(*other_shape)
            other = m.const(np.abs(values) + 0.5 if kind == "DIV" else values)
        options = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions", "DIV": "DivOptions"}.get(kind)
        fields = {"FusedActivationFunction": act} if options else {}
        return m.op(kind, [x, other], shape, options, **fields), shape
    if k < 0.52:  # MAX_POOL_2D, AVERAGE_POOL_2D
        size, stride = int(r.choice([2, 3])), int(r.choice([1, 2]))
        oh, ow = _tflite_side(h, size, stride, 1, same), _tflite_side(w, size, stride, 1, same)
        if oh < 1 or ow < 1:
            return x, shape
        kind = str(r.choice(["MAX_POOL_2D", "AVERAGE_POOL_2D"]))
        y = m.op(kind, [x], (n, oh, ow, c), "Pool2DOptions", Padding=0 if same else 1, StrideW=stride, StrideH=stride,
                 FilterWidth=size, FilterHeight=size, FusedActivationFunction=act)
        return y, (n, oh, ow, c)
    if k < 0.57:  # PAD, PADV2
        pads = [[0, 0], [int(r.integers(3)), int(r.integers(3))], [int(r.integers(3)), int(r.integers(3))],
                [0, int(r.choice([0, 0, 3]))]]
        out = (n, h + sum(pads[1]), w + sum(pads[2]), c + sum(pads[3]))
        if r.random() < 0.5:
            return m.op("PAD", [x, m.const(pads, "int32")], out), out
        return m.op("PADV2", [x, m.const(pads, "int32"), m.const(np.float32(r.uniform(-1, 1)))], out), out
    if k < 0.64:  # CONCATENATION along the channels with a tensor of the image's size, or of itself along H or W
        fits = [(t, s) for t, s in g.tensors if s[:3] == shape[:3]]
        if r.random() < 0.6:
            t, other = fits[int(r.integers(len(fits)))]
            out = (n, h, w, c + other[3])
            # (no fused activation: LiteRT's own kernel refuses one, its XNNPACK delegate ignores it)
            return m.op("CONCATENATION", [x, t], out, "ConcatenationOptions", Axis=int(r.choice([3, -1])),
                        FusedActivationFunction=0), out
        axis = int(r.choice([1, 2]))
        out = (n, 2 * h, w, c) if axis == 1 else (n, h, 2 * w, c)
        return m.op("CONCATENATION", [x, x], out, "ConcatenationOptions", Axis=axis, FusedActivationFunction=0), out
    if k < 0.71 and h * w <= 200:  # RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR
        kind = str(r.choice(["RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"]))
        align, half = [(False, False), (True, False), (False, True)][int(r.integers(3))]
        oh, ow = int(r.integers(1, 2 * h + 1)), int(r.integers(1, 2 * w + 1))
        options = "ResizeBilinearOptions" if kind == "RESIZE_BILINEAR" else "ResizeNearestNeighborOptions"
        return m.op(kind, [x, m.const([oh, ow], "int32")], (n, oh, ow, c), options, AlignCorners=align,
                    HalfPixelCenters=half), (n, oh, ow, c)
    if k < 0.8:  # activations
        kind = str(r.choice(["HARD_SWISH", "LOGISTIC", "TANH", "RELU", "RELU6", "LEAKY_RELU", "PRELU", "ELU"]))
        if kind == "LEAKY_RELU":
            return m.op(kind, [x], shape, "LeakyReluOptions", Alpha=float(r.uniform(0.05, 0.3))), shape
        if kind == "PRELU":
            return m.op(kind, [x, m.const(r.uniform(0.05, 0.3, (1, 1, c)).astype(np.float32))], shape), shape
        return m.op(kind, [x], shape), shape
    if k < 0.84:  # MEAN over the image, kept
        return m.op("MEAN", [x, m.const([1, 2], "int32")], (n, 1, 1, c), "ReducerOptions", KeepDims=True), (n, 1, 1, c)
    if k < 0.89 and h * w <= 100:  # TRANSPOSE_CONV
        size, stride, o = int(r.choice([2, 3, 4])), int(r.choice([1, 2])), int(r.choice([4, 8]))
        oh, ow = (h * stride, w * stride) if same else ((h - 1) * stride + size, (w - 1) * stride + size)
        inputs = [m.const([n, oh, ow, o], "int32"), g.weights(o, size, size, c, fan_in=size * size * c // stride), x]
        return m.op("TRANSPOSE_CONV", inputs, (n, oh, ow, o), "TransposeConvOptions", Padding=0 if same else 1,
                    StrideW=stride, StrideH=stride), (n, oh, ow, o)
    if k < 0.92:
        return m.op("SOFTMAX", [x], shape, "SoftmaxOptions", Beta=float(r.choice([1.0, 0.5]))), shape
    if k < 0.95:  # FULLY_CONNECTED over the flattened image, back to (N, 1, 1, M)
        flat, units = h * w * c, int(r.choice([4, 8, 10]))
        rows = m.op("RESHAPE", [x, m.const([n, flat], "int32")], (n, flat))
        y = m.op("FULLY_CONNECTED", [rows, g.weights(units, flat, fan_in=flat), m.const(g.normal(units, scale=0.3))],
                 (n, units), "FullyConnectedOptions", FusedActivationFunction=act, WeightsFormat=0, KeepNumDims=False)
        return m.op("RESHAPE", [y, m.const([n, 1, 1, units], "int32")], (n, 1, 1, units)), (n, 1, 1, units)
    if k < 0.97:  # H and W swapped
        return m.op("TRANSPOSE", [x, m.const([0, 2, 1, 3], "int32")], (n, w, h, c)), (n, w, h, c)
    if c % 4 == 0:
        return m.op("DEPTH_TO_SPACE", [x], (n, 2 * h, 2 * w, c // 4), "DepthToSpaceOptions",
                    BlockSize=2), (n, 2 * h, 2 * w, c // 4)
    if h % 2 == 0 and w % 2 == 0:
        return m.op("SPACE_TO_DEPTH", [x], (n, h // 2, w // 2, 4 * c), "SpaceToDepthOptions",
                    BlockSize=2), (n, h // 2, w // 2, 4 * c)
    return x, shape


def random_tflite_graph(seed: int):
    """(the TFLite model's bytes, its feeds, its ops) made from ``seed``: the ``tflite`` family's
    graph, a chain of 2 to 8 random steps (``_tflite_step``) over an NHWC image."""
    g = _TFLiteGraph(np.random.default_rng([seed, FAMILIES.index("tflite")]))
    r = g.rng
    shape = (int(r.choice([1, 2])), int(r.integers(3, 13)), int(r.integers(3, 13)), int(r.choice([2, 3, 4, 8])))
    x = g.m.input(shape)
    feeds = {"input_0": g.normal(*shape)}
    g.tensors.append((x, shape))
    for _ in range(int(r.integers(2, 9))):
        t, s = g.pick()
        if int(np.prod(s)) > 20000:
            continue
        made = _tflite_step(g, t, s)
        if made[0] != t:
            g.tensors.append(made)
    outputs = [g.tensors[-1][0]]
    if len(g.tensors) > 2 and r.random() < 0.3:
        outputs.append(g.tensors[int(r.integers(1, len(g.tensors) - 1))][0])
    ops = "->".join(g.m.codes[o["code"]][1] for o in g.m.ops)
    return g.m.bytes(outputs), feeds, ops


def litert_outputs(model: bytes, feeds) -> list[np.ndarray]:
    """LiteRT's outputs of a TFLite model (one thread): the tflite family's reference, and the
    tests'. ``feeds``: the inputs' values in order (or a dict of them in order); an input with
    dynamic dimensions is resized to its value's shape."""
    from ai_edge_litert.interpreter import Interpreter

    values = list(feeds.values()) if isinstance(feeds, dict) else list(feeds)
    it = Interpreter(model_content=model, num_threads=1)
    for detail, value in zip(it.get_input_details(), values):
        if tuple(detail["shape"]) != value.shape:
            it.resize_tensor_input(detail["index"], value.shape)
    it.allocate_tensors()
    for detail, value in zip(it.get_input_details(), values):
        it.set_tensor(detail["index"], value)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def _bert_embeddings(g: _Graph) -> tuple[str, tuple[int, ...]]:
    """A BERT's input as exporters write it: token ids (``x``, int64) and an attention mask
    (``x_mask``, int64, each row's padding at its end) fed; word embeddings gathered by id plus
    position embeddings, layer-normalized; the mask made the scores' additive bias ``g.mask_bias``
    ((1 - mask) * -10000, unsqueezed to (B, 1, 1, S)) for ``_bert_attention``."""
    from onnx import TensorProto

    r = g.rng
    b, s, c, vocab = int(r.choice([1, 2])), int(r.choice([3, 5, 8, 13])), int(r.choice([8, 12, 16])), 30
    lengths = r.integers(1, s + 1, b)
    g.feeds["x"] = r.integers(0, vocab, (b, s)).astype(np.int64)
    g.feeds["x_mask"] = (np.arange(s)[None] < lengths[:, None]).astype(np.int64)
    words = g.node("Gather", [g.const(g.normal(vocab, c)), "x"], axis=0)
    summed = g.node("Add", [words, g.const(g.normal(s, c, scale=0.3))])
    x = g.node("LayerNormalization", [summed, g.const(r.uniform(0.5, 1.5, c).astype(np.float32)),
                                      g.const(g.normal(c, scale=0.1))], axis=-1)
    wide = g.node("Unsqueeze", [g.node("Unsqueeze", ["x_mask", g.const(np.array([1], np.int64))]),
                                g.const(np.array([2], np.int64))])
    keep = g.node("Cast", [wide], to=TensorProto.FLOAT)
    g.mask_bias = g.node("Mul", [g.node("Sub", [g.const(np.float32(1)), keep]), g.const(np.float32(-10000))])
    return x, (b, s, c)


def _bert_attention(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """Self-attention over the padded batch as BERT's exports write it: Q, K and V projections with
    biases, heads split by Reshape and Transpose, scores scaled, the mask's bias added, softmax, the
    heads joined, an output projection, the residual and a layer norm; or the first token pooled
    (Gather of index 0, Tanh of a dense layer: BERT's pooler; a sequence of one after it), else a
    text step."""
    r = g.rng
    b, s, c = shape
    k = r.random()
    if k < 0.45 and c % 2 == 0 and g.mask_bias:
        heads = int(r.choice([h for h in (1, 2, 4) if c % h == 0]))

        def projected(name: str) -> str:
            y = g.node("Add", [g.node("MatMul", [t, g.const(g.normal(c, c, scale=c ** -0.5))]), g.const(g.normal(c))])
            split = g.node("Reshape", [y, g.const(np.array([0, 0, heads, c // heads], np.int64))])
            return g.node("Transpose", [split], perm=[0, 2, 3, 1] if name == "k" else [0, 2, 1, 3])

        q, keys, v = projected("q"), projected("k"), projected("v")
        scores = g.node("Div", [g.node("MatMul", [q, keys]), g.const(np.float32(np.sqrt(c // heads)))])
        p = g.node("Softmax", [g.node("Add", [scores, g.mask_bias])], axis=-1)
        joined = g.node("Reshape", [g.node("Transpose", [g.node("MatMul", [p, v])], perm=[0, 2, 1, 3]),
                                    g.const(np.array([0, 0, c], np.int64))])
        dense = g.node("MatMul", [joined, g.const(g.normal(c, c, scale=c ** -0.5))])
        out = g.node("Add", [dense, g.const(g.normal(c))])
        gamma, beta = g.const(r.uniform(0.5, 1.5, c).astype(np.float32)), g.const(g.normal(c, scale=0.1))
        return g.node("LayerNormalization", [g.node("Add", [out, t]), gamma, beta], axis=-1), shape
    if k < 0.55 and g.mask_bias:
        first = g.node("Gather", [t, g.const(np.array(0, np.int64))], axis=1)
        pooled = g.node("Tanh", [g.node("Gemm", [first, g.const(g.normal(c, c, scale=c ** -0.5)),
                                                 g.const(g.normal(c))])])
        g.mask_bias = ""  # (a sequence of one from here on: the mask's length no longer fits)
        return g.node("Unsqueeze", [pooled, g.const(np.array([1], np.int64))]), (b, 1, c)
    return _text_step(g, t, shape)


# a family's steps: (the common pieces, what exporters write op by op, what passes fold into epilogues;
# the data family has only the first)
STEPS = {"text": (_text_step, _text_written_out, _text_epilogues), "cnn": (_cnn_step, _cnn_written_out, _cnn_epilogues),
         "data": (_data_step,) * 3, "vision": (_vision_step,) * 3, "seq": (_seq_step, _seq_recurrent, _text_epilogues),
         "quant": (_quant_step,) * 3, "bert": (_bert_attention, _text_written_out, _text_epilogues)}


def random_graph(seed: int, family: str):
    """(the ONNX model, its feeds) of ``family`` (``FAMILIES``) made from ``seed``: the same
    graph for the same seed, to reproduce what ``differential`` reports."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if family == "tflite":
        raise ValueError("the tflite family's graphs are TFLite models: random_tflite_graph(seed)")
    g = _Graph(np.random.default_rng([seed, FAMILIES.index(family)]))
    r = g.rng
    if family == "text":
        shape = (int(r.integers(1, 3)), int(r.choice([3, 5, 8, 12, 13])), int(r.choice([4, 6, 8, 12, 16])))
        if r.random() < 0.5:
            g.feeds["s"] = np.array(r.uniform(0.2, 2.0), np.float32)  # (a number computed before the graph)
    elif family == "cnn":
        side = int(r.choice([5, 8, 9, 14]))
        shape = (int(r.choice([1, 2])), int(r.choice([3, 4, 8, 12, 16])), side, side)
    elif family == "data":
        shape = tuple(int(d) for d in r.integers(1, 6, int(r.integers(2, 5))))
    elif family == "quant":
        shape = (int(r.choice([1, 2])), int(r.choice([3, 4, 8])), int(r.choice([5, 8, 9])), int(r.choice([5, 8, 9])))
    elif family == "vision":
        shape = (int(r.choice([1, 2])), int(r.choice([2, 3, 4, 8])), int(r.integers(3, 13)), int(r.integers(3, 13)))
    elif family == "seq":
        shape = (int(r.choice([1, 2, 5, 7])), int(r.choice([1, 2, 3])), int(r.choice([3, 4, 8])))
    if family == "bert":
        g.tensors.append(_bert_embeddings(g))
    else:
        g.feeds["x"] = g.normal(*shape)
        g.tensors.append(("x", shape))
    for _ in range(int(r.integers(2, 9))):
        core, written_out, epilogues = STEPS[family]
        t, shape = g.pick()
        if family in ("data", "vision") and int(np.prod(shape)) > 20000:  # (concats and resizes grow them)
            continue
        make = (written_out if r.random() < 0.5 else epilogues) if r.random() < 0.4 else core
        g.tensors.append(make(g, t, shape))
    return g.model(), dict(g.feeds)


@dataclass
class GraphReport:
    counts: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str, int, str]] = field(default_factory=list)  # (outcome, family, seed, detail)
    reference: str = ""
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not (self.counts["mismatch"] or self.counts["exception"])

    def summary(self) -> str:
        total = sum(self.counts.values())
        lines = [f"{total} random graphs against {self.reference} in {self.seconds:.0f} s: "
                 + ", ".join(f"{self.counts[o]} {o}" for o in OUTCOMES)]
        for outcome, family, seed, detail in self.failures[:50]:
            made = f"random_tflite_graph({seed})" if family == "tflite" else f"random_graph({seed}, {family!r})"
            lines.append(f"  {outcome}: {made}: {detail}")
        return "\n".join(lines)


def _reference():
    """(its name, run(model, feeds) -> outputs): ONNX Runtime CPU where installed, else wgnn's
    numpy reference."""
    try:
        import onnxruntime as ort
    except ImportError:
        from .session import InferenceSession

        def numpy_reference(model, feeds):
            session = InferenceSession(model)
            found = session.run_reference(feeds)
            return [found[o.name] for o in model.graph.output]

        return "wgnn's numpy reference", numpy_reference

    options = ort.SessionOptions()
    options.log_severity_level = 4  # (a graph of one size only, fed another, is skipped, not logged)
    # the graph as written: ONNX Runtime's own rewrites change results (they fold a QuantizeLinear ->
    # DequantizeLinear pair between two scales into one step: a code apart on 30% of the values)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL

    def onnxruntime_cpu(model, feeds):
        return ort.InferenceSession(model.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"]).run(None, feeds)

    return "ONNX Runtime CPU", onnxruntime_cpu


def other_feeds(feeds: dict, seed: int) -> dict:
    """The same inputs with other values (each input's values shuffled and scaled by a positive
    number: what the graph takes in stays in its range, a scale stays positive)."""
    rng = np.random.default_rng([seed, 7])
    return {k: np.asarray(rng.permutation(v.ravel()) * (rng.uniform(0.5, 1.5) if v.dtype.kind == "f" else 1),
                          v.dtype).reshape(v.shape) for k, v in feeds.items()}  # (token ids only shuffled)


def random_kernels(seed: int) -> dict:
    """A kernel variant for every op the compute backend's policy chooses for (``KernelPolicy``'s
    overrides by op: each node its op's variant where it can run it, else the policy's), with random
    sizes: tiles, workgroups, split-K. The same choices for the same seed."""
    from .backends.compute.policy import SPLIT_VARIANTS, SPLITS, VARIANTS, WORKGROUP_SIZES, Choice

    r = np.random.default_rng([seed, 11])
    chosen = {}
    for op, variants in VARIANTS.items():
        variant = str(r.choice(list(variants)))
        tiles = variants[variant]
        chosen[op] = Choice(variant, int(r.choice(tiles)) if tiles and r.random() < 0.7 else None,
                            int(r.choice(WORKGROUP_SIZES)) if r.random() < 0.4 else None,
                            int(r.choice(SPLITS)) if variant in SPLIT_VARIANTS and r.random() < 0.5 else None)
    return chosen


def check(seed: int, family: str, precision: str = "fp32", reference=None,
          backend: str = "compute", kernels: str | None = None) -> tuple[str, str]:
    """(outcome, detail) of one random graph: wgnn (``backend``, ``precision``) against the
    reference, run twice by one session with other input values the second time (what one run
    leaves in the planned buffers must not reach the next), and where x's first axis is symbolic a
    third time with one more along it (and along the other inputs named x... that share it).
    ``kernels="random"``: the compute backend's kernel variants chosen at random
    (``random_kernels(seed)``), not by its policy."""
    from .session import InferenceSession

    overrides = random_kernels(seed) if kernels == "random" else None
    if family == "tflite":
        model, feeds, ops = random_tflite_graph(seed)
        run_reference, quantized, declared = litert_outputs, False, {}
    else:
        model, feeds = random_graph(seed, family)
        run_reference = reference or _reference()[1]
        ops = "->".join(n.op_type for n in model.graph.node)
        quantized = any(n.op_type in ("QuantizeLinear", "DynamicQuantizeLinear") for n in model.graph.node)
        declared = {i.name: i.type.tensor_type.shape.dim for i in model.graph.input}
    runs = [(feeds, run_reference(model, feeds), "")]
    second = other_feeds(feeds, seed)
    runs.append((second, run_reference(model, second), "second run: "))
    if declared and declared["x"][0].dim_param:  # (x's first axis symbolic)
        x = feeds["x"]  # (and the inputs that share its first axis: x_mask)
        third = other_feeds({**feeds, **{k: np.concatenate([v, v[:1]]) for k, v in feeds.items()
                                         if k.startswith("x")}}, seed + 1)
        try:
            runs.append((third, run_reference(model, third), f"x's first axis {len(x)} -> {len(x) + 1}: "))
        except Exception:  # (a tensor whose first axis is not x's met one that is: a graph of one size only)
            pass
    try:
        with warnings.catch_warnings():  # (an fp16 result past f16's range is warned of: counted as such)
            warnings.simplefilter("ignore")
            session = InferenceSession(model, precision=precision, backend=backend, kernels=overrides)
            for run_feeds, want, which in runs:
                got = session.run(None, run_feeds)
                outcome = _judge([o.name for o in session.get_outputs()], got, want, precision, quantized)
                if outcome is not None and outcome[0] == "mismatch":
                    ran = sorted({d.kernel for d in getattr(session._exe, "dispatches", [])}) if overrides else []
                    return "mismatch", f"{which}{outcome[1]}; {ops}" + (f"; kernels {', '.join(ran)}" if ran else "")
                if outcome is not None:
                    return outcome[0], which + outcome[1]
    except WgnnError as exc:
        return "refused", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # (a bug: named with where it happened)
        return "exception", f"{type(exc).__name__}: {exc} ({traceback.extract_tb(exc.__traceback__)[-1].name})"
    return "match", ""


def _judge(names: list[str], got: list, want: list, precision: str, quantized: bool) -> tuple[str, str] | None:
    """None where ``got`` (the outputs ``names``) matches ``want``, else (outcome, detail)."""
    spread = precision == "fp16" or quantized  # (judged over each output: rounding moves a few values)
    allowed = max(TOLERANCE[precision], QUANTIZED_TOLERANCE if quantized else 0.0)
    if quantized and precision == "fp16":  # (f16's rounding of what is quantized moves codes more often)
        allowed *= 2
    if precision == "fp16" and not all(np.isfinite(g).all() for g in got) and all(np.isfinite(w).all() for w in want):
        return "overflow", "a value inside the graph past f16's range (65504), as the session warns"
    for name, g, w in zip(names, got, want):
        if g.shape != w.shape:
            return "mismatch", f"output {name!r} of shape {g.shape}, the reference's {w.shape}"
        both_nan = np.isnan(g) & np.isnan(w)  # (NaN where the reference has NaN: an instance norm of
        # windows wholly in a max pool's padding)
        g, w = np.where(both_nan, 0, g), np.where(both_nan, 0, w)
        apart = np.where(g == w, 0, np.abs(g.astype(np.float64) - w))  # (infinities equal)
        w = np.where(np.isfinite(w), w, 0)
        if spread:
            floor = 0.1 * np.sqrt(w.size)  # (a root mean square of 0.1 at least: a result that cancels to
            # nearly nothing, x - mean(x) of near-equal values, keeps f16's rounding of what it came from)
            err, what = float(np.linalg.norm(apart) / max(float(np.linalg.norm(w)), floor)), "relative L2 error"
        else:
            err, what = float(apart.max() / max(float(np.abs(w).max()), 1e-2)), "of its largest value apart"
        codes_apart_by_one = w.dtype.kind in "iu" and float(apart.max(initial=0)) <= 1  # (8-bit codes a
        # rounding apart: a few codes of a small tensor make a large relative error)
        if w.size and (not np.isfinite(err) or err > allowed) and not codes_apart_by_one:
            return "mismatch", f"output {name!r} {err:.3g} {what} (allowed {allowed:g})"
    return None


def _has_litert() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def differential(count: int = 100, *, seed: int = 0, precision: str = "fp32", backend: str = "compute",
                 families: tuple[str, ...] | None = None, kernels: str | None = None, progress=None) -> GraphReport:
    """``count`` random graphs, the ``families`` in turn (default: all; ``tflite`` where LiteRT, its
    reference, is installed), seeds from ``seed`` on, each against the reference (``kernels``: see
    ``check``); the report counts the outcomes and names every mismatch and exception."""
    if families is None:
        families = tuple(f for f in FAMILIES if f != "tflite" or _has_litert())
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"families must be some of {', '.join(FAMILIES)}, got {', '.join(families) or 'none'}")
    if "tflite" in families and not _has_litert():
        raise ValueError("the tflite family's reference is LiteRT: pip install ai-edge-litert")
    start = time.perf_counter()
    name, run_reference = _reference()
    report = GraphReport(reference=name + (" (LiteRT for tflite)" if "tflite" in families else ""))
    from .runtime import default_device

    for k in range(count):
        if k and k % 500 == 0:  # (each graph's own pipelines, about 2 MB each on lavapipe, not kept all run)
            default_device().forget_pipelines()
        family, graph_seed = families[k % len(families)], seed + k // len(families)
        outcome, detail = check(graph_seed, family, precision, run_reference, backend, kernels)
        report.counts[outcome] += 1
        if outcome in ("mismatch", "exception"):
            report.failures.append((outcome, family, graph_seed, detail))
        if progress is not None:
            progress(k + 1, outcome)
    report.seconds = time.perf_counter() - start
    return report


def main(args) -> int:
    """``wgnn fuzz --graphs``."""
    import sys

    from tqdm import tqdm

    families = tuple(f.strip() for f in args.families.split(",") if f.strip()) if args.families else None
    with tqdm(total=args.count, unit="graph", file=sys.stderr, disable=None) as bar:
        try:
            report = differential(args.count, seed=args.seed, precision=args.precision, backend=args.backend,
                                  families=families, kernels=args.kernels, progress=lambda k, outcome: bar.update(1))
        except ValueError as exc:
            print(f"wgnn fuzz: --families: {exc}", file=sys.stderr)
            return 2
    print(report.summary())
    return 0 if report.clean else 1
