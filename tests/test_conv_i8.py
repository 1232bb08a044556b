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
from wgnn import ops
from wgnn.backends.compute.policy import Choice, eligible
from wgnn.graph import Graph, Node, Operand
from wgnn.passes import optimize
from wgnn.reference import run_reference
from wgnn.scheduler import compile_graph
from wgnn.tuner import _alone

# (N, Cin, H, W, Cout, K, stride, pads (t, b, l, r), dilation, groups) and the variants that run
# it with the quantized epilogue (the scalar kernel runs it unfused: the reference here)
SHAPES = {
    "1x1": ((2, 24, 5, 7, 12, 1, 1, (0, 0, 0, 0), 1, 1), ["pointwise", "subgroup", "direct", "gemm", "gemm_i8"]),
    "3x3": ((2, 12, 7, 9, 8, 3, 1, (1, 1, 1, 1), 1, 1), ["winograd", "subgroup", "direct", "gemm", "gemm_i8"]),
    "3x3_stride2": ((1, 16, 9, 11, 20, 3, 2, (1, 0, 1, 2), 1, 1), ["subgroup", "direct", "gemm", "gemm_i8"]),
    "3x3_dilated": ((1, 8, 9, 10, 8, 3, 1, (2, 2, 2, 2), 2, 1), ["subgroup", "direct", "gemm", "gemm_i8"]),
    "single_pixel": ((1, 40, 1, 1, 12, 1, 1, (0, 0, 0, 0), 1, 1), ["pointwise", "direct", "gemm", "gemm_i8", "gemv"]),
    "5x5_long_k": ((1, 36, 6, 6, 4, 5, 1, (2, 2, 2, 2), 1, 1), ["direct", "gemm", "gemm_i8"]),  # K = 900
    "depthwise": ((1, 8, 10, 13, 8, 3, 2, (1, 1, 1, 1), 1, 8), ["depthwise"]),
}
ZEROS = {"uint8": 131, "int8": -5}  # the activations' zero point
# What each variant dispatches (a pointwise convolution's gemm runs the matrix kernel).
KERNELS = {"pointwise": ("matmul",), "subgroup": ("matmul_shared", "conv2d_shared"), "direct": ("conv2d",),
           "gemm": ("conv2d_gemm", "matmul_gemm"), "gemm_i8": ("conv2d_i8",), "gemv": ("gemv",),
           "depthwise": ("depthwise",), "winograd": ("winograd_output",)}


