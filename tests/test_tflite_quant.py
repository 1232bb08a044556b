"""Full-integer TFLite models against LiteRT: every operator wgnn takes on quantized tensors as a
one-op model, and three small quantized networks (int8 with float ends, uint8, int8 end to end),
one of them on a real photo. Quantized results may differ from LiteRT's by one step at a rounding
tie (LiteRT requantizes with a fixed-point multiplier, wgnn with a float32 one), never more."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_litert

import wgnn
from wgnn.importers.tflite import QUANTIZED_OPS
from wgnn.tflite_writer import ModelWriter

RNG = np.random.default_rng(7)


def q(scale, zero, axis=0):
    return (np.atleast_1d(np.asarray(scale, np.float32)), np.atleast_1d(np.asarray(zero, np.int64)), axis)


def conv(m, x, x_quant, out_shape, out_quant, *, kernel=3, stride=1, fused=0, depthwise=False, dtype="int8"):
    """A CONV_2D (or DEPTHWISE_CONV_2D) with per-channel int8 weights (uint8 per tensor) and an int32
    bias, as TFLite's quantizer writes them."""
    cin, cout = m.tensors[x]["shape"][3], out_shape[3]
    wshape = (1, kernel, kernel, cout) if depthwise else (cout, kernel, kernel, cin)
    if dtype == "int8":
        scales = RNG.uniform(0.003, 0.02, cout).astype(np.float32)
        w = m.tensor(wshape, "int8", RNG.integers(-127, 128, wshape), quant=q(scales, np.zeros(cout),
                                                                              3 if depthwise else 0))
    else:
        scales = np.full(cout, 0.01, np.float32)
        w = m.tensor(wshape, "uint8", RNG.integers(0, 256, wshape), quant=q(0.01, 128))
    bias_quant = q(x_quant[0][0] * scales, np.zeros(cout)) if dtype == "int8" else q(x_quant[0][0] * 0.01, 0)
    b = m.tensor((cout,), "int32", RNG.integers(-2000, 2000, cout), quant=bias_quant)
    if depthwise:
        return m.op("DEPTHWISE_CONV_2D", [x, w, b], out_shape, "DepthwiseConv2DOptions", Padding=0,
                    StrideW=stride, StrideH=stride, DepthMultiplier=1, FusedActivationFunction=fused,
                    DilationWFactor=1, DilationHFactor=1, out_dtype=dtype, out_quant=out_quant)
    return m.op("CONV_2D", [x, w, b], out_shape, "Conv2DOptions", Padding=0, StrideW=stride, StrideH=stride,
                FusedActivationFunction=fused, DilationWFactor=1, DilationHFactor=1, out_dtype=dtype,
                out_quant=out_quant)


XQ = q(0.05, 3)
YQ = q(0.08, -6)


def _fc(m, x):
    w = m.tensor((10, 16), "int8", RNG.integers(-127, 128, (10, 16)), quant=q(0.01, 0))
    b = m.tensor((10,), "int32", RNG.integers(-500, 500, 10), quant=q(0.05 * 0.01, 0))
    return m.op("FULLY_CONNECTED", [x, w, b], (1, 10), "FullyConnectedOptions", FusedActivationFunction=0,
                out_dtype="int8", out_quant=YQ)


def _pool(kind):
    return lambda m, x: m.op(kind, [x], (1, 4, 4, 8), "Pool2DOptions", Padding=0, StrideW=2, StrideH=2,
                             FilterWidth=3, FilterHeight=3, FusedActivationFunction=0, out_dtype="int8", out_quant=XQ)


