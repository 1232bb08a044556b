"""ONNX Runtime's ``com.microsoft`` fusions that its graph optimizer writes into the models it saves
(``optimized_model_filepath``, ``onnxruntime.transformers.optimizer``, Optimum's optimized exports):
FusedConv, FusedMatMul, the Gelu family, the skip / simplified layer normalizations
(SimplifiedLayerNormalization, RMS normalization, in ONNX Runtime's default domain too), and the
transformer optimizer's EmbedLayerNormalization, Attention and MultiHeadAttention (transformer
encoders).
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
        simplified = node.op_type == "SkipSimplifiedLayerNormalization"
        gamma = ins[2]
        beta = None if simplified else (ins[3] if len(ins) > 3 else None)
        bias = ins[3 if simplified else 4] if len(ins) > (3 if simplified else 4) else None
        # the bias first: a matrix product's bias then fuses into its epilogue, and the skip after it
        x = ins[0] if bias is None else b.add(ins[0], bias, name=f"{name}/bias")
        x = b.add(x, ins[1], name=f"{name}/skip")
        axis = -1
    if node.op_type == "SkipLayerNormalization":
        y, mean, inv = b.layer_normalization(x, scale=gamma, bias=beta, axis=axis, epsilon=eps, name=name)
        return [y, mean, inv, x]
    normalized, inv = _rms_normalize(b, x, axis, eps, name)
    y = b.mul(normalized, gamma, name=name)
    if node.op_type == "SimplifiedLayerNormalization":
        return [y, inv] if node.outputs > 1 else y
    return [y, b.constant(np.zeros(inv.shape, np.float32)), inv, x] if node.outputs > 1 else y


@converts("com.microsoft.EmbedLayerNormalization")
def _embed_layer_norm(b, node, ins, attrs):
    """LayerNormalization(word[ids] + position[position_ids or 0..S-1] + segment[segment_ids]);
    outputs [normalized, mask_index (the count of ones in each row of the mask, int32; zeros
    without a mask, as ONNX Runtime gives), the sum before normalizing]."""
    ids, segments, word, position, segment_table, gamma, beta, mask, position_ids = (list(ins) + [None] * 9)[:9]
    if any(t is None for t in (ids, word, position, gamma, beta)) or ids.rank != 2:
        raise node.unsupported("needs input_ids (batch x sequence), word and position embeddings, gamma and beta")
    batch, seq = ids.shape
    name = node.name
    x = b.gather(word, ids, name=f"{name}/words")
    if position_ids is None:
        position_ids = b.constant(np.arange(seq, dtype=np.int32))
    x = b.add(x, b.gather(position, position_ids, name=f"{name}/positions"), name=f"{name}/sum")
    if segments is not None and segment_table is not None:
        x = b.add(x, b.gather(segment_table, segments, name=f"{name}/segments"), name=f"{name}/embedding_sum")
    y = b.layer_normalization(x, scale=gamma, bias=beta, axis=-1, epsilon=float(attrs.get("epsilon", 1e-12)),
                              name=name)[0]
    if mask is None:
        count = b.constant(np.zeros(batch, np.int32))
    else:
        ones = b.reduce(b.cast(mask, "float32", name=f"{name}/mask_f"), "sum", [1], keepdims=False,
                        name=f"{name}/mask_sum")
        count = b.cast(ones, "int32", name=f"{name}/mask_index")
    return [y, count, x]


def _attention_mask(b, node, mask, batch: int, seq: int, total: int, fill: float):
    """The additive mask (``fill`` where a key is masked, else 0) that Attention's mask_index
    describes, shaped to broadcast over (batch, heads, seq, total): 1-D of batch the end of each
    row's keys (right padding), of 2 x batch the ends then the starts; 2-D (batch, total) and 3-D
    (batch, seq, total) raw masks, where a value <= 0 masks."""
    name = f"{node.name}/mask"
    zero, filled = b.constant(np.float32(0.0)), b.constant(np.float32(fill))
    if mask.rank == 1 and mask.shape[0] in (batch, 2 * batch):
        keys = b.constant(np.arange(total, dtype=np.int32))
        end = b.reshape(b.slice(mask, [0], [batch], name=f"{name}/end"), (batch, 1), name=f"{name}/end_col")
        masked = b.greater_or_equal(keys, end, name=f"{name}/after")
        if mask.shape[0] == 2 * batch:
            start = b.reshape(b.slice(mask, [batch], [2 * batch], name=f"{name}/start"), (batch, 1),
                              name=f"{name}/start_col")
            masked = b.logical_or(masked, b.lesser(keys, start, name=f"{name}/before"), name=f"{name}/outside")
        shape = (batch, 1, 1, total)
    elif mask.rank == 2 and mask.shape == (batch, total) or mask.rank == 3 and mask.shape == (batch, seq, total):
        masked = b.lesser_or_equal(mask, b.constant(np.zeros((), np.int32 if mask.dtype == "int32" else np.float32)),
                                   name=f"{name}/off")
        shape = (batch, 1, 1, total) if mask.rank == 2 else (batch, 1, seq, total)
    else:
        raise node.unsupported(f"mask_index of shape {mask.shape} (takes ({batch},), ({2 * batch},), "
                               f"({batch}, {total}) or ({batch}, {seq}, {total}))")
    return b.reshape(b.where(masked, filled, zero, name=f"{name}/additive"), shape, name=f"{name}/bias")


@converts("com.microsoft.Attention")
def _attention(b, node, ins, attrs):
    """Multi-head self-attention of ONNX Runtime's BERT fusion: Q, K, V from one product with
    weights (input_hidden x (q + k + v)) and bias, softmax(Q K^T * scale + mask) V per head. Takes
    mask_index (see ``_attention_mask``), ``unidirectional`` (causal) and an additive attention
    bias; refuses a past key/value cache and rotary embeddings by name."""
    x, weights, bias, mask, past, extra, past_length = (list(ins) + [None] * 7)[:7]
    if past is not None or past_length is not None or node.outputs > 1:
        raise node.unsupported("a past key/value cache (past, present, past_sequence_length)")
    if attrs.get("do_rotary", 0):
        raise node.unsupported("do_rotary")
    if x.rank != 3 or weights is None or weights.rank != 2 or weights.shape[0] != x.shape[2]:
        raise node.unsupported(f"expects input (batch, sequence, hidden) and weights (hidden, q + k + v), got "
                               f"{x.shape} and {None if weights is None else weights.shape}")
    heads = int(attrs["num_heads"])
    sizes = [int(v) for v in attrs.get("qkv_hidden_sizes", [])] or [weights.shape[1] // 3] * 3
    dq, dk, dv = sizes
    if sum(sizes) != weights.shape[1] or dq != dk or dq % heads or dv % heads:
        raise node.unsupported(f"q, k, v sizes {sizes} with {heads} heads and weights {weights.shape}")
    batch, seq, _ = x.shape
    name = node.name
    qkv = b.matmul(x, weights, name=f"{name}/qkv")
    if bias is not None:
        qkv = b.add(qkv, bias, name=f"{name}/qkv_bias")
    q, k, v = (b.slice(qkv, [start], [start + size], axes=[2], name=f"{name}/{part}")
               for start, size, part in ((0, dq, "q"), (dq, dk, "k"), (dq + dk, dv, "v")))
    fill = float(attrs.get("mask_filter_value", -10000.0))
    additive = _attention_mask(b, node, mask, batch, seq, seq, fill) if mask is not None else None
    return _multi_head(b, node, q, k, v, heads, attrs, additive, extra)


def _multi_head(b, node, q, k, v, heads: int, attrs, additive, extra):
    """softmax(Q K^T * scale + masks) V over ``heads`` heads of q (batch, seq, dq), k (batch,
    keys, dq) and v (batch, keys, dv); ``additive``: a key mask from ``_attention_mask``;
    ``extra``: an additive attention bias (batch or 1, heads or 1, seq, keys); ``unidirectional``
    masks the keys after each query; ``scale`` defaults to 1 / sqrt(head size)."""
    name = node.name
    (batch, seq, dq), keys, dv = q.shape, k.shape[1], v.shape[2]

    def split(t, size, perm, part):
        t = b.reshape(t, (batch, t.shape[1], heads, size // heads), name=f"{name}/{part}_heads")
        return b.transpose(t, perm, name=f"{name}/{part}_t")

    q = split(q, dq, [0, 2, 1, 3], "q")
    k = split(k, dq, [0, 2, 3, 1], "k")
    v = split(v, dv, [0, 2, 1, 3], "v")
    scale = float(attrs.get("scale", 0.0)) or 1.0 / float(np.sqrt(dq // heads))
    scores = b.mul(b.matmul(q, k, name=f"{name}/qk"), b.constant(np.float32(scale)), name=f"{name}/scaled")
    fill = float(attrs.get("mask_filter_value", -10000.0))
    if attrs.get("unidirectional", 0):
        causal = np.where(np.arange(keys)[None, :] > np.arange(seq)[:, None] + (keys - seq), fill, 0.0)
        causal = b.constant(causal.astype(np.float32))
        additive = causal if additive is None else b.add(additive, causal, name=f"{name}/causal")
    if extra is not None:
        additive = extra if additive is None else b.add(additive, extra, name=f"{name}/attention_bias")
    if additive is not None:
        scores = b.add(scores, additive, name=f"{name}/masked")
    context = b.matmul(b.softmax(scores, axis=-1, name=f"{name}/probs"), v, name=f"{name}/context")
    return b.reshape(b.transpose(context, [0, 2, 1, 3], name=f"{name}/context_t"), (batch, seq, dv), name=name)


@converts("com.microsoft.MultiHeadAttention")
def _multi_head_attention(b, node, ins, attrs):
    """Multi-head attention on separate query, key and value (batch, sequence, hidden), self- or
    cross-attention, with an optional bias for all three (q + k + v), key_padding_mask (as
    Attention's mask_index: 1-D ends, 2-D or 3-D raw), an additive attention bias and
    ``unidirectional``. Packed QKV or KV, key and value already split into heads, and a past
    key/value cache are refused by name."""
    q, k, v, bias, mask, extra = (list(ins) + [None] * 6)[:6]
    if any(t is not None for t in ins[6:]) or node.outputs > 1:
        raise node.unsupported("a past key/value cache (past_key, past_value, present_key, present_value)")
    if q.rank != 3 or k is None or v is None or k.rank != 3 or v.rank != 3:
        raise node.unsupported(f"query, key and value each (batch, sequence, hidden); got {q.shape}, "
                               f"{None if k is None else k.shape}, {None if v is None else v.shape} (packed QKV, "
                               "packed KV and key/value split into heads are not taken)")
    heads = int(attrs["num_heads"])
    (batch, seq, dq), keys, dv = q.shape, k.shape[1], v.shape[2]
    if k.shape != (batch, keys, dq) or v.shape[:2] != (batch, keys) or dq % heads or dv % heads:
        raise node.unsupported(f"query {q.shape}, key {k.shape}, value {v.shape} with {heads} heads")
    if bias is not None:
        q = b.add(q, b.slice(bias, [0], [dq], name=f"{node.name}/q_bias"), name=f"{node.name}/q")
        k = b.add(k, b.slice(bias, [dq], [2 * dq], name=f"{node.name}/k_bias"), name=f"{node.name}/k")
        v = b.add(v, b.slice(bias, [2 * dq], [2 * dq + dv], name=f"{node.name}/v_bias"), name=f"{node.name}/v")
    fill = float(attrs.get("mask_filter_value", -10000.0))
    additive = _attention_mask(b, node, mask, batch, seq, keys, fill) if mask is not None else None
    return _multi_head(b, node, q, k, v, heads, attrs, additive, extra)
