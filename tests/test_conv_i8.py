"""The packed-int8 convolution (``conv2d_i8.wgsl``, the kernel policy's ``gemm_i8``): forced on
quantized convolutions of ragged shapes (M, N and K not multiples of the tiles; padding, strides,
dilations), int8 and uint8 activations, at several tile and workgroup sizes, in fp32 and fp16
sessions. Its results equal the same integer arithmetic on the scalar kernel element for element,
and numpy's float reference of the quantized graph within one step."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import kernels_used

import wgnn
from wgnn.backends.compute.policy import Choice, eligible
from wgnn import ops
from wgnn.passes import optimize
from wgnn.reference import run_reference
from wgnn.scheduler import compile_graph
from wgnn.tuner import _alone

# (N, Cin, H, W, Cout, K, stride, pads (t, b, l, r), dilation)
SHAPES = {
    "1x1": (2, 24, 5, 7, 12, 1, 1, (0, 0, 0, 0), 1),
    "3x3_stride2": (1, 16, 9, 11, 20, 3, 2, (1, 0, 1, 2), 1),
    "3x3_dilated": (1, 8, 9, 10, 8, 3, 1, (2, 2, 2, 2), 2),
    "single_pixel": (1, 40, 1, 1, 12, 1, 1, (0, 0, 0, 0), 1),
    "5x5_long_k": (1, 36, 6, 6, 4, 5, 1, (2, 2, 2, 2), 1),  # K = 900: 29 steps of the K loop
}
ZEROS = {"uint8": 131, "int8": -5}  # the activations' zero point


def _qconv(rng, shape, dtype: str, activation: str | None, dequantized: bool = False):
    """x_q -> dequantize -> conv2d(dequantize(int8 weights, per channel), dequantize(int32 bias))
    [-> activation] -> quantize [-> dequantize], as ONNX Runtime's quantizer writes it (QDQ)."""
    n, cin, h, w, cout, k, stride, pads, dil = shape
    b = wgnn.GraphBuilder()
    x_scale, w_scale = np.float32(0.02), rng.uniform(0.002, 0.01, cout).astype(np.float32)
    x = b.dequantize_linear(b.input("x", (n, cin, h, w), dtype), b.constant(x_scale),
                            b.constant(np.array(ZEROS[dtype], dtype)))
    weights = b.dequantize_linear(b.constant(rng.integers(-128, 128, (cout, cin, k, k)).astype(np.int8)),
                                  b.constant(w_scale), b.constant(np.zeros(cout, np.int8)), axis=0)
    bias = b.dequantize_linear(b.constant(rng.integers(-3000, 3000, cout).astype(np.int32)),
                               b.constant(x_scale * w_scale), b.constant(np.zeros(cout, np.int32)), axis=0)
    y = b.conv2d(x, weights, bias=bias, strides=stride, padding=pads, dilations=dil, activation=activation,
                 name="conv")
    y_scale = np.float32(0.02 * 0.006 * 5400 * np.sqrt(cin * k * k) / 40)  # about 80 steps per deviation
    y_zero = np.array(ZEROS[dtype] // 2, dtype)
    q = b.quantize_linear(y, b.constant(y_scale), b.constant(y_zero), name="y")
    if dequantized:  # as a float op (a residual add) reads it
        q = b.dequantize_linear(q, b.constant(y_scale), b.constant(y_zero), name="y_float")
    low, high = np.iinfo(dtype).min, np.iinfo(dtype).max
    return b, q, {"x": rng.integers(low, high + 1, (n, cin, h, w)).astype(dtype)}


CASES = [(shape, dtype, act, dq) for shape in SHAPES
         for dtype, act, dq in (("uint8", "relu", False), ("int8", None, False), ("uint8", None, True))]
SIZES = (Choice("gemm_i8"), Choice("gemm_i8", tile=1, workgroup=32), Choice("gemm_i8", tile=4, workgroup=256),
         Choice("gemm_i8", tile=2, workgroup=64, split=2))


@pytest.mark.parametrize("shape,dtype,act,dequantized", CASES,
                         ids=[f"{s}-{d}-{a}" + ("-dequantized" if dq else "") for s, d, a, dq in CASES])
def test_packed_int8_conv_equals_the_integer_path(device, precision, rng, shape, dtype, act, dequantized):
    """Every size (split-K too) gives the scalar kernel's integers; a dequantize after the quantize
    is fused as well (the conv writes (q - zero) * scale)."""
    b, y, feeds = _qconv(rng, SHAPES[shape], dtype, act, dequantized)
    graph = b.build_graph({"y": y})
    want = run_reference(graph.copy(), feeds)["y"]
    scalar = wgnn.InferenceSession(graph.copy(), precision=precision, kernels={"conv": "generic"})
    exact = scalar.compute(feeds)["y"]
    if dequantized:  # fused at the graph level too: the requantize dequantizes
        ops_left = [n.op for n in scalar._exe.graph.nodes]
        assert "requantize" in ops_left and ops_left.count("dequantize_linear") == 1  # (the shift of x)
    step = np.float32(1.0)
    if dequantized:  # compare in steps
        step = np.float32(next(n for n in graph.nodes if n.name == "y_float").inputs[1].value)
    assert np.abs(exact.astype(np.float64) - want).max() <= step * 1.001  # float reference: ties may round the other way
    for choice in SIZES:
        session = wgnn.InferenceSession(graph.copy(), precision=precision, kernels={"conv": choice})
        label = session.kernel_choices()["conv"]
        assert label == choice.label if choice.tile else label.startswith("gemm_i8 x")
        used = kernels_used(session)
        assert "conv2d_i8" in used and "ternary" not in used[used.index("conv2d_i8"):]  # requantize fused
        n, cin, _, _, _, k, *_ = SHAPES[shape]
        assert ("splitk_i8" in used) == (choice.split == 2 and cin * k * k > 32)  # K splits in whole steps of 32
        got = session.compute(feeds)["y"]
        assert got.dtype == (np.float32 if dequantized else np.dtype(dtype))
        np.testing.assert_array_equal(got, exact)


def test_packed_int8_conv_sums_alone(device, rng):
    """Alone (as ``wgnn tune`` times it), the convolution writes its integer sums: equal to numpy's
    on integer inputs, padding included (the packing offset comes back out through the bias)."""
    b, y, feeds = _qconv(rng, SHAPES["3x3_stride2"], "uint8", None)
    graph = b.build_graph({"y": y})
    optimize(graph)
    conv = next(n for n in graph.nodes if n.op == "conv2d")
    assert conv.attrs["int8_offset"] == ZEROS["uint8"] - 128
    shifted = rng.integers(-ZEROS["uint8"], 256 - ZEROS["uint8"], conv.inputs[0].shape).astype(np.float32)
    want = run_reference(_alone(conv), {"in0": shifted})["out"]
    assert np.abs(want).max() > 1e5  # sums far beyond a byte
    for variant in (Choice("gemm_i8"), Choice("gemm_i8", tile=4, split=4), Choice("generic")):
        exe = compile_graph(_alone(conv), device, kernels={conv.name: variant})
        got = exe.run({"in0": shifted})["out"]
        np.testing.assert_array_equal(got, want)


def test_packed_int8_conv_is_eligible_only_where_values_fit(device, rng):
    """uint8 weights with a zero point (w_q - w_zero spans up to 255 values) and 16-bit activations
    stay on the other variants; the integer convolution still runs."""
    def conv_of(graph):
        optimize(graph)
        return next(n for n in graph.nodes if n.op == "conv2d")

    b, y, _ = _qconv(rng, SHAPES["1x1"], "uint8", None)
    assert "gemm_i8" in eligible("conv2d", conv_of(b.build_graph({"y": y})), max_binding=1 << 30)
    node = conv_of(b.build_graph({"y": y}))
    node.attrs.pop("int8_offset")
    assert "gemm_i8" not in eligible("conv2d", node, max_binding=1 << 30)

    bld = wgnn.GraphBuilder()
    x = bld.dequantize_linear(bld.input("x", (1, 8, 4, 4), "int16"), bld.constant(np.float32(0.01)),
                              bld.constant(np.array(0, np.int16)))
    w = bld.dequantize_linear(bld.constant(np.full((4, 8, 1, 1), 250, np.uint8)), bld.constant(np.float32(0.01)),
                              bld.constant(np.array(3, np.uint8)))
    q = bld.quantize_linear(bld.conv2d(x, w, name="conv"), bld.constant(np.float32(1.0)),
                            bld.constant(np.array(0, np.int16)))
    node = conv_of(bld.build_graph({"y": q}))
    assert node.attrs.get("exact") and node.attrs.get("int8_offset") is None
    with pytest.raises(wgnn.GraphError, match="'gemm_i8' cannot run it"):
        bld.build({"y": q}, kernels={"conv": "gemm_i8"})


def test_fused_requantize_is_the_conv_nodes_reference(device, rng):
    """After the compute backend fuses the requantize, the conv2d node's own numpy reference
    (``FusedRequantize.apply``) computes what the kernel does."""
    b, y, feeds = _qconv(rng, SHAPES["3x3_dilated"], "int8", "relu")
    session = wgnn.InferenceSession(b.build_graph({"y": y}), kernels={"conv": "gemm_i8"})
    conv = next(n for n in session._exe.graph.nodes if n.op == "conv2d")
    assert conv.attrs["requantize"].dtype == "int8" and conv.outputs[0].dtype == "int8"
    shift = conv.inputs[0].producer.inputs[0].producer  # (a relayout between)
    ins = [feeds["x"].astype(np.float32) - ZEROS["int8"]] + [t.value for t in conv.inputs[1:]]
    assert shift.op == "dequantize_linear"
    want = ops.get("conv2d").reference(conv, ins)[0]
    np.testing.assert_array_equal(session.compute(feeds)["y"], want)

