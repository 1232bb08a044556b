"""``OpBuilder``: the one way a graph is made, the WebNN ``MLGraphBuilder`` op set in Python.

    b = wgnn.GraphBuilder()            # an OpBuilder whose build() compiles (wgnn.session)
    x = b.input("x", (1, 3, 224, 224), "float32")
    y = b.conv2d(x, b.constant(w), bias=b.constant(bias), strides=(2, 2), padding=(1, 1, 1, 1),
                 activation="relu6")
    model = b.build({"y": y})          # an InferenceSession
    model.compute({"x": data})         # {"y": array}

Shapes are inferred as each op is added, so mistakes surface where they are made. Padding follows
WebNN: ``(top, bottom, left, right)``. Every op takes an optional ``name``. The importers build on
``OpBuilder`` too; ``build_graph`` returns the graph without compiling it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import ops
from .errors import GraphError, StaticValueNeeded
from .graph import DTYPES, Graph, Node, Operand, fresh_name, is_integer
from .ops.activation import Activation, make


def _pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise GraphError(f"{what} must be an int or a pair, got {value}")
    return value  # type: ignore[return-value]


def _axis(op: str, name: str, axis: int, rank: int) -> int:
    """``axis`` in [-rank, rank) as a non-negative axis, else a GraphError naming the node."""
    if not -max(rank, 1) <= int(axis) < max(rank, 1):
        raise GraphError(f"{op} node {name or '(unnamed)'!r}: axis {axis} is out of range for a rank-{rank} input")
    return int(axis) % max(rank, 1)


# Elements of one tensor at most: 2^31 (8 GiB of f32), beyond any adapter's largest buffer, and the
# most that kernels index with u32 arithmetic on four-byte elements.
MAX_ELEMENTS = 1 << 31


_DTYPE_NAMES: dict[np.dtype, str] = {}


def _dtype_name(dtype: np.dtype) -> str:
    """``str(dtype)``, remembered (numpy builds the name anew each time: an import of a few
    thousand constants spent 7 ms on it)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype)
    return name


