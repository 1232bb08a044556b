"""Each ONNX operator the importer maps, as a one-node model, against onnxruntime CPU.

This checks the mapping (attribute defaults, pads order, auto_pad, opset differences) rather than
the kernels, which test_kernels covers in depth.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import rel_l2

import wgnn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(42)


def rand(*shape, low=None):
    if low is not None:
        return RNG.uniform(low, 1.5, shape).astype(np.float32)
    return RNG.standard_normal(shape).astype(np.float32)


def case(op, inputs, attrs=None, consts=None, opset=13, extra_nodes=(), out=TensorProto.FLOAT, tol=1e-5,
         order=None, steps=0):
    """inputs: {name: array} fed at run time; consts: {name: array} initializers (in input order,
    after the inputs unless ``order`` lists the node's input names); out: the ONNX element type of the
    output; tol: the relative L2 error allowed; steps: for integer outputs, how far each element may
    be from onnxruntime's (quantized results at a rounding tie). ``op`` may be "domain.Op"."""
    return {"op": op, "inputs": inputs, "attrs": attrs or {}, "consts": consts or {}, "opset": opset,
            "extra": list(extra_nodes), "out": out, "tol": tol, "order": order, "steps": steps}


def i64(*values):
    return np.array(values, np.int64)


X4 = rand(2, 4, 7, 9)
INTS = RNG.integers(-20, 20, (3, 5)).astype(np.int64)
MASK = RNG.random((3, 5)) > 0.5
BOOL = TensorProto.BOOL
CASES = {
    "conv_pads": case("Conv", {"x": X4}, {"pads": [1, 0, 2, 1], "strides": [2, 1]}, {"w": rand(8, 4, 3, 3),
                                                                                   "b": rand(8)}),
    "conv_same_upper": case("Conv", {"x": X4}, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"w": rand(4, 4, 3, 3)}),
    "conv_same_lower_stride2": case("Conv", {"x": X4}, {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
                                    {"w": rand(4, 4, 3, 3)}),
    "conv_valid_grouped": case("Conv", {"x": X4}, {"auto_pad": "VALID", "group": 2}, {"w": rand(6, 2, 2, 3)}),
    "conv_depthwise": case("Conv", {"x": X4}, {"group": 4, "pads": [1, 1, 1, 1]}, {"w": rand(4, 1, 3, 3)}),
    "conv_transpose_pads": case("ConvTranspose", {"x": X4}, {"strides": [2, 2], "pads": [1, 0, 1, 1],
                                                             "output_padding": [1, 0]}, {"w": rand(4, 3, 3, 3)}),
    "conv_transpose_output_shape": case("ConvTranspose", {"x": X4},
                                        {"strides": [2, 3], "output_shape": [13, 26], "auto_pad": "SAME_UPPER"},
                                        {"w": rand(4, 2, 3, 4)}),
    "conv_transpose_grouped": case("ConvTranspose", {"x": X4}, {"group": 2, "dilations": [2, 1]},
                                   {"w": rand(4, 3, 2, 2), "b": rand(6)}),
    "resize_linear_scales": case("Resize", {"x": X4}, {"mode": "linear"},
                                 {"roi": np.zeros(0, np.float32), "scales": np.array([1, 1, 2, 1.5], np.float32)}),
    "resize_nearest_sizes": case("Resize", {"x": X4}, {"mode": "nearest", "coordinate_transformation_mode":
                                                       "asymmetric", "nearest_mode": "floor"},
                                 {"roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32),
                                  "sizes": i64(2, 4, 5, 20)}),
    "resize_linear_align_corners": case("Resize", {"x": X4}, {"mode": "linear", "coordinate_transformation_mode":
                                                              "align_corners"},
                                        {"roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32),
                                         "sizes": i64(2, 4, 12, 4)}),
    "resize_axes_scales": case("Resize", {"x": X4}, {"mode": "linear", "axes": [3, 2]},
                               {"roi": np.zeros(0, np.float32), "scales": np.array([1.5, 0.5], np.float32)}, opset=18),
    "resize_not_larger": case("Resize", {"x": X4}, {"mode": "nearest", "keep_aspect_ratio_policy": "not_larger",
                                                    "axes": [2, 3]},
                              {"roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32),
                               "sizes": i64(10, 30)}, opset=18),
    "resize_not_smaller": case("Resize", {"x": X4}, {"mode": "linear", "keep_aspect_ratio_policy": "not_smaller",
                                                     "axes": [2, 3]},
                               {"roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32),
                                "sizes": i64(10, 30)}, opset=18),
    "conv_1d": case("Conv", {"x": rand(2, 4, 11)}, {"pads": [1, 2], "strides": [2], "dilations": [2]},
                    {"w": rand(6, 4, 3), "b": rand(6)}),
    "conv_transpose_1d": case("ConvTranspose", {"x": rand(2, 4, 7)}, {"strides": [2], "output_padding": [1]},
                              {"w": rand(4, 3, 3)}),
    "max_pool_1d": case("MaxPool", {"x": rand(2, 4, 11)}, {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
    "avg_pool_1d_dilated": case("AveragePool", {"x": rand(2, 4, 11)}, {"kernel_shape": [3], "dilations": [2]},
                                opset=19),
    "global_avg_pool_1d": case("GlobalAveragePool", {"x": rand(2, 4, 11)}),
    "batchnorm": case("BatchNormalization", {"x": X4}, {"epsilon": 1e-3},
                      {"s": rand(4), "bias": rand(4), "mean": rand(4), "var": rand(4, low=0.5)}),
    "relu": case("Relu", {"x": X4}),
    "sigmoid": case("Sigmoid", {"x": X4}),
    "tanh": case("Tanh", {"x": X4}),
    "leaky_relu": case("LeakyRelu", {"x": X4}, {"alpha": 0.2}),
    "hard_sigmoid": case("HardSigmoid", {"x": X4}, {"alpha": 0.3, "beta": 0.4}),
    "hard_swish": case("HardSwish", {"x": X4 * 4}, opset=14),
    "prelu": case("PRelu", {"x": X4}, consts={"slope": rand(4, 1, 1)}),
    **{op.lower(): case(op, {"x": X4 * 3}) for op in ("Abs", "Neg", "Exp", "Floor", "Ceil", "Round", "Sin", "Cos",
                                                       "Erf", "Sign", "Softplus", "Softsign", "Elu", "Selu")},
    **{op.lower(): case(op, {"x": np.abs(X4) + 0.1}) for op in ("Log", "Sqrt", "Reciprocal")},
    "celu": case("Celu", {"x": X4 * 3}, {"alpha": 0.5}, opset=12),
    "elu_alpha": case("Elu", {"x": X4 * 3}, {"alpha": 0.3}),
    "selu_attrs": case("Selu", {"x": X4 * 3}, {"alpha": 1.2, "gamma": 0.9}),
    "gelu": case("Gelu", {"x": X4 * 3}, opset=20),
    "log_softmax": case("LogSoftmax", {"x": X4 * 5}, {"axis": 1}),
    "log_softmax_opset11": case("LogSoftmax", {"x": X4 * 5}, {"axis": 2}, opset=11),
    "mean": case("Mean", {"x": X4, "y": rand(7, 9), "z": rand(1)}),
    "expand": case("Expand", {"x": rand(4, 1, 9)}, consts={"shape": i64(2, 1, 7, 1)}),
    "tile": case("Tile", {"x": rand(2, 3, 4)}, consts={"repeats": i64(2, 1, 3)}),
    "depth_to_space_dcr": case("DepthToSpace", {"x": rand(2, 8, 3, 5)}, {"blocksize": 2}),
    "depth_to_space_crd": case("DepthToSpace", {"x": rand(2, 8, 3, 5)}, {"blocksize": 2, "mode": "CRD"}),
    "space_to_depth": case("SpaceToDepth", {"x": rand(2, 3, 6, 4)}, {"blocksize": 2}),
    "instance_norm": case("InstanceNormalization", {"x": X4 * 3 + 1}, {"epsilon": 1e-3},
                          {"s": rand(4), "bias": rand(4)}),
    "layer_norm": case("LayerNormalization", {"x": X4 * 3 + 1}, {"axis": 2, "epsilon": 1e-3},
                       {"s": rand(7, 9), "bias": rand(7, 9)}, opset=17),
    "gelu_tanh": case("Gelu", {"x": X4 * 3}, {"approximate": "tanh"}, opset=20),
    "clip_inputs": case("Clip", {"x": X4}, consts={"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)}),
    "clip_attrs_opset6": case("Clip", {"x": X4}, {"min": -0.2, "max": 0.3}, opset=6),
    "add_broadcast": case("Add", {"x": X4, "y": rand(4, 1, 1)}),
    "sub": case("Sub", {"x": X4, "y": rand(9)}),
    "mul_const": case("Mul", {"x": X4}, consts={"y": rand(1, 4, 1, 1)}),
    "div": case("Div", {"x": X4, "y": rand(2, 4, 7, 9, low=0.5)}),
    "pow": case("Pow", {"x": np.abs(X4) + 0.1}, consts={"y": np.array(2.0, np.float32)}),
    "max3": case("Max", {"x": X4, "y": rand(7, 9), "z": rand(1)}),
    "min": case("Min", {"x": X4, "y": rand(9)}),
    "sum3": case("Sum", {"x": X4, "y": X4 * 2, "z": rand(4, 1, 1)}),
    "matmul": case("MatMul", {"x": rand(3, 5, 8)}, consts={"w": rand(8, 6)}),
    "matmul_batched": case("MatMul", {"x": rand(2, 3, 5), "y": rand(2, 5, 4)}),
    "gemm_trans": case("Gemm", {"x": rand(8, 5)}, {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0},
                       {"w": rand(12, 8), "c": rand(12)}),
    "gemm_matrix_c": case("Gemm", {"x": rand(3, 8)}, {}, {"w": rand(8, 4), "c": rand(3, 4)}),
    "maxpool": case("MaxPool", {"x": X4}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "maxpool_ceil_dilated": case("MaxPool", {"x": X4}, {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1,
                                                       "dilations": [2, 1]}, opset=12),
    "avgpool_same": case("AveragePool", {"x": X4}, {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"}),
    "avgpool_include_pad": case("AveragePool", {"x": X4}, {"kernel_shape": [3, 2], "pads": [1, 1, 1, 0],
                                                           "count_include_pad": 1, "strides": [2, 1]}),
    "global_avg": case("GlobalAveragePool", {"x": X4}),
    "global_max": case("GlobalMaxPool", {"x": X4}),
    "softmax13": case("Softmax", {"x": X4}, {"axis": 1}),
    "softmax11_coerced": case("Softmax", {"x": X4}, {"axis": 1}, opset=11),
    "concat": case("Concat", {"x": X4, "y": rand(2, 3, 7, 9)}, {"axis": 1}),
    "reshape": case("Reshape", {"x": X4}, consts={"shape": i64(0, -1, 9)}),
    "flatten": case("Flatten", {"x": X4}, {"axis": 2}),
    "flatten_negative_axis": case("Flatten", {"x": X4}, {"axis": -1}),
    "transpose": case("Transpose", {"x": X4}, {"perm": [3, 1, 0, 2]}),
    "squeeze13": case("Squeeze", {"x": rand(2, 1, 5, 1)}, consts={"axes": i64(1, -1)}),
    "squeeze11": case("Squeeze", {"x": rand(2, 1, 5, 1)}, {"axes": [1]}, opset=11),
    "unsqueeze13": case("Unsqueeze", {"x": rand(3, 5)}, consts={"axes": i64(0, -1)}),
    "dropout": case("Dropout", {"x": X4}),
    "identity": case("Identity", {"x": X4}),
    "gather": case("Gather", {"x": X4}, {"axis": 3}, {"idx": i64(0, 8, -2)}),
    "lrn": case("LRN", {"x": X4}, {"size": 3, "alpha": 0.01, "beta": 0.6, "bias": 1.5}),
    "pad_constant": case("Pad", {"x": X4}, consts={"pads": i64(0, 1, 2, 0, 0, 0, 1, 3),
                                                  "value": np.array(0.5, np.float32)}),
    "pad_reflect": case("Pad", {"x": X4}, {"mode": "reflect"}, {"pads": i64(0, 0, 2, 1, 0, 0, 1, 2)}),
    "pad_edge_opset2": case("Pad", {"x": X4}, {"mode": "edge", "pads": [0, 0, 1, 2, 0, 0, 2, 1]}, opset=2),
    "slice": case("Slice", {"x": X4}, consts={"starts": i64(1, -1), "ends": i64(4, -100), "axes": i64(1, 3),
                                              "steps": i64(2, -2)}),
    "reduce_sum_axes_input": case("ReduceSum", {"x": X4}, {"keepdims": 0}, {"axes": i64(1, -1)}),
    "reduce_sum_all": case("ReduceSum", {"x": X4}),
    "reduce_sum_noop": case("ReduceSum", {"x": X4}, {"noop_with_empty_axes": 1}),
    "reduce_mean_attr": case("ReduceMean", {"x": X4}, {"axes": [2, 3]}),
    "reduce_mean_opset18": case("ReduceMean", {"x": X4}, {"keepdims": 0}, {"axes": i64(0, 2)}, opset=18),
    "reduce_max": case("ReduceMax", {"x": X4}, {"axes": [1], "keepdims": 0}),
    "reduce_min": case("ReduceMin", {"x": X4}, {"axes": [0, 3]}),
    "reduce_prod": case("ReduceProd", {"x": np.abs(X4) * 0.5 + 0.75}, {"axes": [1]}),
    "reduce_sum_square": case("ReduceSumSquare", {"x": X4}, {"axes": [3]}),
    "reduce_l1": case("ReduceL1", {"x": X4}, {"axes": [2]}),
    "reduce_l2": case("ReduceL2", {"x": X4}, {"axes": [1, 2], "keepdims": 0}),
    "reduce_log_sum_exp": case("ReduceLogSumExp", {"x": X4 * 10}, {"axes": [3]}),
    "slice_opset9": case("Slice", {"x": X4}, {"starts": [0, 2], "ends": [1, 100], "axes": [0, 2]}, opset=9),
    # Integer and bool tensors fed at run time: they run on the GPU as i32.
    "equal_int32": case("Equal", {"x": INTS.astype(np.int32), "y": INTS[0, :1].astype(np.int32)}, out=BOOL),
    "greater": case("Greater", {"x": X4, "y": rand(9)}, out=BOOL),
    "less_int64": case("Less", {"x": INTS, "y": INTS[::-1]}, out=BOOL),
    "greater_or_equal": case("GreaterOrEqual", {"x": np.round(X4), "y": np.zeros(1, np.float32)}, opset=16,
                             out=BOOL),
    "less_or_equal_int64": case("LessOrEqual", {"x": INTS, "y": i64(2)}, opset=16, out=BOOL),
    "and": case("And", {"x": MASK, "y": MASK[0]}, out=BOOL),
    "or": case("Or", {"x": MASK, "y": MASK[::-1]}, out=BOOL),
    "xor": case("Xor", {"x": MASK, "y": MASK[:, ::-1]}, out=BOOL),
    "not": case("Not", {"x": MASK}, out=BOOL),
    "where": case("Where", {"c": X4 > 0, "x": X4, "y": rand(9)}, opset=16),
    "where_int64": case("Where", {"c": MASK, "x": INTS, "y": i64(-7)}, opset=16, out=TensorProto.INT64),
    "add_int64": case("Add", {"x": INTS, "y": INTS[:, :1] * 1000}, out=TensorProto.INT64),
    "div_int32_truncates": case("Div", {"x": INTS.astype(np.int32), "y": np.array([3, -2, 5, 7, -1], np.int32)},
                                out=TensorProto.INT32),
    "max_int64": case("Max", {"x": INTS, "y": i64(1)}, out=TensorProto.INT64),
    "cast_to_int32": case("Cast", {"x": X4 * 10}, {"to": TensorProto.INT32}, out=TensorProto.INT32),
    "cast_int64_to_float": case("Cast", {"x": INTS}, {"to": TensorProto.FLOAT}),
    "cast_to_bool": case("Cast", {"x": np.round(X4)}, {"to": TensorProto.BOOL}, out=BOOL),
    "gather_run_time_indices": case("Gather", {"x": X4, "idx": i64(3, -1, 0, 3)}, {"axis": 2}),
    "argmax": case("ArgMax", {"x": X4}, {"axis": 1, "keepdims": 0}, out=TensorProto.INT64),
    "argmin_last_index": case("ArgMin", {"x": np.round(X4)}, {"axis": -1, "select_last_index": 1},
                              out=TensorProto.INT64),
    "size": case("Size", {"x": X4}, out=TensorProto.INT64),
    "range": case("Range", {}, consts={"start": np.array(1.0, np.float32), "limit": np.array(4.0, np.float32),
                                       "delta": np.array(0.75, np.float32)}, opset=11),
    "lstm_bidirectional_peepholes": case(
        "LSTM", {"x": rand(5, 2, 3)}, {"hidden_size": 4, "direction": "bidirectional", "clip": 2.0},
        {"w": rand(2, 16, 3), "r": rand(2, 16, 4), "b": rand(2, 32), "lens": np.full(2, 5, np.int32),
         "h0": rand(2, 2, 4), "c0": rand(2, 2, 4), "p": rand(2, 12)}, opset=14, tol=1e-4),
    # (a clip bounds the gates' inputs, not the cell state going into h, as ONNX Runtime reads it; a ReLU
    # forget gate lets the cell state grow past the clip)
    "lstm_clip_leaves_cell_state": case(
        "LSTM", {"x": rand(6, 2, 3) * 3}, {"hidden_size": 4, "clip": 2.0, "activations": ["Relu", "Tanh", "Relu"]},
        {"w": rand(1, 16, 3), "r": rand(1, 16, 4), "b": rand(1, 32)}, opset=14, tol=1e-4),
    "gru_linear_before_reset": case("GRU", {"x": rand(4, 2, 3)}, {"hidden_size": 5, "linear_before_reset": 1},
                                    {"w": rand(1, 15, 3), "r": rand(1, 15, 5), "b": rand(1, 30)}, opset=14, tol=1e-4),
    # (onnxruntime CPU has no batch-first layout=1; ONNX's own node tests cover it: wgnn conformance)
    "gru_reverse": case("GRU", {"x": rand(4, 2, 3)}, {"hidden_size": 5, "direction": "reverse"},
                                    {"w": rand(1, 15, 3), "r": rand(1, 15, 5), "b": rand(1, 30)}, opset=14, tol=1e-4),
    "rnn_bidirectional_relu": case("RNN", {"x": rand(5, 2, 3)}, {"hidden_size": 4, "direction": "bidirectional",
                                                              "activations": ["Relu", "Tanh"]},
                                   {"w": rand(2, 4, 3), "r": rand(2, 4, 4) / 2, "b": rand(2, 8),
                                    "lens": np.full(2, 5, np.int32), "h0": rand(2, 2, 4)}, opset=14, tol=1e-4),
    "maxpool_3d": case("MaxPool", {"x": rand(1, 2, 5, 6, 7)}, {"kernel_shape": [2, 3, 2], "strides": [2, 1, 2],
                                                               "pads": [1, 1, 0, 0, 1, 1]}),
    "avgpool_3d": case("AveragePool", {"x": rand(1, 2, 5, 6, 7)},
                       {"kernel_shape": [3, 2, 2], "pads": [1, 0, 1, 1, 1, 0], "count_include_pad": 0}),
    "pad_wrap": case("Pad", {"x": rand(2, 3, 4)}, {"mode": "wrap"}, {"pads": i64(0, 2, 1, 0, 1, 3)}, opset=19),
    "resize_cubic": case("Resize", {"x": X4}, {"mode": "cubic", "exclude_outside": 1},
                         {"roi": np.zeros(0, np.float32), "scales": np.array([1, 1, 1.7, 0.6], np.float32)}),
    "conv_transpose_3d": case("ConvTranspose", {"x": rand(2, 4, 3, 5, 4)},
                              {"strides": [2, 1, 2], "dilations": [2, 1, 1], "pads": [1, 0, 1, 2, 1, 0],
                               "output_padding": [1, 0, 1], "group": 2},
                              {"w": rand(4, 3, 3, 2, 3), "b": rand(6)}),
    "batchnorm_run_time_statistics": case("BatchNormalization", {"x": X4, "s": rand(4), "bias": rand(4),
                                                                 "mean": rand(4), "var": rand(4, low=0.5)}),
    # Resize before opset 11 and the deprecated Upsample: asymmetric coordinates, the nearest pixel
    # rounded down along a growing axis and up along a shrinking one (H shrinks, W grows here)
    "resize10_nearest_mixed": case("Resize", {"x": X4}, {"mode": "nearest"},
                                   {"scales": np.array([1, 1, 0.7, 1.3], np.float32)}, opset=10),
    "resize10_linear": case("Resize", {"x": X4}, {"mode": "linear"},
                            {"scales": np.array([1, 1, 1.7, 0.45], np.float32)}, opset=10),
    "upsample9_nearest": case("Upsample", {"x": X4}, {"mode": "nearest"},
                              {"scales": np.array([1, 1, 1.5, 2.5], np.float32)}, opset=9),
    "upsample7_linear": case("Upsample", {"x": X4}, {"mode": "linear", "scales": [1.0, 1.0, 2.0, 1.5]}, opset=7),
    # composed of wgnn's own ops
    "mish": case("Mish", {"x": X4 * 4}, opset=18),
    "shrink": case("Shrink", {"x": X4 * 2}, {"lambd": 0.7, "bias": 0.2}),
    "thresholded_relu": case("ThresholdedRelu", {"x": X4 * 2}, {"alpha": 0.4}),
    "asinh": case("Asinh", {"x": X4 * 30}),
    "cast_like": case("CastLike", {"x": X4 * 9}, consts={"like": np.zeros(1, np.int32)}, opset=15,
                      out=TensorProto.INT32),
    "trilu_lower_k": case("Trilu", {"x": X4}, {"upper": 0}, {"k": i64(-1)}, opset=14),
    "one_hot_axis1": case("OneHot", {"i": RNG.integers(-4, 4, (3, 5)).astype(np.int64)}, {"axis": 1},
                          {"depth": i64(4), "values": np.array([-1.0, 2.5], np.float32)}, opset=11),
    "hardmax": case("Hardmax", {"x": X4}, {"axis": 2}),
    "hardmax_opset11_coerced": case("Hardmax", {"x": X4}, {"axis": 2}, opset=11),
    "mean_variance_normalization": case("MeanVarianceNormalization", {"x": X4 * 3 + 1}),
    "lp_normalization_l1": case("LpNormalization", {"x": X4}, {"axis": 1, "p": 1}),
    "group_normalization": case("GroupNormalization", {"x": X4 * 2}, {"num_groups": 2, "epsilon": 1e-3},
                                {"s": rand(4), "bias": rand(4)}, opset=21),
    "reduce_log_sum": case("ReduceLogSum", {"x": np.abs(X4) + 0.1}, {"axes": [1, 3], "keepdims": 0}),
    "tan": case("Tan", {"x": X4 / 3}),
    "asin": case("Asin", {"x": np.tanh(X4)}),
    "acos": case("Acos", {"x": np.tanh(X4)}),
    "atan": case("Atan", {"x": X4 * 5}),
    "sinh": case("Sinh", {"x": X4 * 3}),
    "cosh": case("Cosh", {"x": X4 * 3}),
    "acosh": case("Acosh", {"x": np.abs(X4) * 9 + 1}),
    "atanh": case("Atanh", {"x": np.tanh(X4)}),
    "eye_like": case("EyeLike", {"x": rand(4, 6)}, {"k": 1}),
    # indexing
    "cumsum_reverse_exclusive": case("CumSum", {"x": X4}, {"reverse": 1, "exclusive": 1}, {"axis": i64(2)}, opset=14),
    "cumsum_int32": case("CumSum", {"x": RNG.integers(-1000, 1000, (3, 40)).astype(np.int32)}, {},
                         {"axis": np.array(-1, np.int32)}, opset=14, out=TensorProto.INT32),
    "cumprod_reverse_exclusive": case("CumProd", {"x": 1 + X4 / 4}, {"reverse": 1, "exclusive": 1}, {"axis": i64(2)},
                                      opset=26),
    "cumprod_int32": case("CumProd", {"x": RNG.integers(-3, 4, (3, 9)).astype(np.int32)}, {},
                          {"axis": np.array(1, np.int32)}, opset=26, out=TensorProto.INT32),
    "roi_align_avg": case("RoiAlign", {"x": rand(2, 3, 10, 12), "rois": np.array(
        [[0.5, 1, 8.3, 9.5], [-3, -2, 4, 5], [6, 7, 14, 13], [2, 2, 2.2, 2.1]], np.float32),
        "batch": i64(0, 1, 1, 0)}, {"output_height": 3, "output_width": 4, "sampling_ratio": 0}, opset=16),
    "roi_align_max_scaled": case("RoiAlign", {"x": rand(2, 3, 10, 12), "rois": np.array(
        [[2, 4, 33, 37], [-8, -4, 20, 18]], np.float32), "batch": i64(1, 0)},
        {"output_height": 2, "output_width": 2, "sampling_ratio": 2, "spatial_scale": 0.25, "mode": "max"}, opset=16),
    "roi_align_output_half_pixel": case("RoiAlign", {"x": rand(1, 2, 9, 9), "rois": np.array(
        [[1, 1, 6.5, 7], [3, 3, 3.4, 3.2]], np.float32), "batch": i64(0, 0)},
        {"output_height": 2, "output_width": 3}, opset=10),
    "bitcast_f32_to_i32": case("BitCast", {"x": np.array([1.5, -0.0, np.inf, -np.inf, np.nan, 1e-40, 3e38, -7.25],
                                                        np.float32)}, {"to": TensorProto.INT32}, opset=26,
                               out=TensorProto.INT32),
    "bitcast_i32_to_f32": case("BitCast", {"x": RNG.standard_normal(12).astype(np.float32).view(np.int32)},
                               {"to": TensorProto.FLOAT}, opset=26),
    "bitcast_f16_to_i16": case("BitCast", {"x": np.array([1.5, -0.0, np.inf, 6e-8, -65504, 0.1], np.float16)},
                               {"to": TensorProto.INT16}, opset=26, out=TensorProto.INT16),
    "bitcast_u16_to_f16": case("BitCast", {"x": RNG.standard_normal(10).astype(np.float16).view(np.uint16)},
                               {"to": TensorProto.FLOAT16}, opset=26, out=TensorProto.FLOAT16),
    "bitcast_i8_to_u8": case("BitCast", {"x": np.array([-128, -1, 0, 5, 127], np.int8)}, {"to": TensorProto.UINT8},
                             opset=26, out=TensorProto.UINT8),
    "col2im_strided_padded_dilated": case("Col2Im", {"x": rand(2, 3 * 6, 12)}, {"strides": [2, 1],
                                          "pads": [1, 0, 0, 1], "dilations": [1, 2]},
                                          {"image_shape": i64(7, 6), "block_shape": i64(2, 3)}, opset=18),
    "col2im_3d": case("Col2Im", {"x": rand(1, 2 * 8, 3 * 2 * 4)}, {},
                      {"image_shape": i64(4, 3, 5), "block_shape": i64(2, 2, 2)}, opset=18),
    "tensor_scatter_circular": case("TensorScatter", {"past": rand(2, 3, 8, 4), "update": rand(2, 3, 3, 4),
                                                      "where": i64(6, 1)}, {"mode": "circular"}, opset=24),
    "tensor_scatter_linear_axis1": case("TensorScatter", {"past": rand(3, 7, 5), "update": rand(3, 2, 5),
                                                          "where": i64(0, 5, 3)}, {"axis": 1}, opset=24),
    "max_unpool_duplicates_last_wins": case("MaxUnpool", {"x": rand(1, 2, 3, 3), "i": np.array(
        [4, 4, 0, 35, 12, 4, 60, 61, 62, 70, 71, 70, 97, 80, 81, 82, 83, 70], np.int64).reshape(1, 2, 3, 3)},
        {"kernel_shape": [3, 3], "strides": [3, 3], "pads": [1, 1, 1, 1]}, opset=11),
    "det_batched_with_a_singular_one": case("Det", {"x": np.concatenate([rand(2, 3, 5, 5), np.ones((2, 1, 5, 5),
                                                                                                  np.float32)], 1)}),
    "det_1x1": case("Det", {"x": rand(4, 1, 1)}),
    "deform_conv_groups_strides_mask": case("DeformConv", {"x": rand(2, 4, 9, 10),
                                                           "offset": rand(2, 2 * 2 * 9, 5, 5) * 2,
                                                           "mask": rand(2, 2 * 9, 5, 5, low=0.0)},
                                            {"group": 2, "offset_group": 2, "strides": [2, 2], "pads": [1, 1, 1, 1],
                                             "dilations": [1, 1]},
                                            {"w": rand(6, 2, 3, 3), "b": rand(6)}, opset=19,
                                            order=["x", "w", "offset", "b", "mask"]),
    "max_roi_pool": case("MaxRoiPool", {"x": rand(2, 3, 12, 10), "rois": np.array(
        [[0, 1, 2, 7, 9], [1, -3, -2, 4, 5], [1, 0, 0, 19, 23], [0, 5.4, 6.6, 5.4, 6.6], [0, 8, 8, 30, 30]],
        np.float32)},  # corners at halves: rounded away from zero
        {"pooled_shape": [3, 2], "spatial_scale": 0.5}, opset=1),
    # ONNX Runtime's com.microsoft fusions, as its optimizer saves them
    "ms_fused_conv_relu_z": case("com.microsoft.FusedConv", {"x": rand(1, 4, 9, 9), "z": rand(1, 8, 9, 9)},
                                 {"activation": "Relu", "pads": [1, 1, 1, 1]},
                                 {"w": rand(8, 4, 3, 3), "b": rand(8)}, order=["x", "w", "b", "z"]),
    "ms_fused_conv_leaky": case("com.microsoft.FusedConv", {"x": rand(1, 4, 9, 9)},
                                {"activation": "LeakyRelu", "activation_params": [0.2], "strides": [2, 2]},
                                {"w": rand(6, 4, 3, 3)}),
    "ms_fused_matmul_transposed": case("com.microsoft.FusedMatMul", {"a": rand(2, 7, 5)},
                                       {"transA": 1, "transB": 1, "alpha": 0.5}, {"b": rand(2, 3, 7)}),
    "ms_gelu": case("com.microsoft.Gelu", {"x": X4 * 2}),
    "ms_bias_gelu": case("com.microsoft.BiasGelu", {"x": rand(2, 3, 8)}, consts={"bias": rand(8)}),
    "ms_fast_gelu": case("com.microsoft.FastGelu", {"x": rand(2, 3, 8)}, consts={"bias": rand(8)}),
    "ms_quick_gelu": case("com.microsoft.QuickGelu", {"x": X4 * 2}, {"alpha": 1.5}),
    "ms_skip_layer_norm": case("com.microsoft.SkipLayerNormalization", {"x": rand(2, 5, 8), "skip": rand(2, 5, 8)},
                               {"epsilon": 1e-5}, {"gamma": rand(8), "beta": rand(8), "bias": rand(8)}),
    "ms_simplified_layer_norm": case("SimplifiedLayerNormalization", {"x": rand(2, 5, 8)},
                                     {"epsilon": 1e-6, "axis": -1}, {"scale": rand(8)}),
    "ms_skip_simplified_layer_norm": case("com.microsoft.SkipSimplifiedLayerNormalization",
                                          {"x": rand(2, 5, 8), "skip": rand(2, 5, 8)}, {"epsilon": 1e-6},
                                          {"gamma": rand(8), "bias": rand(8)}),
    # integer and bit arithmetic, classes of floats
    "mod_int_mixed_signs": case("Mod", {"x": INTS}, consts={"d": np.array([[3], [-4], [7]], np.int64)},
                                out=TensorProto.INT64),
    "fmod_float": case("Mod", {"x": X4 * 9}, {"fmod": 1},
                       {"d": np.array([1.5, -2.5, 0.7, 3.0], np.float32).reshape(4, 1, 1)}),
    "bit_shift_uint8_left": case("BitShift", {"x": RNG.integers(0, 256, (3, 5)).astype(np.uint8)},
                                 {"direction": "LEFT"}, {"s": RNG.integers(0, 8, (3, 5)).astype(np.uint8)}, opset=11,
                                 out=TensorProto.UINT8),
    "bitwise_and_int32": case("BitwiseAnd", {"x": RNG.integers(-(1 << 30), 1 << 30, (3, 5)).astype(np.int32)},
                              consts={"y": RNG.integers(-(1 << 30), 1 << 30, (5,)).astype(np.int32)}, opset=18,
                              out=TensorProto.INT32),
    "bitwise_or_int8": case("BitwiseOr", {"x": RNG.integers(-128, 128, (3, 5)).astype(np.int8)},
                            consts={"y": RNG.integers(-128, 128, (3, 1)).astype(np.int8)}, opset=18,
                            out=TensorProto.INT8),
    "bitwise_xor_uint16": case("BitwiseXor", {"x": RNG.integers(0, 1 << 16, (3, 5)).astype(np.uint16)},
                               consts={"y": RNG.integers(0, 1 << 16, (5,)).astype(np.uint16)}, opset=18,
                               out=TensorProto.UINT16),
    "bitwise_not_uint8": case("BitwiseNot", {"x": RNG.integers(0, 256, (3, 5)).astype(np.uint8)}, opset=18,
                              out=TensorProto.UINT8),
    "is_nan": case("IsNaN", {"x": np.where(X4 > 1, np.nan, X4).astype(np.float32)}, out=BOOL),
    "is_inf_positive": case("IsInf", {"x": np.where(X4 > 1, np.inf, np.where(X4 < -1, -np.inf, X4)).astype(
        np.float32)}, {"detect_negative": 0}, opset=10, out=BOOL),
    "reverse_sequence": case("ReverseSequence", {"x": rand(6, 4, 5)}, {"batch_axis": 1, "time_axis": 0},
                             {"lens": i64(6, 1, 3, 0)}, opset=10),
    "center_crop_pad": case("CenterCropPad", {"x": X4}, {"axes": [2, 3]}, {"shape": i64(10, 4)}, opset=18),
    "lp_pool_p3": case("LpPool", {"x": X4}, {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1],
                                             "p": 3}, opset=18, tol=1e-4),
    "global_lp_pool": case("GlobalLpPool", {"x": X4}),
    # signal processing: transforms as matrix products, windows and mel filters as constants
    "dft_real_onesided": case("DFT", {"x": rand(2, 16, 1)}, {"onesided": 1, "axis": 1}, opset=17, tol=1e-5),
    "dft_complex_inverse_cut": case("DFT", {"x": rand(3, 12, 2)}, {"inverse": 1, "axis": 1},
                                    {"n": np.array(10, np.int64)}, opset=17, tol=1e-5),
    "stft_hann": case("STFT", {"x": rand(2, 64, 1)}, {"onesided": 1},
                      {"step": np.array(8, np.int64), "w": (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(16) / 16)
                                                            ).astype(np.float32)}, opset=17, tol=1e-5),
    "hann_window": case("HannWindow", {}, {"periodic": 0}, {"size": np.array(10, np.int64)}, opset=17),
    "hamming_window": case("HammingWindow", {}, {}, {"size": np.array(10, np.int64)}, opset=17),
    "blackman_window": case("BlackmanWindow", {}, {}, {"size": np.array(10, np.int64)}, opset=17),
    "mel_weight_matrix": case("MelWeightMatrix", {}, {},
                              {"bins": np.array(8, np.int64), "dft": np.array(64, np.int64),
                               "rate": np.array(16000, np.int64), "lo": np.array(20.0, np.float32),
                               "hi": np.array(7000.0, np.float32)}, opset=17),
    "scatter_opset10": case("Scatter", {"x": X4}, {"axis": 0},
                            {"i": np.array([[[[1]]], [[[0]]]], np.int64), "u": rand(2, 1, 1, 1)}, opset=10),
    "gather_elements_negative": case("GatherElements", {"x": X4}, {"axis": 2},
                                     {"i": RNG.integers(-7, 7, (2, 3, 5, 9)).astype(np.int64)}),
    "gather_nd_batch": case("GatherND", {"x": X4}, {"batch_dims": 1},
                            {"i": np.stack([RNG.integers(-4, 4, (2, 6)), RNG.integers(0, 7, (2, 6))], -1)}),
    "scatter_elements_add_duplicates": case("ScatterElements", {"x": X4}, {"axis": 3, "reduction": "add"},
                                            {"i": RNG.integers(-9, 9, (2, 4, 7, 12)).astype(np.int64),
                                             "u": rand(2, 4, 7, 12)}, opset=16),
    "scatter_elements_max": case("ScatterElements", {"x": X4}, {"axis": 1, "reduction": "max"},
                                 {"i": RNG.integers(0, 4, (2, 6, 7, 9)).astype(np.int64), "u": rand(2, 6, 7, 9)},
                                 opset=18),
    "scatter_nd_mul_duplicates": case("ScatterND", {"x": X4}, {"reduction": "mul"},
                                      {"i": RNG.integers(-2, 2, (5, 3, 2)).astype(np.int64),
                                       "u": rand(5, 3, 7, 9)}, opset=16),
    "scatter_nd_none": case("ScatterND", {"x": X4},
                            {}, {"i": np.array([[[1, 2, 3]], [[0, -1, 0]]], np.int64), "u": rand(2, 1, 9)}),
}


# Quantized operators (ONNX Runtime's quantizer writes them): uint8 activations, int8 weights.
def f32(v):
    return np.array(v, np.float32)


def u8(v):
    return np.array(v, np.uint8)


U8 = RNG.integers(0, 256, (2, 4, 7, 9)).astype(np.uint8)
U8_MAT = RNG.integers(0, 256, (3, 5)).astype(np.uint8)
I8_W = RNG.integers(-63, 64, (8, 4, 3, 3)).astype(np.int8)  # 7-bit (reduce_range): no saturation in ORT's AVX2 u8s8
QX = {"xs": f32(0.02), "xz": u8(128)}
QY = {"ys": f32(0.05), "yz": u8(120)}
UINT8, MS = TensorProto.UINT8, "com.microsoft."
CASES.update({
    "quantize_linear_per_axis": case("QuantizeLinear", {"x": X4 * 3}, {"axis": 1},
                                     {"s": f32([0.01, 0.02, 0.05, 0.1]), "z": u8([0, 128, 10, 255])}, out=UINT8),
    "dequantize_linear": case("DequantizeLinear", {"x": U8}, consts={"s": f32(0.03), "z": u8(100)}),
    "qlinear_conv_per_channel": case(
        "QLinearConv", {"x": U8}, {"pads": [1, 1, 1, 1], "strides": [2, 1]},
        {**QX, "w": I8_W, "ws": RNG.uniform(0.001, 0.004, 8).astype(np.float32), "wz": np.zeros(8, np.int8),
         "ys": f32(0.5), "yz": u8(128), "b": RNG.integers(-5000, 5000, 8).astype(np.int32)}, out=UINT8, steps=1),
    "qlinear_matmul": case("QLinearMatMul", {"a": U8_MAT},
                           consts={"as": f32(0.02), "az": u8(128), "b": RNG.integers(-63, 64, (5, 4)).astype(np.int8),
                                   "bs": f32(0.01), "bz": np.array(0, np.int8), "ys": f32(0.03), "yz": u8(100)},
                           out=UINT8, steps=1),
    "conv_integer": case("ConvInteger", {"x": U8}, {"pads": [0, 1, 0, 1]},
                         {"w": RNG.integers(0, 256, (3, 4, 2, 2)).astype(np.uint8), "xz": u8(128), "wz": u8(127)},
                         out=TensorProto.INT32, opset=10),
    "matmul_integer": case("MatMulInteger", {"a": U8_MAT},
                           consts={"b": RNG.integers(0, 256, (5, 6)).astype(np.uint8), "az": u8(3), "bz": u8(200)},
                           out=TensorProto.INT32, opset=10),
    "qlinear_add": case(MS + "QLinearAdd", {"a": U8, "b": U8[:, :, :, ::-1].copy()}, consts={**QX, **QY},
                        order=["a", "xs", "xz", "b", "xs", "xz", "ys", "yz"], out=UINT8, steps=1),
    "qlinear_mul": case(MS + "QLinearMul", {"a": U8, "b": U8[:, :1].copy()}, consts={**QX, **QY},
                        order=["a", "xs", "xz", "b", "xs", "xz", "ys", "yz"], out=UINT8, steps=1),
    "qlinear_sigmoid": case(MS + "QLinearSigmoid", {"x": U8}, consts={**QX, "ys": f32(1 / 256), "yz": u8(0)},
                            out=UINT8, steps=1),
    "qlinear_leaky_relu": case(MS + "QLinearLeakyRelu", {"x": U8}, {"alpha": 0.1}, {**QX, **QY}, out=UINT8,
                               steps=1),
    "qlinear_global_average_pool": case(MS + "QLinearGlobalAveragePool", {"x": U8}, {"channels_last": 0},
                                        {**QX, **QY}, out=UINT8, steps=1),
    "qlinear_average_pool": case(MS + "QLinearAveragePool", {"x": U8}, {"kernel_shape": [3, 3], "strides": [2, 2]},
                                 {**QX, **QY}, out=UINT8, steps=1),
    "qlinear_concat": case(MS + "QLinearConcat", {"a": U8, "b": U8[:, :2].copy()}, {"axis": 1},
                           {**QY, **QX, "bs": f32(0.1), "bz": u8(7)},
                           order=["ys", "yz", "a", "xs", "xz", "b", "bs", "bz"], out=UINT8, steps=1),
    "qlinear_softmax": case(MS + "QLinearSoftmax", {"x": U8_MAT}, {"axis": -1, "opset": 13},
                            {**QX, "ys": f32(1 / 256), "yz": u8(0)}, out=UINT8, steps=1),
    "qgemm": case(MS + "QGemm", {"a": U8_MAT}, {"transB": 1},
                  {"as": f32(0.02), "az": u8(128), "b": RNG.integers(-63, 64, (4, 5)).astype(np.int8),
                   "bs": f32(0.01), "bz": np.array(0, np.int8), "c": RNG.integers(-300, 300, 4).astype(np.int32),
                   "ys": f32(0.03), "yz": u8(100)}, out=UINT8, steps=1),
})

# Ops whose operands are compile-time shape values: one node feeds another.
CHAINS = {
    "shape_gather_reshape": (
        [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "i"], ["d"], axis=0),
         helper.make_node("Concat", ["d", "m1"], ["shp"], axis=0), helper.make_node("Reshape", ["x", "shp"], ["out"])],
        {"i": i64(0), "m1": i64(-1)}),
    "constant_of_shape_add": (
        [helper.make_node("ConstantOfShape", ["dims"], ["c"], value=numpy_helper.from_array(np.array([1.5],
                                                                                           np.float32))),
         helper.make_node("Add", ["x", "c"], ["out"])], {"dims": i64(9)}),
    "split_concat": (
        [helper.make_node("Split", ["x", "sizes"], ["s0", "s1"], axis=1),
         helper.make_node("Concat", ["s1", "s0"], ["out"], axis=1)], {"sizes": i64(1, 3)}),
    "dynamic_quantize_dequantize": (
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["out"])], {}),
    "constant_cast_mul": (
        [helper.make_node("Constant", [], ["k"], value_ints=[2]),
         helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT), helper.make_node("Mul", ["x", "kf"], ["out"])],
        {}),
    # an If on x's channel count (known at import): the else branch runs, reading x and a constant of
    # its own (tests/test_control_flow.py has the If on input values)
    "shape_if": (
        [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "i"], ["c"], axis=0),
         helper.make_node("Equal", ["c", "three"], ["cond"]),
         helper.make_node("If", ["cond"], ["out"], then_branch=helper.make_graph(
             [helper.make_node("Neg", ["x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT,
                                                                                               None)]),
             else_branch=helper.make_graph(
             [helper.make_node("Mul", ["x", "k"], ["e"])], "else", [],
             [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)], [numpy_helper.from_array(f32(0.5), "k")]))],
        {"i": i64(1), "three": i64(3)}),
}


