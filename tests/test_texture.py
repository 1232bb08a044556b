"""The WebGL-style texture path against the compute path and the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import bench_script, fetch_or_skip, rel_l2, run_both, sample, tol

import wgnn
from wgnn import zoo
from wgnn.backends.texture import TexBlock, plan_textures

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name", zoo.MODELS)
def test_zoo_models_match_compute_path(device, precision, name):
    model = zoo.build(name, softmax=False)
    x = zoo.random_input(seed=4)
    compute = wgnn.InferenceSession(model, precision=precision).run(None, {"input": x})[0]
    texture_session = wgnn.InferenceSession(model, precision=precision, backend="texture")
    (texture,) = texture_session.run(None, {"input": x})
    reference = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    bound = 1e-4 if precision == "fp32" else 1e-2
    assert rel_l2(texture, reference) < bound
    assert rel_l2(compute, reference) < bound
    assert rel_l2(texture, compute) < 2 * bound  # each within the bound of the reference
    # Only what WebGL had: render passes whose bindings are uniforms and textures.
    for p in texture_session._exe.dispatches:
        assert set(device.render_pipeline_kinds(p.pipeline)) <= {"uniform", "texture"}


def _conv_case(b, rng, cin, cout, k, stride, pads, dil, groups, act):
    x = b.input("x", (2, cin, 9, 11))
    w = b.constant(rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32))
    y = b.conv2d(x, w, bias=b.constant(rng.standard_normal(cout).astype(np.float32)), strides=stride, padding=pads,
                 dilations=dil, groups=groups, activation=act)
    return x, y


CONV_CASES = [
    ("3_channels_relu6", 3, 8, 3, 2, (1, 1, 1, 1), 1, 1, "relu6"),
    ("odd_channels_sigmoid", 6, 5, 3, 1, (1, 0, 2, 1), 1, 1, "sigmoid"),
    ("dilated_pointwise_mix", 8, 12, 3, 1, (2, 2, 2, 2), 2, 1, "hard_swish"),
    ("depthwise", 12, 12, 3, 2, (1, 1, 1, 1), 1, 12, "relu"),
    ("depthwise_odd_channels", 6, 6, 5, 1, (2, 2, 2, 2), 1, 6, None),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv(device, precision, rng, case):
    b = wgnn.GraphBuilder()
    _, y = _conv_case(b, rng, *case[1:])
    feeds = {"x": rng.standard_normal((2, case[1], 9, 11)).astype(np.float32)}
    _, got, want = run_both(b, {"y": y}, feeds, precision=precision, backend="texture")
    assert rel_l2(got["y"], want["y"]) < tol(precision)


def test_residual_prelu_pool_concat_softmax(device, precision, rng):
    b = wgnn.GraphBuilder()
    x, y = _conv_case(b, rng, 6, 6, 3, 1, (1, 1, 1, 1), 1, 1, None)
    y = b.prelu(b.add(y, x), b.constant(rng.uniform(0.1, 0.3, (6, 1, 1)).astype(np.float32)))
    pooled = b.max_pool2d(y, window=(3, 3), strides=2, ceil_mode=True)
    avg = b.average_pool2d(y, window=(3, 3), strides=2, ceil_mode=True, count_include_pad=True)
    both = b.concat([pooled, avg, pooled], axis=1)  # 6 + 6 + 6 channels: texels straddle inputs
    flat = b.flatten(b.average_pool2d(both))
    logits = b.gemm(flat, b.constant(rng.standard_normal((18, 7)).astype(np.float32)))
    outputs = {"concat": both, "probs": b.softmax(logits), "channel_softmax": b.softmax(y, axis=1),
               "log_probs": b.log_softmax(logits)}
    session, got, want = run_both(b, outputs, {"x": rng.standard_normal((2, 6, 9, 11)).astype(np.float32)},
                                  precision=precision, backend="texture")
    kernels = [p.kernel for p in session._exe.dispatches]
    assert kernels.count("conv2d") == 1 and "softmax" in kernels  # residual and PRelu fused
    for name in outputs:
        assert rel_l2(got[name], want[name]) < tol(precision), name


def test_elementwise_slice_reshape_and_wide_tensors(device, precision, rng):
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 5, 6, 7))
    # one texel more a row than the adapter's widest texture: each row wraps
    cols = 4 * int(device.limits.get("max-texture-dimension-2d", 8192)) + 1
    wide = b.input("wide", (3, cols))
    outputs = {
        "broadcast": b.sub(x, b.constant(rng.standard_normal((5, 1, 7)).astype(np.float32))),
        "slice": b.slice(x, [1, 5], [4, -100], axes=[1, 3], steps=[2, -2]),
        "reshape": b.reshape(b.relu(x), (10, 42)),  # moves the packed axis from 7 to 42
        "transposed": b.transpose(x, (0, 3, 1, 2)),
        "wide": b.tanh(b.mul(wide, wide)),
    }
    feeds = {"x": rng.standard_normal((2, 5, 6, 7)).astype(np.float32),
             "wide": rng.standard_normal((3, cols)).astype(np.float32)}
    session, got, want = run_both(b, outputs, feeds, precision=precision, backend="texture")
    assert session._exe.input_textures["wide"][1].height > 1
    for name in outputs:
        assert rel_l2(got[name], want[name]) < tol(precision), name


def test_constants_in_fortran_order_upload_as_texels(device):
    """A TFLite depthwise convolution's weights reach the texture path as a (1, 16, 1, 4) array in
    Fortran order, which needs no padding to texels: they were handed to write_texture as they lay
    (a BufferError, found by `wgnn fuzz --graphs --families tflite --backend texture`). The texels
    are C-ordered whatever the host array's order, and such a model runs as LiteRT runs it."""
    from wgnn.backends.texture.lowering import TexShape, to_texels
    from wgnn.tflite_writer import ModelWriter

    weights = np.asfortranarray(np.arange(64, dtype=np.float32).reshape(1, 16, 1, 4))
    texels = to_texels(weights, TexShape(16, 16, 1), "f32")
    assert texels.flags.c_contiguous and np.array_equal(texels.reshape(16, 4), weights.reshape(16, 4))

    litert = pytest.importorskip("ai_edge_litert.interpreter")
    rng = np.random.default_rng(3)
    m = ModelWriter()
    x = m.input((1, 6, 5, 4))
    y = m.op("DEPTHWISE_CONV_2D", [x, m.const(rng.standard_normal((1, 3, 3, 4)).astype(np.float32)),
                                   m.const(np.zeros(4, np.float32))], (1, 6, 5, 4), "DepthwiseConv2DOptions",
             Padding=0, StrideW=1, StrideH=1, DepthMultiplier=1, FusedActivationFunction=0, DilationWFactor=1,
             DilationHFactor=1)
    model = m.bytes([y])
    feed = rng.standard_normal((1, 6, 5, 4)).astype(np.float32)
    it = litert.Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], feed)
    it.invoke()
    want = it.get_tensor(it.get_output_details()[0]["index"])
    got = wgnn.InferenceSession(model, backend="texture").run(None, {"input_0": feed})[0]
    assert rel_l2(got, want) < 1e-5


