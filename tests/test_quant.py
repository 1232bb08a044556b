"""Small integer types and linear quantization: the element-wise paths on int8 ... uint32 against
numpy, QuantizeLinear/DequantizeLinear per tensor and per axis, and quantized CNNs (ONNX Runtime's
quantizer, both formats, calibrated and run on real photos) against ONNX Runtime CPU."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from helpers import kernels_used, rel_l2
from helpers import tol as tolerance

import wgnn
from wgnn import zoo
from wgnn.reference import run_reference

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _model(node, inputs, outputs, opset=21):
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def test_two_quantized_convolutions_added_then_scaled_are_no_residual_block(device, rng):
    """Two QDQ convolutions of one input, their dequantized results added and the sum multiplied by a
    constant (no quantize after the add): the add's reader is no QuantizeLinear, so no residual block
    fuses (the check once indexed that reader's inputs as a quantize's before asking what it was: an
    IndexError, found by random graphs). Against ONNX Runtime CPU, within a quantization step."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import numpy_helper

    consts = {"xs": np.float32(0.02), "ws": np.float32(0.005), "ys": np.float32(0.05), "zero": np.uint8(128),
              "wzero": np.int8(0), "half": np.float32(0.5)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "zero"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "zero"], ["xd"])]
    for k in (1, 2):
        consts[f"w{k}"] = rng.integers(-127, 128, (8, 4, 3, 3)).astype(np.int8)
        nodes += [helper.make_node("DequantizeLinear", [f"w{k}", "ws", "wzero"], [f"wd{k}"]),
                  helper.make_node("Conv", ["xd", f"wd{k}"], [f"c{k}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                  helper.make_node("QuantizeLinear", [f"c{k}", "ys", "zero"], [f"q{k}"]),
                  helper.make_node("DequantizeLinear", [f"q{k}", "ys", "zero"], [f"d{k}"])]
    nodes += [helper.make_node("Add", ["d1", "d2"], ["s"]), helper.make_node("Mul", ["s", "half"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 4, 6, 6))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), n) for n, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    feeds = {"x": rng.standard_normal((1, 4, 6, 6)).astype(np.float32)}
    session = wgnn.InferenceSession(model)
    got = session.run(None, feeds)[0]
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert np.mean(np.abs(got - want) <= 0.05 + 1e-6) >= 0.99 and rel_l2(got, want) < 2e-2
    assert session.pass_log["fuse_requantize"] == 2


def test_a_max_pool_of_codes_between_a_concat_and_a_quantized_conv(device, rng):
    """uint8 codes concatenated (QLinearConcat), max pooled, then a QLinearConv: the shift moved before
    the pool (``_shift_before_maxpool``) gave the pool its own outputs list as inputs, so the relayout
    the pool's input needed also became the shift's output, and the relayout read a tensor nothing
    wrote (a KeyError at compile, found by random graphs). Against ONNX Runtime CPU."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import numpy_helper

    consts = {"xs": np.float32(0.04), "xz": np.uint8(100), "ys": np.float32(0.05), "yz": np.uint8(128),
              "w": rng.integers(-127, 128, (4, 6, 1, 1)).astype(np.int8), "ws": np.float32(0.01), "wz": np.int8(0)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("QLinearConcat", ["ys", "yz", "xq", "xs", "xz", "xq", "xs", "xz"], ["cat"], axis=1,
                              domain="com.microsoft"),
             helper.make_node("MaxPool", ["cat"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("QLinearConv", ["pool", "ys", "yz", "w", "ws", "wz", "ys", "yz"], ["y"],
                              kernel_shape=[1, 1], strides=[2, 2])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 8, 8))],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
                              [numpy_helper.from_array(np.asarray(v), n) for n, v in consts.items()])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    feeds = {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}
    got = wgnn.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - want).max() <= 1


@pytest.mark.parametrize("dtype, op, a, b", [
    ("int8", "Add", [127, -128, 5, 100], [1, -1, -7, 100]),       # wraps to -128, 127, ..., -56
    ("uint8", "Sub", [0, 3, 200, 255], [1, 5, 100, 255]),          # wraps to 255, 254
    ("int16", "Mul", [300, -300, 181, 2], [300, 300, 181, -3]),
    ("uint16", "Add", [65535, 1, 40000, 0], [1, 1, 40000, 0]),
    ("uint32", "Div", [4000000000, 7, 3000000000, 9], [3, 2, 1000000000, 0]),  # unsigned division
])
def test_small_integer_arithmetic_wraps_like_numpy(device, dtype, op, a, b):
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = _model(helper.make_node(op, ["a", "b"], ["y"]), [("a", onnx_type, [4]), ("b", onnx_type, [4])],
                   [("y", onnx_type, [4])])
    a, b = np.array(a, dtype), np.array(b, dtype)
    (got,) = wgnn.InferenceSession(model).run(None, {"a": a, "b": b})
    with np.errstate(all="ignore"):
        want = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](a, b) if op != "Div" else \
            np.where(b == 0, a, a // np.where(b == 0, 1, b)).astype(dtype)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, want)


def test_uint32_compares_above_two_to_the_31(device):
    model = _model(helper.make_node("Greater", ["a", "b"], ["y"]),
                   [("a", TensorProto.UINT32, [3]), ("b", TensorProto.UINT32, [3])], [("y", TensorProto.BOOL, [3])])
    a, b = np.array([3_000_000_000, 1, 2**32 - 1], np.uint32), np.array([5, 2_500_000_000, 2**31], np.uint32)
    np.testing.assert_array_equal(wgnn.InferenceSession(model).run(None, {"a": a, "b": b})[0], a > b)


def test_quantize_and_dequantize_per_axis_match_numpy(device):
    rng = np.random.default_rng(0)
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 3, 4, 5))
    scale = b.constant(np.array([0.02, 0.05, 0.1], np.float32))
    zero = b.constant(np.array([128, 0, 250], np.uint8))
    q = b.quantize_linear(x, scale, zero, axis=1)
    y = b.dequantize_linear(q, scale, zero, axis=1)
    session = wgnn.InferenceSession(b.build_graph({"q": q, "y": y}))
    feed = (rng.standard_normal((2, 3, 4, 5)) * 4).astype(np.float32)
    got_q, got_y = session.run(None, {"x": feed})
    s, z = np.array([0.02, 0.05, 0.1], np.float32).reshape(1, 3, 1, 1), np.array([128, 0, 250]).reshape(1, 3, 1, 1)
    want_q = np.clip(np.rint(feed / s) + z, 0, 255).astype(np.uint8)
    assert got_q.dtype == np.uint8 and (want_q.min(), want_q.max()) == (0, 255)  # both saturations happen
    np.testing.assert_array_equal(got_q, want_q)
    np.testing.assert_allclose(got_y, (want_q.astype(np.float32) - z) * s, rtol=1e-6)


def test_quantize_to_an_unstorable_type_is_refused_by_name(device):
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], name="q8", output_dtype=TensorProto.FLOAT8E4M3FN)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, [4])],
                              [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    with pytest.raises(wgnn.UnsupportedOperatorError, match="q8.*quantizing to ONNX type 17"):
        wgnn.InferenceSession(model.SerializeToString())


def _photos(names):
    from wgnn.batch import prepare_image

    skimage = pytest.importorskip("skimage")
    out = []
    for name in names:
        image = getattr(skimage.data, name)()
        image = np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]
        out.append(prepare_image(image, "imagenet", (224, 224))[0][None])
    return out


CALIBRATION = ("astronaut", "coffee", "rocket", "retina")
EVALUATION = ("chelsea", "camera", "hubble_deep_field", "immunohistochemistry", "brick", "grass", "coins",
              "colorwheel", "moon", "clock")


@pytest.mark.parametrize("fmt", zoo.QUANT_FORMATS)
def test_quantized_squeezenet_matches_onnxruntime_cpu(device, fmt):
    """SqueezeNet quantized by ONNX Runtime's quantize_static (calibrated on four photos), run on ten
    others: within one output quantization step of ONNX Runtime CPU on 99% of the logits, same top-1."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxruntime.quantization")
    path = zoo.quantize("squeezenet1_1", _photos(CALIBRATION), fmt=fmt)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ({"QLinearConv", "QLinearConcat"} if fmt == "qoperator" else {"QuantizeLinear", "Conv"}) <= ops
    step = zoo.output_step(path)
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    session = wgnn.InferenceSession(path)
    for x in _photos(EVALUATION):
        want = reference.run(None, {"input": x})[0]
        got = session.run(None, {"input": x})[0]
        assert np.mean(np.abs(got - want) <= step * 1.001) >= 0.99
        assert np.argmax(got) == np.argmax(want)


def test_quantized_squeezenet_in_fp16_gives_the_fp32_integers(device):
    """An fp16 session of a quantized CNN stores its dequantized values (a dequantize's, an epilogue's
    (q - zero) * scale) in f32, as it does quantize inputs: on ten photos it gives the fp32
    session's integers, element for element (f16 storage of them moved 0.1% of SqueezeNet's logits
    by a step, and 37% of ResNet50's)."""
    pytest.importorskip("onnxruntime.quantization")
    path = zoo.quantize("squeezenet1_1", _photos(CALIBRATION), fmt="qdq")
    fp32, fp16 = wgnn.InferenceSession(path), wgnn.InferenceSession(path, precision="fp16")
    for x in _photos(EVALUATION):
        np.testing.assert_array_equal(fp16.run(None, {"input": x})[0], fp32.run(None, {"input": x})[0])


def test_dynamically_quantized_mobilenet_v2_with_its_batch_norms(device):
    """MobileNet V2 through quantize_dynamic without folding its batch norms first (ConvInteger ->
    Cast -> Mul by x_scale * w_scale -> BatchNormalization -> Clip): each layer's scale and batch norm
    are one muladd reading the run-time x_scale as its factor (no full-tensor Mul, no scalar
    product), and on three photos the logits are ONNX Runtime CPU's within 2% of their largest (the
    batch norm folded into a multiply-add rounds otherwise than ONNX Runtime's; dynamic quantization
    then moves a value to the next step now and then), with the same top-1."""
    ort = pytest.importorskip("onnxruntime")
    quantization = pytest.importorskip("onnxruntime.quantization")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "dynamic.onnx"
        onnx.save(zoo.build("mobilenet_v2", softmax=False), str(source))
        quantization.quantize_dynamic(str(source), str(target), weight_type=quantization.QuantType.QInt8,
                                      op_types_to_quantize=["Conv"])
        model = target.read_bytes()
    ops = [n.op_type for n in onnx.load_from_string(model).graph.node]
    assert ops.count("ConvInteger") == ops.count("BatchNormalization") == 52
    reference = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    session = wgnn.InferenceSession(model)
    nodes = session._exe.graph.nodes
    assert sum(n.op == "muladd" and len(n.inputs) == 4 and n.attrs["scale"] is not None for n in nodes) == 52
    assert not any(n.op == "binary" and n.attrs["kind"] == "mul" for n in nodes)
    for x in _photos(EVALUATION[:3]):
        want, got = reference.run(None, {"input": x})[0], session.run(None, {"input": x})[0]
        assert np.argmax(got) == np.argmax(want)
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-2 * np.abs(want).max())