def _make_model(nodes, inputs: dict, consts: dict, opset: int, out=TensorProto.FLOAT):
    graph = helper.make_graph(
        nodes, "case",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for n, v in inputs.items()],
        [helper.make_tensor_value_info("out", out, None)],
        [numpy_helper.from_array(v, n) for n, v in consts.items()])
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in {n.domain for n in nodes} if d]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8  # what onnxruntime reads
    return model


def _compare(model, feeds, tol=1e-5, steps=0):
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    got = wgnn.InferenceSession(model).run(None, feeds)[0]
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if expected.dtype.kind in "iub":
        diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
        assert diff.max(initial=0) <= steps and np.mean(diff > 0) <= 0.01
    else:
        assert rel_l2(got, expected) < tol


@pytest.mark.parametrize("name", list(CASES))
def test_onnx_operator(device, name):
    c = CASES[name]
    domain, _, op = c["op"].rpartition(".")
    node = helper.make_node(op, c["order"] or list(c["inputs"]) + list(c["consts"]), ["out"], name=name,
                            domain=domain, **c["attrs"])
    _compare(_make_model([node], c["inputs"], c["consts"], c["opset"], c["out"]), c["inputs"], c["tol"], c["steps"])


@pytest.mark.parametrize("name", list(CHAINS))
def test_onnx_compile_time_chain(device, name):
    nodes, consts = CHAINS[name]
    feeds = {"x": X4}
    _compare(_make_model(nodes, feeds, consts, 13), feeds)