def test_texture_pool_never_shares_between_live_tensors():
    rng = np.random.default_rng(3)
    blocks = []
    for i in range(60):
        first = int(rng.integers(0, 40))
        cls = (int(rng.integers(1, 4)) * 64, 1, "f32")
        blocks.append(TexBlock(i, cls, cls[0] * 16, first, first + int(rng.integers(0, 6))))
    assignment, textures, report = plan_textures(blocks)
    for a in blocks:
        assert textures[assignment[a.key]] == a.size_class
        for other in blocks:
            if other.key != a.key and assignment[a.key] == assignment[other.key]:
                assert a.last < other.first or other.last < a.first
    assert report.lower_bound_bytes <= report.planned_bytes <= report.naive_bytes


def test_pad_reduce_resize_transposed_conv_and_transposed_outputs(device, precision, rng):
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 6, 9, 11))
    h = b.relu(x)  # an intermediate: f16 in fp16 sessions
    conv = b.conv2d(h, b.constant(rng.standard_normal((7, 6, 1, 1)).astype(np.float32)))
    outputs = {
        "pad_constant": b.pad(h, [0, 2, 1, 0, 0, 0, 2, 3], mode="constant", value=0.5),
        "pad_edge": b.pad(h, [0, 0, 1, 2, 0, 0, 2, 1], mode="edge"),
        "pad_reflect": b.pad(h, [0, 0, 2, 1, 0, 0, 1, 3], mode="reflect"),
        "mean_hw": b.reduce(h, "mean", (2, 3)),
        "max_c": b.reduce(h, "max", (1,), keepdims=False),
        "log_sum_exp": b.reduce(x, "log_sum_exp", (1, 3)),
        "bilinear": b.resize(h, (18, 22)),
        "nearest": b.resize(h, (5, 7), mode="nearest", coordinate_mode="asymmetric", nearest_mode="floor"),
        "align_corners": b.resize(h, (13, 4), coordinate_mode="align_corners"),
        "cubic_antialias": b.resize(h, (4, 5), mode="cubic", antialias=True),
        "conv_transpose": b.conv_transpose2d(h, b.constant(rng.standard_normal((6, 8, 3, 3)).astype(np.float32)),
                                             bias=b.constant(rng.standard_normal(8).astype(np.float32)), strides=2,
                                             padding=(1, 1, 1, 1), output_padding=1, activation="relu"),
        # a graph output that is a transpose of a computed tensor: a view of its texels
        "nhwc": b.transpose(conv, (0, 2, 3, 1)),
    }
    feeds = {"x": rng.standard_normal((2, 6, 9, 11)).astype(np.float32)}
    _, got, want = run_both(b, outputs, feeds, precision=precision, backend="texture")
    for name in outputs:
        assert rel_l2(got[name], want[name]) < tol(precision), name