# name, input shape, build(m, x) -> output; inputs are int8 with XQ
ONE_OP = [
    ("CONV_2D", (1, 9, 9, 8), lambda m, x: conv(m, x, XQ, (1, 9, 9, 12), YQ, fused=3)),
    ("DEPTHWISE_CONV_2D", (1, 9, 9, 8), lambda m, x: conv(m, x, XQ, (1, 5, 5, 8), YQ, stride=2, depthwise=True)),
    ("FULLY_CONNECTED", (1, 16), _fc),
    ("ADD", (1, 6, 6, 8), lambda m, x: m.op(  # a per-channel constant of another scale, broadcast
        "ADD", [x, m.tensor((1, 1, 1, 8), "int8", RNG.integers(-128, 128, (1, 1, 1, 8)), quant=q(0.03, -7))],
        (1, 6, 6, 8), "AddOptions", FusedActivationFunction=1, out_dtype="int8", out_quant=YQ)),
    ("MAX_POOL_2D", (1, 8, 8, 8), _pool("MAX_POOL_2D")),
    ("AVERAGE_POOL_2D", (1, 8, 8, 8), _pool("AVERAGE_POOL_2D")),
    ("RESHAPE", (1, 4, 4, 8), lambda m, x: m.op("RESHAPE", [x, m.const([1, 128], "int32")], (1, 128),
                                                  out_dtype="int8", out_quant=XQ)),
    ("CONCATENATION", (1, 5, 5, 4), lambda m, x: m.op(
        "CONCATENATION", [x, conv(m, x, XQ, (1, 5, 5, 4), XQ, kernel=1)], (1, 5, 5, 8), "ConcatenationOptions",
        Axis=3, FusedActivationFunction=0, out_dtype="int8", out_quant=XQ)),
    ("MEAN", (1, 6, 7, 8), lambda m, x: m.op("MEAN", [x, m.const([1, 2], "int32")], (1, 1, 1, 8), "ReducerOptions",
                                             KeepDims=1, out_dtype="int8", out_quant=YQ)),
    ("QUANTIZE", (1, 6, 7, 8), lambda m, x: m.op("QUANTIZE", [x], (1, 6, 7, 8), out_dtype="int8", out_quant=YQ)),
    # data movement: the same scale in and out, as TFLite requires
    ("TRANSPOSE", (1, 4, 5, 8), lambda m, x: m.op("TRANSPOSE", [x, m.const([0, 3, 1, 2], "int32")], (1, 8, 4, 5),
                                                  out_dtype="int8", out_quant=XQ)),
    ("PAD", (1, 4, 5, 8), lambda m, x: m.op("PAD", [x, m.const([[0, 0], [1, 2], [0, 1], [0, 0]], "int32")],
                                            (1, 7, 6, 8), out_dtype="int8", out_quant=XQ)),
    ("STRIDED_SLICE", (1, 6, 7, 8), lambda m, x: m.op(
        "STRIDED_SLICE", [x, m.const([0, 1, 0, 2], "int32"), m.const([1, 6, 7, 8], "int32"),
                          m.const([1, 2, 3, 1], "int32")], (1, 3, 3, 6), "StridedSliceOptions", BeginMask=0,
        EndMask=0, EllipsisMask=0, NewAxisMask=0, ShrinkAxisMask=0, out_dtype="int8", out_quant=XQ)),
    ("SLICE", (1, 6, 7, 8), lambda m, x: m.op("SLICE", [x, m.const([0, 1, 2, 0], "int32"),
                                                        m.const([1, 3, -1, 4], "int32")], (1, 3, 5, 4),
                                              out_dtype="int8", out_quant=XQ)),
    ("DEPTH_TO_SPACE", (1, 3, 4, 8), lambda m, x: m.op("DEPTH_TO_SPACE", [x], (1, 6, 8, 2), "DepthToSpaceOptions",
                                                       BlockSize=2, out_dtype="int8", out_quant=XQ)),
    ("SPACE_TO_DEPTH", (1, 6, 4, 8), lambda m, x: m.op("SPACE_TO_DEPTH", [x], (1, 3, 2, 32), "SpaceToDepthOptions",
                                                       BlockSize=2, out_dtype="int8", out_quant=XQ)),
    ("SQUEEZE", (1, 1, 5, 8), lambda m, x: m.op("SQUEEZE", [x], (5, 8), out_dtype="int8", out_quant=XQ)),
    ("EXPAND_DIMS", (1, 5, 8), lambda m, x: m.op("EXPAND_DIMS", [x, m.const(np.int32(1), "int32")], (1, 1, 5, 8),
                                                 out_dtype="int8", out_quant=XQ)),
    ("GATHER", (1, 6, 7, 8), lambda m, x: m.op("GATHER", [x, m.const([5, 0, 2], "int32")], (1, 3, 7, 8),
                                               "GatherOptions", Axis=1, BatchDims=0, out_dtype="int8", out_quant=XQ)),
    ("MAXIMUM", (1, 6, 7, 8), lambda m, x: m.op(
        "MAXIMUM", [x, m.tensor((8,), "int8", RNG.integers(-128, 128, 8), quant=XQ)], (1, 6, 7, 8),
        out_dtype="int8", out_quant=XQ)),
    ("MINIMUM", (1, 6, 7, 8), lambda m, x: m.op(
        "MINIMUM", [x, m.tensor((8,), "int8", RNG.integers(-128, 128, 8), quant=XQ)], (1, 6, 7, 8),
        out_dtype="int8", out_quant=XQ)),
    # arithmetic and activations, requantized
    ("SUB", (1, 6, 6, 8), lambda m, x: m.op(
        "SUB", [x, m.tensor((1, 1, 1, 8), "int8", RNG.integers(-128, 128, (1, 1, 1, 8)), quant=q(0.03, -7))],
        (1, 6, 6, 8), "SubOptions", FusedActivationFunction=0, out_dtype="int8", out_quant=YQ)),
    ("MUL", (1, 6, 6, 8), lambda m, x: m.op(
        "MUL", [x, m.tensor((1, 1, 1, 8), "int8", RNG.integers(-128, 128, (1, 1, 1, 8)), quant=q(0.03, -7))],
        (1, 6, 6, 8), "MulOptions", FusedActivationFunction=0, out_dtype="int8", out_quant=YQ)),
    ("RELU", (1, 6, 7, 8), lambda m, x: m.op("RELU", [x], (1, 6, 7, 8), out_dtype="int8", out_quant=YQ)),
    ("RELU6", (1, 6, 7, 8), lambda m, x: m.op("RELU6", [x], (1, 6, 7, 8), out_dtype="int8",
                                              out_quant=q(6 / 255, -128))),
    ("LOGISTIC", (1, 6, 7, 8), lambda m, x: m.op("LOGISTIC", [x], (1, 6, 7, 8), out_dtype="int8",
                                                 out_quant=q(1 / 256, -128))),
    ("TANH", (1, 6, 7, 8), lambda m, x: m.op("TANH", [x], (1, 6, 7, 8), out_dtype="int8", out_quant=q(1 / 128, 0))),
    ("HARD_SWISH", (1, 6, 7, 8), lambda m, x: m.op("HARD_SWISH", [x], (1, 6, 7, 8), out_dtype="int8", out_quant=YQ)),
    ("LEAKY_RELU", (1, 6, 7, 8), lambda m, x: m.op("LEAKY_RELU", [x], (1, 6, 7, 8), "LeakyReluOptions", Alpha=0.2,
                                                   out_dtype="int8", out_quant=YQ)),
    ("SOFTMAX", (1, 10), lambda m, x: m.op("SOFTMAX", [x], (1, 10), "SoftmaxOptions", Beta=1.0, out_dtype="int8",
                                           out_quant=q(1 / 256, -128))),
    ("RESIZE_BILINEAR", (1, 4, 5, 8), lambda m, x: m.op(
        "RESIZE_BILINEAR", [x, m.const([8, 10], "int32")], (1, 8, 10, 8), "ResizeBilinearOptions", AlignCorners=False,
        HalfPixelCenters=True, out_dtype="int8", out_quant=XQ)),
    ("RESIZE_NEAREST_NEIGHBOR", (1, 4, 5, 8), lambda m, x: m.op(
        "RESIZE_NEAREST_NEIGHBOR", [x, m.const([8, 10], "int32")], (1, 8, 10, 8), "ResizeNearestNeighborOptions",
        AlignCorners=False, HalfPixelCenters=False, out_dtype="int8", out_quant=XQ)),
    ("REDUCE_MAX", (1, 6, 7, 8), lambda m, x: m.op("REDUCE_MAX", [x, m.const([1, 2], "int32")], (1, 8),
                                                   "ReducerOptions", KeepDims=False, out_dtype="int8", out_quant=XQ)),
    ("DEQUANTIZE", (1, 6, 7, 8), lambda m, x: m.op("DEQUANTIZE", [x], (1, 6, 7, 8))),
]