def test_sequence_construct_gives_a_list(device):
    """SequenceConstruct: a sequence output is a list of arrays, as ONNX Runtime returns it."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("SequenceConstruct", ["x", "r"], ["out"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_sequence_value_info("out", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = wgnn.InferenceSession(model).run(None, {"x": x})[0]
    assert isinstance(got, list) and len(got) == len(want) == 2
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_every_supported_op_is_covered():
    from wgnn.importers.onnx import SUPPORTED_OPS

    covered = {c["op"] for c in CASES.values()} | {n.op_type for nodes, _ in CHAINS.values() for n in nodes}
    covered.add("SequenceConstruct")  # test_sequence_construct_gives_a_list
    covered.add("com.microsoft.DynamicQuantizeLSTM")  # tests/test_quant.py, through quantize_dynamic
    covered.add("com.microsoft.MatMulNBits")  # tests/test_quant.py, tests/test_transformer.py
    covered |= {"com.microsoft.Attention", "com.microsoft.EmbedLayerNormalization",
                "com.microsoft.MultiHeadAttention"}  # tests/test_transformer.py
    covered.add("TopK")  # test_top_k_values_and_indices
    covered.add("Einsum")  # test_einsum
    covered.add("GridSample")  # test_grid_sample
    covered |= {"SplitToSequence", "SequenceEmpty", "SequenceInsert", "SequenceErase", "SequenceAt",
                "SequenceLength", "ConcatFromSequence"}  # test_sequence_ops_against_onnxruntime
    covered |= {"Loop", "Scan", "SequenceMap"}  # tests/test_control_flow.py
    covered |= {"Optional", "OptionalHasElement", "OptionalGetElement"}  # test_optionals_against_onnxruntime
    covered |= {"RMSNormalization", "Attention", "RotaryEmbedding", "AffineGrid", "SoftmaxCrossEntropyLoss",
                "NegativeLogLikelihoodLoss"}  # function ops
    covered |= {"LinearAttention", "CausalConvWithState", "SwiGLU"}  # the same mechanism: ONNX's cases (conformance)
    covered |= {"NonZero", "Compress", "Unique", "NonMaxSuppression", "ImageDecoder"}  # tests/test_data_dependent.py
    covered.add("Swish")  # opset 24, newer than onnxruntime's: tests/test_kernels.py and the conformance suite
    assert sorted(set(SUPPORTED_OPS) - covered) == []


@pytest.mark.parametrize("x,attrs,k,opset", [
    (RNG.integers(-3, 4, (2, 4, 7, 9)).astype(np.float32), {"axis": 3}, 4, 11),  # ties everywhere
    (X4, {"axis": 1, "largest": 0}, 3, 11),
    (RNG.integers(-50, 50, (3, 40)).astype(np.int64), {}, 40, 11),
    (X4, {"axis": 2}, 5, 1),  # k an attribute
], ids=["ties", "smallest", "int64_all", "opset1"])
def test_top_k_values_and_indices(device, x, attrs, k, opset):
    """TopK's two outputs against ONNX Runtime's: the values in order and their indices, equal
    values in their order along the axis."""
    ins = ["x"] if opset < 10 else ["x", "k"]
    node = helper.make_node("TopK", ins, ["values", "indices"], **attrs, **({"k": k} if opset < 10 else {}))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", helper.np_dtype_to_tensor_dtype(
        x.dtype), x.shape)], [helper.make_tensor_value_info(n, t, None) for n, t in
                              (("values", helper.np_dtype_to_tensor_dtype(x.dtype)), ("indices", TensorProto.INT64))],
        [] if opset < 10 else [numpy_helper.from_array(i64(k), "k")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = wgnn.InferenceSession(model).run(None, {"x": x})
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


EINSUMS = {  # equation: operand shapes
    "ij,jk->ik": [(3, 8), (8, 5)], "bij,bjk->bik": [(2, 3, 8), (2, 8, 6)],
    "bhqd,bhkd->bhqk": [(2, 3, 5, 8), (2, 3, 7, 8)], "i,i->": [(12,), (12,)], "ij->ji": [(3, 5)],
    "ij->": [(3, 5)], "...ij,...jk->...ik": [(2, 3, 4, 8), (2, 3, 8, 4)], "ij,kj->ik": [(3, 8), (5, 8)],
    "abc,cd->abd": [(2, 3, 8), (8, 4)], "i,j->ij": [(3,), (5,)], "bn,anm,bm->ba": [(2, 4), (3, 4, 8), (2, 8)],
    "ij,jk": [(3, 8), (8, 5)], "ijk,jl->il": [(3, 4, 5), (4, 8)], "b i d, b j d -> b i j": [(2, 3, 4), (2, 5, 4)],
}


@pytest.mark.parametrize("equation", list(EINSUMS))
def test_einsum(device, equation):
    """Einsum as transposes, sums and batched matrix products, against ONNX Runtime's."""
    shapes = EINSUMS[equation]
    feeds = {f"x{k}": rand(*shape) for k, shape in enumerate(shapes)}
    _compare(_make_model([helper.make_node("Einsum", list(feeds), ["out"], equation=equation)], feeds, {}, 12),
             feeds, 1e-5)


