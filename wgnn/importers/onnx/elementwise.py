"""ONNX converters: activations, arithmetic, comparisons and logic."""

from __future__ import annotations

import numpy as np

from ...ops.activation import KINDS as ACTIVATION_DEFAULTS
from .common import (
    NodeInfo,
    converts,
    static,
    text,
)

_SIMPLE_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hard_swish",
                       "Abs": "abs", "Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
                       "Reciprocal": "reciprocal", "Floor": "floor", "Ceil": "ceil", "Round": "round", "Sin": "sin",
                       "Cos": "cos", "Erf": "erf", "Sign": "sign", "Softplus": "softplus", "Softsign": "softsign",
                       "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh",
                       "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh", "Mish": "mish"}


@converts(*_SIMPLE_ACTIVATIONS)
def _activation(b, node, ins, attrs):
    return b.activation(ins[0], _SIMPLE_ACTIVATIONS[node.op_type], name=node.name)


@converts("Elu", "Selu", "Celu")
def _exponential_unit(b, node, ins, attrs):
    kind = node.op_type.lower()
    alpha, beta = ACTIVATION_DEFAULTS[kind]
    return b.activation(ins[0], kind, alpha=attrs.get("alpha", alpha), beta=attrs.get("gamma", beta), name=node.name)


@converts("Swish", "ThresholdedRelu", "Shrink")
def _parametric(b, node, ins, attrs):
    kind = {"Swish": "swish", "ThresholdedRelu": "thresholded_relu", "Shrink": "shrink"}[node.op_type]
    alpha, beta = ACTIVATION_DEFAULTS[kind]
    alpha = attrs.get("lambd" if kind == "shrink" else "alpha", alpha)
    return b.activation(ins[0], kind, alpha=alpha, beta=attrs.get("bias", beta), name=node.name)


@converts("Gelu")
def _gelu(b, node, ins, attrs):
    approximate = text(attrs, "approximate", "none")
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
        bounds = [ins[k] if len(ins) > k else None for k in (1, 2)]
        if any(v is not None and b.static_value(v) is None for v in bounds):
            # bounds computed on the GPU (a spectrogram's floor 80 dB under its peak): max, then min
            y, (lo, hi) = ins[0], bounds
            if lo is not None:
                y = b.max(y, lo, name=f"{node.name}/min" if hi is not None else node.name)
            return b.min(y, hi, name=node.name) if hi is not None else y
        lo_v = static(b, node, bounds[0], "min")
        hi_v = static(b, node, bounds[1], "max")
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


@converts("Mod")
def _mod(b, node, ins, attrs):
    fmod = bool(attrs.get("fmod", 0))
    return b._binary("fmod" if fmod else "mod", ins[0], ins[1], node.name)


_BITWISE = {"BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor"}


@converts(*_BITWISE)
def _bitwise(b, node, ins, attrs):
    return b._binary(_BITWISE[node.op_type], ins[0], ins[1], node.name)


@converts("BitwiseNot")
def _bitwise_not(b, node, ins, attrs):
    """x XOR all ones (stored as i32, a narrow type keeps its own bits)."""
    x = ins[0]
    ones = np.array(-1 if np.dtype(x.dtype).kind == "i" else np.iinfo(x.dtype).max, x.dtype)
    return b._binary("bitwise_xor", x, b.constant(ones), node.name)


@converts("BitShift")
def _bit_shift(b, node, ins, attrs):
    direction = text(attrs, "direction", "")
    if direction not in ("LEFT", "RIGHT"):
        raise node.unsupported(f"direction {direction!r}")
    return b._binary("shift_left" if direction == "LEFT" else "shift_right", ins[0], ins[1], node.name)


@converts("IsNaN")
def _is_nan(b, node, ins, attrs):
    return b.is_nan(ins[0], name=node.name)


@converts("IsInf")
def _is_inf(b, node, ins, attrs):
    return b.is_inf(ins[0], positive=bool(attrs.get("detect_positive", 1)),
                    negative=bool(attrs.get("detect_negative", 1)), name=node.name)


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


@converts("Mean")
def _mean(b, node, ins, attrs):
    total = _binary(b, NodeInfo(node.name + "/sum", "Sum", node.opset), ins, attrs)
    return b.mul(total, b.constant(np.array(1.0 / len(ins), np.float32)), name=node.name)