def test_quantized_squeezenet_runs_its_3x3_convolutions_as_exact_winograd(device):
    """The software adapter's kernel policy runs SqueezeNet's eight quantized 3x3 convolutions as
    Winograd (their integer sums provably exact there, passes/winograd.py) with the requantize in the
    output transform, the products over the transformed filter times 4 (integers, which the kernels
    read as int16 words, nn._int16_weights): on ten photos the logits equal those of the direct
    kernel, element for element."""
    pytest.importorskip("onnxruntime.quantization")
    path = zoo.quantize("squeezenet1_1", _photos(CALIBRATION), fmt="qdq")
    winograd, direct = wgnn.InferenceSession(path), wgnn.InferenceSession(path, kernels={"conv2d": "direct"})
    ran = [n for n in winograd._exe.graph.nodes if n.op == "winograd_output"]
    assert len(ran) == 8 and all(n.attrs["exact"] and n.attrs["requantize"] is not None for n in ran)
    assert all(n.attrs["products_scale"] == 4 for n in ran)
    filters = [n.inputs[1].value for n in winograd._exe.graph.nodes if n.op == "matmul" and n.attrs.get("exact")]
    assert len(filters) == 8 and all(np.array_equal(u, np.round(u)) and np.abs(u).max() < 2**15 for u in filters)
    assert not any(n.op == "winograd_output" for n in direct._exe.graph.nodes)
    for x in _photos(EVALUATION):
        np.testing.assert_array_equal(winograd.run(None, {"input": x})[0], direct.run(None, {"input": x})[0])


@pytest.mark.parametrize("weights", ["uint8", "int8"])
def test_dynamically_quantized_squeezenet_matches_onnxruntime_cpu(device, weights):
    """SqueezeNet quantized by ONNX Runtime's quantize_dynamic: every convolution a ConvInteger
    between DynamicQuantizeLinear nodes, whose zero points are computed at run time. Loads (the
    compile-time folding walks each value once, not once per path through the quantizers'
    diamonds) and matches ONNX Runtime CPU. The 3x3 ones have terms enough that 255 * K * max|w|
    passes 2^24, but no output's 255 * sum|w| does: each runs as one exact product, no digits, and
    on this adapter as Winograd, their sums provably exact there for any x - x_zero in -255..255
    (the zero point computed at run time)."""
    ort = pytest.importorskip("onnxruntime")
    quantization = pytest.importorskip("onnxruntime.quantization")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "dynamic.onnx"
        onnx.save(zoo.build("squeezenet1_1", softmax=False), str(source))
        kind = quantization.QuantType.QUInt8 if weights == "uint8" else quantization.QuantType.QInt8
        quantization.quantize_dynamic(str(source), str(target), weight_type=kind, op_types_to_quantize=["Conv"])
        model = target.read_bytes()
    ops = {n.op_type for n in onnx.load_from_string(model).graph.node}
    assert {"ConvInteger", "DynamicQuantizeLinear"} <= ops and "Conv" not in ops
    reference = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    session = wgnn.InferenceSession(model)
    from onnx import numpy_helper

    proto = onnx.load_from_string(model)
    values = {i.name: numpy_helper.to_array(i).astype(np.int64) for i in proto.graph.initializer}
    shifted = [values[n.input[1]] - values[n.input[3]].reshape(-1, 1, 1, 1)
               for n in proto.graph.node if n.op_type == "ConvInteger"]
    assert max(255 * w[0].size * np.abs(w).max() for w in shifted) > 1 << 24
    assert max(255 * np.abs(w).reshape(len(w), -1).sum(1).max() for w in shifted) < 1 << 24
    assert not any("/digit" in n.name for n in session.source_graph.nodes)
    convs = [n for n in session._exe.graph.nodes if n.op == "winograd_output"]
    assert len(convs) == 8 and all(n.attrs["exact"] for n in convs)
    for x in _photos(EVALUATION[:3]):
        want, got = reference.run(None, {"input": x})[0], session.run(None, {"input": x})[0]
        assert np.argmax(got) == np.argmax(want)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())


