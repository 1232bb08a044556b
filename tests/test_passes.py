"""Graph passes: a fused graph has fewer dispatches and the same outputs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import kernels_used, lstm_against_onnxruntime, rel_l2, run_both, tiled, tol

import wgnn
from wgnn.ops.activation import Activation


def _residual_block(rng):
    """conv -> BN -> add(skip) -> relu, plus a standalone BN and a dropout-like identity."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 9, 9))

    def const(*shape, low=None):
        if low is not None:
            return b.constant(rng.uniform(low, 1.5, shape).astype(np.float32))
        return b.constant(rng.standard_normal(shape).astype(np.float32))

    y = b.conv2d(x, const(8, 8, 3, 3), bias=const(8), padding=(1, 1, 1, 1))
    y = b.batch_normalization(y, const(8), const(8, low=0.5), scale=const(8), bias=const(8))
    y = b.relu(b.add(y, x))
    y = b.identity(y)
    z = b.batch_normalization(y, const(8), const(8, low=0.5), scale=const(8), bias=const(8))
    feeds = {"x": rng.standard_normal((1, 8, 9, 9)).astype(np.float32)}
    return b, {"z": z}, feeds


def test_fusion_reduces_dispatches_and_keeps_outputs(device, rng):
    b, outputs, feeds = _residual_block(rng)
    fused, got, want = run_both(b, outputs, feeds)
    plain = wgnn.InferenceSession(b.build_graph(outputs), optimize=False)
    unfused = plain.compute(feeds)
    assert fused.dispatch_count < plain.dispatch_count
    assert rel_l2(got["z"], want["z"]) < 1e-5
    assert rel_l2(unfused["z"], want["z"]) < 1e-5
    rewrites = fused._exe.rewrites  # the backend's own rewrites are counted there too (Winograd here)
    assert all(fused.pass_log[k] == v for k, v in rewrites.items())
    assert {k: v for k, v in fused.pass_log.items() if k not in rewrites} == {
        "remove_identity": 1, "fold_batchnorm": 2, "fuse_residual": 1, "fuse_activation": 1, "fuse_muladd": 1}
    # conv + BN + add + relu became one convolution (in Winograd form: its output transform carries
    # the epilogue); the standalone BN became a multiply-add, one muladd dispatch.
    assert kernels_used(fused).count("winograd_output") == 1
    conv = next(n for n in fused.graph.nodes if n.op == "winograd_output")
    assert conv.attrs["activation"].kind == "relu" and len(conv.inputs) == 4 and conv.inputs[3] is not None


def test_a_second_batch_norm_folds_only_where_the_first_is_read_alone(device, rng):
    """conv -> batch norm -> batch norm, the first batch norm's result also read by a Mul with the
    second's: the first folds into the convolution, the second becomes a multiply-add (folding it
    too changed the result the Mul reads: who reads the convolution's result was not brought up to
    date, found by random graphs). Where nothing else reads the first, both fold. The numpy
    reference's values."""
    def bn(b, x, channels):
        values = [rng.uniform(0.5, 1.5, channels), rng.standard_normal(channels), rng.standard_normal(channels) / 10,
                  rng.uniform(0.5, 1.5, channels)]
        gamma, beta, mean, var = (b.constant(v.astype(np.float32)) for v in values)
        return b.batch_normalization(x, mean, var, scale=gamma, bias=beta)

    for shared in (True, False):
        b = wgnn.GraphBuilder()
        x = b.input("x", (1, 8, 6, 6))
        conv = b.conv2d(x, b.constant((rng.standard_normal((12, 8, 3, 3)) / 8).astype(np.float32)), padding=(1,) * 4)
        first = bn(b, conv, 12)
        second = bn(b, first, 12)
        y = b.mul(second, first) if shared else b.relu(second)
        feeds = {"x": rng.standard_normal((1, 8, 6, 6)).astype(np.float32)}
        session, got, want = run_both(b, {"y": y}, feeds)
        assert rel_l2(got["y"], want["y"]) < 1e-5, shared
        assert session.pass_log["fold_batchnorm"] == 2
        assert ("fused_elementwise" in [d.node.op for d in session._exe.dispatches]) == shared  # (the second's
        # multiply-add and the Mul: one pass; else both in the convolution, the ReLU too)


def test_a_batch_norm_of_negative_variance_gives_what_onnxruntime_gives(device):
    """A variance below -epsilon (a corrupted or fuzzed model) makes the channel's scale NaN, and one
    of exactly -epsilon infinite: folded into the convolution before it or not, the outputs are ONNX
    Runtime's (NaN in those channels, inf * 0 included), and folding warns of nothing."""
    import warnings

    from onnx import TensorProto, helper, numpy_helper

    ort = pytest.importorskip("onnxruntime")
    c = 4
    values = {"g": np.ones(c), "b": np.full(c, 0.5), "m": np.array([0.0, 0.1, 0.0, 0.2]),
              "v": np.array([1.0, -1.0, -1e-5, 4.0]), "w": np.eye(c).reshape(c, c, 1, 1) * 2}
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in values.items()]
    bn = helper.make_node("BatchNormalization", ["t", "g", "b", "m", "v"], ["y"], epsilon=1e-5)
    x = np.arange(4 * c, dtype=np.float32).reshape(1, c, 2, 2)
    for conv in (False, True):
        first = helper.make_node("Conv", ["x", "w"], ["t"]) if conv else helper.make_node("Identity", ["x"], ["t"])
        nodes = [first, bn]
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]).SerializeToString()
        want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            session = wgnn.InferenceSession(model)
        assert session.pass_log["fold_batchnorm"] == 1
        got = session.run(None, {"x": x})[0]
        assert np.isnan(got[:, 1:3]).all() and np.isnan(want[:, 1:3]).all(), conv
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


def test_arithmetic_that_changes_nothing_is_dropped(device, rng):
    """x + 0, 0 + x, x - 0, x * 1, 1 * x and x / 1 (the constant all zeros or ones, broadcast or
    not) pass x through; 0 - x, 1 / x, a constant that broadcasts x to a larger shape and one that is
    not all neutral stay. The same values as the numpy reference either way."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 3))
    zeros, ones = b.constant(np.zeros(3, np.float32)), b.constant(np.ones((2, 3), np.float32))
    dropped = b.div(b.mul(b.constant(np.float32(1)), b.mul(b.sub(b.add(b.constant(np.zeros((1, 3), np.float32)),
                                                                         b.add(x, zeros)), zeros), ones)), ones)
    kept = {"neg": b.sub(zeros, x), "inv": b.div(ones, x),
            "wide": b.add(x, b.constant(np.zeros((4, 2, 3), np.float32))),
            "half": b.mul(x, b.constant(np.array([1, 1, 2], np.float32)))}
    feeds = {"x": rng.uniform(0.5, 2, (2, 3)).astype(np.float32)}
    session, got, want = run_both(b, {"y": b.relu(dropped), **kept}, feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6)
    assert session.pass_log["remove_identity"] == 6
    assert session.dispatch_count == 5


def test_a_second_bias_sums_into_the_first(device, precision, rng):
    """A product with a bias, then another constant added per column (an LSTM's input and recurrent
    biases): one product whose bias is their sum."""
    b = wgnn.GraphBuilder()
    a = b.input("a", (5, 8))
    w = b.constant(rng.standard_normal((8, 12)).astype(np.float32))
    y = b.add(b.add(b.matmul(a, w), b.constant(rng.standard_normal(12).astype(np.float32))),
              b.constant(rng.standard_normal((1, 12)).astype(np.float32)))
    session, got, want = run_both(b, {"y": y}, {"a": rng.standard_normal((5, 8)).astype(np.float32)},
                                  precision=precision)
    assert rel_l2(got["y"], want["y"]) < tol(precision)
    assert session.pass_log["fuse_matmul_bias"] == 2
    assert [d.node.op for d in session._exe.dispatches] == ["matmul"]


def test_constant_folding_of_shape_chains(device, rng):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, and ConstantOfShape, fold to constants."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero_axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["new_shape"], axis=0),
        helper.make_node("Reshape", ["x", "new_shape"], ["flat"]),
        helper.make_node("ConstantOfShape", ["len"], ["twos"], value=numpy_helper.from_array(np.array([2.0],
                                                                                             np.float32))),
        helper.make_node("Mul", ["flat", "twos"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "zero_axes"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
             numpy_helper.from_array(np.array([60], np.int64), "len")]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 60])], inits)
    session = wgnn.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    assert session.pass_log["fold_constants"] >= 5
    assert [n.op for n in session.source_graph.nodes] == ["shape", "gather", "reshape", "concat", "reshape",
                                                          "constant_of_shape", "binary"]
    assert [n.op for n in session.graph.nodes] == ["reshape", "binary"]
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x.reshape(2, 60) * 2, rtol=1e-6)


def test_activation_fuses_into_elementwise_and_gemm(device, rng):
    b = wgnn.GraphBuilder()
    x = b.input("x", (3, 8))
    y = b.sigmoid(b.add(x, b.constant(rng.standard_normal(8).astype(np.float32))))
    z = b.relu(b.gemm(y, b.constant(rng.standard_normal((8, 4)).astype(np.float32))))
    session, got, want = run_both(b, {"z": z}, {"x": rng.standard_normal((3, 8)).astype(np.float32)})
    assert session.pass_log["fuse_activation"] == 2
    assert kernels_used(session) == ["elementwise", tiled("matmul")]
    assert rel_l2(got["z"], want["z"]) < 1e-5


def test_no_fusion_when_intermediate_is_read_twice(device, rng):
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 4, 5, 5))
    y = b.conv2d(x, b.constant(rng.standard_normal((4, 4, 1, 1)).astype(np.float32)))
    session, got, want = run_both(b, {"a": b.relu(y), "b": y}, {"x": rng.standard_normal((1, 4, 5, 5))
                                                                  .astype(np.float32)})
    assert "fuse_activation" not in session.pass_log
    for name in ("a", "b"):
        assert rel_l2(got[name], want[name]) < 1e-5


def test_first_layer_channels_are_padded_for_the_tiled_kernel(device, rng):
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 3, 16, 16))
    y = b.conv2d(x, b.constant(rng.standard_normal((8, 3, 3, 3)).astype(np.float32)), strides=2,
                 padding=(1, 1, 1, 1), activation="relu")
    session, got, want = run_both(b, {"y": y}, {"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)})
    assert session.pass_log["pad_conv_channels"] == 1
    # the channel padding writes NHWC itself: no separate relayout of the input
    # pad, conv (on a device with subgroups: its input's columns and their product, policy.columns_conv),
    # NHWC -> NCHW output
    conv = ["im2col", "matmul_shared"] if tiled("conv2d") == "conv2d_shared" else ["conv2d"]
    assert kernels_used(session) == ["pad_channels"] + conv + ["elementwise"]
    assert rel_l2(got["y"], want["y"]) < 1e-5


def test_a_one_channel_signals_filter_rows_are_not_padded(device, rng, precision):
    """openWakeWord's spectrogram: a 1 x 512 filter every 160 samples of one channel of audio, the
    short-time Fourier transform's 257 frequencies. Each output pixel's 512 input values lie side by
    side on whole vec4s, so the matrix kernels read the signal as it lies: no channel padding (which
    made 4x the multiply-adds); the output channels padded to 260 and sliced back, as before. A
    stride of 3 samples puts the rows off vec4s: padded to 4 channels there, as before."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 1, 1, 2000))
    window = (rng.standard_normal((257, 1, 1, 512)) / 16).astype(np.float32)
    stft = b.conv2d(x, b.constant(window), strides=(1, 160))
    odd = b.conv2d(x, b.constant(window[:8, :, :, :24]), strides=(1, 3))
    feeds = {"x": rng.standard_normal((1, 1, 1, 2000)).astype(np.float32)}
    session, got, want = run_both(b, {"stft": stft, "odd": odd}, feeds, precision=precision)
    for name in ("stft", "odd"):
        assert rel_l2(got[name], want[name]) < tol(precision), name
    pads = [d.node for d in session._exe.dispatches if d.node.op == "pad"]
    assert [p.outputs[0].shape for p in pads] == [(1, 4, 1, 2000)], pads  # (the odd stride's alone)
    stft_kernel = {d.node.outputs[0].shape: d.kernel for d in session._exe.dispatches if d.node.op == "conv2d"}
    assert stft_kernel[(1, 260, 1, 10)] == tiled("matmul"), stft_kernel


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_channel_counts_not_in_fours_run_on_the_tiled_kernels(device, rng, precision):
    """BlazeFace's blocks: a depthwise convolution and a 1x1 one of 36 -> 42 channels whose
    residual is the block input padded with zero channels, a ReLU, then a strided depthwise of 42
    channels and a PRelu'd 3x3 convolution of 42 -> 30. Padded to whole vec4s of channels (filters,
    biases, slopes and the residual's padding with them), sliced back: no scalar kernel runs, and
    the outputs are the reference's."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 36, 12, 10))

    def const(*shape):
        return b.constant(rng.standard_normal(shape).astype(np.float32) * 0.3)

    h = b.conv2d(x, const(36, 1, 3, 3), bias=const(36), padding=(1, 1, 1, 1), groups=36)
    h = b.conv2d(h, const(42, 36, 1, 1), bias=const(42))
    h = b.relu(b.add(h, b.pad(x, [0, 0, 0, 0, 0, 6, 0, 0])))
    d = b.conv2d(h, const(42, 1, 3, 3), bias=const(42), strides=2, padding=(1, 1, 1, 1), groups=42)
    y = b.prelu(b.conv2d(d, const(30, 42, 3, 3), bias=const(30), padding=(1, 1, 1, 1)),
                b.constant(rng.uniform(0.1, 0.3, (30, 1, 1)).astype(np.float32)))
    feeds = {"x": rng.standard_normal((1, 36, 12, 10)).astype(np.float32)}
    session, got, want = run_both(b, {"h": h, "y": y}, feeds, precision=precision)
    used = kernels_used(session)
    assert "conv2d_generic" not in used and "pad" not in used, used
    assert rel_l2(got["h"], want["h"]) < (1e-5 if precision == "fp32" else 5e-3)
    assert rel_l2(got["y"], want["y"]) < (1e-5 if precision == "fp32" else 5e-3)
    # the residual's channel padding grew to the convolution's 44 channels, and the convolution then
    # reads it unpadded (36 channels, zero beyond); the depthwise's and the 3x3's inputs, zero
    # padding of slices whose dropped channels are zeros, read the wide tensors
    assert sum(n.op == "pad" for n in session.graph.nodes) == 0
    assert session.pass_log["skip_zero_tail_slices"] == 2 and session.pass_log["narrow_padded_residuals"] == 1


@pytest.mark.parametrize("after", ["sigmoid", "relu_shifted"])
def test_padding_after_a_sigmoid_is_not_skipped(device, rng, after):
    """A padded convolution whose activation does not keep 0 at 0 (sigmoid; or a ReLU with a shift
    after it in its epilogue, ``affine_after``) leaves non-zeros in its extra channels: the next
    convolution's input padding must not read them (the slice is not marked)."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 6, 6))
    h = b.conv2d(x, b.constant(rng.standard_normal((6, 8, 1, 1)).astype(np.float32)),
                 activation="sigmoid" if after == "sigmoid" else "relu")
    if after == "relu_shifted":
        h = b.add(h, b.constant(np.float32([0.5])))
    y = b.conv2d(h, b.constant(rng.standard_normal((8, 6, 3, 3)).astype(np.float32)), padding=(1, 1, 1, 1))
    session, got, want = run_both(b, {"y": y}, {"x": rng.standard_normal((1, 8, 6, 6)).astype(np.float32)})
    assert session.pass_log["skip_zero_tail_slices"] == 0 and session.pass_log["pad_conv_channels"] == 2
    assert rel_l2(got["y"], want["y"]) < 1e-5