def test_every_quantized_operator_has_a_case():
    assert {c[0] for c in ONE_OP} == set(QUANTIZED_OPS)


def _compare(model: bytes, feeds: list[np.ndarray], names: list[str]):
    want = run_litert(model, feeds)
    session = wgnn.InferenceSession(model)
    got = session.run(None, dict(zip(names, feeds)))
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        if w.dtype.kind in "iu":
            diff = np.abs(g.astype(np.int64) - w.astype(np.int64))
            assert diff.max() <= 1 and np.mean(diff == 0) >= 0.9, (diff.max(), np.mean(diff == 0))
        else:
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    return session


@pytest.mark.parametrize("case", ONE_OP, ids=[c[0] for c in ONE_OP])
def test_quantized_operator_matches_litert(device, case):
    kind, shape, build = case
    m = ModelWriter()
    x = m.input(shape, "float32" if kind == "QUANTIZE" else "int8", quant=None if kind == "QUANTIZE" else XQ)
    model = m.bytes([build(m, x)])
    feed = (RNG.standard_normal(shape).astype(np.float32) if kind == "QUANTIZE"
            else RNG.integers(-128, 128, shape).astype(np.int8))
    session = _compare(model, [feed], ["input_0"])
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        assert session.pass_log["integer_conv"] == 1