GRID = (RNG.uniform(-1.3, 1.3, (2, 5, 6, 2))).astype(np.float32)  # past the borders too


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample(device, mode, padding, align):
    """GridSample in every mode, padding and alignment, against ONNX Runtime's, except bicubic with
    border padding, where ONNX Runtime departs from ONNX's reference (by up to 0.3 here: it clamps
    positions inside the half-pixel border too): that one against ONNX's reference."""
    x = rand(2, 3, 7, 9)
    node = helper.make_node("GridSample", ["x", "grid"], ["out"], mode=mode, padding_mode=padding,
                            align_corners=align)
    feeds = {"x": x, "grid": GRID}
    model = _make_model([node], feeds, {}, 16)
    if (mode, padding) != ("bicubic", "border"):
        _compare(model, feeds, 1e-5)
        return
    from onnx.reference import ReferenceEvaluator

    cubic = _make_model([helper.make_node("GridSample", ["x", "grid"], ["out"], mode="cubic", padding_mode=padding,
                                          align_corners=align)], feeds, {}, 20)
    want = ReferenceEvaluator(cubic).run(None, feeds)[0]
    assert rel_l2(wgnn.InferenceSession(model).run(None, feeds)[0], want) < 1e-6


def test_sequence_ops_against_onnxruntime(device):
    """Sequences as lists known when compiling: split, insert, erase, pick, count and concatenate,
    as ONNX Runtime computes them."""
    nodes = [helper.make_node("SplitToSequence", ["x", "two"], ["parts"], axis=1),  # 7 columns: 2, 2, 2, 1
             helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("SequenceEmpty", [], ["empty"], dtype=TensorProto.FLOAT),
             helper.make_node("SequenceInsert", ["empty", "r"], ["one"]),
             helper.make_node("SequenceInsert", ["parts", "x_cols", "one_i"], ["more"]),
             helper.make_node("SequenceErase", ["more", "minus_one"], ["fewer"]),
             helper.make_node("SequenceAt", ["fewer", "one_i"], ["picked"]),
             helper.make_node("SequenceLength", ["fewer"], ["count"]),
             helper.make_node("ConcatFromSequence", ["fewer"], ["joined"], axis=1),
             helper.make_node("SequenceAt", ["one", "zero_i"], ["first"]),
             helper.make_node("SplitToSequence", ["x"], ["rows"], axis=0, keepdims=0),
             helper.make_node("ConcatFromSequence", ["rows"], ["stacked"], axis=-1, new_axis=1)]
    outs = {"picked": TensorProto.FLOAT, "count": TensorProto.INT64, "joined": TensorProto.FLOAT,
            "first": TensorProto.FLOAT, "stacked": TensorProto.FLOAT}
    x = rand(3, 7)
    consts = {"two": np.array(2, np.int64), "x_cols": rand(3, 2), "one_i": i64(1), "minus_one": i64(-1),
              "zero_i": i64(0)}
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 7])],
                              [helper.make_tensor_value_info(n, t, None) for n, t in outs.items()],
                              [numpy_helper.from_array(v, n) for n, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = wgnn.InferenceSession(model).run(None, {"x": x})
    for name, g, w in zip(outs, got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, name
        np.testing.assert_array_equal(g, w, err_msg=name)


def test_optionals_against_onnxruntime(device):
    """Optionals known when compiling: Optional of a tensor, then whether it has one and the tensor
    back; an empty Optional has none."""
    nodes = [helper.make_node("Optional", ["x"], ["opt"]),
             helper.make_node("OptionalHasElement", ["opt"], ["has"]),
             helper.make_node("OptionalGetElement", ["opt"], ["got"]),
             helper.make_node("Optional", [], ["empty"], type=helper.make_tensor_type_proto(TensorProto.FLOAT, [2])),
             helper.make_node("OptionalHasElement", ["empty"], ["has_empty"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("has", TensorProto.BOOL, []),
                               helper.make_tensor_value_info("got", TensorProto.FLOAT, [2, 3]),
                               helper.make_tensor_value_info("has_empty", TensorProto.BOOL, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    x = rand(2, 3)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = wgnn.InferenceSession(model).run(None, {"x": x})
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert bool(got[0]) and not bool(got[2])


def _typed_model(nodes, inputs: dict, outputs: list[str], opset: int):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype),
                                                                          list(v.shape)) for n, v in inputs.items()],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("name", ["rms_normalization", "attention_gqa_causal", "attention_masked_scaled",
                                  "rotary_embedding", "affine_grid_then_grid_sample", "softmax_cross_entropy",
                                  "nll_loss_weighted"])
def test_function_ops_import_as_their_bodies(device, name):
    """Ops ONNX defines as functions (RMSNormalization, Attention, RotaryEmbedding, AffineGrid)
    import as their function bodies: against ONNX Runtime where it runs them (opset 23), else
    against ONNX's reference implementation."""
    r = np.random.default_rng(7)

    def f(*shape):
        return r.standard_normal(shape).astype(np.float32)

    cases = {
        "rms_normalization": ([helper.make_node("RMSNormalization", ["x", "s"], ["y"], axis=-1, epsilon=1e-4)],
                              {"x": f(2, 3, 8), "s": f(8)}, 23, "ort"),
        "attention_gqa_causal": ([helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=1)],
                                 {"q": f(2, 4, 5, 8), "k": f(2, 2, 5, 8), "v": f(2, 2, 5, 8)}, 23, "ort"),
        "attention_masked_scaled": ([helper.make_node("Attention", ["q", "k", "v", "m"], ["y"], scale=0.2)],
                                    {"q": f(1, 2, 3, 4), "k": f(1, 2, 6, 4), "v": f(1, 2, 6, 4),
                                     "m": r.random((3, 6)) > 0.3}, 23, "ort"),
        "rotary_embedding": ([helper.make_node("RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"])],
                             {"x": f(1, 2, 3, 8), "cos": f(5, 4), "sin": f(5, 4),
                              "pos": np.array([[0, 2, 4]], np.int64)}, 23, "reference"),
        "affine_grid_then_grid_sample": (  # a spatial transformer: the grid's size a constant, as exporters write it
            [helper.make_node("Constant", [], ["size"], value=numpy_helper.from_array(i64(2, 3, 5, 6))),
             helper.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=0),
             helper.make_node("GridSample", ["img", "grid"], ["y"])],
            {"theta": (np.array([[[0.9, 0.2, 0.1], [-0.1, 1.1, 0.0]]], np.float32) + f(2, 2, 3) * 0.05),
             "img": f(2, 3, 7, 9)}, 20, "reference"),
    }
    labels = np.array([[0, 2, 4], [1, 1, 3]], np.int64)
    cases["softmax_cross_entropy"] = ([helper.make_node("SoftmaxCrossEntropyLoss", ["x", "t"], ["y"], reduction="mean",
                                                        ignore_index=1)], {"x": f(2, 5, 3), "t": labels}, 13, "ort")
    cases["nll_loss_weighted"] = ([helper.make_node("NegativeLogLikelihoodLoss", ["x", "t", "w"], ["y"],
                                                    reduction="sum")],
                                  {"x": f(2, 5, 3), "t": labels, "w": np.abs(f(5))}, 13, "ort")
    nodes, inputs, opset, reference = cases[name]
    model = _typed_model(nodes, inputs, ["y"], opset)
    if reference == "ort":
        want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    else:
        from onnx.reference import ReferenceEvaluator

        want = ReferenceEvaluator(model).run(None, inputs)[0]
    got = wgnn.InferenceSession(model).run(None, inputs)[0]
    assert got.shape == want.shape and rel_l2(got, want) < 1e-5