@pytest.mark.parametrize("scaled", [False, True])
def test_split_wide_matmuls_keeps_results(device, rng, scaled):
    """A weight matrix larger than the binding limit becomes column slices and a concat, same result;
    a product scaled by a number computed at run time (``fuse_product_factor``) keeps that factor in
    every slice."""
    from wgnn.passes import optimize, rules_for
    from wgnn.passes.split_wide_matmuls import split_wide_matmuls
    from wgnn.reference import run_reference

    b = wgnn.GraphBuilder()
    x, s = b.input("x", (3, 16)), b.input("s", ())
    w = b.constant(rng.standard_normal((16, 40)).astype(np.float32))
    bias = b.constant(rng.standard_normal(40).astype(np.float32))
    y = b.relu(b.add(b.mul(b.matmul(x, w), s), bias) if scaled else b.gemm(x, w, bias))
    graph = b.build_graph({"y": y})
    feeds = {"x": rng.standard_normal((3, 16)).astype(np.float32), "s": np.float32(0.3)}
    want = run_reference(graph.copy(), feeds)["y"]
    assert optimize(graph, rules_for("compute") if scaled else None)["fuse_product_factor"] == int(scaled)
    assert split_wide_matmuls(graph, 16 * 12 * 4) == 1  # 12 columns of 16 floats fit: slices 12, 12, 12, 4
    assert [n.op for n in graph.nodes].count("matmul") == 4 and graph.nodes[-1].op == "concat"
    products = [n for n in graph.nodes if n.op == "matmul"]
    assert all(n.attrs.get("activation") is not None for n in products)  # relu kept
    assert all((len(n.inputs) > 5 and n.inputs[5].name == "s") == scaled for n in products)
    np.testing.assert_allclose(run_reference(graph, feeds)["y"], want, rtol=1e-5, atol=1e-6)


def test_winograd_only_where_it_qualifies(device, rng):
    """3x3 stride-1 convolutions become Winograd form; strided, dilated, grouped ones, and ones
    whose transformed tensors would not fit one binding, stay direct."""
    from wgnn.passes.winograd import winograd_convs

    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 12, 12))

    def conv(inp, **kw):
        cpg = 8 // kw.get("groups", 1)
        return b.conv2d(inp, b.constant(rng.standard_normal((8, cpg, 3, 3)).astype(np.float32)), **kw)

    y = conv(x, padding=(1, 1, 1, 1))
    y = conv(y, strides=2, padding=(1, 1, 1, 1))
    y = conv(y, dilations=2, padding=(2, 2, 2, 2))
    y = conv(y, groups=2, padding=(1, 1, 1, 1))
    graph = b.build_graph({"y": y})
    assert winograd_convs(graph.copy(), 16 * 36 * 8 * 4 - 1) == 0  # 36 tiles of the first: one byte short
    assert winograd_convs(graph, 1 << 30) == 1
    assert [n.op for n in graph.nodes] == ["winograd_input", "matmul", "winograd_output", "conv2d", "conv2d", "conv2d"]


def test_static_value_walks_diamonds_once_and_deep_graphs_without_recursion():
    """Whether a value is known at compile time: through sixteen layers that each split in two and
    meet again (a dynamic quantize's min and max meeting in its scale) the walk visits each value
    once, not once per path (2^16: this would not finish); through a chain 5000 ops deep, where a
    recursive walk would pass Python's recursion limit, it answers too, for a value computed from
    constants (evaluated in order) and for one from an input (None)."""
    from wgnn.ops import registry

    b = wgnn.GraphBuilder()
    y = b.input("x", (4,))
    for _ in range(16):
        y = b.add(b.relu(y), b.sigmoid(y))
    assert registry.static_value(y) is None
    c = b.constant(np.zeros(3, np.float32))
    x = b.input("deep", (3,))
    for _ in range(5000):
        c = b.add(c, b.constant(np.ones(3, np.float32)))
        x = b.add(x, b.constant(np.ones(3, np.float32)))
    np.testing.assert_array_equal(registry.static_value(c), np.full(3, 5000, np.float32))
    assert registry.static_value(x) is None


def test_common_subexpressions_are_computed_once(device, rng):
    """The same op on the same inputs with the same attributes runs once; a different attribute,
    a different input, or a graph output of its own keeps its node."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 3, 8))
    s1, s2 = b.sigmoid(x), b.sigmoid(x)  # the same: one
    t1, t2 = b.transpose(s1, (0, 2, 1)), b.transpose(s2, (0, 2, 1))  # the same once s2 is s1
    c1, c2 = b.clamp(x, min_value=0.0, max_value=1.0), b.clamp(x, min_value=0.0, max_value=2.0)  # differ
    y = b.add(b.add(t1, t2), b.add(b.transpose(c1, (0, 2, 1)), b.transpose(c2, (0, 2, 1))))
    feeds = {"x": rng.standard_normal((2, 3, 8)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y, "s2": s2}, feeds)
    assert rel_l2(got["y"], want["y"]) < 1e-6 and rel_l2(got["s2"], want["s2"]) < 1e-6
    # s2 is a graph output: kept, so the transposes of s1 and s2 differ; nothing else repeats
    assert session.pass_log["eliminate_common_subexpressions"] == 0
    session, got, want = run_both(b, {"y": y}, feeds)
    assert rel_l2(got["y"], want["y"]) < 1e-6
    assert session.pass_log["eliminate_common_subexpressions"] == 2  # the second sigmoid, then its transpose


def test_common_subexpressions_among_many_readers_of_one_tensor(device, rng):
    """Many nodes of one op read one tensor, as an unrolled recurrent layer slices its input per
    step: those with equal attributes merge into the first, whichever comes between, and a rule
    that has nothing to match asks nobody who reads what (the walk of every node's inputs that
    most rules otherwise cost a graph)."""
    from wgnn.graph import Graph
    from wgnn.passes import fuse_gelu, fuse_layer_norm, fuse_softmax

    b = wgnn.GraphBuilder()
    x = b.input("x", (12, 4))
    starts = [3, 0, 5, 3, 0, 7, 5, 3]  # (four distinct, four repeats)
    parts = [b.slice(x, [k], [k + 1]) for k in starts]
    y = b.concat([b.relu(p) for p in parts], 0)
    feeds = {"x": rng.standard_normal((12, 4)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y}, feeds)
    np.testing.assert_array_equal(got["y"], want["y"])
    assert session.pass_log["eliminate_common_subexpressions"] == 8  # four slices, then their ReLUs

    walks = []
    consumers = Graph.consumers
    graph = b.build_graph({"y": y})
    try:
        Graph.consumers = lambda self: walks.append(1) or consumers(self)
        assert [rule(graph) for rule in (fuse_gelu, fuse_layer_norm, fuse_softmax)] == [0, 0, 0]
    finally:
        Graph.consumers = consumers
    assert walks == []


def test_a_scale_and_shift_run_as_one_multiply_add(device, rng, precision):
    """A batch norm after no convolution (a scale and a shift) and a product times a computed scalar
    plus a bias and another constant (dynamic quantization's ending; an LSTM's second bias), each
    with a ReLU after: one muladd dispatch each, the constants summed, the activation in it."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 6, 5, 5))
    s = b.input("s", ())
    y = b.relu(b.batch_normalization(b.sigmoid(x), b.constant(rng.standard_normal(6).astype(np.float32)),
                                     b.constant(rng.uniform(0.5, 1.5, 6).astype(np.float32)),
                                     scale=b.constant(rng.standard_normal(6).astype(np.float32)),
                                     bias=b.constant(rng.standard_normal(6).astype(np.float32))))
    a = b.input("a", (3, 8))
    z = b.relu(b.add(b.add(b.mul(b.matmul(a, b.constant(rng.standard_normal((8, 4)).astype(np.float32))), s),
                           b.constant(rng.standard_normal(4).astype(np.float32))),
                     b.constant(rng.standard_normal((3, 1)).astype(np.float32))))  # (a second shift joins the first)
    feeds = {"x": rng.standard_normal((2, 6, 5, 5)).astype(np.float32), "s": np.float32(0.7),
             "a": rng.standard_normal((3, 8)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y, "z": z}, feeds, precision=precision)
    for name in ("y", "z"):
        assert rel_l2(got[name], want[name]) < {"fp32": 1e-5, "fp16": 5e-3}[precision], name
    assert session.pass_log["fuse_muladd"] == 3
    ops = [d.node.op for d in session._exe.dispatches]
    # the ReLUs inside; the sigmoid and the first muladd then one fused chain (fuse_elementwise)
    assert ops == ["fused_elementwise", "matmul", "muladd"]
    chain = session._exe.dispatches[0].node.attrs["steps"]
    assert [(kind, act and act[0]) for kind, _, act in chain] == [("activation", "sigmoid"), ("muladd", "relu")]


