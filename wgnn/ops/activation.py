"""Activations: one table shared by the standalone ops, the fused epilogues and the reference.

The WGSL side of each entry is ``act_<name>`` in ``shaders/activation.wgsl``; an activation takes
two scalar parameters (``alpha``, ``beta``) and, for ``prelu``, a per-channel slope tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class Activation:
    """A fused or standalone activation: its kind and its two scalar parameters."""

    kind: str
    alpha: float = 0.0
    beta: float = 0.0

    def apply(self, x: np.ndarray, slope: np.ndarray | None = None) -> np.ndarray:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown activation {self.kind!r}")
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if self.kind == "prelu":
                return np.where(x >= 0, x, x * slope).astype(x.dtype)
            y = _NUMPY[self.kind](x.astype(np.float64), float(np.float32(self.alpha)), float(np.float32(self.beta)))
        return np.asarray(y).astype(x.dtype)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _gelu(x, a, b):
    if a:  # the tanh approximation
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / np.sqrt(2)))


# The numpy reference of each kind (prelu aside), in float64: f(x, alpha, beta).
_NUMPY = {
    "relu": lambda x, a, b: np.maximum(x, 0),
    "clip": lambda x, a, b: np.clip(x, a, b),
    "sigmoid": lambda x, a, b: 1 / (1 + np.exp(-x)),
    "tanh": lambda x, a, b: np.tanh(x),
    "leaky_relu": lambda x, a, b: np.where(x >= 0, x, x * a),
    "leaky_relu_max": lambda x, a, b: np.maximum(np.where(x >= 0, x, x * a), b),
    "hard_sigmoid": lambda x, a, b: np.clip(x * a + b, 0, 1),
    "hard_swish": lambda x, a, b: x * np.clip(x * a + b, 0, 1),
    "abs": lambda x, a, b: np.abs(x),
    "neg": lambda x, a, b: -x,
    "exp": lambda x, a, b: np.exp(x),
    "log": lambda x, a, b: np.log(x),
    "sqrt": lambda x, a, b: np.sqrt(x),
    "reciprocal": lambda x, a, b: 1 / x,
    "floor": lambda x, a, b: np.floor(x),
    "ceil": lambda x, a, b: np.ceil(x),
    "round": lambda x, a, b: np.round(x),  # half to even, as ONNX and WGSL
    "sin": lambda x, a, b: np.sin(x),
    "cos": lambda x, a, b: np.cos(x),
    "erf": lambda x, a, b: _erf(x),
    "sign": lambda x, a, b: np.sign(x),
    "elu": lambda x, a, b: np.where(x > 0, x, a * (np.exp(x) - 1)),
    "selu": lambda x, a, b: np.where(x > 0, b * x, b * a * (np.exp(x) - 1)),
    "celu": lambda x, a, b: np.maximum(x, 0) + np.minimum(0, a * (np.exp(x / a) - 1)),
    "softplus": lambda x, a, b: np.logaddexp(0, x),
    "softsign": lambda x, a, b: x / (1 + np.abs(x)),
    "gelu": _gelu,
    "tan": lambda x, a, b: np.tan(x),
    "asin": lambda x, a, b: np.arcsin(x),
    "acos": lambda x, a, b: np.arccos(x),
    "atan": lambda x, a, b: np.arctan(x),
    "sinh": lambda x, a, b: np.sinh(x),
    "cosh": lambda x, a, b: np.cosh(x),
    "asinh": lambda x, a, b: np.arcsinh(x),
    "acosh": lambda x, a, b: np.arccosh(x),
    "atanh": lambda x, a, b: np.arctanh(x),
    "mish": lambda x, a, b: x * np.tanh(np.logaddexp(0, x)),
    "swish": lambda x, a, b: x / (1 + np.exp(-a * x)),
    "thresholded_relu": lambda x, a, b: np.where(x > a, x, 0),
    "shrink": lambda x, a, b: np.where(x < -a, x + b, np.where(x > a, x - b, 0)),  # alpha: lambd, beta: bias
}

# name -> default (alpha, beta)
KINDS: dict[str, tuple[float, float]] = {
    "relu": (0.0, 0.0),
    "clip": (-np.inf, np.inf),
    "sigmoid": (0.0, 0.0),
    "tanh": (0.0, 0.0),
    "leaky_relu": (0.01, 0.0),
    "leaky_relu_max": (0.01, -np.inf),  # max(leaky_relu(x, alpha), beta) (passes.fuse_bounds)
    "hard_sigmoid": (0.2, 0.5),
    "hard_swish": (1.0 / 6.0, 0.5),
    "prelu": (0.0, 0.0),
    **{k: (0.0, 0.0) for k in ("abs", "neg", "exp", "log", "sqrt", "reciprocal", "floor", "ceil", "round", "sin",
                               "cos", "erf", "sign", "softplus", "softsign")},
    "elu": (1.0, 0.0),
    "selu": (1.67326319217681884765625, 1.05070102214813232421875),  # alpha, gamma
    "celu": (1.0, 0.0),
    "gelu": (0.0, 0.0),  # alpha 1: the tanh approximation
    **{k: (0.0, 0.0) for k in ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "mish")},
    "swish": (1.0, 0.0),
    "thresholded_relu": (1.0, 0.0),
    "shrink": (0.5, 0.0),  # lambd, bias
}
# Kinds whose results can exceed float16's range from ordinary inputs: stored in f32 in fp16 mode.
WIDE_KINDS = frozenset({"exp", "reciprocal", "tan", "sinh", "cosh"})


def make(kind: str, alpha: float | None = None, beta: float | None = None) -> Activation:
    """Build an activation; ``relu6`` is ``clip`` between 0 and 6."""
    if kind == "relu6":
        return Activation("clip", 0.0, 6.0)
    if kind not in KINDS:
        raise ConfigError(f"unknown activation {kind!r}; expected one of {sorted(KINDS) + ['relu6']}")
    da, db = KINDS[kind]
    return Activation(kind, da if alpha is None else float(alpha), db if beta is None else float(beta))


def apply_fused(node_attrs: dict, x: np.ndarray, slope: np.ndarray | None) -> np.ndarray:
    act: Activation | None = node_attrs.get("activation")
    return x if act is None else act.apply(x, slope)


def apply_epilogue(node_attrs: dict, y: np.ndarray, residual: np.ndarray | None,
                   slope: np.ndarray | None) -> np.ndarray:
    """A fused epilogue after the bias, in float32: the residual added, then the activation; or
    with ``residual_after`` (``passes.fuse_residual.fuse_residual_after_activation``) the
    activation first, then the residual (YOLO's bottlenecks: x + SiLU(conv)); last, with
    ``affine_after`` = (scale, shift), y * scale + shift (``passes.fuse_affine``). A convolution's
    residual may have fewer channels (axis 1) than ``y``: the others add zero
    (``passes.fuse_residual.narrow_padded_residuals``)."""
    after = bool(node_attrs.get("residual_after"))
    if residual is not None and residual.ndim == 4 and y.ndim == 4 and residual.shape[1] < y.shape[1]:
        residual = np.pad(residual, ((0, 0), (0, y.shape[1] - residual.shape[1]), (0, 0), (0, 0)))
    if residual is not None and not after:
        y = y + residual
    y = apply_fused(node_attrs, y.astype(np.float32), slope)
    if residual is not None and after:
        y = (y + residual).astype(np.float32)
    post = node_attrs.get("affine_after")  # (scale, shift) after all (passes.fuse_affine)
    if post is not None:
        y = (y * np.float32(post[0]) + np.float32(post[1])).astype(np.float32)
    return y