def test_integer_outputs_known_at_compile_time_are_returned(device):
    """A Shape output (int64) is folded at compile time and returned as it is, beside a GPU output."""
    nodes = [helper.make_node("Shape", ["x"], ["shape"]), helper.make_node("Relu", ["x"], ["out"])]
    graph = helper.make_graph(nodes, "case", [helper.make_tensor_value_info("x", TensorProto.FLOAT, X4.shape)],
                              [helper.make_tensor_value_info("shape", TensorProto.INT64, None),
                               helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    session = wgnn.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    assert [o.name for o in session.get_outputs()] == ["shape", "out"]
    assert session.get_outputs()[0].type == "tensor(int64)"
    shape, out = session.run(None, {"x": X4})
    assert shape.dtype == np.int64 and shape.tolist() == list(X4.shape)
    np.testing.assert_array_equal(out, np.maximum(X4, 0))
    with pytest.raises(ValueError, match="compile-time constants"):
        session.run_on_gpu({"x": X4})


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [2, 3], "strides": [2, 1], "dilations": [2, 1], "storage_order": 1},
])
def test_max_pool_indices(device, attrs):
    """MaxPool's second output, the flat NCHW position of each maximum, against onnxruntime CPU."""
    node = helper.make_node("MaxPool", ["x"], ["out", "where"], **attrs)
    graph = helper.make_graph([node], "case", [helper.make_tensor_value_info("x", TensorProto.FLOAT, X4.shape)],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("where", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": X4})
    values, where = wgnn.InferenceSession(model).run(None, {"x": X4})
    np.testing.assert_array_equal(values, expected[0])
    assert where.dtype == np.int64
    np.testing.assert_array_equal(where, expected[1])
    np.testing.assert_array_equal(X4.reshape(-1)[where] if not attrs.get("storage_order")
                                  else X4.transpose(0, 1, 3, 2).reshape(-1)[where], values)


def test_training_dropout_follows_the_reference(device):
    """Training-mode Dropout with a seed drops what ONNX's reference implementation drops; without a
    seed it is refused by name rather than given a mask no one can reproduce."""
    from onnx.reference import ReferenceEvaluator

    def model(**attrs):
        node = helper.make_node("Dropout", ["x", "ratio", "training"], ["out", "mask"], name="drop", **attrs)
        graph = helper.make_graph(
            [node], "case", [helper.make_tensor_value_info("x", TensorProto.FLOAT, X4.shape)],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, None),
             helper.make_tensor_value_info("mask", TensorProto.BOOL, None)],
            [numpy_helper.from_array(np.array(0.3, np.float32), "ratio"), numpy_helper.from_array(np.array(True),
                                                                                                "training")])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])

    seeded = model(seed=7)
    want_out, want_mask = ReferenceEvaluator(seeded).run(None, {"x": X4})
    got_out, got_mask = wgnn.InferenceSession(seeded).run(None, {"x": X4})
    np.testing.assert_array_equal(got_mask, want_mask)
    assert 0.6 < want_mask.mean() < 0.8
    np.testing.assert_allclose(got_out, want_out, rtol=1e-6)
    with pytest.raises(wgnn.UnsupportedOperatorError, match="drop.*without a seed"):
        wgnn.InferenceSession(model())