def _dynamic_conv(prefix: str, x: str, w: np.ndarray, bias: np.ndarray, **attrs) -> tuple[list, list]:
    """The nodes and initializers an earlier ONNX Runtime quantize_dynamic (onnx.quantize 0.1.0, as
    in ddddocr's older recognizer) wrote for a Conv with a bias: uint8 weights, the bias quantized at
    run time by x_scale * w_scale into int32 and added to ConvInteger's sums, then Cast and Mul."""
    from onnx import numpy_helper

    lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    scale = np.float32((hi - lo) / 255)
    zero = np.uint8(np.clip(np.rint(-lo / scale), 0, 255))
    wq = np.clip(np.rint(w / scale) + zero, 0, 255).astype(np.uint8)
    p = prefix
    nodes = [helper.make_node("DynamicQuantizeLinear", [x], [f"{p}xq", f"{p}xs", f"{p}xz"]),
             helper.make_node("Mul", [f"{p}xs", f"{p}ws"], [f"{p}s"]),
             helper.make_node("Div", [f"{p}b", f"{p}s"], [f"{p}t"]), helper.make_node("Floor", [f"{p}t"], [f"{p}r"]),
             helper.make_node("Cast", [f"{p}r"], [f"{p}bq"], to=TensorProto.INT32),
             helper.make_node("Reshape", [f"{p}bq", f"{p}shape"], [f"{p}br"]),
             helper.make_node("ConvInteger", [f"{p}xq", f"{p}wq", f"{p}xz", f"{p}wz"], [f"{p}acc"], **attrs),
             helper.make_node("Add", [f"{p}acc", f"{p}br"], [f"{p}sum"]),
             helper.make_node("Cast", [f"{p}sum"], [f"{p}f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", [f"{p}f", f"{p}s"], [f"{p}y"])]
    inits = [numpy_helper.from_array(v, f"{p}{n}") for n, v in (
        ("ws", scale), ("b", bias), ("shape", np.array([1, -1, 1, 1], np.int64)), ("wq", wq), ("wz", zero))]
    return nodes, inits


def test_dynamically_quantized_conv_tail_is_one_pass(device):
    """After each ConvInteger, ONNX Runtime's earlier quantize_dynamic wrote an Add of the int32 bias,
    a Cast to float and a Mul by x_scale * w_scale: one ``dequantize_sum`` (passes/drop_exact_casts.py),
    with a swish after it fused in; the bias's quantization at run time (x_scale * w_scale, the Div,
    Floor and Cast) is computed in it too, the weights' scale its ``scale``; and that joins the
    convolution's epilogue (``fuse_dequantize_sum_into_conv``: its bias added to the integer sums
    before the factor x_scale), so no other dispatch remains but the input's quantization. On a real
    photo: ONNX Runtime CPU's first convolution bit for bit (the same int32 sums, rounded to float
    once), the swish block after it within float rounding; fp16 within its own rounding."""
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(5)
    first, inits1 = _dynamic_conv("a_", "x", rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32),
                                  rng.normal(0, 0.5, 8).astype(np.float32), pads=[1, 1, 1, 1], strides=[2, 2])
    second, inits2 = _dynamic_conv("b_", "a_y", rng.normal(0, 0.2, (8, 8, 1, 1)).astype(np.float32),
                                   rng.normal(0, 0.5, 8).astype(np.float32))
    swish = [helper.make_node("Sigmoid", ["b_y"], ["sig"]), helper.make_node("Mul", ["b_y", "sig"], ["swish"]),
             helper.make_node("Add", ["swish", "a_y"], ["y2"])]
    graph = helper.make_graph(first + second + swish, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 224, 224))],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a_y", "y2")],
                              inits1 + inits2)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    x = _photos(["astronaut"])[0]
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    session = wgnn.InferenceSession(model)
    assert session.pass_log["fuse_dequantize_sum"] >= 2 and session.pass_log["fuse_dequantize_sum_into_conv"] == 2
    tails = [n for n in session.graph.nodes if n.op == "conv2d"]
    assert len(tails) == 2 and not any(n.op in ("cast", "dequantize_sum") for n in session.graph.nodes)
    assert [n.attrs["activation"].kind if n.attrs.get("activation") else None for n in tails] == [None, "swish"]
    assert all(n.attrs["offset_bias"] == "floor" and n.attrs["factor_scale"] > 0 for n in tails)
    assert not any(n.op == "binary" and n.attrs["kind"] != "add" for n in session.graph.nodes)
    got = session.run(None, {"x": x})
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-5 * np.abs(want[1]).max())
    # fp16: the first convolution's result stored in f16 quantizes, at the second one, a step away
    # from ONNX Runtime's in places (0.07% of elements here)
    half = wgnn.InferenceSession(model, precision="fp16").run(None, {"x": x})
    np.testing.assert_allclose(half[0], want[0], rtol=0, atol=2e-3 * np.abs(want[0]).max())
    np.testing.assert_allclose(half[1], want[1], rtol=0, atol=1e-2 * np.abs(want[1]).max())
    assert np.mean(np.abs(half[1] - want[1]) <= 2e-3 * np.abs(want[1]).max()) > 0.99


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_dynamically_quantized_conv_tail_on_every_variant(device, monkeypatch, precision):
    """The dequantize_sum a dynamically quantized convolution ends in, fused into its epilogue, on
    each kernel that can run it, forced: Winograd's output transform (its integer sums), conv2d_shared
    and the columns' product (``subgroup``), direct, the workgroup-tiled GEMM (split-K too), the scalar
    kernel; a 1x1 one on the matrix kernels (``pointwise``, ``gemm``) and a one-pixel one on gemv.
    fp32: ONNX Runtime CPU's results bit for bit, with a float bias quantized at run time and with
    an int32 one; fp16: the same values on every variant (their f32 epilogue, then f16)."""
    from wgnn.backends.compute import policy
    from wgnn.backends.compute.policy import Choice

    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(11)
    cases = {"3x3": ((1, 8, 9, 11), (8, 8, 3, 3), dict(pads=[1, 1, 1, 1]),
                     ["winograd", "subgroup", "subgroup_columns", "direct", "gemm", "gemm_split", "generic"]),
             "1x1": ((2, 8, 5, 7), (12, 8, 1, 1), {}, ["pointwise", "subgroup", "gemm", "generic"]),
             "one_pixel": ((1, 8, 1, 1), (12, 8, 1, 1), {}, ["gemv", "pointwise", "generic"]),
             "int32_bias": ((1, 8, 6, 7), (8, 8, 3, 3), dict(pads=[1, 1, 1, 1]), ["winograd", "direct", "generic"])}
    adapter = policy.AdapterProfile.from_device(device)
    narrow = precision == "fp16" and adapter.narrow_f16_octets  # (no columns over 8 channels there)
    for label, (x_shape, w_shape, attrs, variants) in cases.items():
        nodes, inits = _dynamic_conv("a_", "x", rng.normal(0, 0.2, w_shape).astype(np.float32),
                                     rng.normal(0, 0.5, w_shape[0]).astype(np.float32), **attrs)
        if label == "int32_bias":  # (the Add's bias an int32 constant, not quantized at run time)
            from onnx import numpy_helper

            nodes = [n for n in nodes if n.output[0] not in ("a_t", "a_r", "a_bq", "a_br")]
            inits.append(numpy_helper.from_array(rng.integers(-3000, 3000, (1, w_shape[0], 1, 1)).astype(np.int32),
                                                 "a_br"))
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                                  [helper.make_tensor_value_info("a_y", TensorProto.FLOAT, None)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
        x = rng.normal(0, 1, x_shape).astype(np.float32)
        want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        results = {}
        for variant in variants:
            if (variant.startswith("subgroup") and not adapter.subgroups) or (variant == "subgroup_columns" and narrow):
                continue
            choice = {"gemm_split": Choice("gemm", 2, None, 2), "subgroup_columns": Choice("subgroup")}.get(
                variant, Choice(variant))
            # (conv2d_shared where the columns would run; every size on its columns for the other)
            monkeypatch.setattr(policy, "COLUMNS_BYTES", 0 if variant == "subgroup" else 16 << 20)
            monkeypatch.setattr(policy, "COLUMNS_MIN_MACS", 0)
            session = wgnn.InferenceSession(model, precision=precision, kernels={"conv2d": choice})
            assert session.pass_log["fuse_dequantize_sum_into_conv"] == 1, (label, variant)
            (conv,) = [n for n in session._exe.graph.nodes if n.op in ("conv2d", "winograd_output")]
            assert conv.attrs["offset_bias"] == ("exact" if label == "int32_bias" else "floor")
            assert not any(n.op == "dequantize_sum" for n in session._exe.graph.nodes), (label, variant)
            kernels = kernels_used(session)
            expected = {"winograd": "winograd_output", "subgroup": "conv2d_shared", "subgroup_columns": "im2col",
                        "direct": "conv2d", "gemm": "conv2d_gemm", "gemm_split": "splitk_reduce",
                        "generic": "conv2d_generic", "gemv": "gemv"}.get(variant)
            if label != "3x3" and variant in ("subgroup", "gemm"):
                expected = "matmul_shared" if variant == "subgroup" else "matmul_gemm"
            if label != "3x3" and variant == "generic":
                expected = "conv2d_generic"
            if variant == "pointwise":
                expected = "matmul"
            assert expected in kernels, (label, variant, kernels)
            results[variant] = session.run(None, {"x": x})[0]
            if precision == "fp32":
                np.testing.assert_array_equal(results[variant], want, err_msg=f"{label} {variant}")
        first = next(iter(results.values()))
        for variant, got in results.items():
            np.testing.assert_array_equal(got, first, err_msg=f"{label} {variant}")
        bound = (1e-6 if precision == "fp32" else 2e-3) * np.abs(want).max()
        np.testing.assert_allclose(first, want, rtol=0, atol=bound)


def _quantized_lstm(rng, direction: str, per_channel: bool, hidden: int, steps: int, batch: int, size: int,
                    initial: str = ""):
    """(the float ONNX model, its bytes through ``quantize_dynamic``: one DynamicQuantizeLSTM) of an
    LSTM with weights and biases drawn from ``rng`` (``initial``: "c0", a constant initial cell state
    drawn too; "inputs", initial hidden and cell states as the inputs h0 and c0), outputs y, h and c."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    import tempfile
    from pathlib import Path

    from onnx import numpy_helper

    dirs = 2 if direction == "bidirectional" else 1
    consts = {"W": rng.normal(0, 0.3, (dirs, 4 * hidden, size)), "R": rng.normal(0, 0.3, (dirs, 4 * hidden, hidden)),
              "B": rng.normal(0, 0.1, (dirs, 8 * hidden))}
    inputs = ["x", "W", "R", "B"]
    infos = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, batch, size])]
    if initial == "c0":
        consts["c0"] = rng.normal(0, 0.5, (dirs, batch, hidden))
        inputs += ["", "", "c0"]
    elif initial == "inputs":
        inputs += ["", "h0", "c0"]
        infos += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [dirs, batch, hidden]) for n in ("h0", "c0")]
    node = helper.make_node("LSTM", inputs, ["y", "h", "c"], hidden_size=hidden, direction=direction)
    graph = helper.make_graph([node], "g", infos,
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "yhc"],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "dynamic.onnx"
        onnx.save(model, str(source))
        quantization.quantize_dynamic(str(source), str(target), weight_type=quantization.QuantType.QInt8,
                                      per_channel=per_channel)
        quantized = target.read_bytes()
    assert [n.op_type for n in onnx.load_from_string(quantized).graph.node] == ["DynamicQuantizeLSTM"]
    return model, quantized


@pytest.mark.parametrize("direction, per_channel, hidden, batch, variant", [
    ("forward", False, 16, 3, None), ("bidirectional", True, 16, 3, None), ("forward", True, 16, 1, "row"),
    ("forward", False, 16, 5, "workgroup"), ("bidirectional", False, 18, 3, "row"), ("forward", True, 16, 1, "dot4"),
    ("bidirectional", False, 16, 5, "dot4"), ("bidirectional", False, 16, 1, "layer"),
    ("forward", False, 20, 2, "layer")])
def test_dynamically_quantized_lstm_matches_onnxruntime_cpu(device, direction, per_channel, hidden, batch, variant):
    """An LSTM through quantize_dynamic becomes com.microsoft.DynamicQuantizeLSTM (int8 weights,
    transposed). Each matrix product quantizes its float operand on the fly as ONNX Runtime does
    (the whole input sequence at once, the hidden state a batch row at a time, or whole at batch
    1): its outputs, not just close to the float LSTM's (ONNX Runtime's own quantized and float
    results differ by ~2e-2), but ONNX Runtime's quantized ones, within float rounding (fp32).
    A hidden size that divides by 4 packs the state four int8s to a word (with the zero points
    taken back through R^T's column sums); 18 keeps it as floats. Each lstm_step variant, forced
    (``dot4``: the packed state times int8 R^T by dot4I8Packed, i32 sums); the numpy reference of
    the optimized graph (the packed ops' own) agrees too. A packed layer this small runs whole by
    default (``layer``, lstm_layer.wgsl: one dispatch, a workgroup per direction), its outputs
    bitwise those of its steps (fp32), its last states slices of its results."""
    ort = pytest.importorskip("onnxruntime")
    from wgnn.backends.compute.policy import AdapterProfile, KernelPolicy, eligible

    rng = np.random.default_rng(5)
    steps, size, dirs = 7, 24, 2 if direction == "bidirectional" else 1
    model, quantized = _quantized_lstm(rng, direction, per_channel, hidden, steps, batch, size)
    x = rng.normal(0, 1, (steps, batch, size)).astype(np.float32)
    # ONNX Runtime quantizes the hidden state per chunk of rows its threads take: one row each
    # with as many threads as rows (with fewer it groups rows, and its results move by steps)
    options = ort.SessionOptions()
    options.intra_op_num_threads = batch
    want = ort.InferenceSession(quantized, options, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    floats = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert np.abs(want[0] - floats[0]).max() > 2e-3  # the quantization is visible
    # (fp16: f16 storage of the hidden state moves it across a quantization tie now and then: a step)
    for precision, tol in (("fp32", 2e-6), ("fp16", 2.5e-2)):
        session = wgnn.InferenceSession(quantized, precision=precision,
                                        kernels={"lstm_step": variant} if variant else None)
        got = session.run(None, {"x": x})
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=0, atol=tol)
        kernels = [d.kernel for d in session._exe.dispatches]
        packed = hidden % 4 == 0
        if packed and variant in (None, "layer"):  # the whole layer: one dispatch, no step left (one range: x's)
            assert kernels.count("lstm_layer") == 1 and kernels.count("dynamic_range") == 1
            assert not {"lstm_step", "lstm_cell"} & set(kernels)
            steps_apart = wgnn.InferenceSession(quantized, precision=precision, kernels={"lstm_step": "row"})
            same = steps_apart.run(None, {"x": x})
            if precision == "fp32":
                for g, s in zip(got, same):
                    np.testing.assert_array_equal(g, s)
                reference = run_reference(session.graph, {"x": x})
                for g, name in zip(got, "yhc"):
                    np.testing.assert_allclose(g, reference[name], rtol=0, atol=2e-6)
            continue
        # every step after the first: the state's quantization (by batch rows, one dispatch), then
        # one lstm_step (the integer product, the scales, per row and per column, and the cell)
        assert kernels.count("lstm_step") == dirs * (steps - 1) and kernels.count("lstm_cell") == dirs
        fused = [n for n in session.graph.nodes if n.op == "dynamic_quantize" and n.outputs[0].shape[0] == batch
                 and bool(n.attrs.get("rows")) == (batch > 1)]
        assert len(fused) == dirs * (steps - 1) and "reduce" not in kernels
        assert all(bool(n.attrs.get("words")) == packed for n in fused)
        state = ("uint32", hidden // 4) if packed else ("float32", hidden)  # (words of four int8s, or floats)
        assert all((n.outputs[0].dtype, n.outputs[0].shape[1]) == state for n in fused)
        steps_run = [d for d in session._exe.dispatches if d.kernel == "lstm_step"]
        # (R^T's int8 weights a byte each: with a row's reads and writes, less than R^T's f32 alone)
        assert steps_run[0].bytes_moved < 4 * hidden * hidden * 4 + batch * 9 * hidden * 4
        assert all(d.variant.startswith(variant or "") for d in steps_run)
        if precision == "fp32":
            reference = run_reference(session.graph, {"x": x})
            for g, name in zip(got, "yhc"):
                np.testing.assert_allclose(g, reference[name], rtol=0, atol=2e-6)
            # dot4 for a packed state (quantize_dynamic's weights fit int8), the first choice of a GPU's
            # defaults; a software adapter's defaults keep the float multiply-adds
            step = next(n for n in session.graph.nodes if n.op == "lstm_step" and n.attrs.get("quantized"))
            candidates = eligible("lstm_step", step, max_binding=1 << 30)
            assert ("dot4" in candidates) == packed
            adapter = dataclasses.replace(AdapterProfile.from_device(device), kind="gpu")
            assert (KernelPolicy(adapter, cache=None).choose("lstm_step", step, candidates).variant == "dot4") == packed
            cpu = dataclasses.replace(adapter, kind="cpu")
            assert KernelPolicy(cpu, cache=None).choose("lstm_step", step, candidates).variant != "dot4"



def _small_lstm_layer(direction: str, initial: str) -> tuple[bytes, dict, int, int]:
    """(model, feeds, batch, hidden): a dynamically quantized layer of 24 units, two batch rows and
    five steps, both directions from a constant c0 or one from h0 and c0 given as inputs."""
    rng = np.random.default_rng(11)
    steps, batch, size, hidden = 5, 2, 8, 24
    _, quantized = _quantized_lstm(rng, direction, False, hidden, steps, batch, size, initial=initial)
    feeds = {"x": rng.normal(0, 1, (steps, batch, size)).astype(np.float32)}
    if initial == "inputs":
        feeds.update(h0=rng.normal(0, 0.5, (1, batch, hidden)).astype(np.float32),
                     c0=rng.normal(0, 0.5, (1, batch, hidden)).astype(np.float32))
    return quantized, feeds, batch, hidden


@pytest.mark.parametrize("defaults", ["cpu", "gpu"])
@pytest.mark.parametrize("direction, initial", [("bidirectional", "c0"), ("forward", "inputs")])
def test_a_quantized_lstm_layer_runs_whole(device, monkeypatch, defaults, direction, initial):
    """A dynamically quantized layer of 24 units (six vec4s of them: not whole octets of words) and
    two batch rows (each row's state quantized over its own range) runs as one ``lstm_layer``
    dispatch under either kind of adapter's defaults (a software adapter's keeps each invocation's
    column of R^T in a private array; a GPU's reads it from memory each step, four invocations
    sharing each block of units' K, their partial sums added in workgroup memory): both directions from
    a constant initial cell state, or one from initial hidden and cell states given as inputs (its
    first step quantizing h0). Its outputs are bitwise those of its steps run apart (``row``), in
    fp32, and ONNX Runtime's within float rounding; its last states are slices of its results."""
    ort = pytest.importorskip("onnxruntime")
    quantized, feeds, batch, hidden = _small_lstm_layer(direction, initial)
    options = ort.SessionOptions()
    options.intra_op_num_threads = batch
    want = ort.InferenceSession(quantized, options, providers=["CPUExecutionProvider"]).run(None, feeds)
    apart = wgnn.InferenceSession(quantized, kernels={"lstm_step": "row"}).run(None, feeds)
    monkeypatch.setenv("WGNN_KERNEL_DEFAULTS", defaults)
    session = wgnn.InferenceSession(quantized)
    got = session.run(None, feeds)
    assert [d.kernel for d in session._exe.dispatches].count("lstm_layer") == 1
    assert not {"lstm_step", "lstm_cell"} & {d.kernel for d in session._exe.dispatches}
    layer = next(d for d in session._exe.dispatches if d.kernel == "lstm_layer")
    assert layer.variant == ("layer wg128 k/4" if defaults == "gpu" else "layer wg32")  # (a GPU's: K in four parts)
    for g, a, w in zip(got, apart, want):
        np.testing.assert_array_equal(g, a)
        np.testing.assert_allclose(g, w, rtol=0, atol=2e-6)
    reference = run_reference(session.graph, feeds)
    for g, name in zip(got, "yhc"):
        np.testing.assert_allclose(g, reference[name], rtol=0, atol=2e-6)


@pytest.mark.parametrize("defaults", ["cpu", "gpu"])
@pytest.mark.parametrize("direction, initial", [("bidirectional", "c0"), ("forward", "inputs")])
def test_a_quantized_lstm_layer_under_a_loop_limit(device, monkeypatch, defaults, direction, initial):
    """Where the adapter cuts long loops short (lavapipe: ``Device.loop_limit``, lowered here with
    ``WGNN_LOOP_LIMIT``), a layer whose steps would loop past it runs in several ``lstm_layer``
    dispatches, each starting from the state and cell state the one before left in y and c_out:
    under a limit of two steps' loops, five steps run as 2 + 2 + 1, outputs bitwise those of the
    layer in one dispatch and of its steps apart, in fp32 and fp16, under either kind of adapter's
    defaults (a GPU's variant, whose invocations share K, is counted as one that walks it alone).
    Under a limit below one step's loops the steps run apart."""
    from wgnn.backends.compute.policy import lstm_layer_loops

    quantized, feeds, batch, hidden = _small_lstm_layer(direction, initial)
    monkeypatch.setenv("WGNN_KERNEL_DEFAULTS", defaults)
    monkeypatch.setenv("WGNN_LOOP_LIMIT", "0")  # (none)
    whole = {p: wgnn.InferenceSession(quantized, precision=p).run(None, feeds) for p in ("fp32", "fp16")}
    apart = wgnn.InferenceSession(quantized, kernels={"lstm_step": "row"}).run(None, feeds)
    monkeypatch.setenv("WGNN_LOOP_LIMIT", str(lstm_layer_loops(2, batch, hidden)))
    for precision in ("fp32", "fp16"):
        session = wgnn.InferenceSession(quantized, precision=precision)
        got = session.run(None, feeds)
        layers = [d for d in session._exe.dispatches if d.kernel == "lstm_layer"]
        assert len(layers) == 3 and layers[0].flops == layers[1].flops > 0  # (2, 2 and 1 steps)
        assert abs(layers[0].flops - 2 * layers[2].flops) <= 1
        for g, w in zip(got, whole[precision]):
            np.testing.assert_array_equal(g, w)
    for g, a in zip(whole["fp32"], apart):
        np.testing.assert_array_equal(g, a)
    monkeypatch.setenv("WGNN_LOOP_LIMIT", str(lstm_layer_loops(1, batch, hidden) - 1))
    session = wgnn.InferenceSession(quantized)
    assert "lstm_layer" not in {d.kernel for d in session._exe.dispatches}
    for g, a in zip(session.run(None, feeds), apart):
        np.testing.assert_array_equal(g, a)


def _nbits_model(rng, bits: int, zeros: str, g_idx: bool, k: int = 40, n: int = 12, block: int = 16,
                 a_shape: tuple[int, ...] = (2, 3), dtype=np.float32):
    """A model of one MatMulNBits (its weights, scales and, as ``zeros`` says, zero points drawn
    from ``rng``; a bias) and an A for it."""
    blocks = -(-k // block)
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    packed = rng.integers(0, 256, (n, blocks, block * bits // 8)).astype(np.uint8)
    scales = rng.uniform(0.01, 0.1, (n, blocks)).astype(dtype)
    inits = [helper.make_tensor("B", TensorProto.UINT8, packed.shape, packed.tobytes(), raw=True),
             helper.make_tensor("scales", onnx_type, scales.shape, scales.tobytes(), raw=True)]
    ins = ["A", "B", "scales", "", "", "bias"]
    if zeros == "packed":
        z = rng.integers(0, 256, (n, -(-blocks * bits // 8))).astype(np.uint8)
        inits.append(helper.make_tensor("zeros", TensorProto.UINT8, z.shape, z.tobytes(), raw=True))
        ins[3] = "zeros"
    elif zeros == "float":
        z = rng.uniform(0, 2 ** bits - 1, (n, blocks)).astype(dtype)
        inits.append(helper.make_tensor("zeros", onnx_type, z.shape, z.tobytes(), raw=True))
        ins[3] = "zeros"
    if g_idx:
        order = rng.permutation(np.arange(k) // block).astype(np.int32)
        inits.append(helper.make_tensor("g_idx", TensorProto.INT32, order.shape, order))
        ins[4] = "g_idx"
    bias = rng.standard_normal(n).astype(dtype)
    inits.append(helper.make_tensor("bias", onnx_type, bias.shape, bias.tobytes(), raw=True))
    node = helper.make_node("MatMulNBits", ins, ["Y"], domain="com.microsoft", K=k, N=n, bits=bits,
                            block_size=block)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", onnx_type, [*a_shape, k])],
                              [helper.make_tensor_value_info("Y", onnx_type, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model, rng.standard_normal((*a_shape, k)).astype(dtype)


@pytest.mark.parametrize("bits,zeros,g_idx", [(4, "packed", False), (4, "none", True), (4, "float", False),
                                              (8, "packed", False), (2, "packed", False)])
def test_matmul_nbits_matches_onnxruntime_cpu(device, bits, zeros, g_idx):
    """com.microsoft.MatMulNBits (weight-only quantization): weights of ``bits`` bits in blocks of
    16 along a K that is no multiple of it, zero points packed like the weights, given as floats or
    left out (2^(bits - 1)), act-order block indices (g_idx), a bias, a 3-D A: ONNX Runtime CPU's
    outputs within float rounding. The weights stay packed (``matmul_nbits``), except under act
    order (g_idx: rows of K not in block order) or where K is no multiple of a word's values: then
    they are dequantized at load."""
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(bits)
    model, a = _nbits_model(rng, bits, zeros, g_idx)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"A": a})
    session = wgnn.InferenceSession(model)
    got = session.run(None, {"A": a})
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5 * np.abs(want[0]).max())
    packed = not g_idx and 40 % (32 // bits) == 0  # (2 bits: 16 values a word, which 40 is no multiple of)
    assert any(k.startswith("matmul_nbits") for k in kernels_used(session)) == packed


NBITS_CASES = [("nbits", 1, 1, (1,)), ("nbits", 4, 1, (2, 3)), ("nbits", 2, 4, (2, 3)), ("nbits", 4, 16, (5,)),
               ("nbits", 8, 32, (1,)), ("nbits_subgroup", 8, None, (2, 3)), ("nbits_subgroup", 16, None, (19,)),
               ("nbits_gemm", 4, 1, (19,)), ("nbits_gemm", 8, 2, (70,))]
NBITS_KERNELS = {"nbits": ["matmul_nbits"], "nbits_subgroup": ["matmul_nbits_shared"],
                 "nbits_gemm": ["matmul_nbits_gemm"], "nbits_gemm_f16": ["matmul_nbits_gemm"]}


@pytest.mark.parametrize("variant,tile,split,a_shape", NBITS_CASES)
@pytest.mark.parametrize("bits", [4, 8, 2])
def test_packed_weight_kernels_match_onnxruntime_in_every_variant(device, precision, variant, tile, split, a_shape,
                                                                 bits):
    """Each way of running a product of packed weights (``nbits``: rows per invocation, K spread
    over ``split`` invocations of a workgroup; ``nbits_subgroup``: octets of lanes sharing A's
    rows; ``nbits_gemm``: workgroup tiles, 32 x 32 and, with K split in two, 64 x 64), forced, at
    row counts that leave tiles part empty, 12 columns (an octet's eight vec4s, a block's columns
    part empty), a K whose last block is padded: ONNX Runtime CPU's outputs (fp16: a float16
    model, within f16's rounding of A and the result). The packed words, scales and zero points are all that is stored
    of the weights: the constants are fewer bytes than the weights as f32."""
    from wgnn.backends.compute.policy import Choice

    ort = pytest.importorskip("onnxruntime")
    if variant == "nbits_subgroup" and "subgroup" not in device.features:
        pytest.skip(f"{device.name} lacks subgroups")
    rng = np.random.default_rng(bits * 100 + tile)
    k, n = 48 if bits == 4 else 64, 12
    dtype = np.float16 if precision == "fp16" else np.float32  # (an f16 model: A read as f16 rows)
    model, a = _nbits_model(rng, bits, "packed", False, k=k, n=n, block=16 if bits < 8 else 32, a_shape=a_shape,
                            dtype=dtype)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"A": a})[0]
    session = wgnn.InferenceSession(model, precision=precision, kernels={"matmul": Choice(variant, tile, 64, split)})
    got = session.run(None, {"A": a})[0].astype(np.float32)
    want = want.astype(np.float32)
    products = [k for k in kernels_used(session) if k != "elementwise"]  # (an f16 model's edge casts)
    assert products == NBITS_KERNELS[variant] + (["splitk_reduce"] if split and split > 1 and "gemm" in variant else [])
    assert session._exe.constant_bytes < k * n * 4
    if precision == "fp32":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    else:
        assert rel_l2(got, want) < tolerance("fp16")


@pytest.mark.parametrize("bits", [4, 8])
def test_packed_weights_in_f16_arithmetic(device, monkeypatch, bits):
    """``nbits_gemm_f16`` (an fp16 session's: the workgroup tiles' products in f16, each step's sum
    added in f32, as ``gemm_f16``), forced at ragged sizes with K split in two, and what a GPU's
    defaults run from 64 rows of an fp16 session: ONNX Runtime CPU's outputs within f16's rounding."""
    from wgnn.backends.compute.policy import Choice

    ort = pytest.importorskip("onnxruntime")
    if "shader-f16" not in device.features:
        pytest.skip(f"{device.name} lacks shader-f16")
    rng = np.random.default_rng(bits)
    model, a = _nbits_model(rng, bits, "packed", False, k=64, n=12, block=32, a_shape=(70,))
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"A": a})[0]
    forced = wgnn.InferenceSession(model, precision="fp16", kernels={"matmul": Choice("nbits_gemm_f16", 4, 64, 2)})
    assert rel_l2(forced.run(None, {"A": a})[0], want) < tolerance("fp16")
    assert kernels_used(forced) == ["matmul_nbits_gemm", "splitk_reduce"]
    monkeypatch.setenv("WGNN_KERNEL_DEFAULTS", "gpu")
    gpu = wgnn.InferenceSession(model, precision="fp16")
    assert rel_l2(gpu.run(None, {"A": a})[0], want) < tolerance("fp16")
    assert list(gpu.kernel_choices().values())[0].startswith("nbits_gemm_f16")


def test_packed_weight_policy_on_lavapipe(device):
    """The software adapter's choices for packed weights: a single row on ``nbits`` (one row an
    invocation, K over four), rows on ``nbits_subgroup`` (8 rows an octet below 32 rows, 16 from
    there, but 8 in an fp16 session before Mesa 23, whose f16 rows at 16 took 1.8x 8's time)."""
    import dataclasses

    from wgnn.backends.compute.policy import AdapterProfile, Choice, KernelPolicy, problem_of
    from wgnn.importers.onnx import load_model

    adapter = AdapterProfile.from_device(device)
    for rows, mesa, precision, want in ((1, "22.3.6", "fp32", Choice("nbits", 1, 64, 4)),
                                        (17, "22.3.6", "fp32", Choice("nbits_subgroup", 8, 64, 1)),
                                        (68, "22.3.6", "fp32", Choice("nbits_subgroup", 16, 64, 1)),
                                        (68, "22.3.6", "fp16", Choice("nbits_subgroup", 8, 64, 1)),
                                        (68, "25.0.7-2~bpo12+1", "fp16", Choice("nbits_subgroup", 16, 64, 1))):
        model, _ = _nbits_model(np.random.default_rng(0), 4, "packed", False, k=384, n=384, block=32,
                                a_shape=(rows,))
        node = next(n for n in load_model(model)[0].nodes if n.op == "matmul")
        key = f"llvmpipe | llvmpipe (LLVM 15.0.6, 256 bits) | Mesa {mesa} (LLVM 15.0.6) | Vulkan"
        policy = KernelPolicy(dataclasses.replace(adapter, key=key, kind="cpu", subgroups=True), cache=None,
                              precision=precision)
        assert policy.choose("matmul", node, policy.eligible("matmul", node), problem_of(node)) == want, \
            (rows, mesa, precision)


def test_packed_weight_sizes_beyond_workgroup_memory_are_refused(device):
    """``nbits`` forced at sizes whose sums' tree would need more workgroup memory than WebGPU
    promises (16 KB): an error naming the variant and the bytes, before any pipeline is made."""
    from wgnn.backends.compute.policy import Choice

    model, _ = _nbits_model(np.random.default_rng(5), 4, "packed", False, k=64, n=16, block=32, a_shape=(9,))
    with pytest.raises(wgnn.GraphError, match=r"'nbits' at tile 8 and workgroup 256 .* 32768 bytes"):
        wgnn.InferenceSession(model, kernels={"matmul": Choice("nbits", 8, 256, 4)})


def test_packed_weights_padded_with_zero_columns(device):
    """MatMulNBits whose N is no multiple of 4 (1030 columns, as a vocabulary's projection may
    have): the pass that pads the float weights with zero columns pads the packed words alike, so
    the product still reads them packed (and the constants stay a fraction of the f32 weights);
    ONNX Runtime's outputs. A small one (under 4096 outputs) keeps the scalar kernel."""
    ort = pytest.importorskip("onnxruntime")
    for n, rows, packed in ((1030, 5, True), (10, 5, False)):
        model, a = _nbits_model(np.random.default_rng(3), 4, "packed", False, k=64, n=n, block=32, a_shape=(rows,))
        want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"A": a})[0]
        session = wgnn.InferenceSession(model)
        got = session.run(None, {"A": a})[0]
        assert any(k.startswith("matmul_nbits") for k in kernels_used(session)) == packed
        assert (session._exe.constant_bytes < 64 * n) == packed  # (f32 weights: 256 bytes a column)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_packed_weights_split_only_where_the_words_exceed_a_binding(device):
    """A product whose weights as f32 exceed a binding but whose packed words fit one stays whole
    (its kernel binds the words); where the words do not fit either, its columns are split, each
    slice a product of float weights: ONNX Runtime's outputs either way."""
    from wgnn.importers.onnx import load_model
    from wgnn.passes import optimize
    from wgnn.passes.split_wide_matmuls import split_wide_matmuls
    from wgnn.reference import run_reference

    model, a = _nbits_model(np.random.default_rng(4), 4, "packed", False, k=64, n=48, block=32, a_shape=(3,))
    want = run_reference(load_model(model)[0], {"A": a})["Y"]
    for limit, splits in ((64 * 48 * 4 - 4, 0), (64 * 48 // 2 - 4, 1)):  # f32 weights 12 KB, the words 1.5 KB
        graph = load_model(model)[0]
        optimize(graph)
        assert split_wide_matmuls(graph, limit) == splits
        np.testing.assert_allclose(run_reference(graph, {"A": a})["Y"], want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype,axis,k,zeros", [("int4", 0, 64, True), ("uint4", 0, 64, True), ("int8", 0, 64, True),
                                                 ("int4", 0, 64, False), ("uint4", 0, 48, True), ("int4", 1, 64, True)])
def test_blocked_dequantize_before_a_product_stays_packed(device, precision, dtype, axis, k, zeros):
    """ONNX's own weight-only form (opset 21: DequantizeLinear of int4/uint4/int8 weights in blocks
    along K, then MatMul): the product reads the weights packed (``pack_block_weights``), ONNX
    Runtime CPU's outputs (its own fusion of the two into MatMulNBits kept in f32: accuracy level
    0), with zero points and without (symmetric), also in a session without optimizations (ONNX
    Runtime's ORT_DISABLE_ALL: the same outputs). Blocks along N (axis 1), or a K whose last block
    is partial (48 in blocks of 32), fold to float weights as before."""
    ort = pytest.importorskip("onnxruntime")
    from ml_dtypes import int4, uint4

    rng = np.random.default_rng(k + axis)
    n, block = 64, 32
    np_type = {"int4": int4, "uint4": uint4, "int8": np.int8}[dtype]
    low, high = (-8, 8) if dtype == "int4" else (0, 16) if dtype == "uint4" else (-128, 128)
    q = rng.integers(low, high, (k, n)).astype(np_type)
    shape = (-(-k // block), n) if axis == 0 else (k, n // block)
    scale = rng.uniform(0.01, 0.1, shape).astype(np.float32)
    zero = rng.integers(low, high, shape).astype(np_type)
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(np_type))
    inits = [helper.make_tensor("q", onnx_type, q.shape, q.astype(np.int32).ravel().tolist()),
             helper.make_tensor("s", TensorProto.FLOAT, scale.shape, scale.ravel()),
             helper.make_tensor("z", onnx_type, zero.shape, zero.astype(np.int32).ravel().tolist())]
    if not zeros:
        inits.pop()
    nodes = [helper.make_node("DequantizeLinear", ["q", "s", "z" if zeros else ""], ["w"], axis=axis,
                              block_size=block),
             helper.make_node("MatMul", ["A", "w"], ["Y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [5, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    a = rng.standard_normal((5, k)).astype(np.float32)
    options = ort.SessionOptions()
    options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
    want = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(
        None, {"A": a})[0]
    session = wgnn.InferenceSession(model, precision=precision)
    got = session.run(None, {"A": a})[0]
    assert any(k.startswith("matmul_nbits") for k in kernels_used(session)) == (axis == 0 and k % block == 0)
    unoptimized = wgnn.InferenceSession(model, precision=precision, optimize=False)  # (ORT_DISABLE_ALL's)
    np.testing.assert_array_equal(unoptimized.run(None, {"A": a})[0], got)
    assert any(k.startswith("matmul_nbits") for k in kernels_used(unoptimized)) == (axis == 0 and k % block == 0)
    if precision == "fp32":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    else:
        assert rel_l2(got, want) < tolerance("fp16")


def test_malformed_matmul_nbits_is_refused_by_name(device):
    """MatMulNBits whose zero points, weights or attributes do not fit K, N and the block size: an
    error naming the node and what was expected, at load."""
    n, k, block = 4, 32, 16
    packed = np.zeros((n, 2, 8), np.uint8)
    inits = [helper.make_tensor("B", TensorProto.UINT8, packed.shape, packed.tobytes(), raw=True),
             helper.make_tensor("scales", TensorProto.FLOAT, (n, 2), np.ones(2 * n, np.float32)),
             helper.make_tensor("zeros", TensorProto.UINT8, (n, 3), bytes(3 * n), raw=True)]

    def model(ins, **attrs):
        node = helper.make_node("MatMulNBits", ins, ["Y"], domain="com.microsoft", name="q4", **attrs)
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [2, k])],
                                  [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                       helper.make_opsetid("com.microsoft", 1)])

    with pytest.raises(wgnn.UnsupportedOperatorError, match=r"q4.*zero points \(4, 3\).*4 x 1 bytes"):
        wgnn.InferenceSession(model(["A", "B", "scales", "zeros"], K=k, N=n, bits=4, block_size=block))
    with pytest.raises(wgnn.UnsupportedOperatorError, match=r"q4.*weights \(4, 2, 8\).*expected \(4, 2, 4\)"):
        wgnn.InferenceSession(model(["A", "B", "scales"], K=k, N=n, bits=2, block_size=block))
    with pytest.raises(wgnn.UnsupportedOperatorError, match=r"q4.*\['K'\] are required"):
        wgnn.InferenceSession(model(["A", "B", "scales"], N=n, block_size=block))


def test_dynamic_quantize_of_zeros_has_scale_one(device):
    """DynamicQuantizeLinear of an all-zero tensor: scale 1, as ONNX Runtime gives (not 0, which
    the quantize would divide by)."""
    ort = pytest.importorskip("onnxruntime")
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    model = _model(node, [("x", TensorProto.FLOAT, [5])],
                   [("y", TensorProto.UINT8, [5]), ("s", TensorProto.FLOAT, []), ("z", TensorProto.UINT8, [])], 13)
    x = np.zeros(5, np.float32)
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = wgnn.InferenceSession(model).run(None, {"x": x})
    assert float(want[1]) == float(got[1]) == 1.0
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("width", [300, 5000])
def test_dynamic_quantize_by_rows_is_one_pass(device, rng, width):
    """Each row over its own range (as DynamicQuantizeLSTM quantizes a batch's hidden states): one
    dynamic_range workgroup a row, and with rows of 300 values the quantize in the same dispatch;
    a row of zeros gets scale 1. The integers, scales and zero points of the numpy reference, row
    by row, in fp32 and fp16 sessions."""
    from wgnn.ops.quant import DynamicRange, _range_of

    b = wgnn.GraphBuilder()
    y, scale, zero = b.dynamic_quantize_linear(b.input("x", (5, width)), axis=0)
    graph = b.build_graph({"y": y, "s": scale, "z": zero})
    x = (rng.standard_normal((5, width)) * rng.uniform(0.1, 4, (5, 1)) + rng.uniform(-1, 1, (5, 1))).astype(np.float32)
    x[2] = 0
    x[3] = np.abs(x[3])  # (a row above 0: the range still includes 0)
    rows = [_range_of(row) for row in x]
    assert [float(r[0]) for r in rows][2] == 1.0
    want = {"s": np.array([r[0] for r in rows], np.float32).reshape(5, 1),
            "z": np.array([r[1] for r in rows], np.uint8).reshape(5, 1)}
    want["y"] = np.clip(np.rint(x / want["s"]) + want["z"], 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(run_reference(graph.copy(), {"x": x})["y"], want["y"])
    assert DynamicRange.infer(next(n for n in graph.nodes if n.op == "dynamic_range"))[0][0] == (5, 1)
    for precision in ("fp32", "fp16"):
        session = wgnn.InferenceSession(graph, precision=precision)
        kernels = [d.kernel for d in session._exe.dispatches]
        assert kernels == (["dynamic_range"] if width == 300 else ["dynamic_range", "ternary"]), kernels
        assert session._exe.dispatches[0].workgroups[0] * session._exe.dispatches[0].workgroups[1] == 5
        got = session.compute({"x": x})
        for name, value in want.items():
            np.testing.assert_array_equal(got[name], value, err_msg=f"{name} ({precision})")


@pytest.mark.parametrize("size", [300, 5000])
def test_dynamic_quantize_of_a_small_tensor_is_one_dispatch(device, size):
    """DynamicQuantizeLinear, as ONNX Runtime's DynamicQuantizeLSTM quantizes an LSTM's hidden state
    at each step: over 300 values the range and the quantize run as one dispatch (its shifted form
    too, as the integer product after it reads), over 5000 as two; ONNX Runtime's integers, scale
    and zero point either way, in fp32 and fp16 sessions."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import numpy_helper

    rng = np.random.default_rng(size)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"]),
             helper.make_node("MatMulInteger", ["y", "w", "z"], ["acc"])]
    w = rng.integers(-128, 128, (size, 8)).astype(np.int8)
    x = (rng.standard_normal((1, size)) * 3 + 1).astype(np.float32)
    types = {"y": TensorProto.UINT8, "s": TensorProto.FLOAT, "z": TensorProto.UINT8, "acc": TensorProto.INT32}
    # with y an output it is quantized as it is; without, the product reads the shifted integers
    for outputs, shifted in ((("y", "s", "z", "acc"), False), (("acc",), True)):
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, size])],
                                  [helper.make_tensor_value_info(n, types[n], None) for n in outputs],
                                  [numpy_helper.from_array(w, "w")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
        want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
        for precision in ("fp32", "fp16"):
            session = wgnn.InferenceSession(model, precision=precision)
            ops = [d.node.op for d in session._exe.dispatches]
            fused = [n for n in session.graph.nodes if n.op == "dynamic_quantize"]
            assert (len(fused), "dynamic_range" in ops) == ((1, False) if size == 300 else (0, True)), ops
            assert all(n.attrs["shifted"] == shifted for n in fused)
            for got, expected in zip(session.run(None, {"x": x}), want):
                np.testing.assert_array_equal(got, expected)


def test_quantized_resnet50_matches_onnxruntime_cpu_in_fp32_and_fp16(device):
    """ResNet50 quantized by quantize_static (QDQ), on three photos: within one output step of ONNX
    Runtime CPU on 99% of the logits (its one-step differences start at residual adds, where ONNX
    Runtime's fused QLinearAdd rounds scale ratios first; precision.md), the same top-1; and the
    fp16 session gives the fp32 session's integers (its dequantized values are kept in f32)."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxruntime.quantization")
    path = zoo.quantize("resnet50", _photos(CALIBRATION), fmt="qdq")
    step = zoo.output_step(path)
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fp32, fp16 = wgnn.InferenceSession(path), wgnn.InferenceSession(path, precision="fp16")
    for x in _photos(("chelsea", "camera", "coins")):
        want, got = reference.run(None, {"input": x})[0], fp32.run(None, {"input": x})[0]
        assert np.mean(np.abs(got - want) <= step * 1.001) >= 0.99
        assert np.argmax(got) == np.argmax(want)
        np.testing.assert_array_equal(fp16.run(None, {"input": x})[0], got)


def _qlinear_conv_model(rng, groups: int, relu_zero: bool, size: int = 3):
    """A QLinearConv (uint8 x and y, per-channel int8 weights, int32 bias) as ONNX Runtime writes it:
    a ``size`` x ``size`` filter, padded and strided if 3 x 3."""
    from onnx import numpy_helper

    c, o = 8, 8 if groups > 1 else 12
    w = rng.integers(-63, 64, (o, c // groups, size, size)).astype(np.int8)
    consts = {"xs": np.float32(0.021), "xz": np.uint8(131), "w": w,
              "ws": rng.uniform(0.002, 0.01, o).astype(np.float32), "wz": np.zeros(o, np.int8),
              "ys": np.float32(0.07), "yz": np.uint8(0 if relu_zero else 117),
              "b": rng.integers(-3000, 3000, o).astype(np.int32)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            **(dict(pads=[1, 0, 1, 2], strides=[1, 2]) if size == 3 else {}), group=groups)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, c, 9, 11])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString(), consts


@pytest.mark.parametrize("shared", [False, True])
def test_an_input_quantized_for_its_channel_padding_is_quantized_by_the_pad(device, rng, shared):
    """A float image quantized (QDQ) for a 3-channel quantized convolution: the pad that gives it a
    fourth channel quantizes as it copies (passes.quantize_in_channel_pad; pad_channels.wgsl), no
    quantize pass of its own, unless the quantized image is read elsewhere too. Inputs on rounding
    ties and past the range: ONNX Runtime CPU's uint8 result element for element, fp32 and fp16."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import numpy_helper

    consts = {"xs": np.float32(2.0**-6), "xz": np.uint8(121), "w": rng.integers(-63, 64, (8, 3, 3, 3)).astype(np.int8),
              "ws": np.float32(0.004), "wz": np.int8(0), "ys": np.float32(0.05), "yz": np.uint8(110)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
             helper.make_node("Conv", ["xd", "wd"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.UINT8, None)]
    if shared:  # (the quantized image is a graph output too: it stays a tensor of its own)
        outputs.append(helper.make_tensor_value_info("xq", TensorProto.UINT8, None))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 15, 17))],
                              outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    # codes and values half-way between two (round half to even: the scale a power of two), and
    # values far past both ends of uint8
    x = (rng.integers(-300, 300, (1, 3, 15, 17)) + 0.5 * (rng.random((1, 3, 15, 17)) < 0.5)) * 2.0**-6
    x = np.where(rng.random(x.shape) < 0.05, 40 * np.sign(x), x).astype(np.float32)
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for precision in ("fp32", "fp16"):
        session = wgnn.InferenceSession(model, precision=precision)
        assert session.pass_log.get("quantize_in_channel_pad", 0) == (0 if shared else 1)
        quantizes = [n for n in session._exe.graph.nodes if n.op == "quantize_linear"]
        assert len(quantizes) == (1 if shared else 0)
        got = session.run(None, {"x": x})
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("groups", [1, 8])
def test_quantized_conv_runs_on_integers_as_onnxruntime_does(device, groups):
    """A QLinearConv becomes x - x_zero -> exact conv -> requantize (passes/integer_conv.py): the same
    uint8 result as ONNX Runtime's integer kernel, element for element, in fp32 and in fp16 (the
    shifted activations and weights are small integers that f16 holds exactly; the sums stay f32)."""
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(groups)
    model, _ = _qlinear_conv_model(rng, groups, relu_zero=groups == 1)
    x = rng.integers(0, 256, (1, 8, 9, 11)).astype(np.uint8)
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    for precision in ("fp32", "fp16"):
        # f16 products would round the sums: asked for every conv, the policy keeps them off this one
        kernels = {"conv2d": "gemm_f16"} if precision == "fp16" and groups == 1 else None
        session = wgnn.InferenceSession(model, precision=precision, kernels=kernels)
        assert session.pass_log["integer_conv"] == 1
        assert not any(c.startswith("gemm_f16") for c in session.kernel_choices().values())
        got = session.run(None, {"x": x})[0]
        assert got.dtype == np.uint8 and 0 < np.mean(got == want)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_requantize_table_that_f16_holds_stays_f32(device, precision):
    """The fused requantize's table (per-channel multipliers, then three vec4s of ends) is found by
    its binding's length: scales that are powers of two make every value exact in f16, and stored
    so, 8 channels' table (20 values, 40 bytes) was bound as 48 and read a row off: a uint8 result
    of 1s (found by ``wgnn fuzz --graphs --precision fp16``). It stays f32: ONNX Runtime's codes,
    element for element, on each kernel the convolution takes."""
    from onnx import numpy_helper

    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(23)
    consts = {"xs": np.float32(2.0**-5), "xz": np.uint8(128), "w": rng.integers(-63, 64, (8, 8, 1, 1)).astype(np.int8),
              "ws": np.float32(2.0**-7), "wz": np.int8(0), "ys": np.float32(2.0**-4), "yz": np.uint8(128),
              "b": rng.integers(-3000, 3000, 8).astype(np.int32)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 8, 5, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model = model.SerializeToString()
    x = rng.integers(0, 256, (1, 8, 5, 6)).astype(np.uint8)
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert len(np.unique(want)) > 20
    for kernel in (None, "pointwise", "direct", "gemm"):
        session = wgnn.InferenceSession(model, precision=precision, kernels={"conv2d": kernel} if kernel else None)
        assert session.pass_log["integer_conv"] == 1
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], want, err_msg=str(kernel))


@pytest.mark.parametrize("groups, size, kernel", [(1, 3, "conv2d_shared"), (1, 1, "matmul_shared"),
                                                  (8, 3, "depthwise")])
def test_quantized_weights_are_read_as_bytes(device, monkeypatch, groups, size, kernel):
    """The subgroup and depthwise kernels read a quantized convolution's weights (w_q - w_zero) a byte
    each, four to a word (``nn._int8_weights``): a quarter of the weights' bytes bound, and ONNX
    Runtime's integers, element for element, in fp32 and fp16."""
    from wgnn.backends.compute import nn

    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(size + groups)
    model, consts = _qlinear_conv_model(rng, groups, relu_zero=False, size=size)
    x = rng.integers(0, 256, (1, 8, 9, 11)).astype(np.uint8)
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    def conv_bytes(session):
        (conv,) = [d for d in session._exe.dispatches if d.kernel == kernel]
        return conv.bytes_moved

    forced = {"conv2d": "depthwise" if groups > 1 else "subgroup"}
    for precision in ("fp32", "fp16"):
        session = wgnn.InferenceSession(model, precision=precision, kernels=forced)
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], want)
        packed = conv_bytes(session)
        with monkeypatch.context() as m:
            m.setattr(nn, "_int8_weights", lambda node, array: None)
            m.setattr(nn, "_int16_weights", lambda node, array: None)  # (nor two a word)
            floats = wgnn.InferenceSession(model, precision=precision, kernels=forced)
            np.testing.assert_array_equal(floats.run(None, {"x": x})[0], want)
        stored = {"fp32": 4, "fp16": 2}[precision]
        assert conv_bytes(floats) - packed >= (stored - 1) * consts["w"].size - 16  # (constants: whole vec4s)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
def test_quantized_mobilenets_match_onnxruntime_cpu(device, name):
    """The deeper quantized CNNs (QOperator) on ten photos: MobileNet V1 equal to ONNX Runtime CPU,
    MobileNet V2 (residual adds in float between the integer convs) within one step on 99%, same
    top-1."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxruntime.quantization")
    path = zoo.quantize(name, _photos(CALIBRATION), fmt="qoperator")
    step = zoo.output_step(path)
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    session = wgnn.InferenceSession(path)
    assert session.pass_log["integer_conv"] >= 27
    # a conv read only by the next conv hands it its activations already shifted, or packed four to
    # a word where a depthwise conv reads them (no shift kernel), and requantizes its own sums (no
    # requantize kernel)
    nodes = session._exe.graph.nodes
    fusions = [n.attrs["requantize"] for n in nodes if n.op == "conv2d" and n.attrs.get("requantize") is not None]
    assert sum(f.shifted or f.packed for f in fusions) >= (26 if name == "mobilenet_v1" else 30)
    depthwise = [n for n in nodes if n.op == "conv2d" and n.attrs["groups"] > 1]
    assert all(n.attrs.get("x_zero") is not None and n.inputs[0].producer.attrs["requantize"].packed
               for n in depthwise) and len(depthwise) == (13 if name == "mobilenet_v1" else 17)
    assert not any(n.op == "requantize" for n in nodes)
    # the residual blocks' adds and quantizes are in their last convolutions too, and no shift runs
    # between convolutions: about as many dispatches as the float model (which ends in a softmax)
    assert len(session._exe.dispatches) <= wgnn.InferenceSession(zoo.build(name)).dispatch_count + 6
    for x in _photos(EVALUATION):
        want, got = reference.run(None, {"input": x})[0], session.run(None, {"input": x})[0]
        if name == "mobilenet_v1":
            np.testing.assert_allclose(got, want, rtol=0, atol=step * 1e-3)
        assert np.mean(np.abs(got - want) <= step * 1.001) >= 0.99
        assert np.argmax(got) == np.argmax(want)


def test_quantized_mobilenet_on_packed_int8_equals_the_float_kernels(device):
    """MobileNet V2 (QOperator) with every quantized convolution it can on gemm_i8: pointwise ones on
    packed int8, reading activations that the depthwise ones before them store four bytes to a word,
    the depthwise ones on the depthwise kernel, unpacking the words the pointwise ones write. The
    integers are the same as on the default kernels."""
    pytest.importorskip("onnxruntime.quantization")
    path = zoo.quantize("mobilenet_v2", _photos(CALIBRATION), fmt="qoperator")
    x = _photos(("chelsea",))[0]
    want = wgnn.InferenceSession(path).run(None, {"input": x})[0]
    session = wgnn.InferenceSession(path, kernels={"conv2d": "gemm_i8"})
    convs = [n for n in session._exe.graph.nodes if n.op == "conv2d"]
    assert sum(session.kernel_choices()[n.name].startswith("gemm_i8") for n in convs) >= 34
    # every activation between the convolutions a byte per value: the depthwise ones read theirs packed too
    assert sum(n.attrs["requantize"].packed for n in convs if n.attrs.get("requantize")) >= 50
    np.testing.assert_array_equal(session.run(None, {"input": x})[0], want)


def _text_crops():
    """Twelve 48x192 crops of scikit-image's photo of printed text, as PaddleOCR's classifier takes them."""
    from wgnn import mediapipe as mp

    skimage = pytest.importorskip("skimage")
    text = skimage.data.text()
    crops = []
    for y in (0, 30, 60, 76):
        for x in (0, 32, 64):
            rgb = np.stack([text[y:y + 96, x:x + 384]] * 3, -1).astype(np.float32) / 255
            crops.append(((mp.resize_bilinear(rgb, 48, 192) - 0.5) / 0.5).transpose(2, 0, 1)[None].astype(np.float32))
    return crops


@pytest.mark.parametrize("fmt", zoo.QUANT_FORMATS)
def test_quantized_paddleocr_classifier_matches_onnxruntime_cpu(device, fmt):
    """A real pretrained model (PaddleOCR's text-orientation classifier: hard-sigmoid squeeze-excite
    blocks, symbolic input shape) quantized by quantize_static on four text crops, run on eight
    others: the same orientation as ONNX Runtime CPU, its probabilities (quantized in steps of
    1/256) within one step in QOperator form and two in QDQ form, where ONNX Runtime fuses the float
    squeeze-excite arithmetic differently."""
    from helpers import fetch_or_skip

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxruntime.quantization")
    fetch_or_skip("ppocr_cls")
    crops = _text_crops()
    path = zoo.quantize("ppocr_cls", crops[:4], fmt=fmt)
    step = zoo.output_step(path)
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    session = wgnn.InferenceSession(path)
    for x in crops[4:]:
        want, got = reference.run(None, {"x": x})[0], session.run(None, {"x": x})[0]
        assert np.argmax(got) == np.argmax(want)
        assert np.abs(got - want).max() <= step * (1.001 if fmt == "qoperator" else 2.001)
    assert session.pass_log["integer_conv"] >= 50


@pytest.mark.parametrize("op", ["ConvInteger", "MatMulInteger"])
def test_integer_products_are_exact_in_fp16_sessions(device, op):
    """ConvInteger and MatMulInteger give exact int32 sums in an fp16 session too (sums past 2048,
    which f16 storage would round, stay f32)."""
    rng = np.random.default_rng(3)
    if op == "ConvInteger":
        x, w = rng.integers(0, 256, (1, 8, 6, 6)).astype(np.uint8), rng.integers(0, 256, (4, 8, 3, 3))
        node = helper.make_node("ConvInteger", ["x", "w", "xz"], ["y"], pads=[1, 1, 1, 1])
    else:
        x, w = rng.integers(0, 256, (5, 64)).astype(np.uint8), rng.integers(0, 256, (64, 7))
        node = helper.make_node("MatMulInteger", ["x", "w", "xz"], ["y"])
    from onnx import numpy_helper

    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                              [numpy_helper.from_array(w.astype(np.uint8), "w"),
                               numpy_helper.from_array(np.array(128, np.uint8), "xz")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    ort = pytest.importorskip("onnxruntime")
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(want).max() > 2048
    got = wgnn.InferenceSession(model, precision="fp16").run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", ["ConvInteger", "MatMulInteger"])
def test_integer_weights_past_int8_are_read_as_int16_pairs(device, op):
    """uint8 weights minus a zero point of 100 (-100..155, past int8's range; ddddocr's older
    classifier's span -119..136) are read two to a u32 word, half the bytes of f32, negative ones
    sign-extended: ONNX Runtime's int32 results, element for element, in fp32 and fp16."""
    from onnx import numpy_helper

    rng = np.random.default_rng(16)
    if op == "ConvInteger":
        x, w = rng.integers(0, 256, (1, 32, 6, 6)).astype(np.uint8), rng.integers(0, 256, (32, 32, 1, 1))
        node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"])  # (1x1: a product of pixels)
    else:
        x, w = rng.integers(0, 256, (5, 64)).astype(np.uint8), rng.integers(0, 256, (64, 32))
        node = helper.make_node("MatMulInteger", ["x", "w", "xz", "wz"], ["y"])
    assert w.max() - 100 > 127 and w.min() - 100 < 0
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                              [numpy_helper.from_array(w.astype(np.uint8), "w"),
                               numpy_helper.from_array(np.array(128, np.uint8), "xz"),
                               numpy_helper.from_array(np.array(100, np.uint8), "wz")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    ort = pytest.importorskip("onnxruntime")
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    from wgnn.backends.compute.policy import Choice

    # (and the register-tiled kernel's, at a tile of 2 rows: 5 rows, the last tile ragged)
    forced = [None] + ([{"matmul": Choice("tiled", 2)}] if op == "MatMulInteger" else [])
    for precision, kernels in itertools.product(("fp32", "fp16"), forced):
        session = wgnn.InferenceSession(model, precision=precision, kernels=kernels)
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], want)
        product = max(session._exe.dispatches, key=lambda d: d.flops)
        assert product.kernel in (("matmul",) if kernels else ("matmul_shared", "conv2d_shared")), product.kernel
        assert product.bytes_moved < 3 * w.size + 4 * (x.size + want.size), (precision, product.bytes_moved)


@pytest.mark.parametrize("op, k", [("ConvInteger", 64), ("MatMulInteger", 4608)])
def test_integer_products_past_two_to_the_24_split_their_weights(device, op, k):
    """Sums that f32 would round (uint8 weights over 576 terms, int8 ones over 4608: ONNX Runtime's
    quantize_dynamic writes both) run as one exact product per base-2^k digit of the weights, added
    in int32: ONNX Runtime's int32 results, element for element, in fp32 and fp16."""
    from onnx import numpy_helper

    rng = np.random.default_rng(k)
    if op == "ConvInteger":
        x = rng.integers(0, 256, (1, k, 5, 5)).astype(np.uint8)
        w, wz = rng.integers(0, 256, (6, k, 3, 3)).astype(np.uint8), np.array(3, np.uint8)
        node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1, 1, 1, 1])
        x_type = TensorProto.UINT8
    else:
        x = rng.integers(-128, 128, (3, k)).astype(np.int8)
        w, wz = rng.integers(-128, 128, (k, 9)).astype(np.int8), np.array(-3, np.int8)
        node = helper.make_node("MatMulInteger", ["x", "w", "xz", "wz"], ["y"])
        x_type = TensorProto.INT8
    xz = np.array(0 if op == "ConvInteger" else 127, x.dtype)
    # activations at their extremes, with the weights' largest differences, so that sums pass 2^24
    x.reshape(-1)[: x.size * 3 // 4] = np.iinfo(x.dtype).max if op == "ConvInteger" else np.iinfo(x.dtype).min
    w.reshape(len(w), -1)[:, : w[0].size * 3 // 4] = np.iinfo(w.dtype).max
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", x_type, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                              [numpy_helper.from_array(v, n) for n, v in (("w", w), ("xz", xz), ("wz", wz))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    ort = pytest.importorskip("onnxruntime")
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(want).max() > 1 << 24
    for precision in ("fp32", "fp16"):
        session = wgnn.InferenceSession(model, precision=precision)
        products = [n for n in session.source_graph.nodes if n.op in ("conv2d", "matmul")]
        assert len(products) == (2 if op == "ConvInteger" else 3) and all(n.attrs.get("exact") for n in products)
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], want)


@pytest.mark.parametrize("same", [True, False])
def test_quantize_after_a_move_of_dequantized_integers_is_dropped(device, rng, same):
    """quantize(maxpool(dequantize(q))) and quantize(flatten(dequantize(q))) with the same scale and
    zero point are maxpool(q) and flatten(q) (passes/quant_roundtrip.py): no quantize or dequantize
    kernel runs, and the integers are numpy's. With another scale the quantize stays."""
    b = wgnn.GraphBuilder()
    scale, zero = np.float32(0.037), np.array(120, np.uint8)
    other = np.float32(0.037 if same else 0.05)
    x = b.dequantize_linear(b.input("x", (1, 8, 6, 6), "uint8"), b.constant(scale), b.constant(zero))
    pooled = b.quantize_linear(b.max_pool2d(x, window=(3, 3), strides=2, padding=(1, 1, 1, 1)), b.constant(scale),
                               b.constant(zero))
    flat = b.flatten(b.dequantize_linear(pooled, b.constant(scale), b.constant(zero)))
    y = b.quantize_linear(flat, b.constant(other), b.constant(zero))
    graph = b.build_graph({"y": y})
    feeds = {"x": rng.integers(0, 256, (1, 8, 6, 6)).astype(np.uint8)}
    want = run_reference(graph.copy(), feeds)["y"]
    session = wgnn.InferenceSession(graph)
    assert session.pass_log["drop_quant_roundtrips"] == (2 if same else 1)
    ran = {d.node.op for d in session._exe.dispatches}
    assert ("quantize_linear" in ran) == ("dequantize_linear" in ran) == (not same)
    got = session.compute(feeds)["y"]
    assert got.dtype == np.uint8 and len(np.unique(got)) > 10
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fmt", ["qoperator", "qdq"])
def test_quantized_matmul_runs_on_integers_as_onnxruntime_does(device, rng, fmt):
    """QLinearMatMul, and MatMul between a dequantize and a quantize: the product runs on the shifted
    integers against per-column int8 weights and requantizes in its epilogue, giving ONNX Runtime's
    integers element for element, in fp32 and fp16."""
    ort = pytest.importorskip("onnxruntime")

    # Weights in 7 bits, as quantize_static's reduce_range makes them: ONNX Runtime's u8 x s8 kernel
    # on CPUs without VNNI sums pairs of products in saturating 16 bits, which full-range weights
    # overflow (its result then depends on the CPU; wgnn's does not).
    w = rng.integers(-64, 64, (24, 12)).astype(np.int8)
    consts = {"as": np.float32(0.02), "az": np.uint8(131), "w": w,
              "ws": rng.uniform(0.002, 0.01, 12).astype(np.float32), "wz": np.zeros(12, np.int8),
              "ys": np.float32(0.09), "yz": np.uint8(120)}
    if fmt == "qoperator":
        nodes = [helper.make_node("QLinearMatMul", ["a", "as", "az", "w", "ws", "wz", "ys", "yz"], ["y"])]
    else:
        nodes = [helper.make_node("DequantizeLinear", ["a", "as", "az"], ["af"]),
                 helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], axis=1),
                 helper.make_node("MatMul", ["af", "wf"], ["yf"]),
                 helper.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["y"])]
    _runs_on_integers_as_onnxruntime_does(ort, nodes, consts, rng.integers(0, 256, (5, 24)).astype(np.uint8), 20)


