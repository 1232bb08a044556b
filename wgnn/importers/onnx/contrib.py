"""ONNX Runtime's ``com.microsoft`` fusions that its graph optimizer writes into the models it saves
(``optimized_model_filepath``, ``onnxruntime.transformers.optimizer``, Optimum's optimized exports):
FusedConv, FusedMatMul, the Gelu family, and the skip / simplified layer normalizations
(SimplifiedLayerNormalization, RMS normalization, in ONNX Runtime's default domain too).
Each imports as the few of wgnn's ops it fuses; wgnn's own passes fuse them again where they can.
"""

from __future__ import annotations

import numpy as np

from .common import CONVERTERS, converts, text

# FusedConv's activation attribute -> (wgnn activation, how its activation_params map to alpha, beta)
_FUSED_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "LeakyRelu": "leaky_relu", "Clip": "clip",
                      "HardSigmoid": "hard_sigmoid"}


@converts("com.microsoft.FusedConv")
def _fused_conv(b, node, ins, attrs):
    """Conv (inputs X, W, B), plus Z where given, then the activation."""
    y = CONVERTERS["Conv"](b, node, ins[:3], {k: v for k, v in attrs.items() if not k.startswith("activation")})
    if len(ins) > 3 and ins[3] is not None:
        y = b.add(y, ins[3], name=f"{node.name}/z")
    kind = text(attrs, "activation", "")
    if not kind:
        return y
    if kind not in _FUSED_ACTIVATIONS:
        raise node.unsupported(f"activation {kind!r} (takes {sorted(_FUSED_ACTIVATIONS)})")
    params = [float(p) for p in attrs.get("activation_params", [])]
    return b.activation(y, _FUSED_ACTIVATIONS[kind], alpha=params[0] if params else None,
                        beta=params[1] if len(params) > 1 else None, name=f"{node.name}/act")


def _swap_last(b, x, name):
    perm = list(range(x.rank))
    perm[-2:] = perm[-1], perm[-2]
    return b.transpose(x, perm, name=name)


@converts("com.microsoft.FusedMatMul")
def _fused_matmul(b, node, ins, attrs):
    """alpha * (A or A^T) @ (B or B^T): MatMul with transposes and a scale."""
    if attrs.get("transBatchA", 0) or attrs.get("transBatchB", 0):
        raise node.unsupported("transBatchA / transBatchB")
    a, w = ins[0], ins[1]
    if attrs.get("transA", 0):
        a = _swap_last(b, a, f"{node.name}/a_t")
    if attrs.get("transB", 0):
        w = _swap_last(b, w, f"{node.name}/b_t")
    y = CONVERTERS["MatMul"](b, node, [a, w], {})
    alpha = float(attrs.get("alpha", 1.0))
    return y if alpha == 1.0 else b.mul(y, b.constant(np.float32(alpha)), name=f"{node.name}/alpha")


@converts("com.microsoft.Gelu", "com.microsoft.BiasGelu", "com.microsoft.FastGelu")
def _gelu(b, node, ins, attrs):
    """Gelu (exact), BiasGelu (exact, of A + B), FastGelu (the tanh form, of X + bias where given)."""
    x = ins[0]
    if len(ins) > 1 and ins[1] is not None:
        x = b.add(x, ins[1], name=f"{node.name}/bias")
    return b.activation(x, "gelu", alpha=1.0 if node.op_type == "FastGelu" else 0.0, name=node.name)


@converts("com.microsoft.QuickGelu")
def _quick_gelu(b, node, ins, attrs):
    """x * sigmoid(alpha * x)."""
    alpha = float(attrs.get("alpha", 1.702))
    gate = b.sigmoid(b.mul(ins[0], b.constant(np.float32(alpha)), name=f"{node.name}/scaled"), name=f"{node.name}/gate")
    return b.mul(ins[0], gate, name=node.name)


def _rms_normalize(b, x, axis: int, epsilon: float, name: str):
    """x / sqrt(mean(x^2 over the axes from ``axis``) + epsilon), and that 1 / sqrt(...)."""
    axes = list(range(axis % x.rank, x.rank))
    mean_square = b.reduce(b.mul(x, x, name=f"{name}/sq"), "mean", axes, keepdims=True, name=f"{name}/ms")
    inv = b.activation(b.activation(b.add(mean_square, b.constant(np.float32(epsilon)), name=f"{name}/eps"), "sqrt",
                                    name=f"{name}/rms"), "reciprocal", name=f"{name}/inv")
    return b.mul(x, inv, name=f"{name}/normalized"), inv


@converts("com.microsoft.SkipLayerNormalization", "com.microsoft.SkipSimplifiedLayerNormalization",
          "SimplifiedLayerNormalization")
def _skip_layer_norm(b, node, ins, attrs):
    """LayerNormalization (or, Simplified, RMS normalization) of input + skip (+ bias), times gamma (+
    beta); outputs [normalized, mean, inverse std, input + skip + bias] as ONNX Runtime gives them
    (the statistics only where a layer normalization computes them)."""
    eps = float(attrs.get("epsilon", 1e-5 if node.op_type != "SkipSimplifiedLayerNormalization" else 1e-6))
    name = node.name
    if node.op_type == "SimplifiedLayerNormalization":
        x, gamma, beta, bias = ins[0], ins[1], None, None
        axis = int(attrs.get("axis", -1))
    else:
        x = b.add(ins[0], ins[1], name=f"{name}/skip")
        simplified = node.op_type == "SkipSimplifiedLayerNormalization"
        gamma = ins[2]
        beta = None if simplified else (ins[3] if len(ins) > 3 else None)
        bias = ins[3 if simplified else 4] if len(ins) > (3 if simplified else 4) else None
        if bias is not None:
            x = b.add(x, bias, name=f"{name}/bias")
        axis = -1
    if node.op_type == "SkipLayerNormalization":
        y, mean, inv = b.layer_normalization(x, scale=gamma, bias=beta, axis=axis, epsilon=eps, name=name)
        return [y, mean, inv, x]
    normalized, inv = _rms_normalize(b, x, axis, eps, name)
    y = b.mul(normalized, gamma, name=name)
    if node.op_type == "SimplifiedLayerNormalization":
        return [y, inv] if node.outputs > 1 else y
    return [y, b.constant(np.zeros(inv.shape, np.float32)), inv, x] if node.outputs > 1 else y