def test_sequence_inputs_and_outputs(device):
    """A seq(tensor) input compiles with one shape per element (input_shapes) and comes back as a
    list through Identity; without those shapes, or into an op that takes no sequences, it is
    refused by name."""
    seq = helper.make_tensor_sequence_value_info

    def model(op):
        graph = helper.make_graph([helper.make_node(op, ["xs"], ["ys"], name="n")], "case",
                                  [seq("xs", TensorProto.FLOAT, None)], [seq("ys", TensorProto.FLOAT, None)])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])

    elems = [rand(2, 3), rand(4)]
    session = wgnn.InferenceSession(model("Identity"), input_shapes={"xs": [e.shape for e in elems]})
    assert [(a.name, a.shape, a.type) for a in session.get_inputs()] == [("xs", [2], "seq(tensor(float))")]
    assert [a.name for a in session.get_outputs()] == ["ys"]
    (ys,) = session.run(None, {"xs": elems})
    assert isinstance(ys, list) and len(ys) == 2
    for got, want in zip(ys, elems):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="'xs': expected a sequence \\(list\\) of 2 arrays"):
        session.run(None, {"xs": elems[:1]})
    with pytest.raises(wgnn.ModelLoadError, match="'xs' is a sequence: input_shapes must give"):
        wgnn.InferenceSession(model("Identity"))
    with pytest.raises(wgnn.UnsupportedOperatorError, match="Relu.*a sequence input"):
        wgnn.InferenceSession(model("Relu"), input_shapes={"xs": [(2, 3)]})


