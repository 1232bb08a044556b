"""Activations: one table shared by the standalone ops, the fused epilogues and the reference.

The WGSL side of each entry is ``act_<name>`` in ``shaders/activation.wgsl``; an activation takes
two scalar parameters (``alpha``, ``beta``) and, for ``prelu``, a per-channel slope tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(x.dtype)


@dataclass(frozen=True)
class Activation:
    """A fused or standalone activation: its kind and its two scalar parameters."""

    kind: str
    alpha: float = 0.0
    beta: float = 0.0

    def apply(self, x: np.ndarray, slope: np.ndarray | None = None) -> np.ndarray:
        a, b = np.float32(self.alpha), np.float32(self.beta)
        with np.errstate(over="ignore"):
            if self.kind == "relu":
                return np.maximum(x, 0).astype(x.dtype)
            if self.kind == "clip":
                return np.clip(x, a, b).astype(x.dtype)
            if self.kind == "sigmoid":
                return _sigmoid(x)
            if self.kind == "tanh":
                return np.tanh(x)
            if self.kind == "leaky_relu":
                return np.where(x >= 0, x, x * a).astype(x.dtype)
            if self.kind == "hard_sigmoid":
                return np.clip(x * a + b, 0, 1).astype(x.dtype)
            if self.kind == "hard_swish":
                return (x * np.clip(x * a + b, 0, 1)).astype(x.dtype)
            if self.kind == "prelu":
                return np.where(x >= 0, x, x * slope).astype(x.dtype)
        raise ValueError(f"unknown activation {self.kind!r}")


# name -> default (alpha, beta)
KINDS: dict[str, tuple[float, float]] = {
    "relu": (0.0, 0.0),
    "clip": (-np.inf, np.inf),
    "sigmoid": (0.0, 0.0),
    "tanh": (0.0, 0.0),
    "leaky_relu": (0.01, 0.0),
    "hard_sigmoid": (0.2, 0.5),
    "hard_swish": (1.0 / 6.0, 0.5),
    "prelu": (0.0, 0.0),
}


def make(kind: str, alpha: float | None = None, beta: float | None = None) -> Activation:
    """Build an activation; ``relu6`` is ``clip`` between 0 and 6."""
    if kind == "relu6":
        return Activation("clip", 0.0, 6.0)
    if kind not in KINDS:
        raise ValueError(f"unknown activation {kind!r}; expected one of {sorted(KINDS) + ['relu6']}")
    da, db = KINDS[kind]
    return Activation(kind, da if alpha is None else float(alpha), db if beta is None else float(beta))


def apply_fused(node_attrs: dict, x: np.ndarray, slope: np.ndarray | None) -> np.ndarray:
    act: Activation | None = node_attrs.get("activation")
    return x if act is None else act.apply(x, slope)