@pytest.mark.parametrize("k", [0.25, 0.0])
def test_a_factor_times_a_constant_number_is_the_multiply_adds_scale(device, rng, precision, k):
    """Dynamic quantization's ending, sums * (x_scale * w_scale) + bias with w_scale a constant: the
    scalar product is no dispatch of its own but the scale (0 too) of the multiply-add, which the
    product itself then runs in its epilogue (``fuse_product_factor``: x_scale its factor, the bias
    its own); where its sums are also an output, the muladd stays (scale and all). The numpy
    reference's values."""
    b = wgnn.GraphBuilder()
    a, s = b.input("a", (3, 8)), b.input("s", ())
    weights = [b.constant(rng.standard_normal((8, 4)).astype(np.float32)) for _ in range(2)]
    outs = {}
    for name, w in zip(("z", "kept"), weights):
        sums = b.matmul(a, w)
        outs[name] = b.add(b.mul(b.mul(s, b.constant(np.float32(k))), sums),
                           b.constant(rng.standard_normal(4).astype(np.float32)))
    outs["sums"] = sums  # (the second product's result read twice: no factor for it)
    feeds = {"a": rng.standard_normal((3, 8)).astype(np.float32), "s": np.float32(0.7)}
    session, got, want = run_both(b, outs, feeds, precision=precision)
    for name in outs:
        assert rel_l2(got[name], want[name]) < tol(precision), name
    assert [d.node.op for d in session._exe.dispatches] == ["matmul", "matmul", "muladd"]
    first, _, muladd = (d.node for d in session._exe.dispatches)
    assert first.attrs["factor_scale"] == k and first.inputs[5].name == "s" and muladd.attrs["scale"] == k


def test_a_product_scaled_at_run_time_into_the_residual_stream_is_one_dispatch(device, rng, precision, monkeypatch):
    """T5's quantized projections: sums * (x_scale * w_scale) added straight to the residual stream
    (no bias), and sums * (x_scale * w_scale) through a ReLU: each product scales its sums in its
    epilogue, the first adding the stream as its residual (``fuse_product_factor``), two matmul
    dispatches in all; the numpy reference's values, and in fp32 the unfused passes' bits."""
    from wgnn import passes

    b = wgnn.GraphBuilder()
    a, s, r = b.input("a", (5, 8)), b.input("s", ()), b.input("r", (5, 12))
    factors = [b.mul(s, b.constant(np.float32(w_scale))) for w_scale in (0.03, 0.05)]  # (one per product)
    sums = [b.matmul(a, b.constant(rng.integers(-127, 128, (8, 12)).astype(np.float32))) for _ in range(2)]
    outs = {"stream": b.add(r, b.mul(sums[0], factors[0])), "relu": b.relu(b.mul(factors[1], sums[1]))}
    feeds = {"a": rng.standard_normal((5, 8)).astype(np.float32), "s": np.float32(0.7),
             "r": rng.standard_normal((5, 12)).astype(np.float32)}
    session, got, want = run_both(b, outs, feeds, precision=precision)
    for name in outs:
        assert rel_l2(got[name], want[name]) < tol(precision), name
    assert [d.node.op for d in session._exe.dispatches] == ["matmul", "matmul"]
    stream, relu = (d.node for d in session._exe.dispatches)
    assert stream.inputs[3].name == "r" and stream.attrs["activation"] is None
    assert relu.inputs[3] is None and relu.attrs["activation"].kind == "relu"
    assert stream.inputs[5].name == relu.inputs[5].name == "s"
    assert (stream.attrs["factor_scale"], relu.attrs["factor_scale"]) == (np.float32(0.03), np.float32(0.05))
    if precision == "fp32":
        monkeypatch.setitem(passes.BACKEND_RULES, "compute", [rule for rule in passes.BACKEND_RULES["compute"]
                                                              if rule is not passes.fuse_product_factor])
        apart = wgnn.InferenceSession(b.build_graph(outs))
        assert apart.dispatch_count == 4
        for name, value in apart.compute(feeds).items():
            np.testing.assert_array_equal(got[name], value)


@pytest.mark.parametrize("order", ["sums_first", "scale_first"])
def test_a_factor_computed_at_run_time_goes_into_the_multiply_add(device, rng, precision, order):
    """Dynamic quantization's products times x_scale * w_scale (x_scale computed at run time, w_scale
    a constant), then a batch norm's per-channel scale and shift with a ReLU: the product scales its
    sums itself, x_scale its factor and w_scale the factor's scale (``fuse_product_factor``), and
    one muladd applies the batch norm (the tensor pass and the scalar product are no dispatches of
    their own); the numpy reference's values."""
    b = wgnn.GraphBuilder()
    a, s = b.input("a", (3, 8)), b.input("s", (1,))
    sums = b.matmul(a, b.constant(rng.standard_normal((8, 12)).astype(np.float32)))
    factor = b.mul(s, b.constant(np.float32(0.25)))
    scaled = b.mul(sums, factor) if order == "sums_first" else b.mul(factor, sums)
    k, c = (b.constant(rng.standard_normal(12).astype(np.float32)) for _ in range(2))
    z = b.relu(b.add(b.mul(scaled, k) if order == "sums_first" else b.mul(k, scaled), c))
    feeds = {"a": rng.standard_normal((3, 8)).astype(np.float32), "s": np.array([0.7], np.float32)}
    session, got, want = run_both(b, {"z": z}, feeds, precision=precision)
    assert rel_l2(got["z"], want["z"]) < tol(precision) and np.mean(got["z"] == 0) > 0.2
    assert [d.node.op for d in session._exe.dispatches] == ["matmul", "muladd"]
    product, muladd = (d.node for d in session._exe.dispatches)
    assert product.attrs["factor_scale"] == 0.25 and product.inputs[5].name == "s" and len(muladd.inputs) == 3