@pytest.mark.parametrize("op", ["SkipLayerNormalization", "SkipSimplifiedLayerNormalization"])
def test_skip_layer_norms_give_every_output_as_onnxruntime(device, op):
    """ONNX Runtime's skip layer normalizations with all four outputs (normalized, mean, inverse
    standard deviation, the sum input + skip + bias) read by the graph."""
    x, skip = rand(2, 5, 8), rand(2, 5, 8)
    consts = {"gamma": rand(8)} | ({"beta": rand(8)} if op == "SkipLayerNormalization" else {}) | {"bias": rand(8)}
    node = helper.make_node(op, ["x", "skip", *consts], ["y", "mean", "inv", "sum"], domain="com.microsoft",
                            epsilon=1e-5)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, v.shape)
                                            for n, v in (("x", x), ("skip", skip))],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                               for n in ("y", "mean", "inv", "sum")],
                              [numpy_helper.from_array(v, n) for n, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    feeds = {"x": x, "skip": skip}
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    got = wgnn.InferenceSession(model).run(None, feeds)
    for name, g, w in zip(("y", "mean", "inv", "sum"), got, want):
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=name)


def test_onnx_models_load_without_importing_the_onnx_package(tmp_path):
    """An ONNX model loads, compiles and runs on the onnx package's messages alone: the package's
    ``__init__`` (0.65 s, ml_dtypes most of it) stays unimported. Imported afterwards, its classes
    are the ones the model was read with, and a model it loads runs as before."""
    import subprocess
    import sys

    from wgnn import zoo

    path = tmp_path / "m.onnx"
    path.write_bytes(zoo.build("squeezenet").SerializeToString())
    script = f"""
import sys
import numpy as np
import wgnn
x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
session = wgnn.InferenceSession({str(path)!r})
y = session.run(None, {{"input": x}})[0]
assert "onnx" not in sys.modules and "ml_dtypes" not in sys.modules, sorted(m for m in sys.modules if "onnx" in m)
import onnx
assert isinstance(session._source._proto or wgnn.importers.onnx.read_model({str(path)!r}), onnx.ModelProto)
z = wgnn.InferenceSession(onnx.load({str(path)!r})).run(None, {{"input": x}})[0]
assert np.array_equal(y, z)
print("ok", y.argmax())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok"), out.stdout


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int8, np.uint8, np.int16, np.uint16,
                                   np.int32, np.uint32, np.int64, np.uint64, np.bool_])
def test_tensor_values_read_as_onnx_reads_them(dtype):
    """``proto.to_array`` (the importer's reader of weights) gives what onnx.numpy_helper does, for
    values stored as raw bytes and in the typed fields, empty and 0-d tensors included; the element
    types numpy lacks go through onnx's own reader."""
    from wgnn.importers.onnx.proto import to_array

    values = (RNG.standard_normal((3, 5)) * 100).astype(dtype)
    for array in (values, values[:0], values[0, 0].reshape(())):
        for raw in (True, False):
            tensor = numpy_helper.from_array(array, "t")
            if not raw:  # the same values in the typed field ONNX keeps them in
                tensor = helper.make_tensor("t", tensor.data_type, array.shape,
                                            array.view(np.uint16) if dtype == np.float16 else array.ravel().tolist())
            got, want = to_array(tensor), numpy_helper.to_array(tensor)
            assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want), (array, raw)
    bf16 = helper.make_tensor("b", TensorProto.BFLOAT16, (2,), [1.5, -2.0])
    assert np.array_equal(to_array(bf16).astype(np.float32), [1.5, -2.0])