def _runs_on_integers_as_onnxruntime_does(ort, nodes, consts, a, distinct):
    """The uint8 model of ``nodes`` (input a, output y; ``consts`` its initializers) gives ONNX
    Runtime's integers in fp32 and fp16, as one matrix product with the requantize in its epilogue."""
    from onnx import numpy_helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.UINT8, list(a.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    model = model.SerializeToString()
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"a": a})[0]
    assert len(np.unique(want)) > distinct
    sessions = []
    for precision in ("fp32", "fp16"):
        session = wgnn.InferenceSession(model, precision=precision)
        assert session.pass_log["integer_conv"] == 1
        product = next(n for n in session._exe.graph.nodes if n.op == "matmul")
        assert product.attrs["requantize"] is not None
        assert not any(n.op in ("requantize", "transpose") for n in session._exe.graph.nodes)
        np.testing.assert_array_equal(session.run(None, {"a": a})[0], want)
        sessions.append(session)
    return sessions


@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize("fmt", ["qoperator", "qdq"])
def test_quantized_gemm_runs_on_integers_as_onnxruntime_does(device, rng, fmt, rows):
    """A classifier's quantized Gemm as ONNX Runtime's quantizer writes it (QGemm, or a Gemm between
    dequantizes and a quantize): weights [N, K] with transB and per-row scales, an int32 bias. The
    weights stay integers through the transpose, and the product runs on them with the requantize in
    its epilogue (for one row a kernel that reads them a byte each: on a software adapter the
    register-tiled kernel at tile 1, on a GPU the matrix-vector kernel): ONNX Runtime's integers
    element for element, in fp32 and fp16."""
    ort = pytest.importorskip("onnxruntime")

    n, k = 32, 64
    w = rng.integers(-64, 64, (n, k)).astype(np.int8)  # 7 bits: see the matmul test above
    consts = {"as": np.float32(0.02), "az": np.uint8(131), "w": w,
              "ws": rng.uniform(0.002, 0.01, n).astype(np.float32), "wz": np.zeros(n, np.int8),
              "c": rng.integers(-4000, 4000, n).astype(np.int32), "ys": np.float32(0.1), "yz": np.uint8(120)}
    if fmt == "qoperator":
        nodes = [helper.make_node("QGemm", ["a", "as", "az", "w", "ws", "wz", "c", "ys", "yz"], ["y"], transB=1,
                                  domain="com.microsoft")]
    else:
        consts["cs"] = consts["as"] * consts["ws"]
        consts["cz"] = np.zeros(n, np.int32)
        nodes = [helper.make_node("DequantizeLinear", ["a", "as", "az"], ["af"]),
                 helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], axis=0),
                 helper.make_node("DequantizeLinear", ["c", "cs", "cz"], ["cf"], axis=0),
                 helper.make_node("Gemm", ["af", "wf", "cf"], ["yf"], transB=1),
                 helper.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["y"])]
    sessions = _runs_on_integers_as_onnxruntime_does(ort, nodes, consts,
                                                     rng.integers(0, 256, (rows, k)).astype(np.uint8), 6)
    if rows == 1:  # the weights read a byte each (f16 would be two)
        from wgnn.backends.compute.policy import AdapterProfile

        adapter = AdapterProfile.from_device(device)
        want = "matmul" if adapter.kind == "cpu" else "gemv"
        for session in sessions:
            (product,) = [d for d in session._exe.dispatches if d.node.op == "matmul"]
            assert product.kernel == want and product.bytes_moved < 2 * n * k