@pytest.mark.parametrize("form", ["div_six", "times_sixth_inside", "hard_sigmoid"])
def test_written_out_batch_norm_and_hard_swish_fold_into_the_convolution(device, form, rng):
    """What paddle2onnx writes after a convolution (opset 12): the batch norm as Mul and Add of
    per-channel constants, and hard swish as x * Clip(x + 3, 0, 6) / 6 (or its other groupings):
    one convolution dispatch, against ONNX Runtime."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    x = rng.standard_normal((1, 8, 9, 9)).astype(np.float32)
    consts = {"w": (rng.standard_normal((8, 8, 3, 3)) / 6).astype(np.float32),
              "k": rng.uniform(0.5, 1.5, (1, 8, 1, 1)).astype(np.float32),
              "d": rng.standard_normal((1, 8, 1, 1)).astype(np.float32),
              "three": np.float32(3), "zero": np.float32(0), "six": np.float32(6), "sixth": np.float32(1 / 6)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Mul", ["c", "k"], ["m"]),
             helper.make_node("Add", ["m", "d"], ["a"])]
    if form == "hard_sigmoid":
        nodes += [helper.make_node("HardSigmoid", ["a"], ["g"], alpha=1 / 6, beta=0.5),
                  helper.make_node("Mul", ["a", "g"], ["y"])]
    else:
        nodes += [helper.make_node("Add", ["a", "three"], ["p"]), helper.make_node("Clip", ["p", "zero", "six"], ["r"])]
        if form == "div_six":
            nodes += [helper.make_node("Mul", ["a", "r"], ["q"]), helper.make_node("Div", ["q", "six"], ["y"])]
        else:
            nodes += [helper.make_node("Mul", ["r", "sixth"], ["g"]), helper.make_node("Mul", ["a", "g"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, n) for n, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=7)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    session = wgnn.InferenceSession(model)
    assert rel_l2(session.run(None, {"x": x})[0], want) < 1e-5
    assert (session.pass_log["fold_conv_affine"], session.pass_log["fuse_hard_swish"]) == (2, 1)
    assert [d.node.op for d in session._exe.dispatches if d.node.op != "relayout"] == ["winograd_input", "matmul",
                                                                                       "winograd_output"]


@pytest.mark.parametrize("groups,readers", [(1, 1), (8, 1), (8, 2)])
def test_zero_padding_folds_into_the_convolution(device, groups, readers, rng):
    """Keras' ZeroPadding2D before a strided convolution (a PAD op, asymmetric here) becomes the
    convolution's own padding, or the padding of each convolution that reads it (BlazePose's heads:
    two depthwise ones): no pad dispatch, ONNX Runtime's result; a padding with another value
    stays."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    x = rng.standard_normal((1, 8, 11, 10)).astype(np.float32)
    w = (rng.standard_normal((8, 8 // groups, 3, 3)) / 4).astype(np.float32)
    for value, folds in ((0.0, 1), (0.5, 0)):
        nodes = [helper.make_node("Pad", ["x", "pads", "value"], ["p"], mode="constant"),
                 helper.make_node("Conv", ["p", "w"], ["c"], strides=[2, 2], group=groups),
                 helper.make_node("Relu", ["c"], ["y"])]
        if readers == 2:
            nodes[2:] = [helper.make_node("Conv", ["p", "w2"], ["c2"], strides=[2, 2], group=groups),
                         helper.make_node("Add", ["c", "c2"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
        consts = {"w": w, "w2": w[::-1].copy(), "pads": np.array([0, 0, 0, 1, 0, 0, 1, 2], np.int64),
                  "value": np.float32(value)}
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  [numpy_helper.from_array(v, n) for n, v in consts.items()])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
        reference = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        session = wgnn.InferenceSession(model)
        assert rel_l2(session.run(None, {"x": x})[0], reference.run(None, {"x": x})[0]) < 1e-5
        assert session.pass_log["fold_pad_into_conv"] == folds
        assert ("pad" in {d.node.op for d in session._exe.dispatches}) == (not folds)


@pytest.mark.parametrize("variant", ["default", "direct", "gemm", "generic", "depthwise"])
def test_a_convolution_over_one_column_runs_as_one_over_a_row(device, precision, rng, variant):
    """A 1-D convolution exported over H with W of 1 (a (k, 1) filter, as Keras' Conv1D through
    tf2onnx: Magika) runs with H and W swapped, through transposes that are views: strides,
    dilations, padding and a fused residual follow, no copy is added, every variant gives the
    reference; padding on W (an output wider than the input) keeps the convolution as it is."""
    depthwise = variant == "depthwise"
    cin, cout, groups = (8, 8, 8) if depthwise else (8, 12, 1)
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, cin, 19, 1))
    w = b.constant((rng.standard_normal((cout, cin // groups, 3, 1)) / 3).astype(np.float32))
    conv = b.conv2d(x, w, bias=b.constant(rng.standard_normal(cout).astype(np.float32)), strides=(2, 1),
                    dilations=(2, 1), padding=(2, 1, 0, 0), groups=groups)
    r = b.input("r", conv.shape)
    y = b.relu(b.add(conv, r))
    wide = b.conv2d(b.input("x2", (2, cin, 19, 1)), w, padding=(1, 1, 1, 1), groups=groups)  # W padded: stays
    feeds = {"x": rng.standard_normal((2, cin, 19, 1)).astype(np.float32),
             "x2": rng.standard_normal((2, cin, 19, 1)).astype(np.float32),
             "r": rng.standard_normal(conv.shape).astype(np.float32)}
    kernels = {} if variant == "default" else {"conv2d": variant}
    session, got, want = run_both(b, {"y": y, "wide": wide}, feeds, precision=precision, kernels=kernels)
    assert session.pass_log["columns_as_rows"] == 1
    assert rel_l2(got["y"], want["y"]) < tol(precision) and rel_l2(got["wide"], want["wide"]) < tol(precision)
    convs = [n for n in session.graph.nodes if n.op == "conv2d"]
    assert sorted(n.inputs[0].shape[2:] for n in convs) == [(1, 19), (19, 1)]
    assert [n for n in convs if n.inputs[0].shape[2] == 1][0].attrs["activation"] is not None  # relu fused
    ops = [d.node.op for d in session._exe.dispatches]  # the add and relu in the epilogue, no copy added:
    assert set(ops) == {"conv2d", "relayout"} and ops.count("relayout") <= 5  # the graph's inputs and outputs


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_a_one_hot_product_is_a_gather(device, precision, rng, index_dtype):
    """Equal(indices, range(K)) -> Cast -> MatMul(W), JAX's one_hot times a dense layer (Magika's
    first layer), is a gather of W's rows: one dispatch, ONNX Runtime's result, a zero row for an
    index that matches nothing (negative or past K: no wrapping)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    k, n = 11, 8
    idx = rng.integers(0, k, (2, 7)).astype(index_dtype)
    idx[0, :3] = [-1, k, 300]
    consts = {"axes": np.array([-1], np.int64), "range": np.arange(k, dtype=index_dtype).reshape(1, 1, k),
              "w": rng.standard_normal((k, n)).astype(np.float32), "b": rng.standard_normal(n).astype(np.float32)}
    nodes = [helper.make_node("Unsqueeze", ["idx", "axes"], ["u"]), helper.make_node("Equal", ["u", "range"], ["e"]),
             helper.make_node("Cast", ["e"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["f", "w"], ["p"]),
             helper.make_node("Add", ["p", "b"], ["y"])]
    kind = TensorProto.INT32 if index_dtype == np.int32 else TensorProto.INT64
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("idx", kind, idx.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, name) for name, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"idx": idx})
    session = wgnn.InferenceSession(model, precision=precision)
    got = session.run(None, {"idx": idx})[0]
    assert rel_l2(got, want[0]) < tol(precision)
    np.testing.assert_allclose(got[0, :3], np.broadcast_to(consts["b"], (3, n)), rtol=1e-3, atol=1e-3)
    assert session.pass_log["one_hot_products_as_gathers"] == 1
    assert [d.node.op for d in session._exe.dispatches] == ["gather", "binary"]


@pytest.mark.parametrize("case", ["forward_initial_states", "bidirectional", "custom_activations", "peepholes"])
def test_lstm_steps_run_as_one_cell_kernel(device, precision, rng, case):
    """ONNX's LSTM unrolled: each step's gates, activations and state update (eleven to thirteen
    nodes) become one lstm_cell node, and with the step's product one lstm_step dispatch; without
    initial states the first step has no cell state to forget; other activations (alpha and beta
    too) go into the kernel; a layer with peepholes keeps its written-out form. ONNX Runtime's
    outputs, all three."""
    steps, batch, size, hidden = 5, 2, 6, 8
    dirs = 2 if case == "bidirectional" else 1
    x = rng.standard_normal((steps, batch, size)).astype(np.float32)
    consts = {"w": (rng.standard_normal((dirs, 4 * hidden, size)) / 2).astype(np.float32),
              "r": (rng.standard_normal((dirs, 4 * hidden, hidden)) / 2).astype(np.float32),
              "b": rng.standard_normal((dirs, 8 * hidden)).astype(np.float32)}
    ins = ["x", "w", "r", "b"]
    attrs = {"hidden_size": hidden, "direction": "bidirectional" if dirs == 2 else "forward"}
    if case == "forward_initial_states":
        consts.update(h0=rng.standard_normal((1, batch, hidden)).astype(np.float32),
                      c0=rng.standard_normal((1, batch, hidden)).astype(np.float32))
        ins += ["", "h0", "c0"]
    if case == "custom_activations":
        attrs.update(activations=["HardSigmoid", "Tanh", "LeakyRelu"], activation_alpha=[0.3, 1.0, 0.2],
                     activation_beta=[0.4, 0.0, 0.0])
    if case == "peepholes":
        consts["p"] = rng.standard_normal((1, 3 * hidden)).astype(np.float32)
        ins += ["", "", "", "p"]
    session, outputs, want = lstm_against_onnxruntime(x, consts, ins, attrs, precision)
    for got, expected in zip(outputs, want):
        assert rel_l2(got, expected) < tol(precision)
    fused = 0 if case == "peepholes" else steps * dirs
    assert session.pass_log["fuse_lstm_cell"] == fused
    # every step after the first is one lstm_step (product and cell); the first's product of a
    # constant initial state folds away, leaving its cell
    kernels = [d.kernel for d in session._exe.dispatches]
    assert kernels.count("lstm_cell") == (dirs if fused else 0)
    assert kernels.count("lstm_step") == fused - kernels.count("lstm_cell")


@pytest.mark.parametrize("variant", ["row", "workgroup"])
@pytest.mark.parametrize("hidden, batch", [(7, 3), (20, 3), (20, 5), (20, 6), (7, 9)])
def test_lstm_step_variants(device, precision, rng, variant, hidden, batch):
    """Each variant of the whole-step kernel forced (an invocation per hidden unit; a workgroup's
    invocations sharing each unit's product): a hidden size that does not divide by 4 (h read as
    scalars, the last rows of R^T one by one) and one that does (vec4s); a batch of 3 (one
    invocation's rows), of 6 and 9 (spread evenly: three rows an invocation, twice and three
    times) and of 5 (three rows, then two: the last group's third row past the batch); initial
    states and both biases, both directions. ONNX Runtime's outputs, all three; every step after
    the first runs on the variant asked for, on a grid of (blocks of units, groups of rows)."""
    steps, size = 4, 5
    x = rng.standard_normal((steps, batch, size)).astype(np.float32)
    consts = {"w": (rng.standard_normal((2, 4 * hidden, size)) / 2).astype(np.float32),
              "r": (rng.standard_normal((2, 4 * hidden, hidden)) / np.sqrt(hidden)).astype(np.float32),
              "b": rng.standard_normal((2, 8 * hidden)).astype(np.float32),
              "h0": rng.standard_normal((2, batch, hidden)).astype(np.float32),
              "c0": rng.standard_normal((2, batch, hidden)).astype(np.float32)}
    session, outputs, want = lstm_against_onnxruntime(
        x, consts, ["x", "w", "r", "b", "", "h0", "c0"], {"hidden_size": hidden, "direction": "bidirectional"},
        precision, kernels={"lstm_step": variant})
    for got, expected in zip(outputs, want):
        assert rel_l2(got, expected) < tol(precision)
    steps_run = [d for d in session._exe.dispatches if d.kernel == "lstm_step"]
    assert len(steps_run) == 2 * (steps - 1) and all(d.variant.startswith(variant) for d in steps_run), steps_run
    assert {d.workgroups[1] for d in steps_run} == {-(-batch // 4)}  # (the groups of rows: 4 at most)


@pytest.mark.parametrize("variant", ["default", "winograd", "direct", "gemm", "gemm_split", "generic", "depthwise",
                                     "matmul_tiled", "matmul_gemm_split", "matmul_generic"])
def test_residual_added_after_the_activation(device, precision, rng, variant):
    """y = skip + SiLU(conv(x)) (YOLO's bottlenecks) and skip + GELU(x @ w): the Add is the
    product's residual, added after its activation, on every kernel variant (Winograd's output
    transform and split-K's reduction too); an Add with an activation of its own stays apart."""
    from wgnn.backends.compute.policy import Choice

    b = wgnn.GraphBuilder()
    if variant.startswith("matmul"):
        x = b.input("x", (6, 16))
        w = b.constant((rng.standard_normal((16, 12)) / 4).astype(np.float32))
        y = b.activation(b.matmul(x, w), "gelu")
        op, kind = "matmul", variant.split("_", 1)[1]
    else:
        groups = 8 if variant == "depthwise" else 1
        x = b.input("x", (1, 8, 9, 10))
        w = b.constant((rng.standard_normal((8, 8 // groups, 3, 3)) / 3).astype(np.float32))
        y = b.conv2d(x, w, bias=b.constant(rng.standard_normal(8).astype(np.float32)), padding=(1, 1, 1, 1),
                     groups=groups)
        y = b.mul(y, b.sigmoid(y))
        op, kind = "conv2d", variant
    skip = b.input("skip", y.shape)
    out = b.add(y, skip)
    apart = b.relu(b.add(b.activation(b.matmul(b.reshape(skip, (-1, skip.shape[-1])),
                                               b.constant(np.eye(skip.shape[-1], dtype=np.float32))), "tanh"),
                         b.reshape(skip, (-1, skip.shape[-1]))))
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32),
             "skip": rng.standard_normal(skip.shape).astype(np.float32)}
    choice = Choice("gemm", split=2) if kind.endswith("split") else None if kind == "default" else Choice(kind)
    kernels = {} if choice is None else {op: choice}
    session, got, want = run_both(b, {"out": out, "apart": apart}, feeds, precision=precision, kernels=kernels)
    if choice is not None:
        assert choice.variant in {c.split()[0] for c in session.kernel_choices().values()}
    assert rel_l2(got["out"], want["out"]) < tol(precision) and rel_l2(got["apart"], want["apart"]) < tol(precision)
    assert session.pass_log["fuse_residual_after_activation"] == 1
    assert [n.op for n in session.graph.nodes].count("binary") == 1  # apart's


@pytest.mark.parametrize("variant", ["default", "winograd", "direct", "subgroup", "gemm", "gemm_split", "generic",
                                     "depthwise", "pointwise", "gemv"])
def test_a_residual_padded_with_zero_channels_is_read_narrow(device, precision, rng, variant):
    """conv(x) + pad(skip, zero channels after its own) (MediaPipe's BlazeFace and BlazePose
    blocks): the convolution reads skip as it is, zero for the channels beyond it, on every kernel
    variant (Winograd's output transform, split-K's reduction, f16 arithmetic; the scalar kernel
    through a padded copy of its own), added before or after the activation: no pad node is left.
    A pad with another value or along H stays."""
    from wgnn.backends.compute.policy import Choice

    b = wgnn.GraphBuilder()
    c, o, k, hw = (8, 8, 3, (9, 10)) if variant == "depthwise" else \
        (8, 12, 1, (1, 1) if variant == "gemv" else (5, 6)) if variant in ("pointwise", "gemv") else (8, 12, 3, (9, 10))
    x = b.input("x", (1, c, *hw))
    w = b.constant((rng.standard_normal((o, c // (8 if variant == "depthwise" else 1), k, k)) / 3).astype(np.float32))
    def conv():
        return b.conv2d(x, w, bias=b.constant(rng.standard_normal(o).astype(np.float32)), padding=(k // 2,) * 4,
                        groups=8 if variant == "depthwise" else 1)

    y = conv()
    narrow = 4
    skip = b.input("skip", (1, narrow, *hw))
    padded = b.pad(skip, (0, 0, 0, 0, 0, o - narrow, 0, 0))
    after = variant in ("winograd", "gemm_split", "generic", "gemv")
    out = b.add(b.mul(y, b.sigmoid(y)), padded) if after else b.relu(b.add(y, padded))
    kept = b.add(conv(), b.pad(skip, (0, 0, 0, 0, 0, o - narrow, 0, 0), value=1.0))
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32),
             "skip": rng.standard_normal(skip.shape).astype(np.float32)}
    kinds = [variant] + (["gemm_f16"] if variant == "gemm" and precision == "fp16" else [])
    for kind in kinds:
        choice = Choice("gemm", split=2) if kind == "gemm_split" else None if kind == "default" else Choice(kind)
        session, got, want = run_both(b, {"out": out, "kept": kept}, feeds, precision=precision,
                                      kernels={} if choice is None else {"conv2d": choice})
        if choice is not None:
            assert choice.variant in {c.split()[0] for c in session.kernel_choices().values()}, kind
        assert rel_l2(got["out"], want["out"]) < tol(precision), kind
        assert rel_l2(got["kept"], want["kept"]) < tol(precision), kind
        assert session.pass_log["narrow_padded_residuals"] == 1
        assert [n.op for n in session.graph.nodes].count("pad") == 1  # kept's


@pytest.mark.parametrize("variant", ["default", "winograd", "direct", "gemm_split", "generic", "depthwise",
                                     "matmul_tiled", "matmul_gemm_split", "matmul_generic"])
def test_a_scale_and_shift_after_the_activation_go_into_the_epilogue(device, precision, rng, variant):
    """PP-LCNetV3's affine blocks (PaddleOCR's PP-OCRv5): HardSwish(conv(x)) * a + b, each a single
    number, is the convolution's epilogue (``affine_after``), after a residual added after the
    activation too, on every kernel variant; Div and Sub count as Mul and Add, either step alone
    too. A per-channel scale, or a product whose result something else also reads, stays apart."""
    from wgnn.backends.compute.policy import Choice

    b = wgnn.GraphBuilder()
    if variant.startswith("matmul"):
        x = b.input("x", (6, 16))

        def product(name):
            return b.matmul(x, b.constant((rng.standard_normal((16, 12)) / 4).astype(np.float32)), name=name)
        op, kind = "matmul", variant.split("_", 1)[1]
    else:
        groups = 8 if variant == "depthwise" else 1
        x = b.input("x", (1, 8, 9, 10))

        def product(name):
            return b.conv2d(x, b.constant((rng.standard_normal((8, 8 // groups, 3, 3)) / 3).astype(np.float32)),
                            bias=b.constant(rng.standard_normal(8).astype(np.float32)), padding=(1, 1, 1, 1),
                            groups=groups, name=name)
        op, kind = "conv2d", variant

    def number(v):
        return b.constant(np.float32([v]))

    y = product("p1")
    skip = b.input("skip", y.shape)
    out = b.add(b.mul(b.hard_swish(y), number(0.7)), number(-0.3))
    residual = b.sub(b.div(b.add(b.relu(product("p2")), skip), number(4.0)), number(0.25))
    shift = b.add(b.hard_swish(product("p3")), number(0.5))
    channels = b.mul(b.hard_swish(product("p4")), b.constant(rng.uniform(0.5, 1.5, y.shape[-1:] if op == "matmul"
                                                                    else (8, 1, 1)).astype(np.float32)))
    twice = b.hard_swish(product("p5"))
    read_twice = b.add(b.mul(twice, number(2.0)), twice)
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32),
             "skip": rng.standard_normal(skip.shape).astype(np.float32)}
    outputs = {"out": out, "residual": residual, "shift": shift, "channels": channels, "read_twice": read_twice}
    choice = Choice("gemm", split=2) if kind.endswith("split") else None if kind == "default" else Choice(kind)
    session, got, want = run_both(b, outputs, feeds, precision=precision,
                                  kernels={} if choice is None else {op: choice})
    if choice is not None:
        assert choice.variant in {c.split()[0] for c in session.kernel_choices().values()}
    for name in outputs:
        assert rel_l2(got[name], want[name]) < tol(precision), name
    assert session.pass_log["fuse_affine_after_activation"] == 3
    fused = {n.name: n.attrs.get("affine_after") for n in session.graph.nodes if n.attrs.get("affine_after")}
    assert sorted(fused.values()) == sorted([(np.float32(0.7), np.float32(-0.3)), (0.25, -0.25), (1.0, 0.5)]), fused


@pytest.mark.parametrize("case", ["2x2_relu", "2x2_one_channel_sigmoid", "3x3", "2x1_prelu", "padded", "grouped"])
def test_a_transposed_convolution_whose_filter_is_its_stride_runs_as_a_pixel_shuffle(device, precision, rng, case):
    """PP-OCR's detector head: a transposed convolution with a KH x KW filter and strides (KH, KW),
    then its bias and a batch norm written out as an Add, a Mul and an Add, then an activation: the
    steps fold into its weights and bias (``fold_conv_affine``), and it runs as a 1x1 convolution to
    KH * KW times the channels and one depth-to-space copy (``transposed_as_pixel_shuffle``), with
    the activation (a PRelu's slopes too) in the convolution's epilogue: the reference's results, no
    transposed-convolution kernel. Padded ones (outputs that overlap) and grouped ones keep that
    kernel, the steps folded all the same."""
    o, (kh, kw), pads = {"2x2_relu": (8, (2, 2), (0,) * 4), "2x2_one_channel_sigmoid": (1, (2, 2), (0,) * 4),
                         "3x3": (4, (3, 3), (0,) * 4), "2x1_prelu": (8, (2, 1), (0,) * 4),
                         "padded": (8, (3, 3), (1, 1, 1, 1)), "grouped": (8, (2, 2), (0,) * 4)}[case]
    groups = 2 if case == "grouped" else 1
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 12, 7, 9))
    w = b.constant((rng.standard_normal((12, o // groups, kh, kw)) / 3).astype(np.float32))
    y = b.conv_transpose2d(x, w, strides=(2, 2) if case == "padded" else (kh, kw), padding=pads, groups=groups)

    def per_channel(lo, hi):
        return b.constant(rng.uniform(lo, hi, (1, o, 1, 1)).astype(np.float32))

    y = b.add(b.mul(b.add(y, per_channel(-1, 1)), per_channel(0.5, 1.5)), per_channel(-0.5, 0.5))
    y = (b.sigmoid(y) if "sigmoid" in case else
         b.prelu(y, b.constant(rng.uniform(0.1, 0.3, (o, 1, 1)).astype(np.float32))) if "prelu" in case else b.relu(y))
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32)}
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    assert rel_l2(got["y"], want["y"]) < tol(precision)
    assert session.pass_log["fold_conv_affine"] == 3
    shuffled = case not in ("padded", "grouped")
    assert session.pass_log["transposed_as_pixel_shuffle"] == shuffled
    assert ("conv_transpose" in kernels_used(session)) != shuffled
    assert [n.op for n in session.graph.nodes if n.op not in ("relayout",)] == (
        ["conv2d", "depth_to_space"] if shuffled else ["conv_transpose2d"])


def test_yolox_focus_copies_each_quarter_once(device, precision, rng):
    """YOLOX's Focus (every other row, then every other column of those, four ways, concatenated
    along the channels): the slices of slices compose into one slice each (``compose_slices``), and
    slices that only concats read are read by the concat's copies themselves, so four copies run
    instead of six slices and four copies; a slice something else also reads (a softmax, not one of
    the strided element-wise kernels, which read slices in place too) is still made, into
    the concat's result where it is one run of it that starts where the adapter binds storage (the
    concat stored channels first: ``data.contiguous_parts``), and the concat copies the others."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 3, 16, 12))
    rows = [b.slice(x, [r], [16], axes=[2], steps=[2]) for r in (0, 1)]
    quarters = [b.slice(rows[r], [c], [12], axes=[3], steps=[2]) for c in (0, 1) for r in (0, 1)]
    focus = b.concat(quarters, axis=1)
    y = b.conv2d(focus, b.constant((rng.standard_normal((8, 12, 3, 3)) / 3).astype(np.float32)),
                 padding=(1, 1, 1, 1))
    also = b.softmax(quarters[3], axis=-1)
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32)}
    # (the concat an output too, so it stays stored channels first: without a reader of its own it
    # would write the convolution's channels-last order, test_a_focus_concat_of_slices_...)
    session, got, want = run_both(b, {"y": y, "also": also, "focus": focus}, feeds, precision=precision)
    for name in ("y", "also", "focus"):
        assert rel_l2(got[name], want[name]) < tol(precision), name
    assert session.pass_log["compose_slices"] == 4
    ops = [d.node.op for d in session._exe.dispatches]
    # (the last quarter's first byte; f32 in fp16 too, as a softmax reads it and the output concat is)
    placed = 9 * 8 * 6 * 4 % device.storage_alignment == 0
    assert ops.count("concat") == 4 - placed and ops.count("slice") == 1, ops  # (the one the softmax also reads)


def test_a_split_of_a_padded_convolutions_channels_reads_the_convolution(device, precision, rng):
    """PP-PicoDet's heads: a convolution of 42 channels (padded to 44 by ``pad_conv_channels``, its
    result sliced back) split into scores and boxes: each part is one slice of the padded result,
    not a slice of the slice (``compose_slices`` through the ``zero_tail`` slice, which goes)."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 16, 10, 8))
    y = b.conv2d(x, b.constant((rng.standard_normal((42, 16, 1, 1)) / 4).astype(np.float32)))
    scores = b.sigmoid(b.slice(y, [0], [10], axes=[1]))
    boxes = b.slice(y, [10], [42], axes=[1])
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32)}
    session, got, want = run_both(b, {"scores": scores, "boxes": boxes}, feeds, precision=precision)
    for name in ("scores", "boxes"):
        assert rel_l2(got[name], want[name]) < tol(precision), name
    assert session.pass_log["pad_conv_channels"] == 1 and session.pass_log["compose_slices"] == 2
    slices = [n for n in session.graph.nodes if n.op == "slice"]
    assert len(slices) == 2 and all(n.inputs[0].producer.op == "conv2d" for n in slices)


def test_spp_pools_run_as_a_chain(device, precision, rng):
    """YOLOX's SPP (max pools of 5, 9 and 13 of one tensor, stride 1, padded by their radius, and
    the concat of all four): the 9 runs as the 5 of the 5, the 13 as the 5 of the 9, with the same
    values, at the image's edges too. Pools the identity does not cover stay as they are: an
    average pool, a stride of 2, a window (7) that no chain of 5s makes."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 13, 11))
    pools = [b.max_pool2d(x, window=(k, k), padding=(k // 2,) * 4) for k in (13, 5, 9)]
    y = b.concat([x] + pools, axis=1)
    others = [b.average_pool2d(x, window=(9, 9), padding=(4,) * 4),
              b.max_pool2d(x, window=(9, 9), strides=2, padding=(4,) * 4),
              b.max_pool2d(x, window=(7, 7), padding=(3,) * 4)]
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32)}
    outputs = {"y": y, **{f"other{i}": o for i, o in enumerate(others)}}
    session, got, want = run_both(b, outputs, feeds, precision=precision)
    for name in outputs:
        assert rel_l2(got[name], want[name]) < tol(precision), name
    if precision == "fp32":  # (maxima of the same values: exactly)
        np.testing.assert_array_equal(got["y"][:, 8:], want["y"][:, 8:])
    assert session.pass_log["chain_spp_pools"] == 2
    kernels = sorted(n.attrs["kernel"][0] for n in session.graph.nodes if n.op == "pool2d")
    assert kernels == [5, 5, 5, 7, 9, 9]


def test_a_concat_of_neighbouring_slices_reads_their_tensor(device, rng):
    """YOLOv8's C2f: a tensor split in two along the channels, the halves concatenated again
    after a block that reads the second: the concat reads the tensor (the first half is never
    made); neighbouring slices that cover part of it become one slice; slices out of order or
    with a gap stay as they are. The reference's results, fewer dispatches."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 6, 6))
    y = b.conv2d(x, b.constant((rng.standard_normal((8, 8, 1, 1)) / 3).astype(np.float32)))
    first, second = b.slice(y, [0], [4], axes=[1]), b.slice(y, [4], [8], axes=[1])
    m = b.relu(b.conv2d(second, b.constant((rng.standard_normal((4, 4, 3, 3)) / 3).astype(np.float32)),
                        padding=(1, 1, 1, 1)))
    whole = b.concat([first, second, m], axis=1)
    part = b.concat([b.slice(y, [2], [4], axes=[1]), b.slice(y, [4], [6], axes=[1]), m], axis=1)
    apart = b.concat([second, first, b.slice(y, [5], [8], axes=[1])], axis=1)
    feeds = {"x": rng.standard_normal((1, 8, 6, 6)).astype(np.float32)}
    outputs = {"whole": whole, "part": part, "apart": apart}
    session, got, want = run_both(b, outputs, feeds)
    for name in outputs:
        assert rel_l2(got[name], want[name]) < 1e-5, name
    assert session.pass_log["merge_concat_slices"] == 2
    concats = [n for n in session.graph.nodes if n.op == "concat"]
    assert sorted(len(n.inputs) for n in concats) == [2, 2, 3]
    plain = wgnn.InferenceSession(b.build_graph(outputs), optimize=False)
    assert session.dispatch_count < plain.dispatch_count


def test_a_reshape_keeps_the_bytes_where_its_runs_of_axes_lie_in_order(rng):
    """``reshaped_perm``: where it gives an order, the reshaped tensor stored in that order is the
    same bytes as the input stored in its own (checked on random shapes, orders and reshapes);
    squeezes, unsqueezes and (N, C, 1, W) -> (N, C, W) of channels-last tensors are such views, a
    merge of axes that lie apart or out of order is not."""
    from wgnn.layout import NHWC, reshaped_perm

    assert reshaped_perm((1, 480, 1, 105), NHWC, (1, 1, 480, 1, 105)) == (0, 1, 3, 4, 2)
    assert reshaped_perm((1, 1, 480, 1, 105), (0, 1, 3, 4, 2), (1, 480, 1, 105)) == NHWC
    assert reshaped_perm((1, 120, 1, 105), NHWC, (1, 120, 105)) == (0, 2, 1)
    assert reshaped_perm((1, 8, 4, 4), NHWC, (1, 8, 16)) == (0, 2, 1)  # H and W merge: side by side
    assert reshaped_perm((1, 8, 4, 4), NHWC, (1, 128)) is None  # C with H and W: C lies innermost
    assert reshaped_perm((2, 8, 4, 4), NHWC, (16, 4, 4)) is None  # N with C: they lie apart
    checked = 0
    for _ in range(400):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(d) for d in rng.choice([1, 2, 3, 4], size=rank))
        perm = tuple(int(a) for a in rng.permutation(rank))
        # a reshape: the logical shape's sizes regrouped, with axes of size 1 put in and taken out
        sizes = [d for d in shape if d != 1]
        out: list[int] = []
        while sizes:
            take = int(rng.integers(1, len(sizes) + 1))
            out.append(int(np.prod(sizes[:take])))
            sizes = sizes[take:]
            if rng.random() < 0.3:
                out.append(1)
        out_shape = tuple(out) or (1,)
        kept = reshaped_perm(shape, perm, out_shape)
        if kept is None:
            continue
        x = rng.standard_normal(shape).astype(np.float32)
        assert sorted(kept) == list(range(len(out_shape)))
        stored = np.transpose(x, perm).reshape(-1)
        assert np.array_equal(np.transpose(x.reshape(out_shape), kept).reshape(-1), stored), (shape, perm, out_shape)
        checked += 1
    assert checked > 150


def test_squeezes_and_flattens_of_channels_last_tensors_copy_nothing(device, precision, rng):
    """A convolution's result unsqueezed and squeezed back (PaddleOCR's recognizer) and a pool read
    after it, and a (N, C, 1, W) result flattened to (N, C, W) and transposed to a sequence for a
    matrix product (its neck), run with no relayout between the kernels: the reshapes keep the
    channels-last bytes where they lie."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 1, 12))
    conv = b.conv2d(x, b.constant(rng.standard_normal((8, 8, 1, 3)).astype(np.float32)), padding=(0, 0, 1, 1))
    back = b.squeeze(b.unsqueeze(conv, [0]), [0])
    pooled = b.max_pool2d(back, window=(1, 2), strides=(1, 2))
    seq = b.transpose(b.reshape(b.relu(conv), (1, 8, 12)), (0, 2, 1))
    y = b.matmul(seq, b.constant(rng.standard_normal((8, 12)).astype(np.float32)))
    session, got, want = run_both(b, {"pooled": pooled, "y": y}, {"x": rng.standard_normal((1, 8, 1, 12)).astype(
        np.float32)}, precision=precision)
    for name in ("pooled", "y"):
        assert rel_l2(got[name], want[name]) < tol(precision), name
    ops = [d.node.op for d in session._exe.dispatches]
    # the input's relayout to channels-last, and the pooled output's back to NCHW: none in between
    assert ops.count("relayout") <= 2 and ops[0] == "relayout", ops
    assert session.graph.outputs["y"].producer.op == "matmul"


def test_element_wise_chains_run_as_one_pass(device, rng, precision):
    """What no other fusion takes runs as one fused pass per chain: a normalization written out as
    Flax writes it (mean and mean of squares over a middle axis, var = max(0, E[x^2] - E[x]^2),
    then per-feature weights: one pass for everything after the sums, the statistics broadcast
    into it) and a detector's box decoding over a grid (two outputs, each a chain, the corners both
    read computed in each). The numpy reference's values; a chain's numbers are uniforms (one
    pipeline for two chains of one form)."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 16, 12))
    n = 1.0 / 16
    s1 = b.reduce(x, "sum", axes=[1], keepdims=True)
    s2 = b.reduce(b.mul(x, x), "sum", axes=[1], keepdims=True)
    m = b.mul(s1, b.constant(np.float32(n)))
    var = b.max(b.constant(np.float32(0)), b.sub(b.mul(s2, b.constant(np.float32(n))), b.mul(m, m)))
    r = b.activation(b.activation(b.add(var, b.constant(np.float32(1e-6))), "sqrt"), "reciprocal")
    gamma = b.constant(rng.uniform(0.5, 1.5, (1, 16, 1)).astype(np.float32))
    beta = b.constant(rng.standard_normal((1, 16, 1)).astype(np.float32))
    norm = b.add(b.mul(b.sub(x, m), b.mul(r, gamma)), beta)
    d = b.input("d", (1, 4, 40))  # distances left, top, right, bottom from anchor points
    anchors = b.constant(rng.uniform(0, 20, (1, 2, 40)).astype(np.float32))
    lt, rb = b.slice(d, [0, 0, 0], [1, 2, 40]), b.slice(d, [0, 2, 0], [1, 4, 40])
    x1y1, x2y2 = b.sub(anchors, lt), b.add(anchors, rb)
    centre = b.mul(b.div(b.add(x1y1, x2y2), b.constant(np.float32(2))), b.constant(np.float32(8)))
    size = b.mul(b.sub(x2y2, x1y1), b.constant(np.float32(8)))
    gated = b.sigmoid(b.sub(b.mul(b.input("g", (3, 40)), b.constant(np.float32(3))), b.constant(np.float32(1))))
    gated2 = b.sigmoid(b.sub(b.mul(b.input("g2", (3, 40)), b.constant(np.float32(5))), b.constant(np.float32(2))))
    feeds = {"x": rng.standard_normal((2, 16, 12)).astype(np.float32) * 3 + 1,
             "d": rng.uniform(0, 5, (1, 4, 40)).astype(np.float32),
             "g": rng.standard_normal((3, 40)).astype(np.float32),
             "g2": rng.standard_normal((3, 40)).astype(np.float32)}
    outputs = {"norm": norm, "centre": centre, "size": size, "gated": gated, "gated2": gated2}
    session, got, want = run_both(b, outputs, feeds, precision=precision)
    for name in outputs:
        assert rel_l2(got[name], want[name]) < tol(precision), name
    fused = [d for d in session._exe.dispatches if d.node.op == "fused_elementwise"]
    ops = [d.node.op for d in session._exe.dispatches]
    # the normalization: two sums (the second of squares), then one pass; the boxes: x1y1 and x2y2,
    # which both outputs' chains read, are computed again in each, and each output is one pass
    assert ops.count("fused_elementwise") == len(fused) == 5 and "activation" not in ops and "binary" not in ops
    assert ops.count("reduce") == 2 and session.pass_log["fold_square_into_reduce"] == 1
    centre_chain = next(d for d in fused if d.node.outputs[0] is session.graph.outputs["centre"]).node
    assert [kind for kind, _, _ in centre_chain.attrs["steps"]][:2] == ["sub", "add"]
    assert session.pass_log["fuse_elementwise"] == len(fused)
    last = next(d for d in fused if d.node.outputs[0] is session.graph.outputs["norm"])
    assert len(last.node.attrs["steps"]) >= 9 and len(last.node.inputs) <= 6
    g1, g2 = (next(d for d in fused if d.node.outputs[0] is session.graph.outputs[k]) for k in ("gated", "gated2"))
    assert g1.pipeline is g2.pipeline and g1.node.attrs["constants"] != g2.node.attrs["constants"]
    for d, name in ((g1, "gated"), (g2, "gated2")):  # the fused op's own numpy reference: the same values
        (ref,) = wgnn.ops.get("fused_elementwise").reference(d.node, [feeds["g" if name == "gated" else "g2"]])
        assert rel_l2(ref, want[name]) < 1e-6


def test_element_wise_chains_stay_within_the_kernels_bindings(device, rng):
    """Seven tensors added one after another: a chain reads at most six from outside (the kernel's
    bindings), so the first sum runs apart; an inner result something outside the chain reads (a
    graph output) ends a chain; integer arithmetic is not fused."""
    b = wgnn.GraphBuilder()
    xs = [b.input(f"x{k}", (5, 8)) for k in range(7)]
    total = xs[0]
    for t in xs[1:]:
        total = b.add(total, t)
    e = b.activation(xs[0], "exp")
    after = b.mul(b.add(e, b.constant(np.float32(1))), b.constant(np.float32(2)))
    i = b.input("i", (5, 8), "int32")
    ints = b.mul(b.add(i, b.constant(np.int32(3))), b.constant(np.int32(2)))
    feeds = {f"x{k}": rng.standard_normal((5, 8)).astype(np.float32) for k in range(7)}
    feeds["i"] = rng.integers(-9, 9, (5, 8)).astype(np.int32)
    session, got, want = run_both(b, {"total": total, "e": e, "after": after, "ints": ints}, feeds)
    for name in ("total", "e", "after"):
        assert rel_l2(got[name], want[name]) < 1e-6, name
    assert np.array_equal(got["ints"], want["ints"])
    nodes = [d.node for d in session._exe.dispatches]
    chains = [n for n in nodes if n.op == "fused_elementwise"]
    assert all(len(n.inputs) <= 6 for n in chains)
    assert [n.op for n in nodes].count("binary") == 3  # the first sum; the integer add and mul
    assert any(n.op == "activation" for n in nodes)  # exp: an output, read by the chain after it too


@pytest.mark.parametrize("keepdims", [True, False])
def test_softmax_and_sums_of_squares_written_out_are_one_node_each(device, rng, precision, keepdims):
    """jax.nn.softmax as exported: max(x) (with an initial -inf: max(-inf, m)), exp(x - m), its sum,
    the division, the reductions reshaped to broadcast back where they drop their axis: one softmax
    node. A sum of x * x is one sum of squares. A max that something else reads stays written out."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (3, 7, 20))
    peak = b.max(b.constant(np.float32(-np.inf)), b.reduce(x, "max", axes=[2], keepdims=keepdims))
    if not keepdims:
        peak = b.reshape(peak, (3, 7, 1))
    e = b.activation(b.sub(x, peak), "exp")
    total = b.reduce(e, "sum", axes=[2], keepdims=keepdims)
    y = b.div(e, total if keepdims else b.reshape(total, (3, 7, 1)))
    squares = b.reduce(b.mul(x, x), "sum", axes=[1], keepdims=False)
    m2 = b.reduce(x, "max", axes=[2])  # read by the subtraction and as an output: not a softmax
    z = b.div(b.activation(b.sub(x, m2), "exp"), b.reduce(b.activation(b.sub(x, m2), "exp"), "sum", axes=[2]))
    feeds = {"x": rng.standard_normal((3, 7, 20)).astype(np.float32) * 4}
    session, got, want = run_both(b, {"y": y, "squares": squares, "m2": m2, "z": z}, feeds, precision=precision)
    for name in ("y", "squares", "m2", "z"):
        assert rel_l2(got[name], want[name]) < tol(precision), name
    assert session.pass_log["softmax_written_out"] == 1 and session.pass_log["fold_square_into_reduce"] == 1
    assert session.graph.outputs["y"].producer.op == "softmax"
    reduce = session.graph.outputs["squares"].producer
    assert reduce.op == "reduce" and reduce.attrs["kind"] == "sum_square"
    assert session.graph.outputs["z"].producer.op != "softmax"


def test_a_copy_read_only_by_a_relayout_writes_its_order(device, rng, precision):
    """A slice of a transposed projection, split into heads by views, that a product wants in
    logical order (PaddleOCR's recognizer's attention), and an element-wise op on a channels-last
    result that is a graph output: each kernel writes the order the relayout after it would have
    made, through the views, and no relayout runs."""
    b = wgnn.GraphBuilder()
    qkv = b.input("qkv", (1, 6, 24))
    heads = b.transpose(b.reshape(qkv, (1, 6, 3, 2, 4)), (2, 0, 3, 1, 4))  # (3, 1, 2, 6, 4), a view
    q = b.reshape(b.slice(heads, [1, 0, 0, 0, 0], [2, 1, 2, 6, 4]), (1, 2, 6, 4))
    k_t = b.transpose(b.reshape(b.slice(heads, [2, 0, 0, 0, 0], [3, 1, 2, 6, 4]), (1, 2, 6, 4)), (0, 1, 3, 2))
    scores = b.matmul(q, k_t)
    x = b.input("x", (1, 8, 6, 6))
    conv = b.conv2d(x, b.constant(rng.standard_normal((8, 8, 3, 3)).astype(np.float32)), padding=(1, 1, 1, 1))
    gate = b.sigmoid(b.sub(b.max_pool2d(conv, window=(2, 2), strides=(2, 2)), b.constant(np.float32(0.5))))
    feeds = {"qkv": rng.standard_normal((1, 6, 24)).astype(np.float32),
             "x": rng.standard_normal((1, 8, 6, 6)).astype(np.float32)}
    session, got, want = run_both(b, {"scores": scores, "gate": gate}, feeds, precision=precision)
    for name in ("scores", "gate"):
        assert rel_l2(got[name], want[name]) < tol(precision), name
    ops = [d.node.op for d in session._exe.dispatches]
    assert ops.count("relayout") == 1, ops  # x's, to channels-last: none after the slices or the gate
    assert session.graph.outputs["gate"].producer.op in ("fused_elementwise", "binary")


def test_a_channel_shuffle_between_convolutions_is_one_copy(device, rng, precision):
    """ShuffleNet's channel shuffle (reshape to groups, swap, reshape back) between two channels-last
    convolutions: the relayout the first reshape needs writes the order that the second reshape
    turns into channels-last, so the shuffle is that one copy."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 5, 6))
    conv = b.conv2d(x, b.constant(rng.standard_normal((8, 8, 1, 1)).astype(np.float32)))
    shuffled = b.reshape(b.transpose(b.reshape(conv, (1, 2, 4, 5, 6)), (0, 2, 1, 3, 4)), (1, 8, 5, 6))
    y = b.conv2d(shuffled, b.constant(rng.standard_normal((8, 8, 3, 3)).astype(np.float32)), padding=(1, 1, 1, 1))
    session, got, want = run_both(b, {"y": y}, {"x": rng.standard_normal((1, 8, 5, 6)).astype(np.float32)},
                                  precision=precision)
    assert rel_l2(got["y"], want["y"]) < tol(precision)
    ops = [d.node.op for d in session._exe.dispatches]
    assert ops.count("relayout") == 3, ops  # x's to channels-last, the shuffle, y's back to NCHW


def test_a_focus_concat_of_slices_writes_channels_last(device, rng, precision):
    """YOLOX's Focus: four strided slices of the image concatenated along the channels, then a
    convolution. The concat's copies read the slices through strides anyway, so they write the
    convolution's channels-last order themselves: no relayout before the convolution."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 3, 8, 10))
    parts = [b.slice(x, [0, 0, i, j], [1, 3, 8, 10], steps=[1, 1, 2, 2]) for i, j in ((0, 0), (1, 0), (0, 1), (1, 1))]
    y = b.conv2d(b.concat(parts, axis=1), b.constant(rng.standard_normal((8, 12, 3, 3)).astype(np.float32)),
                 padding=(1, 1, 1, 1))
    session, got, want = run_both(b, {"y": y}, {"x": rng.standard_normal((1, 3, 8, 10)).astype(np.float32)},
                                  precision=precision)
    assert rel_l2(got["y"], want["y"]) < tol(precision)
    ops = [d.node.op for d in session._exe.dispatches]
    assert ops.count("relayout") == 1 and ops[-1] == "relayout", ops  # y's back to NCHW only


def test_slices_that_element_wise_ops_read_are_views(device, rng, precision):
    """A convolution's channels split four ways (PP-PicoDet's heads: the sigmoid of the first ten
    channels): the element-wise kernels read each slice inside the convolution's result, through
    its strides, so no slice is a copy of its own. A gated unit (a half times the sigmoid of the
    other: one fused chain of two slices), a slice walked backwards broadcast against a row, and a
    slice that is also a graph output (the output's copy into NCHW reads it in place too)."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 6, 7))
    conv = b.conv2d(x, b.constant(rng.standard_normal((48, 8, 1, 1)).astype(np.float32)))
    scores = b.activation(b.slice(conv, [0, 0, 0, 0], [1, 10, 6, 7]), "sigmoid")
    gated = b.mul(b.slice(conv, [0, 10, 0, 0], [1, 26, 6, 7]),
                  b.activation(b.slice(conv, [0, 26, 0, 0], [1, 42, 6, 7]), "sigmoid"))
    backwards = b.slice(conv, [0, 46, 5, 0], [1, 42, -1000, 7], steps=[1, -1, -1, 1])
    row = b.constant(rng.standard_normal((1, 1, 1, 7)).astype(np.float32))
    shifted = b.add(backwards, row)
    kept = b.slice(conv, [0, 44, 0, 0], [1, 48, 6, 7])
    outputs = {"scores": scores, "gated": gated, "shifted": shifted, "kept": kept, "twice": b.relu(kept)}
    session, got, want = run_both(b, outputs, {"x": rng.standard_normal((1, 8, 6, 7)).astype(np.float32)},
                                  precision=precision)
    for name in outputs:
        assert got[name].shape == want[name].shape and rel_l2(got[name], want[name]) < tol(precision), name
    ops = [d.node.op for d in session._exe.dispatches]
    assert "slice" not in ops, ops
    assert "fused_elementwise" in ops, ops  # (the gated unit's chain, reading two slices)


def test_bounds_by_one_number_fuse_into_the_activation_before_them(device, rng, precision):
    """Max or Min with one number after an op's activation is one activation in its epilogue
    (``fuse_bounds``): openWakeWord's convolutions' LeakyReLU then max(x, -0.4), TensorFlow's ReLU6
    written as Relu then Min(6), a Clip then a Max inside its range, a bare Max. NaN stays NaN. A
    Min after a LeakyReLU, and a bound the producer's other reader would miss, keep their ops."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 6, 7))

    def conv(t, out=8):
        return b.conv2d(t, b.constant((rng.standard_normal((out, t.shape[1], 3, 3)) / 4).astype(np.float32)),
                        padding=(1, 1, 1, 1))

    embedding = b.max(b.leaky_relu(conv(x), alpha=0.2), b.constant(np.full((1, 1, 1, 1), -0.4, np.float32)))
    relu6 = b.min(b.relu(conv(embedding)), b.constant(np.float32(6.0)))
    clipped = b.max(b.constant(np.float32(-0.5)), b.clamp(conv(relu6), min_value=-1.0, max_value=1.0))
    bare = b.max(conv(clipped), b.constant(np.float32(0.25)))
    z = b.input("z", (2, 9))
    shifted = b.add(z, b.constant(np.float32(1.0)))  # (an element-wise producer, NaN in z)
    nan_kept = b.max(b.leaky_relu(shifted, alpha=0.1), b.constant(np.float32(-0.05)))
    kept_min = b.min(b.leaky_relu(conv(x), alpha=0.2), b.constant(np.float32(0.1)))
    read_twice = conv(x)
    both = b.add(b.max(read_twice, b.constant(np.float32(0.0))), read_twice)
    outputs = {"bare": bare, "nan_kept": nan_kept, "kept_min": kept_min, "both": both}
    feeds = {"x": rng.standard_normal((1, 8, 6, 7)).astype(np.float32) * 4}
    feeds["z"] = rng.standard_normal((2, 9)).astype(np.float32)
    feeds["z"][1, 3] = np.nan
    session, got, want = run_both(b, outputs, feeds, precision=precision)
    for name in outputs:
        nan = np.isnan(want[name])
        np.testing.assert_array_equal(np.isnan(got[name]), nan, err_msg=name)
        assert rel_l2(got[name][~nan], want[name][~nan]) < tol(precision), name
    assert np.isnan(want["nan_kept"]).any()
    assert session.pass_log["fuse_bounds"] == 5  # (not the Min after a LeakyReLU, nor the Max read beside)
    acts = {n.attrs["activation"] for n in session.graph.nodes if n.attrs.get("activation") is not None}
    assert {Activation("leaky_relu_max", 0.2, float(np.float32(-0.4))), Activation("clip", 0.0, 6.0),
            Activation("clip", -0.5, 1.0), Activation("clip", 0.25, np.inf),
            Activation("leaky_relu_max", 0.1, float(np.float32(-0.05)))} <= acts, acts


def test_random_element_wise_graphs_match_the_reference(device, rng):
    """Random DAGs of element-wise ops (binary kinds, activations, multiply-adds) over broadcasting
    shapes, numbers, inner results read twice or also as outputs: fused as they may be, the numpy
    reference's values."""
    kinds = ["add", "sub", "mul", "max", "min", "div"]
    acts = ["relu", "sigmoid", "tanh", "exp", "abs", "neg"]
    shapes = [(2, 3, 4, 8), (1, 3, 1, 8), (2, 1, 4, 1), (8,), (4, 1), (1,)]
    fused = 0
    for case in range(12):
        b = wgnn.GraphBuilder()
        pool = [b.input(f"x{k}", shapes[k % 3]) for k in range(3)]
        feeds = {f"x{k}": rng.uniform(-2, 2, shapes[k % 3]).astype(np.float32) for k in range(3)}
        outputs = {}
        for step in range(int(rng.integers(4, 10))):
            a = pool[int(rng.integers(len(pool)))]
            pick = rng.random()
            if pick < 0.2:
                y = b.activation(a, acts[int(rng.integers(len(acts)))] if a.size < 200 else "relu")
            elif pick < 0.35:
                c = b.constant(rng.uniform(0.5, 1.5, shapes[int(rng.integers(3, 6))]).astype(np.float32))
                y = b.add(b.mul(a, c), pool[int(rng.integers(len(pool)))])
            else:
                kind = kinds[int(rng.integers(len(kinds)))]
                other = (b.constant(np.float32(rng.uniform(0.5, 2))) if rng.random() < 0.3
                         else pool[int(rng.integers(len(pool)))])
                if kind == "div":  # a divisor away from zero
                    other = b.add(b.activation(other, "abs"), b.constant(np.float32(0.5)))
                y = getattr(b, kind)(a, other)
            pool.append(y)
            if rng.random() < 0.2:
                outputs[f"o{step}"] = y
        outputs["last"] = pool[-1]
        session, got, want = run_both(b, outputs, feeds)
        for name in outputs:
            assert rel_l2(got[name], want[name]) < 1e-5, (case, name)
        fused += session.pass_log.get("fuse_elementwise", 0)
    assert fused >= 8  # most cases had chains to fuse


def _squeeze_excite(b, rng, x, channels: int, out: int, name: str = "project"):
    """MobileNetV3's squeeze-and-excitation block: x times a per-channel gate made from x's global
    average pool (1x1 down, ReLU, 1x1 up, sigmoid), then a 1x1 projection to ``out`` channels."""
    def weights(o, i):
        return b.constant((rng.standard_normal((o, i, 1, 1)) / np.sqrt(i)).astype(np.float32))

    pooled = b.average_pool2d(x, window=x.shape[2:])
    squeezed = b.conv2d(pooled, weights(channels // 4, channels), activation="relu")
    gate = b.conv2d(squeezed, weights(channels, channels // 4), activation="sigmoid")
    return b.conv2d(b.mul(x, gate), weights(out, channels),
                    bias=b.constant(rng.standard_normal(out).astype(np.float32)), name=name)


@pytest.mark.parametrize("variant", ["subgroup", "pointwise", "gemm", "gemm split-K", "gemm_f16"])
def test_a_squeeze_excite_gate_scales_the_projection_weights(device, precision, rng, variant):
    """x * gate read only by a 1x1 convolution (a squeeze-and-excitation block) is no dispatch of its
    own: the convolution takes the gate as its input scale and its matrix kernel scales B's rows as
    it loads them. Every kernel that runs such a convolution, forced (gemm with K split in two too;
    gemm_f16, f16 arithmetic, where the session is fp16, else gemm), at a size whose rows and columns
    are no multiple of its tiles; against the reference, and against the same graph unfused."""
    from wgnn.backends.compute.policy import Choice

    if variant == "gemm_f16" and precision != "fp16":
        variant = "gemm"  # (f16 arithmetic is an fp16 session's)
    choice = Choice("gemm", 4, 64, 2) if variant == "gemm split-K" else Choice(variant)
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 32, 9, 7))
    y = _squeeze_excite(b, rng, b.relu(x), 32, 12)
    feeds = {"x": rng.standard_normal((1, 32, 9, 7)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision, kernels={"project": choice})
    assert session.pass_log["fold_channel_scale"] == 1
    assert "binary" not in [d.node.op for d in session._exe.dispatches]
    assert session.kernel_choices()["project"].startswith(choice.variant)
    assert ("splitk_reduce" in kernels_used(session)) == (variant == "gemm split-K")
    assert rel_l2(got["y"], want["y"]) < tol(precision)
    plain = wgnn.InferenceSession(b.build_graph({"y": y}), precision=precision, optimize=False).compute(feeds)
    assert rel_l2(got["y"], plain["y"]) < tol(precision)


def test_a_gate_stays_a_product_where_the_convolution_cannot_scale(device, rng):
    """The product stays where something else reads it too, where its reader is a 3x3 convolution
    or runs a batch of two images (the gate then differs per image), and where the gate is not one
    value per channel; each as the reference gives. Where a zero pad comes before the product, the
    convolution takes the gate and the pad stays a pass of its own (folded into the convolution too,
    its padding would go to kernels that cannot scale: the gate was dropped, found by random graphs
    against ONNX Runtime)."""
    def graph(batch=1, k=1, also_read=False, per_pixel=False, padded=False):
        b = wgnn.GraphBuilder()
        x = b.input("x", (batch, 8, 6, 5))
        gate = b.sigmoid(b.conv2d(b.average_pool2d(x, window=(6, 5)),
                                  b.constant(rng.standard_normal((8, 8, 1, 1)).astype(np.float32))))
        if per_pixel:
            gate = b.sigmoid(x)
        scaled = b.mul(b.pad(x, (0, 0, 1, 1, 0, 0, 1, 1)) if padded else x, gate)
        y = b.conv2d(scaled, b.constant(rng.standard_normal((8, 8, k, k)).astype(np.float32)),
                     padding=(k // 2,) * 4)
        feeds = {"x": rng.standard_normal((batch, 8, 6, 5)).astype(np.float32)}
        return run_both(b, {"y": y, **({"scaled": scaled} if also_read else {})}, feeds)

    for case in ({"also_read": True}, {"k": 3}, {"batch": 2}, {"per_pixel": True}, {}, {"padded": True}):
        session, got, want = graph(**case)
        assert session.pass_log.get("fold_channel_scale", 0) == (case in ({}, {"padded": True})), case
        assert session.pass_log.get("fold_pad_into_conv", 0) == 0, case
        for name in got:
            assert rel_l2(got[name], want[name]) < 1e-5, (case, name)


def test_a_graphs_node_list_knows_its_nodes_through_every_change():
    """graph.nodes answers ``node in graph.nodes`` from a count of what it holds (the rules ask it
    of every node they visit): after any sequence of the ways a list changes (append, extend, +=,
    insert, remove, pop, item and slice assignment and deletion, clear) it holds and answers what a
    plain list would; a graph's nodes stay such a list when reassigned, and a copy counts its own."""
    import random

    from wgnn.graph import Graph, Node, NodeList

    rng = random.Random(1)
    pool = [Node("relu", [], [], name=str(i)) for i in range(12)]

    def change(target, kind, node, a, b, more):
        size = len(target)
        if kind == "append":
            target.append(node)
        elif kind == "extend":
            target.extend(iter(more))
        elif kind == "iadd":
            target += more
        elif kind == "insert":
            target.insert(a - 1, node)
        elif kind == "remove" and any(node is m for m in list(target)):
            target.remove(node)
        elif kind == "pop" and size:
            target.pop(a % size)
        elif kind == "set" and size:
            target[a % size] = node
        elif kind == "slice":
            target[a:b] = iter(more)
        elif kind == "del" and size:
            del target[a % size]
        elif kind == "delslice":
            del target[a:b]
        elif kind == "clear":
            target.clear()

    kinds = ("append", "extend", "iadd", "insert", "remove", "pop", "set", "slice", "del", "delslice", "clear")
    for _ in range(400):
        plain = [rng.choice(pool) for _ in range(rng.randint(0, 8))]
        nodes = NodeList(plain)
        for _ in range(8):
            a, b = sorted((rng.randint(0, len(plain)), rng.randint(0, len(plain))))
            step = (rng.choice(kinds), rng.choice(pool), a, b, [rng.choice(pool) for _ in range(rng.randint(0, 3))])
            change(plain, *step)
            change(nodes, *step)
            assert list(nodes) == plain
            assert all((n in nodes) == any(n is m for m in plain) for n in pool)
    graph = Graph([], {}, {})
    graph.nodes = [pool[0]]
    assert isinstance(graph.nodes, NodeList) and pool[0] in graph.nodes and pool[1] not in graph.nodes
    import copy

    copied = copy.copy(graph.nodes)
    assert isinstance(copied, NodeList) and pool[0] in copied and copied == [pool[0]]


def test_a_round_that_changed_the_graph_is_followed_by_another():
    """A rule that rewrites more than it counts (``integer_conv`` counts its convolutions, not the
    shifts and dequantizes it moves after them) still has ``optimize`` run the rules again, so a
    rule earlier in the order sees what it left."""
    from wgnn.passes import optimize

    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 3))
    graph = b.build_graph({"y": b.relu(b.sigmoid(x))})
    seen = []

    def counts_what_it_finds(g):
        seen.append([n.op for n in g.nodes])
        return 0

    def drops_the_sigmoid_uncounted(g):
        sigmoid = next((n for n in g.nodes if n.op == "activation" and n.attrs["activation"].kind == "sigmoid"), None)
        if sigmoid is not None:
            g.replace_uses(sigmoid.outputs[0], sigmoid.inputs[0])
            g.nodes.remove(sigmoid)
        return 0

    optimize(graph, [counts_what_it_finds, drops_the_sigmoid_uncounted])
    assert len(seen) == 2 and seen[-1] == ["activation"]