def test_attribute_values_read_as_onnx_reads_them():
    from wgnn.importers.onnx.proto import attribute_value

    graph = helper.make_graph([], "g", [], [])
    node = helper.make_node("X", [], [], f=1.5, i=3, s="text", t=numpy_helper.from_array(np.ones(2, np.float32)),
                            g=graph, fs=[1.0, 2.5], ints=[1, -2], ss=["a", "b"],
                            ts=[numpy_helper.from_array(np.zeros(1, np.int64))], gs=[graph])
    for attr in node.attribute:
        assert attribute_value(attr) == helper.get_attribute_value(attr), attr.name
    assert attribute_value(onnx.AttributeProto(name="u")) is None
    with pytest.raises(ValueError, match="refers to"):
        attribute_value(onnx.AttributeProto(name="r", ref_attr_name="alpha"))


def test_nodes_out_of_order_are_sorted_as_onnx_runtime_takes_them(device):
    """A graph whose nodes are not in topological order (ONNX asks for it; ONNX Runtime sorts them
    itself, and its float16 converter appends the casts it adds at the end): SqueezeNet's nodes
    reversed, and an If whose branch lists its nodes backwards, give the ordered model's outputs
    exactly; the ModelProto given is left as it was. A cycle is still refused, naming the value."""
    from wgnn import zoo

    model = zoo.build("squeezenet")
    x = np.concatenate(zoo.packaged_photos()[:1])
    want = wgnn.InferenceSession(model).run(None, {"input": x})[0]
    shuffled = onnx.ModelProto()
    shuffled.CopyFrom(model)
    nodes = list(shuffled.graph.node)[::-1]
    del shuffled.graph.node[:]
    shuffled.graph.node.extend(nodes)
    names = [n.name for n in shuffled.graph.node]
    np.testing.assert_array_equal(wgnn.InferenceSession(shuffled).run(None, {"input": x})[0], want)
    assert [n.name for n in shuffled.graph.node] == names  # (sorted in a copy)
    np.testing.assert_array_equal(wgnn.InferenceSession(shuffled.SerializeToString()).run(None, {"input": x})[0],
                                  want)

    then = helper.make_graph([helper.make_node("Mul", ["t", "x"], ["y_then"]),
                              helper.make_node("Add", ["x", "one"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, [3])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["y_else"])], "else", [],
                              [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, [3])])
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
         helper.make_node("Greater", ["s", "zero"], ["c"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        [numpy_helper.from_array(np.ones(1, np.float32), "one"), numpy_helper.from_array(np.float32(2), "s"),
         numpy_helper.from_array(np.float32(0), "zero")])
    feeds = {"x": np.array([1, 2, 3], np.float32)}
    got = wgnn.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])).run(None, feeds)
    np.testing.assert_array_equal(got[0], (feeds["x"] + 1) * feeds["x"])

    # Two levels: an If inside a branch, every graph's nodes listed backwards (sorted in one read).
    inner = helper.make_graph([helper.make_node("Mul", ["u", "x"], ["y_inner"]),
                               helper.make_node("Add", ["x", "one"], ["u"])], "inner", [],
                              [helper.make_tensor_value_info("y_inner", TensorProto.FLOAT, [3])])
    outer = helper.make_graph([helper.make_node("Neg", ["v"], ["y_then"]),
                               helper.make_node("If", ["c2"], ["v"], then_branch=inner, else_branch=other),
                               helper.make_node("Less", ["zero", "s"], ["c2"])], "then", [],
                              [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, [3])])
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=outer, else_branch=other),
         helper.make_node("Greater", ["s", "zero"], ["c"])], "g", graph.input, graph.output, graph.initializer)
    nested = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for model in (nested, nested.SerializeToString()):
        got = wgnn.InferenceSession(model).run(None, feeds)
        np.testing.assert_array_equal(got[0], -(feeds["x"] + 1) * feeds["x"])

    cycle = helper.make_graph([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])], "g",
                              [], [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])
    with pytest.raises(wgnn.ModelLoadError, match=r"reads 'b', which no earlier node"):
        wgnn.InferenceSession(helper.make_model(cycle, opset_imports=[helper.make_opsetid("", 17)]))


def test_float16_models_are_float32_inside(device):
    """A float16 model's graph computes as float32 inside (``float32_inside``): its float16 input
    cast once, its product's bias fused as in a float32 model, a Cast to float16 inside kept as the
    storage rounds, float16 outputs; ONNX Runtime's outputs within f16's rounding, and the same
    arrays as before the rule in an fp16 session. A model that reads float16 bits (BitCast) keeps
    its types."""
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array((rng.standard_normal((8, 12)) / 3).astype(np.float16), "w")
    b = numpy_helper.from_array(rng.standard_normal(12).astype(np.float16), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["q"]),
             helper.make_node("Cast", ["q"], ["c"], to=TensorProto.FLOAT16), helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [5, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [5, 12])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((5, 8)).astype(np.float16)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    session = wgnn.InferenceSession(model)
    got = session.run(None, {"x": x})[0]
    assert got.dtype == np.float16 and session.precision == "fp16" and session.pass_log["float32_inside"] > 0
    assert session.pass_log["fuse_matmul_bias"] == 1
    assert rel_l2(got.astype(np.float32), want.astype(np.float32)) < 5e-3
    edges = {id(t) for t in list(session.graph.inputs.values()) + list(session.graph.outputs.values())}
    assert not any(t.dtype == "float16" for n in session.graph.nodes for t in n.inputs + n.outputs
                   if t is not None and id(t) not in edges)
    assert [n.op for n in session.graph.nodes] == ["cast", "matmul", "cast"]
    bits = helper.make_graph([helper.make_node("BitCast", ["x"], ["i"], to=TensorProto.INT16),
                              helper.make_node("Cast", ["i"], ["y"], to=TensorProto.FLOAT16)], "g",
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [5, 8])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [5, 8])])
    kept = wgnn.InferenceSession(helper.make_model(bits, opset_imports=[helper.make_opsetid("", 26)]))
    assert kept.pass_log["float32_inside"] == 0
    np.testing.assert_array_equal(kept.run(None, {"x": x})[0], x.view(np.int16).astype(np.float16))


@pytest.mark.parametrize("keep_io_types", [False, True])
def test_zoo_cnn_through_onnx_runtimes_float16_converter(device, keep_io_types):
    """SqueezeNet converted to float16 by ONNX Runtime's converter, with float16 inputs and outputs
    or float32 ones: fp16 by default, the float32 file's dispatches in fp16 (and a cast at each
    float16 edge), ONNX Runtime's top-5 classes on the packaged photo within f16's rounding."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from wgnn import zoo

    x = np.concatenate(zoo.packaged_photos()[:1])
    data = convert_float_to_float16(zoo.build("squeezenet"), keep_io_types=keep_io_types).SerializeToString()
    feeds = {"input": x if keep_io_types else x.astype(np.float16)}
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)[0].astype(np.float32)
    session = wgnn.InferenceSession(data)
    got = session.run(None, feeds)[0].astype(np.float32)
    float32 = wgnn.InferenceSession(zoo.build("squeezenet"), precision="fp16")
    float32.run(None, {"input": x})
    assert session.precision == "fp16"
    assert len(session._exe.dispatches) == len(float32._exe.dispatches) + (0 if keep_io_types else 2)
    assert rel_l2(got, want) < 5e-3
    np.testing.assert_array_equal(np.argsort(-got)[:, :5], np.argsort(-want)[:, :5])