def _qconv(rng, shape, dtype: str, activation: str | None, tail: str = ""):
    """x_q -> dequantize -> conv2d(dequantize(int8 weights, per channel), dequantize(int32 bias))
    [-> activation] -> quantize, as ONNX Runtime's quantizer writes it (QDQ); ``tail``: then
    "dequantize", or a residual block's end, "+quantized" (dequantize, add a dequantized uint8 input
    r, ReLU, quantize) or "+float" (the same with a float input r)."""
    n, cin, h, w, cout, k, stride, pads, dil, groups = shape
    b = wgnn.GraphBuilder()
    x_scale, w_scale = np.float32(0.02), rng.uniform(0.002, 0.01, cout).astype(np.float32)
    x = b.dequantize_linear(b.input("x", (n, cin, h, w), dtype), b.constant(x_scale),
                            b.constant(np.array(ZEROS[dtype], dtype)))
    weights = b.dequantize_linear(b.constant(rng.integers(-128, 128, (cout, cin // groups, k, k)).astype(np.int8)),
                                  b.constant(w_scale), b.constant(np.zeros(cout, np.int8)), axis=0)
    bias = b.dequantize_linear(b.constant(rng.integers(-3000, 3000, cout).astype(np.int32)),
                               b.constant(x_scale * w_scale), b.constant(np.zeros(cout, np.int32)), axis=0)
    y = b.conv2d(x, weights, bias=bias, strides=stride, padding=pads, dilations=dil, groups=groups,
                 activation=activation, name="conv")
    y_scale = np.float32(0.02 * 0.006 * 5400 * np.sqrt(cin // groups * k * k) / 40)  # about 80 steps per deviation
    y_zero = np.array(ZEROS[dtype] // 2, dtype)
    q = b.quantize_linear(y, b.constant(y_scale), b.constant(y_zero), name="y")
    low, high = np.iinfo(dtype).min, np.iinfo(dtype).max
    feeds = {"x": rng.integers(low, high + 1, (n, cin, h, w)).astype(dtype)}
    if tail:  # as a float op (a residual add) reads it
        q = b.dequantize_linear(q, b.constant(y_scale), b.constant(y_zero), name="y_float")
    if tail.startswith("+"):
        shape_out = tuple(q.shape)
        if tail == "+quantized":
            r = b.dequantize_linear(b.input("r", shape_out, "uint8"), b.constant(np.float32(y_scale * 0.7)),
                                    b.constant(np.array(120, np.uint8)))
            feeds["r"] = rng.integers(0, 256, shape_out).astype(np.uint8)
        else:
            r = b.input("r", shape_out)
            feeds["r"] = (rng.standard_normal(shape_out) * 40 * y_scale).astype(np.float32)
        total = b.relu(b.add(q, r))  # (fuse_activation puts the ReLU into the add)
        q = b.quantize_linear(total, b.constant(np.float32(y_scale * 1.3)), b.constant(np.array(0, np.uint8)),
                              name="block")
    return b, q, feeds


CASES = [(shape, dtype, act, tail) for shape in SHAPES
         for dtype, act, tail in (("uint8", "relu", ""), ("int8", None, ""), ("uint8", None, "dequantize"),
                                  ("int8", None, "+quantized"), ("uint8", "relu", "+float"))]


def _choices(variants: list[str]) -> list[Choice]:
    """Each variant at its default sizes; gemm_i8 also at others, split-K included; gemm split too."""
    out = [Choice(v) for v in variants]
    if "gemm_i8" in variants:
        out += [Choice("gemm_i8", tile=1, workgroup=32), Choice("gemm_i8", tile=4, workgroup=256),
                Choice("gemm_i8", tile=2, workgroup=64, split=2), Choice("gemm_i8", tile=8, workgroup=64, split=2)]
    if "gemm" in variants:
        out.append(Choice("gemm", tile=2, workgroup=64, split=2))
    return out


@pytest.mark.parametrize("shape,dtype,act,tail", CASES, ids=[f"{s}-{d}-{a}-{t}" for s, d, a, t in CASES])
def test_quantized_epilogue_equals_the_integer_path(device, precision, rng, shape, dtype, act, tail):
    """Every variant that can run a quantized convolution (split-K too) requantizes its own sums,
    and a dequantize after the quantize or a residual block's add and quantize go into it as well:
    the same values as the scalar kernel with those steps as kernels of their own."""
    b, y, feeds = _qconv(rng, SHAPES[shape][0], dtype, act, tail)
    graph = b.build_graph({"y": y})
    want = run_reference(graph.copy(), feeds)["y"]
    # (a fused block's tail computes in f32 whatever the session stores; unfused, fp16 stores the
    # dequantized values and their sum in f16)
    scalar = wgnn.InferenceSession(graph.copy(), precision="fp32" if tail.startswith("+") else precision,
                                   kernels={"conv": "generic"})
    exact = scalar.compute(feeds)["y"]
    step = {"": 1.0, "dequantize": np.float32(graph.nodes[-1].inputs[1].value)}.get(tail, 1.0)
    # against the float reference, ties may round the other way: one step
    assert np.abs(exact.astype(np.float64) - want).max() <= step * 1.001
    if tail.startswith("+"):
        assert np.mean(exact > 0) > 0.3 and np.mean(exact == 0) > 0.05  # both sides of the ReLU
    for choice in _choices(SHAPES[shape][1]):
        session = wgnn.InferenceSession(graph.copy(), precision=precision, kernels={"conv": choice})
        label = session.kernel_choices()["conv"]
        assert label.startswith(choice.label)
        used = kernels_used(session)
        assert any(k in KERNELS[choice.variant] for k in used)
        ops_run = {d.node.op for d in session._exe.dispatches}
        assert not ops_run & {"requantize", "quantize_linear", "binary"}, ops_run  # all fused into the conv
        if choice.variant == "gemm_i8":  # it reads the integers themselves: no shift either
            assert "dequantize_linear" not in ops_run
        n, cin, _, _, _, k, *_ = SHAPES[shape][0]
        split = choice.split == 2 and cin * k * k > (32 if choice.variant == "gemm_i8" else 16)
        assert any(k.startswith("splitk") for k in used) == split  # (K splits in whole steps of the K loop)
        got = session.compute(feeds)["y"]
        assert got.dtype == (np.float32 if tail == "dequantize" else np.dtype(dtype) if not tail else np.uint8)
        if tail == "+float" and precision == "fp16":  # fp16 stores the float residual (relaid out) in f16
            assert np.abs(got.astype(int) - exact).max() <= 1 and np.mean(got == exact) > 0.97
        else:
            np.testing.assert_array_equal(got, exact)


def test_packed_int8_conv_sums_alone(device, rng):
    """Alone (as ``wgnn tune`` times it), the convolution writes its integer sums: equal to numpy's
    on integer inputs, padding included (the packing offset comes back out through the bias)."""
    b, y, feeds = _qconv(rng, SHAPES["3x3_stride2"][0], "uint8", None)
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


@pytest.mark.parametrize("cin", [12, 16])
def test_winograd_runs_a_quantized_convolution_only_where_its_sums_stay_exact(device, precision, cin):
    """Winograd's products of a quantized convolution are multiples of 1/4 (the filter transform's
    halves): exact in f32 while four times their sums stay below 2^24, which the policy checks from
    the weights and the activations' range. All-255 activations against all-127 weights reach the
    bound: at a tile's centre the product sums to cin * 1020 * 1143 quarters, 13,990,320 for 12
    input channels (eligible, and exact there) and 18,653,760 for 16 (not eligible)."""
    b = wgnn.GraphBuilder()
    x = b.dequantize_linear(b.input("x", (1, cin, 6, 6), "uint8"), b.constant(np.float32(0.02)),
                            b.constant(np.array(0, np.uint8)))
    w = b.dequantize_linear(b.constant(np.full((8, cin, 3, 3), 127, np.int8)), b.constant(np.float32(0.01)),
                            b.constant(np.array(0, np.int8)))
    y = b.quantize_linear(b.conv2d(x, w, padding=(1, 1, 1, 1), name="conv"), b.constant(np.float32(500.0)),
                          b.constant(np.array(0, np.uint8)))
    graph = b.build_graph({"y": y})
    optimize(graph)
    conv = next(n for n in graph.nodes if n.op == "conv2d")
    assert conv.attrs["exact"] and conv.attrs["x_range"] == (0, 255)
    assert ("winograd" in eligible("conv2d", conv, max_binding=1 << 30)) == (cin == 12)
    if cin == 12:
        full = np.full(conv.inputs[0].shape, 255, np.float32)
        want = run_reference(_alone(conv), {"in0": full})["out"]
        assert want.max() == 255 * 127 * 9 * cin
        exe = compile_graph(_alone(conv), device, kernels={conv.name: Choice("winograd")}, precision=precision)
        assert "winograd_output" in {d.kernel for d in exe.dispatches}
        np.testing.assert_array_equal(exe.run({"in0": full})["out"], want)


def test_winograd_output_transform_of_integer_sums_is_exact(device, precision, rng):
    """The output transform of a quantized convolution's products (multiples of 1/4 below 2^22 in
    magnitude) gives the exact integer sums, where f32 additions of such products would round (a
    quarter of these outputs, tried in numpy): it adds them on i32. The four centre products share a
    fraction, so that every output is an integer, as a convolution's are (below 2^24)."""
    n, o, oh, ow = 1, 8, 5, 6
    tiles = 3 * 3
    m = rng.integers(-1_800_000, 1_800_000, (4, 4, tiles, o)).astype(np.float64)  # (|y| < 9 * 1.8e6 < 2^24)
    m[1:3, 1:3] += rng.choice([0.25, 0.5, 0.75], (1, 1, tiles, o))
    products = Operand("in0", (16, tiles, o), "float32", is_input=True)
    y = Operand("out", (n, o, oh, ow), "float32")
    node = Node("winograd_output", [products, None], [y], {"out_shape": (n, o, oh, ow), "tiles": (3, 3),
                                                            "activation": None, "exact": True}, name="products")
    y.producer = node
    graph = Graph([node], {"in0": products}, {"out": y})
    want = run_reference(graph.copy(), {"in0": m.reshape(16, tiles, o).astype(np.float32)})["out"]
    assert np.array_equal(want, np.round(want)) and np.abs(want).max() > 1 << 22
    got = compile_graph(graph, device, precision=precision).run({"in0": m.reshape(16, tiles, o).astype(np.float32)})
    np.testing.assert_array_equal(got["out"], want)


def test_packed_int8_conv_is_eligible_only_where_values_fit(device, rng):
    """uint8 weights with a zero point (w_q - w_zero spans up to 255 values) and 16-bit activations
    stay on the other variants; the integer convolution still runs."""
    def conv_of(graph):
        optimize(graph)
        return next(n for n in graph.nodes if n.op == "conv2d")

    b, y, _ = _qconv(rng, SHAPES["1x1"][0], "uint8", None)
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
    (``FusedRequantize.apply``, ``x_zero``: it reads the integers themselves) computes what the
    kernel does."""
    b, y, feeds = _qconv(rng, SHAPES["3x3_dilated"][0], "int8", "relu")
    session = wgnn.InferenceSession(b.build_graph({"y": y}), kernels={"conv": "gemm_i8"})
    conv = next(n for n in session._exe.graph.nodes if n.op == "conv2d")
    assert conv.attrs["requantize"].dtype == "int8" and conv.outputs[0].dtype == "int8"
    assert conv.attrs["x_zero"] == ZEROS["int8"] and conv.inputs[0].dtype == "int8"
    assert "dequantize_linear" not in [n.op for n in session._exe.graph.nodes]  # no shift left
    want = ops.get("conv2d").reference(conv, [feeds["x"]] + [t.value for t in conv.inputs[1:]])[0]
    np.testing.assert_array_equal(session.compute(feeds)["y"], want)


def _quantized_conv(b, rng, q, in_scale, out_scale, zero, *, cout: int, k: int = 3, groups: int = 1, stride: int = 1,
                    w_scales=(0.005, 0.01), activation=None, name: str):
    """dequantize(q) -> conv2d(dequantize(int8 weights, per output channel), dequantize(int32 bias))
    -> quantize(out_scale, zero), as ONNX Runtime's quantizer writes a quantized convolution (QDQ);
    padding k // 2 on each side."""
    x = b.dequantize_linear(q, b.constant(in_scale), b.constant(zero))
    cin = q.shape[1]
    w_scale = rng.uniform(*w_scales, cout).astype(np.float32)
    w = b.dequantize_linear(b.constant(rng.integers(-128, 128, (cout, cin // groups, k, k)).astype(np.int8)),
                            b.constant(w_scale), b.constant(np.zeros(cout, np.int8)), axis=0)
    bias = b.dequantize_linear(b.constant(rng.integers(-3000, 3000, cout).astype(np.int32)),
                               b.constant(in_scale * w_scale), b.constant(np.zeros(cout, np.int32)), axis=0)
    y = b.conv2d(x, w, bias=bias, padding=(k // 2,) * 4, strides=stride, groups=groups, activation=activation,
                 name=name)
    return b.quantize_linear(y, b.constant(out_scale), b.constant(zero))


def _chain(rng):
    """Two quantized residual blocks after a quantized convolution, as ONNX Runtime's quantizer
    writes them (QDQ): a = Q(conv(x)); t = Q(ReLU(DQ(Q(conv(a))) + DQ(a))); u = the same on t. Every
    activation but x has scale 0.3 and zero point 100."""
    b = wgnn.GraphBuilder()
    c, scale, zero = 8, np.float32(0.3), np.array(100, np.uint8)

    def quantized_conv(q, in_scale, name):
        return _quantized_conv(b, rng, q, in_scale, scale, zero, cout=c, w_scales=(0.0005, 0.001), name=name)

    def block(q, name):
        total = b.add(b.dequantize_linear(quantized_conv(q, scale, name), b.constant(scale), b.constant(zero)),
                      b.dequantize_linear(q, b.constant(scale), b.constant(zero)))
        return b.quantize_linear(b.relu(total), b.constant(scale), b.constant(zero))

    a = quantized_conv(b.input("x", (1, c, 6, 7), "uint8"), np.float32(0.05), "conv_a")
    u = block(block(a, "conv_t"), "conv_u")
    return b.build_graph({"u": u}), {"x": rng.integers(0, 256, (1, c, 6, 7)).astype(np.uint8)}


@pytest.mark.parametrize("variant", ["direct", "gemm", "gemm_i8"])
def test_quantized_blocks_chain_without_element_wise_passes(device, precision, rng, variant):
    """Chained quantized blocks: each convolution requantizes its own sums, each block's tail is in
    its last convolution, and every quantized output read only by later convolutions and tails is
    stored already shifted, so the chain is its three convolutions (and, on the float kernels, the
    input's one shift) with the unfused kernels' values."""
    graph, feeds = _chain(rng)
    want = wgnn.InferenceSession(graph.copy(), kernels={"conv2d": "generic"}).compute(feeds)["u"]
    session = wgnn.InferenceSession(graph.copy(), precision=precision, kernels={"conv2d": variant})
    ops_run = [d.node.op for d in session._exe.dispatches if d.node.op != "relayout"]
    assert ops_run == (["conv2d"] * 3 if variant == "gemm_i8" else ["dequantize_linear"] + ["conv2d"] * 3), ops_run
    tails = [n.attrs["requantize"] for n in session._exe.graph.nodes if n.op == "conv2d"]
    if variant == "gemm_i8":  # a and t, read only by packed-int8 convolutions, are stored packed
        assert [t.packed for t in tails] == [True, True, False]
        assert [t.dtype for t in tails] == ["uint8"] * 3
        sizes = {block.name: block.size for block in session._exe.blocks}
        for conv in [n for n in session._exe.graph.nodes if n.op == "conv2d"][:2]:
            assert sizes[conv.outputs[0].name] == conv.outputs[0].size  # a byte each
    else:  # t is stored shifted
        assert [t.quantize is not None and t.quantize[3] for t in tails] == [False, True, False]
        assert not any(t.packed for t in tails)
    got = session.compute(feeds)["u"]
    assert 0.1 < np.mean(got == 100) < 0.9 and np.mean(got == 255) < 0.05  # the ReLU clips some, few saturate
    np.testing.assert_array_equal(got, want)


def _inverted_residual(rng, dtype: str):
    """MobileNet V2's block without its residual, quantized as ONNX Runtime writes it (QDQ): a
    pointwise expansion, a 3x3 depthwise convolution (stride 2, padded) and a pointwise projection,
    each between a dequantize and a quantize, activations of ``dtype``."""
    b = wgnn.GraphBuilder()
    zero = np.array(ZEROS[dtype], dtype)

    def quantized_conv(q, in_scale, cout, k, groups, stride, name):
        out_scale = np.float32(in_scale * 0.0075 * 5400 * np.sqrt(q.shape[1] // groups * k * k) / 60)
        return _quantized_conv(b, rng, q, in_scale, out_scale, zero, cout=cout, k=k, groups=groups, stride=stride,
                               name=name), out_scale

    x = b.input("x", (1, 8, 9, 11), dtype)
    e, scale = quantized_conv(x, np.float32(0.05), 16, 1, 1, 1, "expand")
    d, scale = quantized_conv(e, scale, 16, 3, 16, 2, "dw")
    y, _ = quantized_conv(d, scale, 8, 1, 1, 1, "project")
    low, high = np.iinfo(dtype).min, np.iinfo(dtype).max
    return b.build_graph({"y": y}), {"x": rng.integers(low, high + 1, (1, 8, 9, 11)).astype(dtype)}


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("expand", ["subgroup", "direct", "gemm_i8"])
def test_depthwise_reads_quantized_activations_as_stored(device, precision, rng, expand, dtype):
    """The depthwise kernel reads its quantized input's integers as they are stored, subtracting the
    zero point as it loads them (padding stays x_zero): packed four to a word where every reader
    can (the expansion before it then writes a byte per value), and the integers of the network's
    input itself, with no shift pass. The same integers as the scalar kernel's."""
    graph, feeds = _inverted_residual(rng, dtype)
    want = wgnn.InferenceSession(graph.copy(), kernels={"conv2d": "generic"}).compute(feeds)["y"]
    assert 5 < len(np.unique(want)) and np.mean(want == np.iinfo(dtype).max) < 0.05
    session = wgnn.InferenceSession(graph.copy(), precision=precision,
                                    kernels={"expand": expand, "dw": "depthwise", "project": "direct"})
    convs = {n.name: n for n in session._exe.graph.nodes if n.op == "conv2d"}
    assert session.kernel_choices()["dw"].startswith("depthwise")
    dw = convs["dw"]
    assert dw.attrs["x_zero"] == ZEROS[dtype] and dw.inputs[0].dtype == dtype  # integers, not shifted floats
    assert convs["expand"].attrs["requantize"].packed  # a byte per value: its only reader unpacks
    assert [d.node.op for d in session._exe.dispatches if d.node.op != "relayout"] == (
        ["conv2d"] * 3 if expand == "gemm_i8" else ["dequantize_linear"] + ["conv2d"] * 3)
    np.testing.assert_array_equal(session.compute(feeds)["y"], want)
    # the network's input itself, read by a depthwise convolution: its integers, no shift
    b, y, feeds = _qconv(rng, SHAPES["depthwise"][0], dtype, None)
    graph = b.build_graph({"y": y})
    want = wgnn.InferenceSession(graph.copy(), kernels={"conv2d": "generic"}).compute(feeds)["y"]
    alone = wgnn.InferenceSession(graph, precision=precision, kernels={"conv": "depthwise"})
    assert [d.node.op for d in alone._exe.dispatches if d.node.op != "relayout"] == ["conv2d"]
    np.testing.assert_array_equal(alone.compute(feeds)["y"], want)


@pytest.mark.parametrize("variant", ["direct", "gemm_i8"])
def test_quantized_max_pool_between_convolutions_pools_shifted_values(device, precision, rng, variant):
    """conv -> quantize -> dequantize -> MaxPool -> quantize -> dequantize -> conv, as ONNX Runtime's
    quantizer writes a pooling stem (QDQ): the pool runs on the first convolution's shifted integers
    (the round trip dropped, the next shift moved before the pool and into the convolution), so
    the two convolutions and the pool are all that run, with the scalar kernel's integers."""
    b = wgnn.GraphBuilder()
    zero, scale = np.array(100, np.uint8), np.float32(0.3)

    def quantized_conv(q, in_scale, name):
        return _quantized_conv(b, rng, q, in_scale, scale, zero, cout=8, w_scales=(0.0005, 0.001), name=name)

    a = quantized_conv(b.input("x", (1, 8, 9, 10), "uint8"), np.float32(0.05), "conv_a")
    pooled = b.max_pool2d(b.dequantize_linear(a, b.constant(scale), b.constant(zero)), window=(3, 3), strides=2,
                          padding=(1, 1, 1, 1))
    u = quantized_conv(b.quantize_linear(pooled, b.constant(scale), b.constant(zero)), scale, "conv_b")
    graph, feeds = b.build_graph({"u": u}), {"x": rng.integers(0, 256, (1, 8, 9, 10)).astype(np.uint8)}
    want = wgnn.InferenceSession(graph.copy(), kernels={"conv2d": "generic"}).compute(feeds)["u"]
    session = wgnn.InferenceSession(graph.copy(), precision=precision, kernels={"conv2d": variant})
    ops_run = [d.node.op for d in session._exe.dispatches if d.node.op != "relayout"]
    assert ops_run == ([] if variant == "gemm_i8" else ["dequantize_linear"]) + ["conv2d", "pool2d", "conv2d"]
    pool = next(n for n in session._exe.graph.nodes if n.op == "pool2d")
    assert pool.inputs[0].dtype == "float32"  # the shifted integers conv_a writes
    got = session.compute(feeds)["u"]
    assert len(np.unique(got)) > 10
    np.testing.assert_array_equal(got, want)


def test_a_quantized_float_input_is_quantized_shifted(device, precision, rng):
    """A network's float input quantized for a quantized convolution (QDQ: x -> quantize ->
    dequantize -> conv): the quantize writes ``q - zero`` as a float itself, so no shift pass runs
    between it and the convolution, and the result is the scalar kernel's."""
    b = wgnn.GraphBuilder()
    scale, zero = np.float32(0.02), np.array(131, np.uint8)
    q = b.quantize_linear(b.input("x", (1, 8, 7, 9)), b.constant(scale), b.constant(zero))
    x = b.dequantize_linear(q, b.constant(scale), b.constant(zero))
    w_scale = rng.uniform(0.002, 0.01, 8).astype(np.float32)
    w = b.dequantize_linear(b.constant(rng.integers(-128, 128, (8, 8, 3, 3)).astype(np.int8)), b.constant(w_scale),
                            b.constant(np.zeros(8, np.int8)), axis=0)
    y = b.conv2d(x, w, padding=(1, 1, 1, 1), name="conv")
    y = b.quantize_linear(y, b.constant(np.float32(0.5)), b.constant(np.array(128, np.uint8)))
    graph = b.build_graph({"y": y})
    feeds = {"x": (rng.standard_normal((1, 8, 7, 9)) * 1.5).astype(np.float32)}
    want = wgnn.InferenceSession(graph.copy(), kernels={"conv2d": "generic"}).compute(feeds)["y"]
    session = wgnn.InferenceSession(graph.copy(), precision=precision, kernels={"conv": "direct"})
    assert [d.node.op for d in session._exe.dispatches if d.node.op != "relayout"] == ["quantize_linear", "conv2d"]
    quant = next(n for n in session._exe.graph.nodes if n.op == "quantize_linear")
    assert quant.attrs.get("shifted") and quant.outputs[0].dtype == "float32"
    got = session.compute(feeds)["y"]
    assert len(np.unique(got)) > 10
    np.testing.assert_array_equal(got, want)
    # and numpy's float reference of the graph as written, within a step (ties)
    assert np.abs(got.astype(int) - run_reference(graph.copy(), feeds)["y"].astype(int)).max() <= 1


def _fire(rng):
    """A SqueezeNet fire module as ONNX Runtime's quantizer writes it (QDQ): two quantized
    convolutions of one input, dequantized, concatenated and quantized again, then read by the next
    quantized convolution."""
    b = wgnn.GraphBuilder()
    zero = np.array(90, np.uint8)

    def quantized_conv(q, in_scale, cout, k, out_scale, name):
        return _quantized_conv(b, rng, q, in_scale, out_scale, zero, cout=cout, k=k, activation="relu", name=name)

    x = b.input("x", (1, 8, 7, 6), "uint8")
    parts = [b.dequantize_linear(quantized_conv(x, np.float32(0.05), 8, k, np.float32(0.2), f"expand{k}"),
                                 b.constant(np.float32(0.2)), b.constant(zero)) for k in (1, 3)]
    cat = b.quantize_linear(b.concat(parts, axis=1), b.constant(np.float32(0.25)), b.constant(zero))
    y = quantized_conv(cat, np.float32(0.25), 12, 1, np.float32(0.3), "squeeze")
    return b.build_graph({"y": y}), {"x": rng.integers(0, 256, (1, 8, 7, 6)).astype(np.uint8)}


@pytest.mark.parametrize("variant", ["direct", "gemm_i8", Choice("gemm_i8", tile=2, workgroup=64, split=2)],
                         ids=["direct", "gemm_i8", "gemm_i8-split"])
def test_quantized_concat_is_quantized_by_its_parts(device, precision, rng, variant):
    """quantize(concat(dequantized convolutions)): each convolution quantizes its own part into its
    place in the concat's result (integers, shifted ones for the float kernels' reader), and no
    element-wise pass or copy runs; the values are the unfused kernels'."""
    graph, feeds = _fire(rng)
    want = wgnn.InferenceSession(graph.copy(), kernels={"conv2d": "generic"}).compute(feeds)["y"]
    session = wgnn.InferenceSession(graph.copy(), precision=precision, kernels={"conv2d": variant})
    assert ("splitk_i8" in kernels_used(session)) == (getattr(variant, "split", None) == 2)
    variant = getattr(variant, "variant", variant)
    ran = [d.node.op for d in session._exe.dispatches if d.node.op != "relayout"]
    assert not {"quantize_linear", "requantize", "binary", "concat"} & set(ran), ran  # (parts written in place)
    assert ran.count("dequantize_linear") == (0 if variant == "gemm_i8" else 1)  # (x's shift)
    cat = next(n for n in session._exe.graph.nodes if n.op == "concat")
    assert cat.outputs[0].dtype == ("uint8" if variant == "gemm_i8" else "float32")
    got = session.compute(feeds)["y"]
    assert len(np.unique(got)) > 20
    np.testing.assert_array_equal(got, want)
