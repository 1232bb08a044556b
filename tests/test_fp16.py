"""FP16 execution: f16 storage, f32 accumulation, no overflow where f16 storage would overflow."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import rel_l2

import wgnn
from wgnn import zoo

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


@pytest.fixture(scope="module")
def f16_device(device):
    if "shader-f16" not in device.features:
        pytest.skip(f"{device.name} lacks shader-f16")
    return device


@pytest.mark.parametrize("name", zoo.MODELS)
def test_zoo_fp16_matches_onnxruntime_fp32(f16_device, name):
    """Ten random inputs, run as one batch: relative L2 <= 1e-2 each, top-1 agrees on >= 9."""
    model = zoo.build(name, softmax=False)
    x = np.random.default_rng(11).standard_normal((10, 3, 224, 224)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    session = wgnn.InferenceSession(model, precision="fp16", input_shapes={"input": x.shape})
    assert session.precision == "fp16"
    (got,) = session.run(None, {"input": x})
    errors = [rel_l2(g, e) for g, e in zip(got, expected)]
    assert max(errors) <= 1e-2, errors
    assert int(np.sum(got.argmax(axis=1) == expected.argmax(axis=1))) >= 9


def _session(build, precision="fp16"):
    b = wgnn.GraphBuilder()
    outputs = build(b)
    return wgnn.InferenceSession(b.build_graph(outputs), precision=precision)


def test_softmax_of_logits_near_1e4(f16_device):
    rng = np.random.default_rng(0)
    logits = (1e4 + rng.normal(0, 3, (4, 1000))).astype(np.float32)
    scaled = (logits / 1000).astype(np.float32)

    def build(b):
        x = b.input("x", logits.shape)
        s = b.input("s", scaled.shape)
        # An intermediate of ~1e4 feeding softmax: f16 would space it by 8; it is kept in f32.
        inner = b.mul(s, b.constant(np.float32(1000.0)))
        return {"direct": b.softmax(x), "inner": b.softmax(inner)}

    def softmax(v):
        z = np.exp(v - v.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    got = _session(build).compute({"x": logits, "s": scaled})
    inner = scaled.astype(np.float64) * 1000
    assert rel_l2(got["direct"], softmax(logits.astype(np.float64))) < 1e-5
    # f32 itself spaces values near 1e4 by 0.001, which moves probabilities by ~1e-4 ...
    assert rel_l2(got["inner"], softmax(inner)) < 1e-3
    # ... f16 storage of that intermediate would space them by 8 and get the distribution wrong.
    assert rel_l2(softmax(inner.astype(np.float16).astype(np.float64)), softmax(inner)) > 0.5


def test_sum_of_1e5_ones(f16_device):
    def build(b):
        ones = b.relu(b.input("x", (1, 100_000)))  # an f16 intermediate of ones
        total = b.reduce(ones, "sum", (1,))
        return {"sum": total, "sum_plus_one": b.add(total, b.constant(np.float32(1.0)))}

    got = _session(build).compute({"x": np.ones((1, 100_000), np.float32)})
    assert got["sum"].item() == 100_000.0
    assert got["sum_plus_one"].item() == 100_001.0


def test_layernorm_like_mean_of_squares_near_300(f16_device):
    rng = np.random.default_rng(1)
    x = (300 + rng.normal(0, 5, (4, 512))).astype(np.float32)

    def build(b):
        h = b.relu(b.input("x", x.shape))  # f16 intermediate around 300
        mean_square = b.reduce(b.mul(h, h), "mean", (1,))  # ~90000 > 65504: stored in f32
        rms = b.pow(mean_square, b.constant(np.float32(0.5)))
        return {"mean_square": mean_square, "normalized": b.div(h, rms)}

    got = _session(build).compute({"x": x})
    x64 = x.astype(np.float64)
    want_ms = (x64 * x64).mean(axis=1, keepdims=True)
    assert np.all(np.isfinite(got["mean_square"])) and np.all(np.isfinite(got["normalized"]))
    assert rel_l2(got["mean_square"], want_ms) < 5e-3
    assert rel_l2(got["normalized"], x64 / np.sqrt(want_ms)) < 5e-3


@pytest.mark.parametrize("n", [8, 1366])
def test_int32_sums_cast_to_float_before_their_scale(f16_device, n):
    """An integer product's int32 sums (MatMulInteger of 8-bit values over a long K reaches 1e6)
    plus an int32 bias, cast to float and then scaled, as ONNX Runtime's dynamic quantizer writes a
    biased layer: the cast's result stays in f32 (in f16 it was an infinity: ddddocr's quantized
    recognizer), the scaled one is f16 again. With 1366 columns (not a multiple of 4, a large
    result) B is padded and the product sliced back: the slice keeps the sums in f32 too."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (3, 512)).astype(np.uint8)
    w = rng.integers(-128, 128, (512, n)).astype(np.int8)
    nodes = [helper.make_node("MatMulInteger", ["a", "w"], ["sums"]),
             helper.make_node("Add", ["sums", "b"], ["biased"]),
             helper.make_node("Cast", ["biased"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["f", "scale"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.UINT8, a.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.float32(1e-4), "scale"),
                               numpy_helper.from_array(np.arange(n, dtype=np.int32) % 8 * 1000, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    want = (a.astype(np.int64) @ w.astype(np.int64) + np.arange(n) % 8 * 1000) * 1e-4
    assert np.abs(want).max() > 6.6  # sums beyond f16's 65504
    got = wgnn.InferenceSession(model, precision="fp16").run(None, {"a": a})[0]
    assert np.all(np.isfinite(got)) and rel_l2(got, want) < 1e-3


def test_float16_input_of_odd_length(f16_device):
    """WebGPU uploads whole 4-byte words: 3 float16 values (6 bytes) must still arrive intact."""
    b = wgnn.GraphBuilder()
    session = b.build({"y": b.relu(b.input("x", (3,), "float16"))})
    (got,) = session.run(None, {"x": np.array([-1.5, 2.25, 3.0], np.float16)})
    np.testing.assert_array_equal(got, np.array([0.0, 2.25, 3.0], np.float16))


def test_precision_choice_and_errors(device):
    b = wgnn.GraphBuilder()
    graph = b.build_graph({"y": b.relu(b.input("x", (1, 4)))})
    with pytest.raises(wgnn.PrecisionError, match="'fp32', 'fp16' or 'auto'"):
        wgnn.InferenceSession(graph, precision="int8")
    assert wgnn.InferenceSession(graph).precision == "fp32"
    # An adapter without shader-f16: a clear error for fp16, fp32 for auto.
    no_f16 = wgnn.Device(device.adapter)
    no_f16.features = no_f16.features - {"shader-f16"}
    with pytest.raises(wgnn.PrecisionError, match="shader-f16"):
        wgnn.InferenceSession(graph, device=no_f16, precision="fp16")
    assert wgnn.InferenceSession(graph, device=no_f16, precision="auto").precision == "fp32"


def test_auto_precision_measures_once_and_keeps_the_faster(f16_device, monkeypatch, tmp_path, caplog):
    """precision="auto" times a probe of CNN layers in fp32 and fp16 once per adapter, driver and
    backend, says so in the log and caches the answer; later sessions read it (and obey a cached
    one); fp16 is picked only where it takes at most 0.95x fp32's time."""
    import json
    import logging

    from wgnn import tuner
    from wgnn.backends.compute.policy import ChoiceCache

    monkeypatch.setenv("WGNN_KERNEL_CACHE", str(tmp_path))
    b = wgnn.GraphBuilder()
    graph = b.build_graph({"y": b.relu(b.input("x", (1, 4)))})
    with caplog.at_level(logging.WARNING, logger="wgnn.tune"):
        first = wgnn.InferenceSession(graph, precision="auto").precision
    assert first in ("fp32", "fp16") and "measured once" in caplog.text and f"picks {first}" in caplog.text
    (kept,) = tmp_path.glob("*.json")
    assert json.loads(kept.read_text())["choices"]["precision"]["auto|compute"]["variant"] == first

    def measure_again(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(tuner, "_probe_ms", measure_again)
    assert wgnn.InferenceSession(graph, precision="auto").precision == first
    for answer in ("fp16", "fp32"):
        data = json.loads(kept.read_text())
        data["choices"]["precision"]["auto|compute"]["variant"] = answer
        kept.write_text(json.dumps(data))
        assert wgnn.InferenceSession(graph, precision="auto").precision == answer
    # the rule, on given times (ms of fp32, of fp16)
    for fp32_ms, fp16_ms, want in ((10.0, 9.6, "fp32"), (10.0, 9.4, "fp16"), (10.0, 12.0, "fp32")):
        monkeypatch.setattr(tuner, "_probe_ms", lambda device, backend, p, shape, t=(fp32_ms, fp16_ms):
                            (lambda: t[p == "fp16"]))
        assert tuner.auto_precision(f16_device, cache=ChoiceCache(None)) == want


def test_auto_precision_computes_in_fp32_where_fp16_overflows(f16_device, monkeypatch, caplog):
    """Where the fp16 that precision="auto" chose overflows (a product of 8e4 stored in f16: the
    output holds infinities), the session says so and computes that run and every later one in
    fp32, giving fp32's outputs; a session that asked for fp16 keeps it and says so."""
    import logging

    from wgnn import tuner

    monkeypatch.setattr(tuner, "auto_precision", lambda device, backend="compute": "fp16")
    b = wgnn.GraphBuilder()
    big = b.relu(b.matmul(b.input("x", (2, 8)), b.constant(np.full((8, 8), 1e4, np.float32))))
    graph = b.build_graph({"y": b.matmul(big, b.constant(np.eye(8, dtype=np.float32) * 1e-4))})
    x = np.ones((2, 8), np.float32)
    want = wgnn.InferenceSession(graph, precision="fp32").run(None, {"x": x})[0]
    with caplog.at_level(logging.WARNING, logger="wgnn"):
        half = wgnn.InferenceSession(graph, precision="fp16")
        assert not np.isfinite(half.run(None, {"x": x})[0]).all() and half.precision == "fp16"
        auto = wgnn.InferenceSession(graph, precision="auto")
        assert auto.precision == "fp16"
        for _ in range(2):
            np.testing.assert_allclose(auto.run(None, {"x": x})[0], want, rtol=1e-6)
            assert auto.precision == "fp32"
    assert caplog.text.count("computes in fp32 from now on") == 1
    assert caplog.text.count("precision='fp32' computes it in full") == 1


def test_float16_onnx_model_runs_natively(f16_device):
    """float16 weights, input and output: fp16 by default, float16 arrays in and out."""
    rng = np.random.default_rng(5)
    w, bias = rng.normal(0, 0.3, (8, 3, 3, 3)), rng.normal(0, 0.1, 8)
    fc, fc_b = rng.normal(0, 0.3, (10, 8)), rng.normal(0, 0.1, 10)

    def model(dtype, onnx_type):
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["p"]),
                 helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"],
                                                                             transB=1)]
        inits = [numpy_helper.from_array(v.astype(dtype), n) for n, v in
                 (("w", w), ("b", bias), ("fc", fc), ("fcb", fc_b))]
        graph = helper.make_graph(nodes, "f16", [helper.make_tensor_value_info("x", onnx_type, [1, 3, 16, 16])],
                                  [helper.make_tensor_value_info("y", onnx_type, [1, 10])], inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        return m

    x = rng.standard_normal((1, 3, 16, 16))
    session = wgnn.InferenceSession(model(np.float16, TensorProto.FLOAT16))
    assert session.precision == "fp16"
    assert session.get_inputs()[0].type == "tensor(float16)"
    (got,) = session.run(None, {"x": x.astype(np.float16)})
    assert got.dtype == np.float16
    reference = ort.InferenceSession(model(np.float32, TensorProto.FLOAT).SerializeToString(),
                                     providers=["CPUExecutionProvider"]).run(None, {"x": x.astype(np.float32)})[0]
    assert rel_l2(got.astype(np.float32), reference) < 1e-2


# -- f16 arithmetic (the gemm_f16 variant) ---------------------------------------------------------

F16_MATH = {"conv2d": "gemm_f16", "matmul": "gemm_f16"}


def test_f16_arithmetic_on_a_pretrained_model_and_a_real_photo(f16_device):
    """BlazeFace (MediaPipe's weights) on the astronaut photo with every product it can run in f16
    arithmetic: within 1e-2 of LiteRT's FP32 and finding the same face as f32 arithmetic does."""
    from helpers import fetch_or_skip, run_litert

    from wgnn import mediapipe as mp

    skimage = pytest.importorskip("skimage")
    path = fetch_or_skip("face_detection_short_range")
    session = wgnn.InferenceSession(path, precision="fp16", kernels=F16_MATH)
    choices = session.kernel_choices()
    assert sum(c.startswith("gemm_f16") for c in choices.values()) >= 10, choices
    x, _ = mp.letterbox(skimage.data.astronaut(), (128, 128), (0.0, 1.0))
    want = run_litert(path.read_bytes(), [x])
    got = session.run(None, {session.get_inputs()[0].name: x})
    for g, w in zip(got, want):
        assert rel_l2(g, w) < 1e-2
    assert int(np.argmax(got[1])) == int(np.argmax(want[1]))  # the best anchor is the same


def test_f16_arithmetic_on_a_zoo_cnn(f16_device):
    model = zoo.build("mobilenet_v2", softmax=False)
    x = np.random.default_rng(12).standard_normal((2, 3, 224, 224)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    session = wgnn.InferenceSession(model, precision="fp16", kernels=F16_MATH, input_shapes={"input": x.shape})
    assert any(c.startswith("gemm_f16") for c in session.kernel_choices().values())
    (got,) = session.run(None, {"input": x})
    assert max(rel_l2(g, e) for g, e in zip(got, expected)) <= 1e-2
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def test_f16_arithmetic_is_refused_for_operands_kept_in_f32(f16_device):
    """A product whose input is stored in f32 because it may exceed f16's range (here squares of
    values near 300, about 9e4) is not run in f16 arithmetic: the op override passes it by, a node
    override for it is an error."""
    rng = np.random.default_rng(3)
    x = (300 + rng.normal(0, 5, (4, 16))).astype(np.float32)
    w = rng.uniform(0, 0.01, (16, 8)).astype(np.float32)
    b = wgnn.GraphBuilder()
    h = b.relu(b.input("x", x.shape))
    y = b.matmul(b.mul(h, h), b.constant(w), name="mm")
    graph = b.build_graph({"y": y})
    session = wgnn.InferenceSession(graph, precision="fp16", kernels={"matmul": "gemm_f16"})
    assert not session.kernel_choices()["mm"].startswith("gemm_f16")
    (got,) = session.run(None, {"x": x})
    want = x.astype(np.float64) ** 2 @ w
    assert np.all(np.isfinite(got)) and rel_l2(got, want) < 5e-3
    with pytest.raises(wgnn.GraphError, match="'gemm_f16' cannot run it"):
        wgnn.InferenceSession(graph, precision="fp16", kernels={"mm": "gemm_f16"})


def test_a_moved_dequantized_value_stays_f32(f16_device):
    """A dequantized value moved before it is read (here the relayout the compile puts between
    QLinearAveragePool's dequantize and its pool) is still one, and stays f32 as it does: an fp16
    session then gives the fp32 session's codes (f16 storage of the moved copy put 5 of 20 inputs'
    640 codes a step off; random_graph(7100061, 'quant') of ``wgnn fuzz --graphs``)."""
    from wgnn.scheduler import storage_types

    inits = [helper.make_tensor("s1", TensorProto.FLOAT, [], [0.0173]),
             helper.make_tensor("z1", TensorProto.INT8, [], [3]),
             helper.make_tensor("s2", TensorProto.FLOAT, [], [0.0291]),
             helper.make_tensor("z2", TensorProto.INT8, [], [-5])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s1", "z1"], ["q"]),
             helper.make_node("QLinearAveragePool", ["q", "s1", "z1", "s2", "z2"], ["y"], domain="com.microsoft",
                              kernel_shape=[2, 2], strides=[2, 2])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("com.microsoft", 1)]).SerializeToString()
    fp32, fp16 = wgnn.InferenceSession(model), wgnn.InferenceSession(model, precision="fp16")
    moved = next(n for n in fp16._exe.graph.nodes
                 if n.op == "relayout" and n.inputs[0].producer.op == "dequantize_linear")
    assert storage_types(fp16._exe.graph, "fp16")[id(moved.outputs[0])] == "f32"
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.normal(0, 1, (1, 4, 8, 9)).astype(np.float32)
        np.testing.assert_array_equal(fp16.run(None, {"x": x})[0], fp32.run(None, {"x": x})[0])


def test_a_constant_scale_of_integer_sums_stays_f32(f16_device):
    """ConvInteger's int32 sums made float and scaled by a constant (quantize_dynamic's pattern, its
    scale a constant here), then quantized: the product is kept in f32 as a quantize's input, and
    so is the constant that scales it (f16 would round 0.00123457 before the product), so an fp16
    session gives the fp32 session's codes (a code off now and then before:
    random_graph(7100311, 'quant') and (8100235, 'quant') of ``wgnn fuzz --graphs --precision fp16``)."""
    rng = np.random.default_rng(3)
    w = rng.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8)
    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.02]),
             helper.make_tensor("z", TensorProto.UINT8, [], [128]),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.float32(0.00123457), "scale"),
             helper.make_tensor("s2", TensorProto.FLOAT, [], [0.0317]),
             helper.make_tensor("z2", TensorProto.UINT8, [], [120])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("ConvInteger", ["q", "w", "z"], ["sums"], pads=[1, 1, 1, 1]),
             helper.make_node("Cast", ["sums"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["f", "scale"], ["y"]),
             helper.make_node("QuantizeLinear", ["y", "s2", "z2"], ["out"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.UINT8, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    fp32, fp16 = wgnn.InferenceSession(model), wgnn.InferenceSession(model, precision="fp16")
    for _ in range(10):
        x = rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
        np.testing.assert_array_equal(fp16.run(None, {"x": x})[0], fp32.run(None, {"x": x})[0])


def test_a_quantize_reads_its_input_in_f32():
    """In fp16 sessions a quantize's computed input is stored in f32, as a softmax's is: rounding to
    a quantization step moves values at ties, and f16's own rounding would put them on the other
    side (a quantized ResNet50's pooled features before its classifier)."""
    from wgnn.scheduler import storage_root, storage_types

    b = wgnn.GraphBuilder()
    x = b.relu(b.input("x", (1, 8, 4, 4)))
    pooled = b.average_pool2d(x, window=None)
    q = b.quantize_linear(pooled, b.constant(np.float32(0.05)), b.constant(np.array(3, np.uint8)))
    graph = b.build_graph({"q": q})
    pooled, x = (next(n for n in graph.nodes if n.op == op).outputs[0] for op in ("pool2d", "activation"))
    types = storage_types(graph, "fp16")
    assert types[id(pooled)] == "f32" and types[id(x)] == "f16"
    assert storage_types(graph, "fp32")[id(pooled)] == "f32"
    # (and where the quantize reads it moved: the pool's result that a slice copies, in the session's
    # compiled graph, is kept too, not rounded to f16 before the copy)
    b = wgnn.GraphBuilder()
    pooled = b.average_pool2d(b.relu(b.input("x", (1, 8, 4, 4))), window=(2, 2), strides=(1, 1))
    q = b.quantize_linear(b.slice(pooled, [0, 0, 0, 1], [1, 8, 3, 3]), b.constant(np.float32(0.05)),
                          b.constant(np.array(3, np.uint8)))
    compiled = wgnn.InferenceSession(b.build_graph({"q": q}), precision="fp16")._exe.graph
    moved = [next(n for n in compiled.nodes if n.op == op).outputs[0] for op in ("pool2d", "slice")]
    assert storage_root(moved[1]) is moved[1]  # (a copy, not a view)
    types = storage_types(compiled, "fp16")
    assert [types[id(storage_root(t))] for t in moved] == ["f32", "f32"]