F16_WIDE_LOGITS = {("pose_landmark_full", "Identity_2")}


@pytest.mark.parametrize("name", list(zoo.PRETRAINED))
def test_mediapipe_models_match_compute_path(device, precision, name):
    """MediaPipe's pretrained models on a real photo: the texture path within 1e-4 (fp32) or 1e-2
    (fp16) relative L2 of the compute path in the same precision, every output."""
    from helpers import fetch_or_skip

    from wgnn import mediapipe as mp

    skimage = pytest.importorskip("skimage")
    path = fetch_or_skip(name)
    compute = wgnn.InferenceSession(path, precision=precision)
    texture = wgnn.InferenceSession(path, precision=precision, backend="texture")
    inp = compute.get_inputs()[0]
    x, _ = mp.letterbox(skimage.data.astronaut(), tuple(inp.shape[1:3]), (0.0, 1.0))
    want = compute.run(None, {inp.name: x})
    got = texture.run(None, {inp.name: x})
    bound = 1e-4 if precision == "fp32" else 1e-2
    for g, w, out in zip(got, want, compute.get_outputs()):
        assert g.shape == w.shape, out.name
        if precision == "fp16" and (name, out.name) in F16_WIDE_LOGITS:
            # Segmentation logits in the hundreds: f16 storage alone moves them by ~2.5e-2 relative L2
            # (README, Checked against LiteRT), so the two fp16 paths differ by as much. Held to: the
            # texture path loses no more against FP32 than the compute path does.
            exact = wgnn.InferenceSession(path).run([out.name], {inp.name: x})[0]
            assert rel_l2(g, exact) < 1.5 * rel_l2(w, exact), out.name
            continue
        assert rel_l2(g, w) < bound, out.name


def test_unsupported_on_texture_backend(device):
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 8, 5, 5))
    y = b.conv2d(x, b.constant(np.ones((8, 4, 3, 3), np.float32)), groups=2)
    with pytest.raises(wgnn.UnsupportedOperatorError, match="grouped convolution.*texture backend"):
        wgnn.InferenceSession(b.build_graph({"y": y}), backend="texture")
    with pytest.raises(ValueError, match="'compute' or 'texture'"):
        wgnn.InferenceSession(b.build_graph({"y": y}), backend="webgl")


