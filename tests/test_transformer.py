"""Transformer encoders: the fusions that make them few dispatches (linear bias, GELU, layer norm,
scaled and masked softmax), the row kernels in every variant, ONNX Runtime's Attention and
EmbedLayerNormalization, and a real pretrained sentence encoder (all-MiniLM-L6-v2) against ONNX
Runtime and against the similarities sentence-transformers publishes for it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import assert_shared_after, fetch_or_skip, kernels_used, plan_weights, rel_l2
from onnx import TensorProto, helper, numpy_helper

import wgnn
from wgnn import bert, text

ort = pytest.importorskip("onnxruntime")
MS = "com.microsoft"


def _model(nodes, inputs: dict, outputs: list[str], consts: dict | None = None, opset: int = 17,
           contrib: bool = False, integer_outputs: tuple[str, ...] = ()):
    def info(name, value):
        kind = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32,
                np.dtype(np.int64): TensorProto.INT64}[value.dtype]
        return helper.make_tensor_value_info(name, kind, value.shape)

    kinds = {n: TensorProto.INT32 if n in integer_outputs else TensorProto.FLOAT for n in outputs}
    graph = helper.make_graph(nodes, "g", [info(n, v) for n, v in inputs.items()],
                              [helper.make_tensor_value_info(n, kind, None) for n, kind in kinds.items()],
                              [numpy_helper.from_array(v, n) for n, v in (consts or {}).items()])
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(MS, 1)] if contrib else [])
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def _ort(model, feeds):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _tol(precision):
    return {"fp32": 2e-5, "fp16": 5e-3}[precision]


def _small_bert(rng, layers=2, hidden=32, heads=4, vocab=50, positions=16):
    """Random weights in a BERT's safetensors names and its config."""
    def n(*shape, s=0.2):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    w = {"embeddings.word_embeddings.weight": n(vocab, hidden), "embeddings.position_embeddings.weight":
         n(positions, hidden), "embeddings.token_type_embeddings.weight": n(2, hidden),
         "embeddings.LayerNorm.weight": 1 + n(hidden), "embeddings.LayerNorm.bias": n(hidden)}
    for i in range(layers):
        p = f"encoder.layer.{i}"
        for part, (o, k) in {"attention.self.query": (hidden, hidden), "attention.self.key": (hidden, hidden),
                             "attention.self.value": (hidden, hidden), "attention.output.dense": (hidden, hidden),
                             "intermediate.dense": (2 * hidden, hidden), "output.dense": (hidden, 2 * hidden)}.items():
            w[f"{p}.{part}.weight"], w[f"{p}.{part}.bias"] = n(o, k, s=1 / np.sqrt(k)), n(o)
        for part in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{p}.{part}.weight"], w[f"{p}.{part}.bias"] = 1 + n(hidden), n(hidden)
    config = {"hidden_size": hidden, "num_attention_heads": heads, "num_hidden_layers": layers,
              "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
    return w, config


def _padded_feeds(rng, lengths, width, vocab=50):
    ids = np.zeros((len(lengths), width), np.int64)
    mask = np.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(1, vocab, n)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _close_on_kept_tokens(got, want, mask, tol):
    keep = mask.astype(bool)
    assert rel_l2(got[0][keep], want[0][keep]) < tol
    assert rel_l2(got[1], want[1]) < tol


def test_exported_encoder_fuses_and_matches_onnxruntime(device, precision, rng):
    """A two-layer BERT as PyTorch exports it (MatMul + Add, GELU through Erf, the mask as
    (1 - mask) * -10000, Div by sqrt(head)) on padded rows: every fusion fires and the outputs are
    ONNX Runtime's."""
    model = bert.bert_onnx(*_small_bert(rng))
    feeds = _padded_feeds(rng, [7, 3], 7)
    session = wgnn.InferenceSession(model, precision=precision)
    _close_on_kept_tokens(session.run(None, feeds), _ort(model, feeds), feeds["attention_mask"], _tol(precision))
    log = session.pass_log
    # a linear layer's bias: 6 per layer; GELU: 1; layer norms: 2 per layer and the embeddings'
    assert (log["fuse_matmul_bias"], log["fuse_gelu"], log["fuse_layer_norm"], log["fuse_softmax"]) == (12, 2, 5, 2)
    ops = [d.node.op for d in session._exe.dispatches]
    assert {"layer_norm", "softmax"} <= set(ops) and "activation" not in ops
    # element-wise: the embeddings' two adds, the mask's two steps, pooling's five; none in the layers.
    # As fused chains (fuse_elementwise): the adds one pass, the mask's steps one, pooling's three
    assert ops.count("binary") + ops.count("fused_elementwise") == 5 and ops.count("fused_elementwise") == 4


@pytest.mark.parametrize("form", ["pow_div", "mul_reciprocal", "no_affine", "two_axes", "mean_read_too",
                                  "rms_one_over", "rms_div"])
def test_written_out_layer_norm_is_one_node(device, form, rng):
    """Layer normalization as exporters wrote it before opset 17, in its forms, over rows of 37 (or
    5 x 37): one layer_norm node where nothing else reads its statistics; where the mean is read too,
    the deviation's RMS normalization. RMS normalization (no mean) as T5's export writes it
    (x * (1 / Sqrt(ReduceMean(Pow(x, 2)) + eps)), then gamma * that) and as x / Sqrt(...): one
    layer_norm node too."""
    axes = [-2, -1] if form == "two_axes" else [-1]
    x = rng.standard_normal((3, 5, 37)).astype(np.float32) * 3 + 1
    row = (5, 37) if form == "two_axes" else (37,)
    consts = {"axes": np.array(axes, np.int64), "two": np.float32(2), "eps": np.float32(1e-5), "one": np.float32(1),
              "gamma": (rng.standard_normal(row) + 1).astype(np.float32),
              "beta": rng.standard_normal(row).astype(np.float32)}
    rms = form.startswith("rms")
    nodes = [] if rms else [helper.make_node("ReduceMean", ["x"], ["mean"], axes=axes),
                            helper.make_node("Sub", ["x", "mean"], ["c"])]
    c = "x" if rms else "c"
    nodes.append(helper.make_node("Mul", [c, c], ["sq"]) if form == "mul_reciprocal" else
                 helper.make_node("Pow", [c, "two"], ["sq"]))
    nodes += [helper.make_node("ReduceMean", ["sq"], ["var"], axes=axes),
              helper.make_node("Add", ["var", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["std"])]
    if form in ("mul_reciprocal", "rms_one_over"):
        nodes += [helper.make_node("Reciprocal", ["std"], ["inv"]) if form == "mul_reciprocal" else
                  helper.make_node("Div", ["one", "std"], ["inv"]), helper.make_node("Mul", [c, "inv"], ["n"])]
    else:
        nodes.append(helper.make_node("Div", [c, "std"], ["n"]))
    if form == "no_affine":
        nodes.append(helper.make_node("Identity", ["n"], ["y"]))
    elif rms:
        nodes.append(helper.make_node("Mul", ["gamma", "n"], ["y"]))
    else:
        nodes += [helper.make_node("Mul", ["n", "gamma"], ["s"]), helper.make_node("Add", ["s", "beta"], ["y"])]
    outputs = ["y", "mean"] if form == "mean_read_too" else ["y"]
    model = _model(nodes, {"x": x}, outputs, consts, opset=13)
    session = wgnn.InferenceSession(model)
    for got, want in zip(session.run(None, {"x": x}), _ort(model, {"x": x})):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)
    assert session.pass_log["fuse_layer_norm"] == 1
    norms = [d.node for d in session._exe.dispatches if d.node.op == "layer_norm"]
    assert len(norms) == 1 and bool(norms[0].attrs.get("rms")) == (rms or form == "mean_read_too")
    assert len(session._exe.dispatches) == (3 if form == "mean_read_too" else 1)  # (the mean, the deviation)


@pytest.mark.parametrize("form", ["div_then_half", "half_first", "mul_inverse_sqrt2"])
def test_gelu_written_with_erf_fuses_into_the_product(device, form, rng):
    """x * 0.5 * (1 + erf(x / sqrt(2))) after a linear layer, in the groupings exporters write:
    one matmul dispatch with GELU in its epilogue."""
    a = rng.standard_normal((2, 9, 16)).astype(np.float32)
    consts = {"w": rng.standard_normal((16, 24)).astype(np.float32) / 4,
              "b": rng.standard_normal(24).astype(np.float32),
              "root2": np.float32(np.sqrt(2)), "inv_root2": np.float32(1 / np.sqrt(2)), "one": np.float32(1),
              "half": np.float32(0.5)}
    nodes = [helper.make_node("MatMul", ["a", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["x"])]
    nodes.append(helper.make_node("Mul", ["x", "inv_root2"], ["d"]) if form == "mul_inverse_sqrt2" else
                 helper.make_node("Div", ["x", "root2"], ["d"]))
    nodes += [helper.make_node("Erf", ["d"], ["e"]), helper.make_node("Add", ["e", "one"], ["t"])]
    if form == "half_first":
        nodes += [helper.make_node("Mul", ["x", "half"], ["h"]), helper.make_node("Mul", ["h", "t"], ["y"])]
    else:
        nodes += [helper.make_node("Mul", ["x", "t"], ["h"]), helper.make_node("Mul", ["h", "half"], ["y"])]
    model = _model(nodes, {"a": a}, ["y"], consts)
    session = wgnn.InferenceSession(model)
    np.testing.assert_allclose(session.run(None, {"a": a})[0], _ort(model, {"a": a})[0], rtol=1e-5, atol=1e-5)
    assert session.pass_log["fuse_gelu"] == 1
    assert [d.node.op for d in session._exe.dispatches] == ["matmul"]


@pytest.mark.parametrize("form", ["cube_as_products", "pow", "not_gelu"])
def test_gelu_written_with_tanh_fuses_into_the_product(device, form, rng):
    """The tanh approximation, x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))), as JAX
    exports it (the cube as three products, Magika) and as Hugging Face's gelu_new (Pow): one
    matmul dispatch with the tanh-form GELU in its epilogue; with another constant nothing fuses."""
    a = rng.standard_normal((2, 9, 16)).astype(np.float32)
    consts = {"w": rng.standard_normal((16, 24)).astype(np.float32) / 2,
              "b": rng.standard_normal(24).astype(np.float32), "one": np.float32(1), "half": np.float32(0.5),
              "c": np.float32(0.04 if form == "not_gelu" else 0.044715), "three": np.float32(3),
              "k": np.float32(np.sqrt(2 / np.pi))}
    nodes = [helper.make_node("MatMul", ["a", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["x"])]
    if form == "pow":
        nodes += [helper.make_node("Pow", ["x", "three"], ["x3"]), helper.make_node("Mul", ["c", "x3"], ["cube"])]
    else:
        nodes += [helper.make_node("Mul", ["c", "x"], ["m1"]), helper.make_node("Mul", ["x", "m1"], ["m2"]),
                  helper.make_node("Mul", ["x", "m2"], ["cube"])]
    nodes += [helper.make_node("Add", ["x", "cube"], ["s"]), helper.make_node("Mul", ["k", "s"], ["ks"]),
              helper.make_node("Tanh", ["ks"], ["t"]), helper.make_node("Add", ["one", "t"], ["t1"]),
              helper.make_node("Mul", ["half", "t1"], ["h"]), helper.make_node("Mul", ["x", "h"], ["y"])]
    model = _model(nodes, {"a": a}, ["y"], consts)
    session = wgnn.InferenceSession(model)
    np.testing.assert_allclose(session.run(None, {"a": a})[0], _ort(model, {"a": a})[0], rtol=1e-5, atol=1e-5)
    fused = form != "not_gelu"
    assert session.pass_log["fuse_gelu"] == int(fused)
    assert ([d.node.op for d in session._exe.dispatches] == ["matmul"]) == fused


@pytest.mark.parametrize("variant", ["row", "workgroup"])
@pytest.mark.parametrize("length", [3, 100, 1000, 22])
def test_row_kernels_in_every_variant(device, precision, variant, length, rng):
    """softmax(x * 0.3 + mask) with a mask broadcast over heads and queries, a layer norm, an RMS
    normalization (ONNX Runtime's SimplifiedLayerNormalization) and two reductions (log-sum-exp
    along rows; a mean over two axes apart), over rows of 3, 100 and 1000 (shorter than a
    workgroup, not a multiple of it, longer) and 22, each variant forced, against ONNX Runtime.
    Rows whose length is a multiple of 4 are read and written a vec4 at a time."""
    x = rng.standard_normal((2, 3, 5, length)).astype(np.float32) * 4
    mask = np.where(rng.random((2, 1, 1, length)) < 0.3, -10000.0, 0.0).astype(np.float32)
    consts = {"s": np.float32(0.3), "gamma": rng.standard_normal(length).astype(np.float32),
              "beta": rng.standard_normal(length).astype(np.float32)}
    nodes = [helper.make_node("Mul", ["x", "s"], ["xs"]), helper.make_node("Add", ["xs", "mask"], ["z"]),
             helper.make_node("Softmax", ["z"], ["p"], axis=-1),
             helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln"], axis=-1, epsilon=1e-5),
             helper.make_node("SimplifiedLayerNormalization", ["x", "gamma"], ["rms"], axis=-1, epsilon=1e-5),
             helper.make_node("ReduceLogSumExp", ["x"], ["lse"], axes=[3], keepdims=0),
             helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1, 3], keepdims=1)]
    model = _model(nodes, {"x": x, "mask": mask}, ["p", "ln", "rms", "lse", "mean"], consts, opset=17)
    feeds = {"x": x, "mask": mask}
    session = wgnn.InferenceSession(model, precision=precision,
                                    kernels={"softmax": variant, "layer_norm": variant, "reduce": variant})
    for got, want in zip(session.run(None, feeds), _ort(model, feeds)):
        assert rel_l2(got, want) < _tol(precision)
    assert set(session.kernel_choices().values()) == {f"{variant} wg64"}
    assert (session.pass_log["fuse_softmax"], session.pass_log["fuse_layer_norm"]) == (1, 2)
    widths = {re.search(r"// Softmax|// Layer norm", src).group(0): re.search(r"const W: u32 = (\d)u;", src).group(1)
              for src in session._exe.pipelines if re.search(r"// Softmax|// Layer norm", src)}
    assert widths == dict.fromkeys(["// Softmax", "// Layer norm"], "4" if length % 4 == 0 else "1"), widths


def test_softmax_with_one_mask_value_per_row_reads_scalars(device, precision, rng):
    """The row kernels take vec4s only where x's, y's and the mask's rows are contiguous and start at
    multiples of 4: a mask that is one value per row (no step along it) is read a value at a time,
    against ONNX Runtime."""
    feeds = {"x": rng.standard_normal((2, 3, 8)).astype(np.float32) * 4,
             "per_row": rng.standard_normal((2, 3, 1)).astype(np.float32)}
    nodes = [helper.make_node("Add", ["x", "per_row"], ["a"]), helper.make_node("Softmax", ["a"], ["p"], axis=-1)]
    model = _model(nodes, feeds, ["p"], opset=17)
    session = wgnn.InferenceSession(model, precision=precision)
    np.testing.assert_allclose(session.run(None, feeds)[0], _ort(model, feeds)[0], rtol=_tol(precision), atol=1e-6)
    assert session.pass_log["fuse_softmax"] == 1
    (source,) = [src for src in session._exe.pipelines if "// Softmax" in src]
    assert "const W: u32 = 1u;" in source


def test_a_sum_scaled_before_a_softmax_is_no_mask(device, rng):
    """softmax((x + m) * s) scales m too: the scale goes into the softmax, the add stays a pass of
    its own (the softmax's mask is added after its scale: taking m as one gave softmax(x * s + m),
    found by random graphs against ONNX Runtime); softmax(x * s + m) still takes both. Against
    ONNX Runtime."""
    feeds = {"x": rng.standard_normal((2, 3, 8)).astype(np.float32) * 4,
             "m": rng.standard_normal((2, 3, 8)).astype(np.float32) * 4}
    nodes = [helper.make_node("Add", ["x", "m"], ["a"]), helper.make_node("Mul", ["a", "s"], ["z"]),
             helper.make_node("Softmax", ["z"], ["sum_scaled"], axis=-1),
             helper.make_node("Mul", ["x", "s"], ["xs"]), helper.make_node("Add", ["xs", "m"], ["w"]),
             helper.make_node("Softmax", ["w"], ["masked"], axis=-1)]
    model = _model(nodes, feeds, ["sum_scaled", "masked"], {"s": np.float32(0.3)}, opset=17)
    session = wgnn.InferenceSession(model)
    for got, want in zip(session.run(None, feeds), _ort(model, feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    softmaxes = sorted(len(n.inputs) for n in session.graph.nodes if n.op == "softmax")
    assert softmaxes == [1, 2] and session.pass_log["fuse_softmax"] == 2


# -- ONNX Runtime's fused transformer ops ------------------------------------------------------------


def _attention_case(rng, mask_kind: str, batch=2, seq=6, hidden=16, heads=2, **attrs):
    x = rng.standard_normal((batch, seq, hidden)).astype(np.float32)
    sizes = attrs.get("qkv_hidden_sizes", [hidden] * 3)
    consts = {"w": (rng.standard_normal((hidden, sum(sizes))) / 4).astype(np.float32),
              "b": rng.standard_normal(sum(sizes)).astype(np.float32)}
    inputs = {"x": x}
    names = ["x", "w", "b"]
    ends = np.array([seq, 4][:batch], np.int32)
    if mask_kind == "end":
        inputs["m"] = ends
    elif mask_kind == "start_end":
        inputs["m"] = np.concatenate([ends, np.array([1, 0][:batch], np.int32)])
    elif mask_kind == "raw_2d":
        inputs["m"] = (rng.random((batch, seq)) > 0.3).astype(np.int32)
    elif mask_kind == "raw_3d":
        inputs["m"] = (rng.random((batch, seq, seq)) > 0.3).astype(np.int32)
    names.append("m" if mask_kind != "none" else "")
    if attrs.pop("attention_bias", False):
        inputs["ab"] = rng.standard_normal((1, heads, seq, seq)).astype(np.float32)
        names += ["", "ab"]
    node = helper.make_node("Attention", names, ["y"], domain=MS, num_heads=heads, **attrs)
    return _model([node], inputs, ["y"], consts, contrib=True), inputs


@pytest.mark.parametrize("case", [
    dict(mask_kind="none"), dict(mask_kind="end"), dict(mask_kind="start_end"), dict(mask_kind="raw_2d"),
    dict(mask_kind="raw_3d"), dict(mask_kind="end", unidirectional=1), dict(mask_kind="none", attention_bias=True),
    dict(mask_kind="raw_2d", qkv_hidden_sizes=[16, 16, 8], scale=0.5, mask_filter_value=-30.0)],
    ids=["none", "end", "start_end", "raw_2d", "raw_3d", "causal", "attention_bias", "v_size_scale_fill"])
def test_contrib_attention_matches_onnxruntime(device, case, rng):
    model, feeds = _attention_case(rng, **case)
    got = wgnn.InferenceSession(model).run(None, feeds)[0]
    want = _ort(model, feeds)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_contrib_attention_refuses_a_kv_cache_and_packed_inputs_by_name(device, rng):
    x = rng.standard_normal((1, 3, 8)).astype(np.float32)
    past = np.zeros((2, 1, 2, 2, 4), np.float32)
    node = helper.make_node("Attention", ["x", "w", "b", "", "past"], ["y", "present"], domain=MS, num_heads=2,
                            name="attn_7")
    model = _model([node], {"x": x, "past": past}, ["y", "present"],
                   {"w": np.ones((8, 24), np.float32), "b": np.zeros(24, np.float32)}, contrib=True)
    with pytest.raises(wgnn.UnsupportedOperatorError, match="attn_7.*past key/value cache"):
        wgnn.InferenceSession(model)
    packed = rng.standard_normal((1, 3, 2, 3, 4)).astype(np.float32)  # (B, S, N, 3, H): packed QKV
    node = helper.make_node("MultiHeadAttention", ["qkv"], ["y"], domain=MS, num_heads=2, name="mha_3")
    with pytest.raises(wgnn.UnsupportedOperatorError, match="mha_3.*packed QKV"):
        wgnn.InferenceSession(_model([node], {"qkv": packed}, ["y"], contrib=True))


MHA_CASES = {"self": {}, "bias": {"bias": True}, "padding_2d": {"mask": "raw_2d"}, "ends_1d": {"mask": "end"},
             "attention_bias": {"attention_bias": True}, "cross": {"keys": 9, "mask": "raw_2d", "bias": True},
             "causal": {"unidirectional": 1},
             "scale_fill": {"scale": 0.3, "mask_filter_value": -50.0, "mask": "raw_2d"}}


@pytest.mark.parametrize("case", list(MHA_CASES))
def test_contrib_multi_head_attention_matches_onnxruntime(device, case, rng):
    """ONNX Runtime's MultiHeadAttention on separate query, key and value: self- and
    cross-attention, its bias, key padding masks, an attention bias, causal, scale and fill."""
    spec = dict(MHA_CASES[case])
    batch, seq, keys, hidden, heads = 2, 6, spec.pop("keys", 6), 16, 2
    feeds = {"q": rng.standard_normal((batch, seq, hidden)).astype(np.float32),
             "k": rng.standard_normal((batch, keys, hidden)).astype(np.float32),
             "v": rng.standard_normal((batch, keys, hidden)).astype(np.float32)}
    names, consts = ["q", "k", "v", "", "", ""], {}
    if spec.pop("bias", False):
        consts["b"] = rng.standard_normal(3 * hidden).astype(np.float32)
        names[3] = "b"
    mask = spec.pop("mask", None)
    if mask == "raw_2d":
        feeds["m"] = np.ones((batch, keys), np.int32)
        feeds["m"][1, keys - 2:] = 0
        names[4] = "m"
    elif mask == "end":
        feeds["m"] = np.array([keys, keys - 3], np.int32)
        names[4] = "m"
    if spec.pop("attention_bias", False):
        feeds["ab"] = rng.standard_normal((1, heads, seq, keys)).astype(np.float32)
        names[5] = "ab"
    while names[-1] == "":
        names.pop()
    node = helper.make_node("MultiHeadAttention", names, ["y"], domain=MS, num_heads=heads, **spec)
    model = _model([node], feeds, ["y"], consts, contrib=True)
    got, want = wgnn.InferenceSession(model).run(None, feeds)[0], _ort(model, feeds)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("extras", ["all", "bare"])
def test_contrib_embed_layer_norm_matches_onnxruntime(device, extras, rng):
    """Word + position (+ segment) embeddings, layer-normalized, with the mask's token counts and
    the sum before normalizing: all three outputs as ONNX Runtime gives them."""
    batch, seq, hidden = 2, 5, 12
    feeds = {"ids": rng.integers(0, 30, (batch, seq)).astype(np.int32)}
    consts = {"word": rng.standard_normal((30, hidden)).astype(np.float32),
              "pos": rng.standard_normal((9, hidden)).astype(np.float32),
              "gamma": (rng.standard_normal(hidden) + 1).astype(np.float32),
              "beta": rng.standard_normal(hidden).astype(np.float32)}
    names = ["ids", "", "word", "pos", "", "gamma", "beta"]
    if extras == "all":
        feeds |= {"seg": rng.integers(0, 2, (batch, seq)).astype(np.int32),
                  "mask": np.array([[1] * 5, [1, 1, 1, 0, 0]], np.int32),
                  "pos_ids": np.array([[3, 4, 5, 6, 7], [0, 1, 2, 3, 4]], np.int32)}
        consts["segtab"] = rng.standard_normal((2, hidden)).astype(np.float32)
        names = ["ids", "seg", "word", "pos", "segtab", "gamma", "beta", "mask", "pos_ids"]
    node = helper.make_node("EmbedLayerNormalization", names, ["y", "mask_index", "sum"], domain=MS, epsilon=1e-6)
    model = _model([node], feeds, ["y", "mask_index", "sum"], consts, contrib=True, integer_outputs=("mask_index",))
    got, want = wgnn.InferenceSession(model).run(None, feeds), _ort(model, feeds)
    for name, g, w in zip(("y", "mask_index", "sum"), got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=name)


# -- all-MiniLM-L6-v2 ---------------------------------------------------------------------------------

SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
# What sentence-transformers' documentation prints for these three with all-MiniLM-L6-v2
# (model.similarity of its encodings): a reference from outside this project.
PUBLISHED = np.array([[1.0000, 0.6660, 0.1046], [0.6660, 1.0000, 0.1411], [0.1046, 0.1411, 1.0000]])
TEXTS = ["A man is eating food.", "A man is eating a piece of bread, quite slowly, at the table.",
         "The girl is carrying a baby.", "Café naïve résumé — déjà vu!", "东京 is in 日本 (Japan).",
         "Numbers: 3.14159, 2,718 and 1e-9; e-mail: someone@example.org", "x" * 120 + " overlong",
         "tabs\tand\nnewlines\r\nand\u00a0spaces", "unknown \u2603\ufe0f snowman \U0001f600", ""]


@pytest.fixture(scope="module")
def minilm(device):
    path = fetch_or_skip("all_minilm_l6_v2")
    return path, bert.tokenizer_from_archive(wgnn.zoo.shipped("all_minilm_l6_v2"))


def test_minilm_gives_the_published_similarities(minilm):
    path, tokenizer = minilm
    session = wgnn.InferenceSession(str(path))
    (embedding,) = session.run(["sentence_embedding"], tokenizer(SENTENCES).feeds())
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(embedding @ embedding.T, PUBLISHED, atol=1e-4)


def test_minilm_on_padded_batches_matches_onnxruntime(minilm, precision):
    """Ten texts of 2 to 40 tokens in one padded batch: the sentence embeddings and the token
    states ONNX Runtime gives (fp16: within 5e-3, every embedding's cosine to it > 0.9999)."""
    path, tokenizer = minilm
    feeds = tokenizer(TEXTS).feeds()
    got = wgnn.InferenceSession(str(path), precision=precision).run(None, feeds)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    _close_on_kept_tokens(got, want, feeds["attention_mask"], _tol(precision))
    cosine = np.sum(got[1] * want[1], axis=1) / np.linalg.norm(got[1], axis=1) / np.linalg.norm(want[1], axis=1)
    assert np.all(cosine > 0.9999)


def test_minilm_as_onnxruntime_optimizes_it(minilm, tmp_path):
    """The model after ONNX Runtime's transformer optimizer (EmbedLayerNormalization, Attention with
    a 1-D mask index, SkipLayerNormalization, BiasGelu): ONNX Runtime's outputs on padded rows."""
    pytest.importorskip("sympy")  # the optimizer's shape inference
    from onnxruntime.transformers.optimizer import optimize_model

    path, tokenizer = minilm
    optimized = optimize_model(str(path), model_type="bert", num_heads=12, hidden_size=384, opt_level=0)
    ops = {n.op_type for n in optimized.model.graph.node}
    assert {"EmbedLayerNormalization", "Attention", "SkipLayerNormalization", "BiasGelu"} <= ops
    out = tmp_path / "optimized.onnx"
    optimized.save_model_to_file(str(out))
    feeds = tokenizer(TEXTS[:4]).feeds()
    got = wgnn.InferenceSession(str(out)).run(None, feeds)
    want = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, feeds)
    _close_on_kept_tokens(got, want, feeds["attention_mask"], 2e-5)


def test_wordpiece_matches_the_tokenizers_package(minilm):
    """wgnn's WordPiece gives the ids of Hugging Face's tokenizers (the reference implementation)
    on text with accents, CJK, punctuation, numbers, control characters, unknown symbols and an
    overlong word."""
    tokenizers = pytest.importorskip("tokenizers")
    _, tokenizer = minilm
    with wgnn.zoo.shipped("all_minilm_l6_v2").open("rb") as f:
        import zipfile

        reference = tokenizers.Tokenizer.from_str(zipfile.ZipFile(f).read("tokenizer.json").decode())
    reference.no_padding()
    reference.no_truncation()
    for sentence in TEXTS:
        assert tokenizer.tokenize(sentence) == reference.encode(sentence).ids, sentence


def test_sentence_encoder(minilm):
    encoder = text.SentenceEncoder()
    similarity = encoder.similarity(SENTENCES[:2], SENTENCES)
    assert similarity.shape == (2, 3)
    np.testing.assert_allclose(similarity, PUBLISHED[:2], atol=1e-4)
    # a long list in length-sorted batches: each row the sentence's own embedding, in order
    texts = [t for t in TEXTS if t] * 3
    batched = encoder.encode(texts, batch_size=4)
    alone = np.concatenate([encoder.encode([t]) for t in texts[:9]])
    np.testing.assert_allclose(batched[:9], alone, atol=2e-5)
    np.testing.assert_allclose(batched[9:18], batched[:9], atol=2e-5)
    # a plan per batch shape, the weights (initializers, 90 MB) uploaded and held on the host once
    plans = plan_weights(encoder.session)
    assert len(plans) >= 4
    assert_shared_after(plans, 2)  # (the first plan keeps its own: sharing starts with the second)
    with pytest.raises(wgnn.InputError, match="at least one sentence"):
        encoder.encode([])
    with pytest.raises(wgnn.InputError, match="expected a str"):
        encoder.encode([3])


def test_minilm_dynamically_quantized_as_close_as_onnxruntime(minilm, tmp_path):
    """MiniLM through ``quantize_dynamic`` (DynamicQuantizeLinear, MatMulInteger): the first
    layer's integer sums are ONNX Runtime's exactly; further on, a float rounding apart flips an
    activation's 8-bit code, the next dynamic range differs, and the two runtimes drift apart (5-9%)
    while each stays as far from the FP32 model as the other (about 30% on these texts): wgnn's
    embeddings are as close to the FP32 model's as ONNX Runtime's, within 5%. Each
    DynamicQuantizeLinear is one pass for its range and one quantize, straight into the shifted
    integers the products read (common subexpressions once, the int32 round trips gone)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path, tokenizer = minilm
    quantized = tmp_path / "dynamic.onnx"
    quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8)
    model = onnx.load(str(quantized))
    first = next(n for n in model.graph.node if n.op_type == "MatMulInteger").output[0]
    model.graph.output.append(helper.make_tensor_value_info(first, TensorProto.INT32, None))
    feeds = tokenizer(TEXTS).feeds()
    session = wgnn.InferenceSession(model)
    got = session.run(None, feeds)
    want = _ort(model, feeds)
    np.testing.assert_array_equal(got[2], want[2])
    quantizers = sum(n.op_type == "DynamicQuantizeLinear" for n in model.graph.node)
    ops = [d.node.op for d in session._exe.dispatches]
    assert ops.count("dynamic_range") == quantizers and ops.count("reduce") == 3  # the rest: mean pooling's
    assert all(session.pass_log[p] > 0 for p in ("eliminate_common_subexpressions", "drop_exact_casts",
                                                   "shift_quantized"))
    fp32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["sentence_embedding"], feeds)[0]
    assert rel_l2(got[1], fp32) < 1.05 * rel_l2(want[1], fp32)


@pytest.mark.parametrize("keep_io_types", [False, True])
def test_minilm_through_onnx_runtimes_float16_converter(minilm, tmp_path, keep_io_types):
    """MiniLM converted to float16 by ONNX Runtime's own converter (``convert_float_to_float16``),
    whose casts it appends after the nodes that read them (ONNX Runtime sorts a graph itself):
    the session sorts the nodes, runs in fp16, takes and returns float16, and gives ONNX Runtime's
    sentence embeddings within f16's rounding. Its graph is float32 inside (``float32_inside``),
    so the fusions run as on the float32 file (GELU's constants as f16 stored them recognised too):
    that file's dispatches in an fp16 session and two casts to float16 outputs (293 before). With
    the float32 inputs and outputs the converter keeps on request, it runs in fp16 too (its weights
    are float16) and returns float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    path, tokenizer = minilm
    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=keep_io_types)
    out = tmp_path / "fp16.onnx"
    onnx.save(model, str(out))
    feeds = tokenizer(TEXTS[:4]).feeds()
    session = wgnn.InferenceSession(str(out))
    got = session.run(None, feeds)
    want = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, feeds)
    assert session.precision == "fp16" and got[1].dtype == (np.float32 if keep_io_types else np.float16)
    assert rel_l2(got[1].astype(np.float32), want[1].astype(np.float32)) < 5e-3
    float32 = wgnn.InferenceSession(str(path), precision="fp16")
    float32.run(None, feeds)
    assert len(session._exe.dispatches) == len(float32._exe.dispatches) + (0 if keep_io_types else 2)
    assert session.pass_log["fuse_gelu"] == 6


@pytest.mark.parametrize("form", ["MatMulNBits", "QDQ"])
def test_minilm_with_4_bit_weights_matches_onnxruntime(minilm, precision, tmp_path, monkeypatch, form):
    """MiniLM through ONNX Runtime's weight-only quantizer (``MatMulNBitsQuantizer``: every linear
    layer's weights 4 bits in blocks of 32 along K, a scale and a zero point per block), in both
    forms it writes: com.microsoft's MatMulNBits, and ONNX's own (opset 21: DequantizeLinear of
    uint4 weights in blocks, then MatMul; the model first converted to opset 21). Each product runs
    on its packed weights (``matmul_nbits``), so the session holds no more constant bytes than the
    file (dequantized to f32, 89 MB against 55), with ONNX Runtime's outputs on padded rows (its
    fusion of the QDQ form kept in f32: accuracy level 0; fp16: within f16's rounding); and so under
    the GPU defaults (K spread over invocations, or workgroup tiles from 64 rows) in fp32."""
    pytest.importorskip("onnx_ir")  # (the quantizer's)
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    path, tokenizer = minilm
    model = onnx.load(str(path))
    if form == "QDQ":
        model = version_converter.convert_version(model, 21)
    quantizer = MatMulNBitsQuantizer(model, block_size=32, is_symmetric=False,
                                     quant_format=QuantFormat.QDQ if form == "QDQ" else QuantFormat.QOperator)
    quantizer.process()
    model = getattr(quantizer.model, "model", quantizer.model)
    assert sum(n.op_type == {"QDQ": "DequantizeLinear"}.get(form, form) for n in model.graph.node) == 36
    out = tmp_path / "q4.onnx"
    onnx.save(model, str(out))
    feeds = tokenizer(TEXTS[:4]).feeds()
    session = wgnn.InferenceSession(str(out), precision=precision)
    got = session.run(None, feeds)
    options = ort.SessionOptions()
    options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
    want = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"]).run(None, feeds)
    _close_on_kept_tokens(got, want, feeds["attention_mask"], 2e-5 if precision == "fp32" else _tol(precision))
    assert sum(k.startswith("matmul_nbits") for k in kernels_used(session)) == 36
    assert session._exe.constant_bytes < 1.05 * out.stat().st_size
    if precision == "fp32":
        monkeypatch.setenv("WGNN_KERNEL_DEFAULTS", "gpu")
        gpu = wgnn.InferenceSession(str(out))
        _close_on_kept_tokens(gpu.run(None, feeds), want, feeds["attention_mask"], 2e-5)
        assert sum(k.startswith("matmul_nbits") for k in kernels_used(gpu)) == 36
        assert any("k/" in c for c in gpu.kernel_choices().values())


HEAD_CASES = [(v, p, 2, 12) for v in ("tiled", "subgroup", "gemm", "gemm_split") for p in ("fp32", "fp16")]
HEAD_CASES += [("gemm_f16", "fp16", 2, 12), ("tiled", "fp32", 1, 1), ("gemv", "fp32", 1, 1), ("gemv", "fp16", 1, 1),
               ("tiled", "fp32", 2, 6), ("tiled", "fp16", 2, 6)]


@pytest.mark.parametrize("variant,precision,batch,seq", HEAD_CASES)
def test_products_store_heads_apart_in_every_variant(device, variant, precision, batch, seq, rng):
    """Attention's head split (Reshape + Transpose after a product; for the keys each head
    transposed too) and join (Transpose + Reshape after one) become the products' own stores, on
    every matrix kernel that can run them (f16 arithmetic in fp16 sessions, gemv for a single row),
    against ONNX Runtime."""
    from wgnn.backends.compute.policy import Choice

    if variant == "subgroup" and "subgroup" not in device.features or precision == "fp16" and \
            "shader-f16" not in device.features:
        pytest.skip(f"{device.name} lacks the feature")
    heads, d = 2, 8
    x = rng.standard_normal((batch, seq, heads * d)).astype(np.float32)
    consts = {"wq": (rng.standard_normal((16, 16)) / 4).astype(np.float32),
              "bq": rng.standard_normal(16).astype(np.float32),
              "wv": (rng.standard_normal((16, 16)) / 4).astype(np.float32),
              "wk": (rng.standard_normal((16, 16)) / 4).astype(np.float32),
              "split": np.array([0, 0, heads, d], np.int64), "join": np.array([0, 0, heads * d], np.int64)}
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q0"]), helper.make_node("Add", ["q0", "bq"], ["q1"]),
             helper.make_node("Reshape", ["q1", "split"], ["q2"]),
             helper.make_node("Transpose", ["q2"], ["q"], perm=[0, 2, 1, 3]),
             helper.make_node("MatMul", ["x", "wv"], ["v0"]), helper.make_node("Reshape", ["v0", "split"], ["v1"]),
             helper.make_node("Transpose", ["v1"], ["v"], perm=[0, 2, 1, 3]),
             helper.make_node("MatMul", ["x", "wk"], ["k0"]), helper.make_node("Reshape", ["k0", "split"], ["k1"]),
             helper.make_node("Transpose", ["k1"], ["kt"], perm=[0, 2, 3, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["c"]),
             helper.make_node("Transpose", ["c"], ["c1"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["c1", "join"], ["y"])]
    model = _model(nodes, {"x": x}, ["y"], consts)
    choice = Choice("gemm", split=2) if variant == "gemm_split" else Choice(variant)
    session = wgnn.InferenceSession(model, precision=precision, kernels={"matmul": choice})
    assert rel_l2(session.run(None, {"x": x})[0], _ort(model, {"x": x})[0]) < _tol(precision)
    # Q, K (transposed per head: the scattered store) and V, and the join, whose K is the sequence
    # (a ragged one read as scalars by the register-tiled kernel)
    assert session.pass_log["fold_head_transposes"] == 4
    assert "relayout" not in {d.node.op for d in session._exe.dispatches}
    if variant != "gemv":
        assert choice.variant in {c.split()[0] for c in session.kernel_choices().values()}


@pytest.mark.parametrize("variant,precision,bias", [("tiled", "fp32", False), ("subgroup", "fp32", False),
                                                    ("gemm", "fp32", True), ("subgroup", "fp32", True),
                                                    ("subgroup", "fp16", True)])
def test_dynamically_quantized_projections_store_heads_apart(device, variant, precision, bias, rng):
    """A dynamically quantized attention (as ONNX Runtime's ``quantize_dynamic`` writes T5's, and with
    a bias per column after the scale, BERT's): DynamicQuantizeLinear, MatMulInteger, Cast, the
    product's scale (the input's, computed at run time, times the weights') and the bias before each
    head split. They move after the split (the bias split into heads), so the integer product still
    stores the heads apart (keys transposed per head) and no copy runs, against ONNX Runtime."""
    from wgnn.backends.compute.policy import Choice

    if variant == "subgroup" and "subgroup" not in device.features or precision == "fp16" and \
            "shader-f16" not in device.features:
        pytest.skip(f"{device.name} lacks the feature")
    heads, d, seq = 2, 8, 7
    x = rng.standard_normal((1, seq, heads * d)).astype(np.float32)
    consts = {"split": np.array([0, 0, heads, d], np.int64), "join": np.array([0, 0, heads * d], np.int64)}
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"])]
    for name, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        consts[f"w{name}"] = rng.integers(-127, 128, (16, 16)).astype(np.int8)
        consts[f"ws{name}"] = np.float32(rng.uniform(0.001, 0.01))
        nodes += [helper.make_node("MatMulInteger", ["xq", f"w{name}", "xz"], [f"{name}i"]),
                  helper.make_node("Cast", [f"{name}i"], [f"{name}f"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", ["xs", f"ws{name}"], [f"{name}s"]),
                  helper.make_node("Mul", [f"{name}f", f"{name}s"], [f"{name}0" if not bias else f"{name}u"])]
        if bias:
            consts[f"b{name}"] = rng.standard_normal(16).astype(np.float32)
            nodes.append(helper.make_node("Add", [f"b{name}", f"{name}u"], [f"{name}0"]))
        nodes += [helper.make_node("Reshape", [f"{name}0", "split"], [f"{name}1"]),
                  helper.make_node("Transpose", [f"{name}1"], [name], perm=perm)]
    nodes += [helper.make_node("MatMul", ["q", "k"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
              helper.make_node("MatMul", ["p", "v"], ["c"]),
              helper.make_node("Transpose", ["c"], ["c1"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["c1", "join"], ["y"])]
    model = _model(nodes, {"x": x}, ["y"], consts)
    session = wgnn.InferenceSession(model, precision=precision, kernels={"matmul": Choice(variant)})
    assert rel_l2(session.run(None, {"x": x})[0], _ort(model, {"x": x})[0]) < _tol(precision)
    assert session.pass_log["fold_head_transposes"] == 4
    ops = [d.node.op for d in session._exe.dispatches]
    assert "relayout" not in ops and "transpose" not in ops, ops


@pytest.mark.parametrize("variant,precision,m,n", [
    ("tiled", "fp32", 6, 16), ("subgroup", "fp32", 6, 16), ("gemm", "fp32", 6, 16), ("gemm_split", "fp32", 6, 16),
    ("gemv", "fp32", 1, 16), ("generic", "fp32", 6, 16), ("tiled", "fp32", 6, 14), ("subgroup", "fp32", 6, 14),
    ("generic", "fp32", 6, 14), ("subgroup", "fp16", 6, 16), ("gemm_split", "fp16", 6, 16), ("tiled", "fp16", 6, 14)])
def test_dynamically_quantized_product_scales_in_its_epilogue(device, variant, precision, m, n, rng, monkeypatch):
    """A product as ``quantize_dynamic`` writes it (MatMulInteger, Cast, times the input's scale found
    at run time and the weights' scale, plus the bias), then a residual add and a ReLU: one matmul
    dispatch (two with split-K) scales its sums by the run-time number in its epilogue, adds the
    bias and the residual and applies the ReLU, on every variant, N and K in fours or not (no
    residual then: the ragged store takes none; the weights int8 words, their last K % 4 rows one at
    a time), against ONNX Runtime; in fp32 the same bits as without the fusion (the muladd's order
    of operations)."""
    from wgnn import passes
    from wgnn.backends.compute.policy import Choice

    if variant == "subgroup" and "subgroup" not in device.features or precision == "fp16" and \
            "shader-f16" not in device.features:
        pytest.skip(f"{device.name} lacks the feature")
    k, residual = (24, True) if n % 4 == 0 else (21, False)  # (N not in fours: K neither, A read as scalars)
    feeds = {"x": rng.standard_normal((m, k)).astype(np.float32)}
    consts = {"w": rng.integers(-127, 128, (k, n)).astype(np.int8), "ws": np.float32(0.004),
              "b": rng.standard_normal(n).astype(np.float32)}
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("MatMulInteger", ["xq", "w", "xz"], ["yi"]),
             helper.make_node("Cast", ["yi"], ["yf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["xs", "ws"], ["s"]),
             helper.make_node("Mul", ["yf", "s"], ["ys"]),
             helper.make_node("Add", ["ys", "b"], ["yb"])]
    if residual:
        feeds["r"] = rng.standard_normal((m, n)).astype(np.float32)
        nodes.append(helper.make_node("Add", ["yb", "r"], ["yr"]))
    nodes.append(helper.make_node("Relu", ["yr" if residual else "yb"], ["y"]))
    model = _model(nodes, feeds, ["y"], consts)
    choice = Choice("gemm", split=2) if variant == "gemm_split" else Choice(variant)
    session = wgnn.InferenceSession(model, precision=precision, kernels={"matmul": choice})
    assert rel_l2(session.run(None, feeds)[0], _ort(model, feeds)[0]) < _tol(precision)
    assert session.pass_log["fuse_product_factor"] == 1
    ops = [d.node.op for d in session._exe.dispatches]
    assert ops.count("matmul") == (2 if variant == "gemm_split" else 1)
    assert set(ops) <= {"dynamic_quantize", "dynamic_range", "quantize_linear", "matmul"}, ops
    product = next(node for node in session.graph.nodes if node.op == "matmul")
    assert (product.inputs[3] is not None) == residual and product.attrs["activation"].kind == "relu"
    assert choice.variant in session.kernel_choices()[product.name]
    if precision == "fp32":
        monkeypatch.setitem(passes.BACKEND_RULES, "compute", [rule for rule in passes.BACKEND_RULES["compute"]
                                                              if rule is not passes.fuse_product_factor])
        apart = wgnn.InferenceSession(model, kernels={"matmul": choice})
        np.testing.assert_array_equal(session.run(None, feeds)[0], apart.run(None, feeds)[0])
        assert "fuse_product_factor" not in apart.pass_log


def test_a_sequence_longer_than_the_positions_is_refused_by_name(device, rng):
    """EmbedLayerNormalization asked for more positions than its table has (a fuzzed input size
    found this as an IndexError inside numpy): the gather of constant indices is refused, naming
    the node, when the graph is built."""
    feeds = {"ids": rng.integers(0, 30, (1, 20)).astype(np.int32)}
    consts = {"word": np.ones((30, 8), np.float32), "pos": np.ones((16, 8), np.float32),
              "gamma": np.ones(8, np.float32), "beta": np.zeros(8, np.float32)}
    node = helper.make_node("EmbedLayerNormalization", ["ids", "", "word", "pos", "", "gamma", "beta"], ["y"],
                            domain=MS, name="embed_9")
    with pytest.raises(wgnn.GraphError, match="embed_9.*index 16 is out of range for axis 0 of size 16"):
        wgnn.InferenceSession(_model([node], feeds, ["y"], consts, contrib=True))