def _inverted_residual(m, x):
    """float -> QUANTIZE -> conv (relu6) -> depthwise (relu6) -> conv -> ADD (residual) -> average
    pool -> reshape -> fully connected -> DEQUANTIZE -> float: a MobileNetV2 block, int8 inside."""
    a = m.op("QUANTIZE", [x], (1, 16, 16, 8), out_dtype="int8", out_quant=XQ)
    h = conv(m, a, XQ, (1, 16, 16, 16), q(6 / 255, -128), kernel=1, fused=3)
    h = conv(m, h, q(6 / 255, -128), (1, 16, 16, 16), q(6 / 255, -128), depthwise=True, fused=3)
    h = conv(m, h, q(6 / 255, -128), (1, 16, 16, 8), q(0.06, 2), kernel=1)
    h = m.op("ADD", [h, a], (1, 16, 16, 8), "AddOptions", FusedActivationFunction=0, out_dtype="int8",
             out_quant=q(0.09, 0))
    h = m.op("AVERAGE_POOL_2D", [h], (1, 2, 2, 8), "Pool2DOptions", Padding=1, StrideW=8, StrideH=8, FilterWidth=8,
             FilterHeight=8, FusedActivationFunction=0, out_dtype="int8", out_quant=q(0.09, 0))
    h = m.op("RESHAPE", [h, m.const([1, 32], "int32")], (1, 32), out_dtype="int8", out_quant=q(0.09, 0))
    w = m.tensor((10, 32), "int8", RNG.integers(-127, 128, (10, 32)), quant=q(0.01, 0))
    b = m.tensor((10,), "int32", RNG.integers(-500, 500, 10), quant=q(0.09 * 0.01, 0))
    h = m.op("FULLY_CONNECTED", [h, w, b], (1, 10), "FullyConnectedOptions", FusedActivationFunction=0,
             out_dtype="int8", out_quant=q(0.1, 0))
    return m.op("DEQUANTIZE", [h], (1, 10))


