"""Small integer types and linear quantization: the element-wise paths on int8 ... uint32 against
numpy, QuantizeLinear/DequantizeLinear per tensor and per axis, and quantized CNNs (ONNX Runtime's
quantizer, both formats, calibrated and run on real photos) against ONNX Runtime CPU."""

from __future__ import annotations

import numpy as np
import pytest

import wgnn
from wgnn import zoo

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _model(node, inputs, outputs, opset=21):
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


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
