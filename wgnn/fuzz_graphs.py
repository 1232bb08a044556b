"""Differential fuzzing: random ONNX graphs made of the pieces real models are made of, each run by
wgnn and by a reference, so that a result that is silently wrong (a fusion that fires where it
must not, a buffer planned over another) is found and named by the seed that makes it.

    wgnn fuzz --graphs [--count 500] [--seed 0] [--precision fp32] [--backend compute]

Five families of graphs, each a chain of 2 to 8 random steps, a step reading the last tensor or
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
- ``seq``: (steps, batch, features) sequences through LSTMs, GRUs and RNNs in every direction, with
  initial states (constants or graph inputs), clips, other activations, peepholes, their last states
  read or given out (``_seq_recurrent``), between the text family's steps.

The first two families also take what exporters write op by op (``_text_written_out``,
``_cnn_written_out``: GELU, SiLU, hard swish, RMS normalization, Gemm, split and join, transposed
convolutions, resizing, QDQ) and what the passes fold into epilogues (``_text_epilogues``,
``_cnn_epilogues``: PRelu, bounds, affine and residual after an activation, LSTMs, SPP).

The reference is ONNX Runtime's CPU provider where it is installed, else wgnn's numpy reference of
the graph as imported (``InferenceSession.run_reference``: it shares the importer, so it finds the
passes', the planner's and the kernels' faults, not the importer's). In fp32 a graph matches where
every value of every output is within ``TOLERANCE`` of the reference's largest (at least 0.01: a
result that should be zero is allowed float rounding); in fp16, where f16's rounding of large values
is legitimately a few steps, where each output's relative L2 error is within it (its root mean
square taken as 0.1 at least; a region computed wrong is far more: a layer normalization over a
few near-equal f16 values magnifies their rounding to 1%). Graphs that quantize (QuantizeLinear,
DynamicQuantizeLinear) are judged so too, within 3e-2 (6e-2 in fp16), since a float rounding apart
before a quantizer moves an 8-bit code by one step, as it does between ONNX Runtime's own graphs.
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

FAMILIES = ("text", "cnn", "data", "vision", "seq")
OUTCOMES = ("match", "mismatch", "overflow", "refused", "exception")
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}
QUANTIZED_TOLERANCE = 3e-2


class _Graph:
    """An ONNX graph under construction: nodes, initializers, inputs, and the tensors made so far
    with their shapes (the steps' material)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes, self.initializers, self.feeds = [], [], {}
        self.tensors: list[tuple[str, tuple[int, ...]]] = []
        self._count = 0

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

    def normal(self, *shape: int, scale: float = 1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def pick(self) -> tuple[str, tuple[int, ...]]:
        """The last tensor mostly, else an earlier one."""
        return self.tensors[-1] if self.rng.random() < 0.7 else self.tensors[int(self.rng.integers(len(self.tensors)))]

    def same_shape(self, shape: tuple[int, ...]) -> str:
        matches = [t for t, s in self.tensors if s == shape]
        return matches[int(self.rng.integers(len(matches)))]

    def model(self):
        from onnx import TensorProto, helper

        r = self.rng
        outputs = [self.tensors[-1]]
        if len(self.tensors) > 2 and r.random() < 0.3:  # (an intermediate read further on, an output too)
            outputs.append(self.tensors[int(r.integers(1, len(self.tensors) - 1))])
        graph = helper.make_graph(
            self.nodes, "random",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, v.shape) for n, v in self.feeds.items()],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in dict(outputs)], self.initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


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
        y = g.node("Reshape", [y, g.const(np.array(list(shape[:-1]) + [n], np.int64))])
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
                               g.const(np.array([b, seq, dirs * hidden], np.int64))])
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
        split = g.node("Reshape", [t, g.const(np.array([b, s, 2, c // 2], np.int64))])
        q = g.node("Transpose", [split], perm=[0, 2, 1, 3])
        keys = g.node("Transpose", [split], perm=[0, 2, 3, 1])
        p = g.node("Softmax", [g.node("MatMul", [q, keys])], axis=-1)
        joined = g.node("Transpose", [g.node("MatMul", [p, q])], perm=[0, 2, 1, 3])
        y = g.node("Reshape", [joined, g.const(np.array([b, s, c], np.int64))])
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
        kk, s, d = int(r.choice([2, 3, 4])), int(r.choice([1, 2, 2, 3])), int(r.choice([1, 1, 2]))
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
    inputs.append(g.const(np.full(batch, steps, np.int32)) if r.random() < 0.2 else "")
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
                           g.const(np.array([steps, batch, dirs * hidden], np.int64))])
    return y, (steps, batch, dirs * hidden)


def _seq_step(g: _Graph, t: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """A recurrent layer, or a step of the text family over the (steps, batch, features) tensor."""
    return (_seq_recurrent if g.rng.random() < 0.5 else _text_step)(g, t, shape)


# a family's steps: (the common pieces, what exporters write op by op, what passes fold into epilogues;
# the data family has only the first)
STEPS = {"text": (_text_step, _text_written_out, _text_epilogues), "cnn": (_cnn_step, _cnn_written_out, _cnn_epilogues),
         "data": (_data_step,) * 3, "vision": (_vision_step,) * 3, "seq": (_seq_step, _seq_recurrent, _text_epilogues)}


def random_graph(seed: int, family: str):
    """(the ONNX model, its feeds) of ``family`` (``FAMILIES``) made from ``seed``: the same
    graph for the same seed, to reproduce what ``differential`` reports."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
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
    elif family == "vision":
        shape = (int(r.choice([1, 2])), int(r.choice([2, 3, 4, 8])), int(r.integers(3, 13)), int(r.integers(3, 13)))
    else:
        shape = (int(r.choice([1, 2, 5, 7])), int(r.choice([1, 2, 3])), int(r.choice([3, 4, 8])))
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
            lines.append(f"  {outcome}: random_graph({seed}, {family!r}): {detail}")
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

    def onnxruntime_cpu(model, feeds):
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)

    return "ONNX Runtime CPU", onnxruntime_cpu


def check(seed: int, family: str, precision: str = "fp32", reference=None,
          backend: str = "compute") -> tuple[str, str]:
    """(outcome, detail) of one random graph: wgnn (``backend``, ``precision``) against the reference."""
    from .session import InferenceSession

    model, feeds = random_graph(seed, family)
    run_reference = reference or _reference()[1]
    want = run_reference(model, feeds)
    try:
        with warnings.catch_warnings():  # (an fp16 result past f16's range is warned of: counted as such)
            warnings.simplefilter("ignore")
            got = InferenceSession(model, precision=precision, backend=backend).run(None, feeds)
    except WgnnError as exc:
        return "refused", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # (a bug: named with where it happened)
        return "exception", f"{type(exc).__name__}: {exc} ({traceback.extract_tb(exc.__traceback__)[-1].name})"
    quantized = any(n.op_type in ("QuantizeLinear", "DynamicQuantizeLinear") for n in model.graph.node)
    spread = precision == "fp16" or quantized  # (judged over each output: rounding moves a few values)
    allowed = max(TOLERANCE[precision], QUANTIZED_TOLERANCE if quantized else 0.0)
    if quantized and precision == "fp16":  # (f16's rounding of what is quantized moves codes more often)
        allowed *= 2
    ops = "->".join(n.op_type for n in model.graph.node)
    if precision == "fp16" and not all(np.isfinite(g).all() for g in got) and all(np.isfinite(w).all() for w in want):
        return "overflow", "a value inside the graph past f16's range (65504), as the session warns"
    for o, g, w in zip(model.graph.output, got, want):
        apart = np.abs(g.astype(np.float64) - w)
        if spread:
            floor = 0.1 * np.sqrt(w.size)  # (a root mean square of 0.1 at least: a result that cancels to
            # nearly nothing, x - mean(x) of near-equal values, keeps f16's rounding of what it came from)
            err, what = float(np.linalg.norm(apart) / max(float(np.linalg.norm(w)), floor)), "relative L2 error"
        else:
            err, what = float(apart.max() / max(float(np.abs(w).max()), 1e-2)), "of its largest value apart"
        if w.size and (not np.isfinite(err) or err > allowed):
            return "mismatch", f"output {o.name!r} {err:.3g} {what} (allowed {allowed:g}); {ops}"
    return "match", ""


def differential(count: int = 100, *, seed: int = 0, precision: str = "fp32", backend: str = "compute",
                 families: tuple[str, ...] = FAMILIES, progress=None) -> GraphReport:
    """``count`` random graphs, the ``families`` in turn, seeds from ``seed`` on, each against the
    reference; the report counts the outcomes and names every mismatch and exception."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"families must be some of {', '.join(FAMILIES)}, got {', '.join(families) or 'none'}")
    start = time.perf_counter()
    name, run_reference = _reference()
    report = GraphReport(reference=name)
    for k in range(count):
        family, graph_seed = families[k % len(families)], seed + k // len(families)
        outcome, detail = check(graph_seed, family, precision, run_reference, backend)
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

    families = tuple(f.strip() for f in args.families.split(",") if f.strip()) if args.families else FAMILIES
    if not families or any(f not in FAMILIES for f in families):
        print(f"wgnn fuzz: --families must be some of {', '.join(FAMILIES)}, got {args.families!r}", file=sys.stderr)
        return 2
    with tqdm(total=args.count, unit="graph", file=sys.stderr, disable=None) as bar:
        report = differential(args.count, seed=args.seed, precision=args.precision, backend=args.backend,
                              families=families, progress=lambda k, outcome: bar.update(1))
    print(report.summary())
    return 0 if report.clean else 1