def test_int8_block_on_a_photo_matches_litert(device):
    skimage = pytest.importorskip("skimage")
    from wgnn import mediapipe as mp

    m = ModelWriter()
    x = m.input((1, 16, 16, 8))
    model = m.bytes([_inverted_residual(m, x)])
    photo, _ = mp.letterbox(skimage.data.astronaut(), (16, 16), (-1.0, 1.0))
    feed = np.concatenate([photo, photo[..., ::-1], photo[..., :2]], axis=-1).astype(np.float32)  # 8 channels
    session = wgnn.InferenceSession(model)
    want = run_litert(model, [feed])[0]
    got = session.run(None, {"input_0": feed})[0]
    assert session.pass_log["integer_conv"] == 3
    assert np.abs(got - want).max() <= 0.1 + 1e-6  # within one output step (0.1)
    assert np.mean(np.abs(got - want) < 1e-6) >= 0.9


def test_uint8_network_matches_litert(device):
    """TFLite's older asymmetric uint8 scheme: uint8 weights per tensor, uint8 activations."""
    m = ModelWriter()
    x = m.input((1, 12, 12, 4), "uint8", quant=q(0.02, 128))
    h = conv(m, x, q(0.02, 128), (1, 12, 12, 8), q(0.05, 100), fused=1, dtype="uint8")
    h = m.op("MAX_POOL_2D", [h], (1, 6, 6, 8), "Pool2DOptions", Padding=1, StrideW=2, StrideH=2, FilterWidth=2,
             FilterHeight=2, FusedActivationFunction=0, out_dtype="uint8", out_quant=q(0.05, 100))
    h = conv(m, h, q(0.05, 100), (1, 6, 6, 8), q(0.1, 90), dtype="uint8")
    h = m.op("MEAN", [h, m.const([1, 2], "int32")], (1, 1, 1, 8), "ReducerOptions", KeepDims=1, out_dtype="uint8",
             out_quant=q(0.1, 90))
    model = m.bytes([h])
    _compare(model, [RNG.integers(0, 256, (1, 12, 12, 4)).astype(np.uint8)], ["input_0"])


def test_int8_two_branch_network_matches_litert(device):
    """int8 in, int8 out: a strided conv, then a 1x1 conv and a depthwise conv concatenated, then a
    fully connected layer."""
    m = ModelWriter()
    x = m.input((1, 10, 10, 4), "int8", quant=XQ)
    h = conv(m, x, XQ, (1, 5, 5, 8), q(0.04, -3), stride=2, fused=1)
    a = conv(m, h, q(0.04, -3), (1, 5, 5, 8), q(0.05, 0), kernel=1)
    c = conv(m, h, q(0.04, -3), (1, 5, 5, 8), q(0.05, 0), depthwise=True)
    h = m.op("CONCATENATION", [a, c], (1, 5, 5, 16), "ConcatenationOptions", Axis=3, FusedActivationFunction=0,
             out_dtype="int8", out_quant=q(0.05, 0))
    h = m.op("RESHAPE", [h, m.const([1, 400], "int32")], (1, 400), out_dtype="int8", out_quant=q(0.05, 0))
    w = m.tensor((6, 400), "int8", RNG.integers(-127, 128, (6, 400)), quant=q(0.002, 0))
    b = m.tensor((6,), "int32", RNG.integers(-500, 500, 6), quant=q(0.05 * 0.002, 0))
    y = m.op("FULLY_CONNECTED", [h, w, b], (1, 6), "FullyConnectedOptions", FusedActivationFunction=0,
             out_dtype="int8", out_quant=q(0.08, 5))
    model = m.bytes([y])
    _compare(model, [RNG.integers(-128, 128, (1, 10, 10, 4)).astype(np.int8)], ["input_0"])


def test_quantized_operator_outside_the_tested_set_is_refused_by_name(device):
    m = ModelWriter()
    x = m.input((1, 4, 4, 8), "int8", quant=XQ)
    y = m.op("SQUARED_DIFFERENCE", [x, x], (1, 4, 4, 8), out_dtype="int8", out_quant=q(1 / 256, -128))
    with pytest.raises(wgnn.UnsupportedOperatorError, match="SQUARED_DIFFERENCE.*quantized \\(INT8\\)"):
        wgnn.InferenceSession(m.bytes([y]))