def test_quantized_mobilenet_on_the_gpu_defaults_gives_the_same_integers(device, monkeypatch):
    """The GPU's kernel defaults (gemm_i8 first, split-K where few blocks would run: what a GPU adapter
    gets without measuring) on this adapter: the same integers as the software adapter's defaults."""
    pytest.importorskip("onnxruntime.quantization")
    path = zoo.quantize("mobilenet_v2", _photos(CALIBRATION), fmt="qdq")
    x = _photos(("chelsea",))[0]
    want = wgnn.InferenceSession(path).run(None, {"input": x})[0]
    monkeypatch.setenv("WGNN_KERNEL_DEFAULTS", "gpu")
    session = wgnn.InferenceSession(path)
    choices = session.kernel_choices().values()
    assert sum(c.startswith("gemm_i8") for c in choices) >= 30 and sum("k/" in c for c in choices) >= 10
    np.testing.assert_array_equal(session.run(None, {"input": x})[0], want)


@pytest.mark.parametrize("variant", ["single", "parts"])
def test_dynamic_range_of_a_large_tensor_in_both_variants(device, variant):
    """DynamicQuantizeLinear's range over 20,000 values, as one workgroup (``single``) or first the
    minimum and maximum of 19 parts in as many workgroups (``parts``, a GPU's default), forced: ONNX
    Runtime's integers, scale and zero point, with the extremes at either end and in the middle of
    a part, in fp32 and fp16 sessions; an all-zero tensor still gets scale 1."""
    ort = pytest.importorskip("onnxruntime")
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    size = 20000
    model = _model(node, [("x", TensorProto.FLOAT, [4, size // 4])],
                   [("y", TensorProto.UINT8, [4, size // 4]), ("s", TensorProto.FLOAT, []),
                    ("z", TensorProto.UINT8, [])], 13)
    rng = np.random.default_rng(1)
    for where in (0, size - 1, 11 * 1024 + 500):
        x = (rng.standard_normal(size) * 2 + 0.5).astype(np.float32)
        x[where], x[(where + size // 2) % size] = 9.5, -7.25
        x = x.reshape(4, size // 4)
        want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
        for precision in ("fp32", "fp16"):
            session = wgnn.InferenceSession(model, precision=precision, kernels={"dynamic_range": variant})
            assert [d.kernel for d in session._exe.dispatches].count("range_parts") == (variant == "parts")
            for got, expected in zip(session.run(None, {"x": x}), want):
                np.testing.assert_array_equal(got, expected)
    zeros = np.zeros((4, size // 4), np.float32)
    got = wgnn.InferenceSession(model, kernels={"dynamic_range": variant}).run(None, {"x": zeros})
    assert float(got[1]) == 1.0 and int(got[2]) == 0