def test_a_product_of_a_transposed_column_runs_in_row_order(device, rng):
    """A (1, 4) tensor transposed to (4, 1) (or reshaped so) is stored as its source, one texel: in
    buffers the same elements in the same places as a (4, 1) tensor row by row (an axis of 1 does not
    count), but texels pad the last stored axis, so for the texture path it is not (its matmul read
    other values: silently wrong, found by random graphs against ONNX Runtime). The texture backend's
    layouts now tell the two apart (``same_layout``) and relayout A for its product, and a reshape
    whose result the layouts store in another order than its input is a copy, not a view. Both
    backends give numpy's values."""
    for make in ("transpose", "reshape", "concat"):
        b = wgnn.GraphBuilder()
        x = b.input("x", (1, 4) if make != "concat" else (1, 1))
        a = (b.transpose(x, (1, 0)) if make == "transpose" else b.reshape(x, (4, 1)) if make == "reshape"
             else b.reshape(b.concat([x, x, x, x], axis=0), (4, 1)))
        w = rng.standard_normal((1, 4)).astype(np.float32)
        graph = b.build_graph({"y": b.matmul(a, b.constant(w), name="outer"), "a": a})
        feeds = {"x": rng.standard_normal((1, 4) if make != "concat" else (1, 1)).astype(np.float32)}
        column = feeds["x"].reshape(4, 1) if make != "concat" else np.repeat(feeds["x"], 4, axis=0)
        for backend in ("texture", "compute"):
            y, col = wgnn.InferenceSession(graph.copy(), backend=backend).run(None, feeds)
            np.testing.assert_allclose(y, column @ w, rtol=1e-6, err_msg=f"{make} {backend}")
            np.testing.assert_array_equal(col, column)


@pytest.mark.parametrize("a_shape, b_shape, b_const", [
    ((3, 5), (5, 7), False), ((2, 3, 6), (2, 6, 9), False), ((2, 1, 3, 6), (4, 6, 5), False), ((6,), (6, 5), False),
    ((2, 17, 13), (2, 13, 11), False), ((1, 3, 6), (2, 6, 9), True), ((5, 7), (3, 7, 2), True)])
def test_batched_products_and_products_of_two_computed_tensors(device, precision, rng, a_shape, b_shape, b_const):
    """Matmul on the texture path beyond [M, K] x constant [K, N]: batches that broadcast either
    side, B computed at run time (read row by row as stored; K and N not multiples of 4), a rank-1
    A, a constant B with batch axes. (PP-OCRv5's recognizer's attention and openWakeWord's
    spectrogram run so, tested on the real models in test_pypi_models_on_the_texture_path.)"""
    a, bv = rng.standard_normal(a_shape).astype(np.float32), rng.standard_normal(b_shape).astype(np.float32)
    b = wgnn.GraphBuilder()
    x = b.input("a", a_shape)
    y = b.relu(b.matmul(x, b.constant(bv) if b_const else b.input("b", b_shape)))
    feeds = {"a": a} if b_const else {"a": a, "b": bv}
    got = wgnn.InferenceSession(b.build_graph({"y": y}), backend="texture", precision=precision).run(None, feeds)[0]
    np.testing.assert_allclose(got, np.maximum(np.matmul(a, bv), 0), rtol=tol(precision) * 10,
                               atol=tol(precision) * 10)


def test_a_scalar_output(device):
    """A graph output of rank 0 (a sum over every axis) read back from its one-texel texture."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (3, 4))
    graph = b.build_graph({"y": b.reduce(x, "sum", axes=[0, 1], keepdims=False)})
    got = wgnn.InferenceSession(graph, backend="texture").run(None, {"x": np.arange(12, dtype=np.float32)
                                                                     .reshape(3, 4)})[0]
    assert got.shape == () and got == 66


@pytest.mark.parametrize("case", ["ppocrv5_rec", "oww_melspectrogram"])
def test_pypi_models_on_the_texture_path(device, case):
    """Two models that PyPI packages ship, on their real inputs (bench/models.py's), match the compute
    path in fp32: PP-OCRv5's recognizer (its SVTR neck's attention: products of two computed
    tensors; a softmax over 18,385 characters, which a lane at a time had cut short on lavapipe,
    4e4 apart) and openWakeWord's spectrogram (a product of computed frames)."""
    name, make = bench_script("models").CASES[case]
    path = str(fetch_or_skip(name))
    feeds = sample(make)
    want = wgnn.InferenceSession(path).run(None, feeds)
    got = wgnn.InferenceSession(path, backend="texture").run(None, feeds)
    for g, w in zip(got, want):
        assert rel_l2(g, w) < 1e-4