class OpBuilder:
    """Builds a ``Graph`` op by op; ``build_graph`` returns it (``wgnn.GraphBuilder.build`` compiles it)."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.inputs: dict[str, Operand] = {}
        self.opset: int | None = None

    # -- operands ---------------------------------------------------------------------------

    def input(self, name: str, shape: Sequence[int], dtype: str = "float32") -> Operand:
        """A graph input with a static shape."""
        if name in self.inputs:
            raise GraphError(f"input {name!r} is declared twice")
        if dtype not in DTYPES:
            raise GraphError(f"input {name!r}: dtype {dtype!r} is not one of {DTYPES}")
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise GraphError(f"input {name!r}: shape {shape} must be static and non-negative")
        operand = Operand(name, shape, dtype, is_input=True)
        self.inputs[name] = operand
        return operand

    def constant(self, value: np.ndarray | float | Sequence, dtype: str | None = None, name: str = "") -> Operand:
        """A constant tensor (weights, biases, shape values)."""
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        dtype_name = _dtype_name(array.dtype)
        if dtype_name not in DTYPES:
            raise GraphError(f"constant {name!r}: dtype {array.dtype} is not one of {DTYPES}")
        return Operand(name or fresh_name("const"), tuple(array.shape), dtype_name, value=array)

    def static_value(self, operand: Operand) -> np.ndarray | None:
        """The operand's value if it can be computed at compile time (constants and what follows from them)."""
        return ops.static_value(operand)

    def require_static(self, operand: Operand, what: str, node_name: str = "") -> np.ndarray:
        value = self.static_value(operand)
        if value is None:
            where = f" (node {node_name!r})" if node_name else ""
            raise StaticValueNeeded(f"{what}{where} must be known at compile time; {operand.name!r} depends on a "
                                    "graph input", operand)
        return value

    # -- the generic node maker -------------------------------------------------------------

    def _add(self, op: str, inputs: list[Operand | None], attrs: dict | None = None, *, name: str = "",
             n_out: int = 1) -> list[Operand]:
        node = Node(op, list(inputs), [], dict(attrs or {}), name=name or fresh_name(op))
        for i, operand in enumerate(inputs):
            if operand is not None and not isinstance(operand, Operand):
                raise GraphError(f"{op} node {node.name!r}: input {i} is a {type(operand).__name__}, "
                                 "expected an Operand (wrap arrays with builder.constant)")
        results = ops.get(op).infer(node)
        for k, (shape, dtype) in enumerate(results[:n_out]):
            out_name = node.name if n_out == 1 else f"{node.name}:{k}"
            shape = tuple(int(d) for d in shape)
            if any(d < 0 for d in shape) or math.prod(shape) > MAX_ELEMENTS:
                raise GraphError(f"{op} node {node.name!r}: its output would have shape {shape}, beyond what a GPU "
                                 f"buffer holds (at most {MAX_ELEMENTS} elements)")
            node.outputs.append(Operand(out_name, shape, dtype, producer=node))
        self.nodes.append(node)
        return node.outputs

    def _one(self, op: str, inputs: list[Operand | None], attrs: dict | None = None, name: str = "") -> Operand:
        return self._add(op, inputs, attrs, name=name)[0]

    # -- convolution and matrix products ----------------------------------------------------

    def conv2d(self, input: Operand, filter: Operand, *, bias: Operand | None = None,
               strides: int | Sequence[int] = 1, padding: Sequence[int] = (0, 0, 0, 0),
               dilations: int | Sequence[int] = 1, groups: int = 1,
               activation: str | Activation | None = None, name: str = "") -> Operand:
        """2-D convolution, NCHW input and OIHW filter; padding is (top, bottom, left, right)."""
        top, bottom, left, right = (int(p) for p in padding)
        attrs = {"strides": _pair(strides, "strides"), "dilations": _pair(dilations, "dilations"),
                 "pads": (top, left, bottom, right), "groups": int(groups),
                 "activation": self._activation(activation)}
        return self._one("conv2d", [input, filter, bias], attrs, name)

    def conv_transpose2d(self, input: Operand, filter: Operand, *, bias: Operand | None = None,
                         strides: int | Sequence[int] = 1, padding: Sequence[int] = (0, 0, 0, 0),
                         dilations: int | Sequence[int] = 1, output_padding: int | Sequence[int] = 0,
                         output_size: Sequence[int] | None = None, groups: int = 1,
                         activation: str | Activation | None = None, name: str = "") -> Operand:
        """Transposed 2-D convolution, NCHW input and [Cin, Cout/groups, KH, KW] filter (ONNX's order);
        padding is (top, bottom, left, right) and crops the full output. ``output_size`` (OH, OW)
        overrides the size that strides, padding and ``output_padding`` give."""
        if input.rank != 4 or filter.rank != 4:
            raise GraphError(f"conv_transpose2d node {name!r}: expected a 4-D input and 4-D filter, got "
                             f"{input.shape} and {filter.shape}")
        top, bottom, left, right = (int(p) for p in padding)
        (sh, sw), (dh, dw) = _pair(strides, "strides"), _pair(dilations, "dilations")
        if output_size is None:
            (oph, opw) = _pair(output_padding, "output_padding")
            kh, kw = filter.shape[2:]
            output_size = (ops.nn.conv_transpose_out_size(input.shape[2], kh, sh, top + bottom, dh, oph),
                           ops.nn.conv_transpose_out_size(input.shape[3], kw, sw, left + right, dw, opw))
        attrs = {"strides": (sh, sw), "dilations": (dh, dw), "pads": (top, left, bottom, right),
                 "groups": int(groups), "output_size": tuple(int(d) for d in output_size),
                 "activation": self._activation(activation)}
        return self._one("conv_transpose2d", [input, filter, bias], attrs, name)

    def matmul(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._one("matmul", [a, b], {"activation": None}, name)

    def gemm(self, a: Operand, b: Operand, c: Operand | None = None, *, alpha: float = 1.0, beta: float = 1.0,
             a_transpose: bool = False, b_transpose: bool = False, name: str = "") -> Operand:
        """alpha * A' @ B' + beta * C, as WebNN's gemm; lowered to matmul with a bias where it can be."""
        name = name or fresh_name("gemm")
        if a_transpose:
            a = self.transpose(a, (1, 0), name=name + "/a_t")
        quantized = self._dequantized_constant(b) if alpha == 1.0 else None
        b_value = self.static_value(b) if quantized is None else None
        if quantized is not None:  # weights kept as integers behind their dequantize (passes/integer_conv.py)
            if b_transpose:
                q, scale, zero = (np.reshape(v, (1,) * (2 - v.ndim) + v.shape).T for v in quantized)
                b = self._one("dequantize_linear", [self.constant(q, name=name + "/b_q"),
                                                    self.constant(scale, name=name + "/b_scale"),
                                                    self.constant(zero, name=name + "/b_zero")], {}, name + "/b")
        elif b_value is not None:
            b_value = b_value.T if b_transpose else b_value
            if alpha != 1.0:
                b_value = b_value * np.float32(alpha)
            # (a weight transposed stays a view of it: an import per input shape then gives the
            # same view of the same array, which what is derived from it and packed recognises)
            b = self.constant(b_value.astype(np.float32, copy=False), name=name + "/b")
        else:
            if b_transpose:
                b = self.transpose(b, (1, 0), name=name + "/b_t")
            if alpha != 1.0:
                b = self.mul(b, self.constant(np.float32(alpha)), name=name + "/alpha")
        cols = b.shape[-1]
        if c is not None and beta == 1.0 and c.shape == (cols,) and self._dequantized_constant(c) is not None:
            return self._one("matmul", [a, b, c], {"activation": None}, name)  # an int32 bias, kept so too
        c_value = None if c is None else self.static_value(c)
        if c is not None and c_value is not None and c_value.size in (1, cols) and c_value.shape[:-1] in (
                (), (1,) * (c_value.ndim - 1)):
            bias = self.constant(np.broadcast_to(c_value.reshape(-1) * np.float32(beta), (cols,)).astype(np.float32),
                                 name=name + "/c")
            return self._one("matmul", [a, b, bias], {"activation": None}, name)
        y = self._one("matmul", [a, b], {"activation": None}, name + ("/ab" if c is not None else ""))
        if c is None:
            return y
        if beta != 1.0:
            c = self.mul(c, self.constant(np.float32(beta)), name=name + "/beta")
        return self.add(y, c, name=name)

    def _dequantized_constant(self, operand: Operand) -> list[np.ndarray] | None:
        """[q, scale, zero] where ``operand`` is a 2-D or 1-D dequantize of values known at compile
        time (quantized weights or bias), else None."""
        dq = operand.producer
        if dq is None or dq.op != "dequantize_linear" or operand.rank not in (1, 2):
            return None
        values = [self.static_value(t) for t in dq.inputs]
        if any(v is None or v.ndim > operand.rank for v in values):
            return None
        return values

    def batch_normalization(self, input: Operand, mean: Operand, variance: Operand, *, scale: Operand | None = None,
                            bias: Operand | None = None, epsilon: float = 1e-5, name: str = "") -> Operand:
        """Inference batch norm over axis 1. Constant parameters become the ``batch_normalization``
        op, which the compiler folds into the convolution before it; parameters computed at run time
        (or fed as inputs) become the formula in element-wise ops."""
        c = input.shape[1]
        scale = scale if scale is not None else self.constant(np.ones(c, np.float32))
        bias = bias if bias is not None else self.constant(np.zeros(c, np.float32))
        params = [mean, variance, scale, bias]
        if all(self.static_value(t) is not None for t in params):
            return self._one("batch_normalization", [input] + params, {"epsilon": float(epsilon)}, name)
        n = name or fresh_name("batch_normalization")
        # (x - mean) * scale / sqrt(variance + epsilon) + bias, parameters shaped [C, 1, ...]
        mean, variance, scale, bias = (self.reshape(t, [c] + [1] * (input.rank - 2), name=f"{n}/{tag}")
                                       for t, tag in zip(params, ("mean", "var", "scale", "bias")))
        eps = self.constant(np.array(epsilon, input.dtype))
        std = self.activation(self.add(variance, eps, name=f"{n}/var_eps"), "sqrt", name=f"{n}/std")
        inv = self.div(scale, std, name=f"{n}/inv")
        centered = self.sub(input, mean, name=f"{n}/centered")
        return self.add(self.mul(centered, inv, name=f"{n}/scaled"), bias, name=n)

    # -- element-wise -------------------------------------------------------------------------

    def _binary(self, kind: str, a: Operand, b: Operand, name: str) -> Operand:
        return self._one("binary", [a, b], {"kind": kind, "activation": None}, name)

    def add(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("add", a, b, name)

    def sub(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("sub", a, b, name)

    def mul(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("mul", a, b, name)

    def div(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("div", a, b, name)

    def max(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("max", a, b, name)

    def min(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("min", a, b, name)

    def pow(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("pow", a, b, name)

    # -- linear quantization (ONNX QuantizeLinear / DequantizeLinear, WebNN's quantizeLinear) ---------

    def _quant_param(self, x: Operand, param: Operand, axis: int, block_size: int, name: str) -> Operand:
        """A scale or zero point shaped to broadcast against ``x``: scalars as they are, a 1-D
        per-axis one reshaped onto ``axis``, a blocked one (``block_size`` > 0) repeated along it."""
        if param.rank == 0 or (param.size == 1 and not block_size):
            return param
        axis = _axis("quantization", name, axis, x.rank)
        if block_size:
            value = self.require_static(param, "a blocked quantization parameter", name)
            if value.ndim != x.rank:
                raise GraphError(f"node {name!r}: a blocked scale has x's rank {x.rank}, got shape {value.shape}")
            value = np.repeat(value, block_size, axis=axis)
            value = value[tuple(slice(0, d) for d in x.shape)]
            if value.shape != x.shape:
                raise GraphError(f"node {name!r}: blocks of {block_size} along axis {axis} do not cover x's shape "
                                 f"{x.shape} (scale shape {param.shape})")
            return self.constant(value, name=f"{name}/{param.name}_blocks")
        if param.rank == 1 and x.rank >= 1 and param.shape[0] == x.shape[axis]:
            shape = [1] * x.rank
            shape[axis] = param.shape[0]
            return self.reshape(param, shape, name=f"{name}/{param.name}_axis")
        raise GraphError(f"node {name!r}: a quantization parameter of shape {param.shape} matches neither one "
                         f"value nor axis {axis} of x's shape {x.shape}")

    def quantize_linear(self, x: Operand, scale: Operand, zero_point: Operand | None = None, *, axis: int = 1,
                        block_size: int = 0, dtype: str = "uint8", name: str = "") -> Operand:
        """saturate(round_half_even(x / scale) + zero_point) in ``zero_point``'s integer type (``dtype``
        without one): per tensor, per ``axis`` (1-D scale) or in blocks of ``block_size`` along it."""
        n = name or fresh_name("quantize_linear")
        if zero_point is None:
            zero_point = self.constant(np.zeros((), dtype), name=f"{n}/zero")
        scale = self._quant_param(x, scale, axis, block_size, n)
        zero_point = self._quant_param(x, zero_point, axis, block_size, n)
        return self._one("quantize_linear", [x, scale, zero_point], {}, n)

    def dequantize_linear(self, x: Operand, scale: Operand, zero_point: Operand | None = None, *, axis: int = 1,
                          block_size: int = 0, name: str = "") -> Operand:
        """(x - zero_point) * scale, in scale's float type; parameters as in ``quantize_linear``."""
        n = name or fresh_name("dequantize_linear")
        if zero_point is None:
            zero_point = self.constant(np.zeros((), x.dtype), name=f"{n}/zero")
        scale = self._quant_param(x, scale, axis, block_size, n)
        zero_point = self._quant_param(x, zero_point, axis, block_size, n)
        # (blocked: which axis, how long a block, for passes.pack_block_weights)
        attrs = {"block": (_axis("quantization", n, axis, x.rank), block_size)} if block_size else {}
        return self._one("dequantize_linear", [x, scale, zero_point], attrs, n)

    def dynamic_quantize_linear(self, x: Operand, *, axis: int | None = None,
                                name: str = "") -> tuple[Operand, Operand, Operand]:
        """uint8 quantization of ``x`` over its own range (ONNX DynamicQuantizeLinear): returns (y,
        scale, zero_point) with scale = (max(x, 0) - min(x, 0)) / 255 (1 where that is 0, as ONNX
        Runtime has it) and zero_point = saturate(round(-min(x, 0) / scale)); with ``axis``, each
        slice along it over its own range (scale and zero point 1-D; along axis 0, shaped to broadcast
        against x: (rows, 1, ...))."""
        n = name or fresh_name("dynamic_quantize_linear")
        if axis is None:  # the whole tensor's range: one pass (ops.quant.DynamicRange)
            scale, zero_point = self._add("dynamic_range", [x], {}, name=f"{n}/range", n_out=2)
            return self.quantize_linear(x, scale, zero_point, axis=1, name=n), scale, zero_point
        axis = _axis("quantize", n, axis, x.rank)
        if axis == 0:  # each row's range: one pass, a workgroup a row (shaped (rows, 1, ...))
            scale, zero_point = self._add("dynamic_range", [x], {"rows": True}, name=f"{n}/range", n_out=2)
            return self._one("quantize_linear", [x, scale, zero_point], {}, n), scale, zero_point
        over = [k for k in range(x.rank) if k != axis]
        zero = self.constant(np.zeros((), x.dtype), name=f"{n}/zero")
        low = self.min(self.reduce(x, "min", over, keepdims=False, name=f"{n}/min"), zero, name=f"{n}/low")
        high = self.max(self.reduce(x, "max", over, keepdims=False, name=f"{n}/max"), zero, name=f"{n}/high")
        spread = self.sub(high, low, name=f"{n}/range")
        # All zeros: scale 1 (as ONNX Runtime gives), not 0, which the quantize would divide by.
        scale = self.where(self.greater(spread, zero, name=f"{n}/some"),
                           self.div(spread, self.constant(np.array(255, x.dtype)), name=f"{n}/step"),
                           self.constant(np.ones((), x.dtype)), name=f"{n}/scale")
        zero_point = self.quantize_linear(self.sub(zero, low, name=f"{n}/neg_low"), scale, dtype="uint8",
                                          axis=0, name=f"{n}/zero_point")
        y = self.quantize_linear(x, scale, zero_point, axis=axis, name=n)
        return y, scale, zero_point

    # Comparisons and logic (WebNN's equal, greater, lesser, ..., logicalAnd, logicalNot): bool results.

    def equal(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("equal", a, b, name)

    def greater(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("greater", a, b, name)

    def greater_or_equal(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("greater_equal", a, b, name)

    def lesser(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("less", a, b, name)

    def lesser_or_equal(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("less_equal", a, b, name)

    def logical_and(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("and", a, b, name)

    def logical_or(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("or", a, b, name)

    def logical_xor(self, a: Operand, b: Operand, *, name: str = "") -> Operand:
        return self._binary("xor", a, b, name)

    def logical_not(self, x: Operand, *, name: str = "") -> Operand:
        return self._one("logical_not", [x], {}, name)

    def is_nan(self, x: Operand, *, name: str = "") -> Operand:
        """Whether each element of a float tensor is NaN (a bool tensor)."""
        return self._one("float_class", [x], {"kind": "nan"}, name)

    def is_inf(self, x: Operand, *, positive: bool = True, negative: bool = True, name: str = "") -> Operand:
        """Whether each element of a float tensor is infinite (of the signs asked for; a bool tensor)."""
        if not positive and not negative:
            self._one("float_class", [x], {"kind": "inf"}, name + "/checked" if name else "")  # (checks x)
            return self.constant(np.zeros(x.shape, bool), name=name)
        kind = "inf" if positive and negative else "pos_inf" if positive else "neg_inf"
        return self._one("float_class", [x], {"kind": kind}, name)

    def where(self, condition: Operand, true_value: Operand, false_value: Operand, *, name: str = "") -> Operand:
        """``true_value`` where the bool ``condition`` holds, else ``false_value`` (all three broadcast)."""
        return self._one("where", [condition, true_value, false_value], {}, name)

    @staticmethod
    def _activation(activation: str | Activation | None) -> Activation | None:
        if activation is None or isinstance(activation, Activation):
            return activation
        return make(activation)

    def activation(self, input: Operand, kind: str, *, alpha: float | None = None, beta: float | None = None,
                   name: str = "") -> Operand:
        """A standalone activation (fused into the producer's epilogue by the compiler when it can be)."""
        return self._one("activation", [input], {"activation": make(kind, alpha, beta)}, name)

    def relu(self, x: Operand, *, name: str = "") -> Operand:
        return self.activation(x, "relu", name=name)

    def clamp(self, x: Operand, *, min_value: float = -np.inf, max_value: float = np.inf, name: str = "") -> Operand:
        """x limited to [min_value, max_value]; on an integer tensor, Max and Min against constants
        of its own type (the integer kernels take no clip)."""
        if not is_integer(x.dtype) or x.dtype == "bool":
            return self.activation(x, "clip", alpha=min_value, beta=max_value, name=name)
        name = name or fresh_name("clamp")
        bounds = [(kind, v) for kind, v in (("max", min_value), ("min", max_value)) if np.isfinite(v)]
        for k, (kind, v) in enumerate(bounds):
            bound = self.constant(np.array(v).astype(x.dtype), name=f"{name}/{kind}_bound")
            x = self._binary(kind, x, bound, name if k == len(bounds) - 1 else f"{name}/{kind}")
        return x if bounds else self.identity(x, name=name)

    def sigmoid(self, x: Operand, *, name: str = "") -> Operand:
        return self.activation(x, "sigmoid", name=name)

    def tanh(self, x: Operand, *, name: str = "") -> Operand:
        return self.activation(x, "tanh", name=name)

    def leaky_relu(self, x: Operand, *, alpha: float = 0.01, name: str = "") -> Operand:
        return self.activation(x, "leaky_relu", alpha=alpha, name=name)

    def hard_sigmoid(self, x: Operand, *, alpha: float = 0.2, beta: float = 0.5, name: str = "") -> Operand:
        return self.activation(x, "hard_sigmoid", alpha=alpha, beta=beta, name=name)

    def hard_swish(self, x: Operand, *, name: str = "") -> Operand:
        return self.activation(x, "hard_swish", name=name)

    def prelu(self, x: Operand, slope: Operand, *, name: str = "") -> Operand:
        ops.broadcast_shapes(Node("prelu", [], [], name=name), x.shape, slope.shape)
        return self._one("activation", [x, slope], {"activation": make("prelu")}, name)

    # -- pooling, normalization, softmax ----------------------------------------------------

    def _pool(self, mode: str, x: Operand, window: Sequence[int] | None, strides, padding, dilations,
              ceil_mode: bool, count_include_pad: bool, name: str, **extra) -> list[Operand]:
        if x.rank != 4:
            raise GraphError(f"pool node {name!r}: expected a 4-D NCHW input, got {x.shape}")
        top, bottom, left, right = (int(p) for p in padding)
        attrs = {"mode": mode, "kernel": _pair(window if window is not None else x.shape[2:], "window"),
                 "strides": _pair(strides, "strides"), "pads": (top, left, bottom, right),
                 "dilations": _pair(dilations, "dilations"), "ceil_mode": bool(ceil_mode),
                 "count_include_pad": bool(count_include_pad), **extra}
        return self._add("pool2d", [x], attrs, name=name, n_out=2 if mode == "argmax" else 1)

    def max_pool2d(self, x: Operand, *, window: Sequence[int] | None = None, strides=1, padding=(0, 0, 0, 0),
                   dilations=1, ceil_mode: bool = False, name: str = "") -> Operand:
        """Max pooling; ``window=None`` pools the whole image (global max pooling)."""
        return self._pool("max", x, window, strides, padding, dilations, ceil_mode, False, name)[0]

    def max_pool2d_with_indices(self, x: Operand, *, window: Sequence[int] | None = None, strides=1,
                                padding=(0, 0, 0, 0), dilations=1, ceil_mode: bool = False,
                                storage_order: int = 0, name: str = "") -> tuple[Operand, Operand]:
        """Max pooling and, as int64, where each maximum is in the input read as a flat NCHW array
        (ONNX MaxPool's Indices output): row-major within each image plane, or column-major with
        ``storage_order=1``. The first maximum of a window in row-major order wins."""
        values, indices = self._pool("argmax", x, window, strides, padding, dilations, ceil_mode, False, name,
                                     storage_order=int(storage_order))
        return values, indices

    def average_pool2d(self, x: Operand, *, window: Sequence[int] | None = None, strides=1,
                       padding=(0, 0, 0, 0), dilations=1, ceil_mode: bool = False, count_include_pad: bool = False,
                       name: str = "") -> Operand:
        """Average pooling; ``window=None`` pools the whole image (global average pooling)."""
        return self._pool("avg", x, window, strides, padding, dilations, ceil_mode, count_include_pad, name)[0]

    def softmax(self, x: Operand, *, axis: int = -1, name: str = "") -> Operand:
        return self._one("softmax", [x], {"axis": _axis("softmax", name, axis, x.rank)}, name)

    def log_softmax(self, x: Operand, *, axis: int = -1, name: str = "") -> Operand:
        """log(softmax(x)), computed as x - max - log(sum(exp(x - max))): finite where softmax rounds to 0."""
        return self._one("softmax", [x], {"axis": _axis("log_softmax", name, axis, x.rank), "log": True}, name)

    def reduce(self, x: Operand, kind: str, axes: Sequence[int] | None = None, *, keepdims: bool = True,
               name: str = "") -> Operand:
        """Reduce over ``axes`` (all when None): sum, mean, max, min, prod, sum_square, l1, l2, log_sum_exp."""
        axes = (tuple(sorted({_axis("reduce", name, a, x.rank) for a in axes})) if axes is not None
                else tuple(range(x.rank)))
        out = self._one("reduce", [x], {"kind": kind, "axes": axes, "keepdims": bool(keepdims)}, name)
        if x.size == 0:  # an empty set: the result is the reduction's identity whatever the input
            self.nodes.pop()
            value = ops.get("reduce").reference(out.producer, [np.zeros(x.shape, x.dtype)])[0]
            return self.constant(value, name=out.name)
        return out

    def arg_max(self, x: Operand, axis: int = 0, *, keepdims: bool = True, select_last_index: bool = False,
                name: str = "") -> Operand:
        """Index (int64) of the largest value along ``axis``; ties take the first index unless
        ``select_last_index``."""
        return self._arg("max", x, axis, keepdims, select_last_index, name)

    def arg_min(self, x: Operand, axis: int = 0, *, keepdims: bool = True, select_last_index: bool = False,
                name: str = "") -> Operand:
        """Index (int64) of the smallest value along ``axis``."""
        return self._arg("min", x, axis, keepdims, select_last_index, name)

    def _arg(self, kind, x, axis, keepdims, select_last_index, name):
        return self._one("arg_reduce", [x], {"kind": kind, "axis": int(axis), "keepdims": bool(keepdims),
                                              "select_last_index": bool(select_last_index)}, name)

    def lstm(self, input: Operand, weight: Operand, recurrent_weight: Operand, *, hidden_size: int,
             name: str = "", **options) -> list[Operand]:
        """WebNN's lstm, unrolled over the (static) steps: returns [sequence [steps, directions, batch,
        hidden], last hidden state, last cell state]. Options and shapes: ``wgnn.recurrent.lstm``."""
        from .recurrent import lstm

        return lstm(self, input, weight, recurrent_weight, hidden_size=hidden_size, name=name, **options)

    def gru(self, input: Operand, weight: Operand, recurrent_weight: Operand, *, hidden_size: int,
            name: str = "", **options) -> list[Operand]:
        """WebNN's gru, unrolled: returns [sequence, last hidden state] (see ``wgnn.recurrent.gru``)."""
        from .recurrent import gru

        return gru(self, input, weight, recurrent_weight, hidden_size=hidden_size, name=name, **options)

    def rnn(self, input: Operand, weight: Operand, recurrent_weight: Operand, *, hidden_size: int,
            name: str = "", **options) -> list[Operand]:
        """ONNX's simple RNN, unrolled: returns [sequence, last hidden state] (see ``wgnn.recurrent.rnn``)."""
        from .recurrent import rnn

        return rnn(self, input, weight, recurrent_weight, hidden_size=hidden_size, name=name, **options)

    # -- composites (``wgnn.composite``): ops made of the ops above ---------------------------

    def conv_transpose3d(self, input: Operand, filter: Operand, *, bias: Operand | None = None,
                         strides: Sequence[int] = (1, 1, 1), padding: Sequence[Sequence[int]] = ((0, 0),) * 3,
                         dilations: Sequence[int] = (1, 1, 1), output_padding: Sequence[int] = (0, 0, 0),
                         groups: int = 1, output_size: Sequence[int] | None = None, name: str = "") -> Operand:
        """Transposed 3-D convolution over NCDHW, ``filter`` [Cin, Cout / groups, KD, KH, KW],
        ``padding`` ((front, back), (top, bottom), (left, right)): one 2-D transposed convolution per
        depth tap of the filter, scattered along depth and summed."""
        from .composite import conv_transpose3d

        return conv_transpose3d(self, input, filter, bias, strides=tuple(strides),
                                pads=tuple(tuple(p) for p in padding), dilations=tuple(dilations),
                                output_padding=tuple(output_padding), groups=groups,
                                output_size=None if output_size is None else tuple(output_size),
                                name=name or fresh_name("conv_transpose3d"))

    def pool3d(self, x: Operand, mode: str, *, window: Sequence[int], strides: Sequence[int] = (1, 1, 1),
               padding: Sequence[Sequence[int]] = ((0, 0),) * 3, dilations: Sequence[int] = (1, 1, 1),
               ceil_mode: bool = False, count_include_pad: bool = False, name: str = "") -> Operand:
        """Max (``mode="max"``) or average (``"avg"``) pooling over NCDHW, as a 2-D pooling over
        (H, W) and one over D; ``padding`` ((front, back), (top, bottom), (left, right))."""
        from .composite import pool3d

        return pool3d(self, x, mode, window=tuple(window), strides=tuple(strides),
                      pads=tuple(tuple(p) for p in padding), dilations=tuple(dilations), ceil_mode=ceil_mode,
                      count_include_pad=count_include_pad, name=name or fresh_name("pool3d"))

    def batch_normalization_training(self, input: Operand, scale: Operand, bias: Operand, running_mean: Operand,
                                     running_var: Operand, *, epsilon: float = 1e-5, momentum: float = 0.9,
                                     name: str = "") -> list[Operand]:
        """Training-mode batch norm: normalizes by the batch's own statistics; returns [y, updated
        running mean, updated running variance] (``running * momentum + batch * (1 - momentum)``)."""
        from .composite import batch_normalization_training

        return batch_normalization_training(self, input, scale, bias, running_mean, running_var, epsilon=epsilon,
                                            momentum=momentum, name=name or fresh_name("batch_normalization"))

    def dropout(self, x: Operand, *, ratio: float = 0.5, seed: int | None = None, name: str = "") -> list[Operand]:
        """Training-mode dropout with a mask drawn once from ``seed`` (required unless ``ratio`` is 0);
        returns [y, mask]. For inference, dropout is ``identity``."""
        from .composite import dropout

        return dropout(self, x, ratio=float(ratio), seed=seed, name=name or fresh_name("dropout"))

    def instance_normalization(self, x: Operand, *, scale: Operand | None = None, bias: Operand | None = None,
                               epsilon: float = 1e-5, name: str = "") -> Operand:
        """Normalize each sample's channels over their spatial axes, then scale and shift per channel."""
        from .composite import instance_normalization

        return instance_normalization(self, x, scale, bias, epsilon=epsilon,
                                      name=name or fresh_name("instance_normalization"))

    def layer_normalization(self, x: Operand, *, scale: Operand | None = None, bias: Operand | None = None,
                            axis: int = -1, epsilon: float = 1e-5, name: str = "") -> list[Operand]:
        """Normalize over ``axis`` and the axes after it, then scale and shift; returns [y, mean,
        1 / standard deviation]."""
        from .composite import layer_normalization

        return layer_normalization(self, x, scale, bias, axis=axis, epsilon=epsilon,
                                   name=name or fresh_name("layer_normalization"))

    def resize(self, x: Operand, size: Sequence[int], *, mode: str = "linear",
               coordinate_mode: str = "half_pixel", nearest_mode: str | Sequence[str] = "round_prefer_floor",
               scales: Sequence[float] | None = None, cubic_coeff_a: float = -0.75, exclude_outside: bool = False,
               antialias: bool = False, roi: Sequence[tuple[float, float]] | None = None,
               extrapolation_value: float = 0.0, float32_positions: bool = False, name: str = "") -> Operand:
        """Resize the spatial axes of an NCHW tensor to ``size`` (OH, OW). ``mode``: "nearest",
        "linear" (bilinear) or "cubic" (bicubic, coefficient ``cubic_coeff_a``); ``coordinate_mode``,
        ``nearest_mode``, ``exclude_outside`` and ``antialias`` take ONNX Resize's names and meanings;
        ``scales`` (H, W output/input ratios) replace the ratios the sizes give, as in ONNX.
        ``nearest_mode`` may also be a pair, one mode for H and one for W.
        ``roi`` ((start, end) of H and W, fractions of the input) and ``extrapolation_value`` belong to
        the tf_crop_and_resize mode. ``float32_positions``: each source position computed in float32
        arithmetic, TFLite's (a half-way point of nearest rounding may then fall a rounding short;
        else exact positions, rounded to float32 once)."""
        from .ops.resize import COORDINATE_MODES, MODES, NEAREST_MODES, axis_map, filter_taps

        if mode not in MODES:
            raise GraphError(f"resize node {name!r}: mode {mode!r} is not one of {MODES}")
        if coordinate_mode not in COORDINATE_MODES:
            raise GraphError(f"resize node {name!r}: coordinate mode {coordinate_mode!r} is not one of "
                             f"{COORDINATE_MODES}")
        per_axis = (nearest_mode,) if isinstance(nearest_mode, str) else tuple(nearest_mode)
        if len(per_axis) not in (1, 2) or any(m not in NEAREST_MODES for m in per_axis):
            raise GraphError(f"resize node {name!r}: nearest mode {nearest_mode!r} is not one of {NEAREST_MODES} "
                             "(or one for each of H and W)")
        if x.rank != 4:
            raise GraphError(f"resize node {name!r}: expected a 4-D NCHW input, got {x.shape}")
        size = tuple(int(d) for d in size)
        scales = (None, None) if scales is None else tuple(float(s) for s in scales)
        roi = ((0.0, 1.0), (0.0, 1.0)) if roi is None else tuple((float(a), float(b)) for a, b in roi)
        maps = tuple(axis_map(coordinate_mode, x.shape[2 + k], size[k], scales[k], roi[k]) for k in range(2))
        filters = tuple(filter_taps(mode, scales[k] if scales[k] is not None else size[k] / max(x.shape[2 + k], 1),
                                    antialias) for k in range(2))
        crop = coordinate_mode == "tf_crop_and_resize"
        attrs = {"mode": mode, "size": size, "maps": maps, "nearest": per_axis[0] if len(per_axis) == 1 else per_axis,
                 "filters": filters,
                 "cubic_a": float(cubic_coeff_a), "exclude_outside": bool(exclude_outside),
                 "extrapolation": float(extrapolation_value) if crop else None}
        if float32_positions:
            attrs["float32_positions"] = True
        return self._one("resize", [x], attrs, name)

    def lrn(self, x: Operand, *, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0,
            name: str = "") -> Operand:
        return self._one("lrn", [x], {"size": int(size), "alpha": float(alpha), "beta": float(beta),
                                      "bias": float(bias)}, name)

    # -- shapes and data movement -----------------------------------------------------------

    def reshape(self, x: Operand, shape: Sequence[int] | Operand, *, name: str = "") -> Operand:
        """Reshape; one dimension may be -1 (inferred), 0 keeps the input's (ONNX, allowzero=0).

        ``shape`` may be an operand known at compile time (a Shape -> Gather -> Concat chain, say):
        it stays in the graph as the node's second input until constant folding removes it.
        """
        shape_operand = shape if isinstance(shape, Operand) else None
        if shape_operand is not None:
            dims = self.require_static(shape_operand, "reshape's shape", name)
            shape = [x.shape[k] if int(d) == 0 else int(d) for k, d in enumerate(dims.reshape(-1))]
        shape = [int(d) for d in shape]
        if shape.count(-1) > 1:
            raise GraphError(f"reshape node {name!r}: at most one -1 in {shape}")
        if -1 in shape:
            known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
            if known == 0 or x.size % known:
                raise GraphError(f"reshape node {name!r}: cannot reshape {x.shape} to {shape}")
            shape[shape.index(-1)] = x.size // known
        inputs = [x] if shape_operand is None else [x, shape_operand]
        return self._one("reshape", inputs, {"shape": tuple(shape)}, name)

    def flatten(self, x: Operand, *, axis: int = 1, name: str = "") -> Operand:
        if not -x.rank <= axis <= x.rank:
            raise GraphError(f"flatten node {name!r}: axis {axis} out of range for rank {x.rank}")
        axis = axis + x.rank if axis < 0 else axis  # negative counts from the end, as in ONNX
        outer = int(np.prod(x.shape[:axis], dtype=np.int64))
        return self.reshape(x, (outer, x.size // outer if outer else 0), name=name)

    def squeeze(self, x: Operand, axes: Sequence[int] | None = None, *, name: str = "") -> Operand:
        axes = ([_axis("squeeze", name, a, x.rank) for a in axes] if axes is not None
                else [k for k, d in enumerate(x.shape) if d == 1])
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            raise GraphError(f"squeeze node {name!r}: axes {bad} of {x.shape} are not of size 1")
        return self.reshape(x, [d for k, d in enumerate(x.shape) if k not in axes], name=name)

    def unsqueeze(self, x: Operand, axes: Sequence[int], *, name: str = "") -> Operand:
        rank = x.rank + len(axes)
        axes = sorted(_axis("unsqueeze", name, a, rank) for a in axes)
        shape = list(x.shape)
        for a in axes:
            shape.insert(a, 1)
        return self.reshape(x, shape, name=name)

    def transpose(self, x: Operand, permutation: Sequence[int] | None = None, *, name: str = "") -> Operand:
        perm = tuple(permutation) if permutation is not None else tuple(reversed(range(x.rank)))
        return self._one("transpose", [x], {"perm": tuple(int(p) % max(x.rank, 1) for p in perm)}, name)

    def concat(self, inputs: Sequence[Operand], axis: int, *, name: str = "") -> Operand:
        if not inputs:
            raise GraphError(f"concat node {name!r}: needs at least one input")
        return self._one("concat", list(inputs), {"axis": _axis("concat", name, axis, inputs[0].rank)}, name)

    def slice(self, x: Operand, starts: Sequence[int], ends: Sequence[int], *, axes: Sequence[int] | None = None,
              steps: Sequence[int] | None = None, name: str = "") -> Operand:
        """ONNX-style slice: ends are exclusive, negative values count from the end, out-of-range clamps."""
        axes = list(range(len(starts))) if axes is None else [_axis("slice", name, a, x.rank) for a in axes]
        steps = [1] * len(axes) if steps is None else [int(s) for s in steps]
        start_all, step_all, shape = [0] * x.rank, [1] * x.rank, list(x.shape)
        for a, s, e, st in zip(axes, starts, ends, steps):
            if st == 0:
                raise GraphError(f"slice node {name!r}: step 0 on axis {a}")
            d = x.shape[a]
            s, e = int(s), int(e)
            s = s + d if s < 0 else s
            e = e + d if e < 0 else e
            if st > 0:
                s, e = min(max(s, 0), d), min(max(e, 0), d)
                n = max(0, -(-(e - s) // st))
            else:
                s, e = min(max(s, -1), d - 1), min(max(e, -1), d - 1)
                n = max(0, -(-(s - e) // -st))
            start_all[a], step_all[a], shape[a] = s, st, n
        return self._one("slice", [x], {"starts": tuple(start_all), "steps": tuple(step_all),
                                         "shape": tuple(shape)}, name)

    def pad(self, x: Operand, pads: Sequence[int], *, mode: str = "constant", value: float = 0.0,
            name: str = "") -> Operand:
        """pads = (begin_0, ..., begin_n, end_0, ..., end_n) as in ONNX; mode constant, edge or reflect."""
        if mode not in ("constant", "edge", "reflect"):
            raise GraphError(f"pad node {name!r}: mode {mode!r} is not constant, edge or reflect")
        return self._one("pad", [x], {"pads": tuple(int(p) for p in pads), "mode": mode, "value": float(value)},
                         name)

    def gather(self, x: Operand, indices: Operand, *, axis: int = 0, name: str = "") -> Operand:
        return self._one("gather", [x, indices], {"axis": _axis("gather", name, axis, x.rank)}, name)

    def gather_elements(self, x: Operand, indices: Operand, *, axis: int = 0, name: str = "") -> Operand:
        """``out[c] = x[c with c[axis] = indices[c]]``, indices of x's rank (WebNN's gatherElements)."""
        return self._one("gather_elements", [x, indices], {"axis": _axis("gather_elements", name, axis, x.rank)}, name)

    def roi_align(self, x: Operand, rois: Operand, batch_indices: Operand, output_size: tuple[int, int], *,
                  sampling_ratio: int = 0, spatial_scale: float = 1.0, half_pixel: bool = True, mode: str = "avg",
                  name: str = "") -> Operand:
        """ONNX's RoiAlign: each region (x1, y1, x2, y2) of ``rois`` (times ``spatial_scale``) of the image
        ``batch_indices`` picks, pooled to ``output_size`` bins of bilinear samples (``sampling_ratio``
        per side, 0: adaptive), averaged or (``mode="max"``) their largest; ``half_pixel`` shifts the
        corners by half a pixel (opset 16's default), else regions are at least one pixel."""
        oh, ow = (int(v) for v in output_size)
        if sampling_ratio < 0 or oh < 1 or ow < 1:
            raise GraphError(f"roi_align{f' {name!r}' if name else ''}: expected output sizes >= 1 and sampling_ratio "
                             f">= 0, got {output_size} and {sampling_ratio}")
        return self._one("roi_align", [x, rois, batch_indices],
                         {"output_size": (oh, ow), "sampling_ratio": int(sampling_ratio),
                          "spatial_scale": float(spatial_scale), "half_pixel": bool(half_pixel), "mode": mode}, name)

    def max_roi_pool(self, x: Operand, rois: Operand, output_size: tuple[int, int], *, spatial_scale: float = 1.0,
                     name: str = "") -> Operand:
        """ONNX's MaxRoiPool: the largest value of each of ``output_size`` bins of each region of
        ``rois`` (R, 5: batch index, x1, y1, x2, y2, scaled by ``spatial_scale`` and rounded)."""
        oh, ow = (int(v) for v in output_size)
        return self._one("max_roi_pool", [x, rois], {"output_size": (oh, ow), "spatial_scale": float(spatial_scale)},
                         name)

    def det(self, x: Operand, *, name: str = "") -> Operand:
        """The determinant of each n x n matrix of ``x`` (..., n, n) (ONNX's Det)."""
        return self._one("det", [x], {}, name)

    def max_unpool(self, x: Operand, indices: Operand, output_shape: Sequence[int], *, name: str = "") -> Operand:
        """ONNX's MaxUnpool: zeros of ``output_shape`` with x's values at ``indices`` (flat places in
        the output, as MaxPool's Indices give them); the last of several at one place wins."""
        return self._one("max_unpool", [x, indices], {"output_shape": tuple(int(d) for d in output_shape)}, name)

    def gather_nd(self, x: Operand, indices: Operand, *, batch_dims: int = 0, name: str = "") -> Operand:
        """Slices of ``x`` picked by the tuples along indices' last axis (WebNN's gatherND; ONNX's
        GatherND with ``batch_dims`` leading axes that x and indices share)."""
        return self._one("gather_nd", [x, indices], {"batch_dims": int(batch_dims)}, name)

    def scatter_elements(self, x: Operand, indices: Operand, updates: Operand, *, axis: int = 0,
                         reduction: str = "none", name: str = "") -> Operand:
        """A copy of ``x`` where ``updates[c]`` goes to c with c[axis] = indices[c], combined in order
        by ``reduction`` (none, add, mul, max, min)."""
        return self._one("scatter_elements", [x, indices, updates],
                         {"axis": _axis("scatter_elements", name, axis, x.rank), "reduction": reduction}, name)

    def scatter_nd(self, x: Operand, indices: Operand, updates: Operand, *, reduction: str = "none",
                   name: str = "") -> Operand:
        """A copy of ``x`` where each tuple along indices' last axis names a slice that takes the
        matching slice of ``updates``, in order, combined by ``reduction``."""
        return self._one("scatter_nd", [x, indices, updates], {"reduction": reduction}, name)

    def cumulative_sum(self, x: Operand, axis: int, *, exclusive: bool = False, reversed: bool = False,
                       name: str = "") -> Operand:
        """Running sums along ``axis`` (WebNN's cumulativeSum; ONNX's CumSum)."""
        return self._one("cumsum", [x], {"axis": _axis("cumsum", name, axis, x.rank), "exclusive": bool(exclusive),
                                         "reverse": bool(reversed)}, name)

    def cumulative_product(self, x: Operand, axis: int, *, exclusive: bool = False, reversed: bool = False,
                           name: str = "") -> Operand:
        """Running products along ``axis`` (ONNX's CumProd); exclusive ones start at 1."""
        return self._one("cumsum", [x], {"axis": _axis("cumsum", name, axis, x.rank), "exclusive": bool(exclusive),
                                         "reverse": bool(reversed), "product": True}, name)

    def top_k(self, x: Operand, k: int, *, axis: int = -1, largest: bool = True, name: str = "") -> list[Operand]:
        """The ``k`` largest (or smallest) values along ``axis``, in order (equal ones in their order
        along the axis), and their int64 indices."""
        return self._add("top_k", [x], {"k": int(k), "axis": _axis("top_k", name, axis, x.rank),
                                        "largest": bool(largest)}, name=name, n_out=2)

    def grid_sample(self, x: Operand, grid: Operand, *, mode: str = "linear", padding_mode: str = "zeros",
                    align_corners: bool = False, pixels: bool = False, name: str = "") -> Operand:
        """Sample NCHW (or NCDHW) ``x`` where ``grid`` (N, OH, OW, 2: x then y[, z], in [-1, 1]) points, as ONNX
        GridSample does: ``mode`` nearest, linear or cubic; ``padding_mode`` zeros, border or
        reflection. ``pixels``: the grid holds pixel coordinates instead (0 the first pixel's centre)."""
        return self._one("grid_sample", [x, grid], {"mode": mode, "padding": padding_mode,
                                                    "align_corners": bool(align_corners), "pixels": bool(pixels)},
                         name)

    def identity(self, x: Operand, *, name: str = "") -> Operand:
        return self._one("identity", [x], {}, name)

    def shape(self, x: Operand, *, name: str = "") -> Operand:
        return self._one("shape", [x], {}, name)

    def constant_of_shape(self, shape: Operand, value: np.ndarray, *, name: str = "") -> Operand:
        dims = self.require_static(shape, "ConstantOfShape's shape", name)
        return self._one("constant_of_shape", [shape], {"value": np.asarray(value).reshape(()),
                                                         "resolved_shape": tuple(int(d) for d in dims)}, name)

    def cast(self, x: Operand, to: str, *, name: str = "") -> Operand:
        if to not in DTYPES:
            raise GraphError(f"cast node {name!r}: dtype {to!r} is not one of {DTYPES}")
        return self._one("cast", [x], {"to": to}, name)

    def bitcast(self, x: Operand, to: str, *, name: str = "") -> Operand:
        """Each element's bits read as ``to``, a type of the same width (ONNX's BitCast)."""
        if to not in DTYPES:
            raise GraphError(f"bitcast node {name!r}: dtype {to!r} is not one of {DTYPES}")
        return self._one("bitcast", [x], {"to": to}, name)

    # -- finishing ----------------------------------------------------------------------------

    def build_graph(self, outputs: dict[str, Operand], *, copy: bool = True) -> Graph:
        """The graph that computes ``outputs`` (named), without compiling it: of copies of the
        builder's nodes, which stay as they are, or (``copy=False``, for a builder no one builds on
        afterwards) of its nodes themselves."""
        if not outputs:
            raise GraphError("build needs at least one output")
        for key, value in outputs.items():
            if not isinstance(value, Operand):
                raise GraphError(f"output {key!r} is a {type(value).__name__}, expected an Operand")
        graph = Graph(list(self.nodes), dict(self.inputs), dict(outputs))
        graph.prune()
        return graph.copy() if copy else graph  # (compiling rewrites a graph)
