"""Each kernel against the numpy reference on random data: odd sizes, strides, padding, dilation,
groups, and every fused activation. Each case also checks which kernel really ran."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import kernels_used, rel_l2, run_both, tiled, tol

import wgnn

# (name, N, Cin, H, W, Cout, K, stride, pads (t, b, l, r), dilation, groups, expected kernel)
CONV_CASES = [
    # 3x3, stride 1: Winograd F(2x2, 3x3); odd output sizes drop the tiles' extra row and column
    ("winograd_3x3", 2, 8, 9, 11, 12, 3, 1, (1, 1, 1, 1), 1, 1, "winograd_output"),
    ("winograd_unpadded_asymmetric", 1, 8, 8, 7, 8, 3, 1, (0, 2, 1, 0), 1, 1, "winograd_output"),
    ("tiled_stride2_odd_pad", 1, 8, 13, 10, 16, 3, 2, (1, 0, 2, 1), 1, 1, "conv2d"),
    ("tiled_dilated", 1, 8, 12, 12, 8, 3, 1, (2, 2, 2, 2), 2, 1, "conv2d"),
    ("tiled_5x5_stride2", 1, 8, 11, 11, 4, 5, 2, (2, 2, 2, 2), 1, 1, "conv2d"),
    # at most 4 input channels, on a device with subgroups: the input's columns under the filter
    # (im2col), then the matrix kernel (policy.columns_conv); dilated, strided, padded
    ("columns_dilated", 1, 4, 12, 12, 8, 3, 1, (2, 2, 2, 2), 2, 1, "conv2d"),
    ("columns_5x5_stride2", 2, 4, 11, 11, 4, 5, 2, (2, 1, 0, 2), 1, 1, "conv2d"),
    ("tiled_grouped", 1, 16, 7, 9, 8, 3, 1, (1, 1, 1, 1), 1, 2, "conv2d"),
    ("pointwise", 2, 8, 5, 7, 16, 1, 1, (0, 0, 0, 0), 1, 1, "matmul"),
    # a strided 1x1 convolution: a matrix product over every other pixel of every other row (row_product)
    ("pointwise_stride2", 1, 8, 9, 9, 8, 1, 2, (0, 0, 0, 0), 1, 1, "matmul"),
    ("depthwise_3x3", 1, 8, 10, 13, 8, 3, 1, (1, 1, 1, 1), 1, 8, "depthwise"),
    ("depthwise_stride2", 2, 12, 11, 9, 12, 3, 2, (1, 1, 1, 1), 1, 12, "depthwise"),
    ("depthwise_dilated_5x5", 1, 4, 14, 15, 4, 5, 1, (4, 4, 4, 4), 2, 4, "depthwise"),
    # 3 -> 5 channels: input and output padded to vec4s (pad_conv_channels), the tiled kernel (or
    # columns), sliced back
    ("padded_3_to_5_channels", 1, 3, 15, 17, 5, 3, 2, (1, 1, 1, 1), 1, 1, "conv2d"),
    ("generic_grouped_3_per_group", 1, 6, 15, 17, 9, 3, 2, (1, 1, 1, 1), 1, 3, "conv2d_generic"),
    ("generic_grouped", 1, 6, 8, 8, 4, 3, 1, (1, 1, 1, 1), 1, 2, "conv2d_generic"),
    ("generic_depth_multiplier", 1, 3, 9, 9, 6, 3, 1, (1, 1, 1, 1), 1, 3, "conv2d_generic"),
    # 3 input channels padded to 4 by the pad_conv_channels pass, then the tiled kernel (or columns)
    ("padded_3_channels_7x7_stride2", 1, 3, 20, 20, 8, 7, 2, (3, 3, 3, 3), 1, 1, "conv2d"),
    # that pad: channels to whole vec4s and NCHW -> NHWC in one kernel (5 -> 8: a second vec4 part padding)
    ("padded_5_channels_batch2", 2, 5, 9, 11, 8, 3, 1, (1, 1, 1, 1), 1, 1, "pad_channels"),
    ("padded_3_channels_batch2", 2, 3, 6, 13, 4, 3, 2, (1, 1, 1, 1), 1, 1, "pad_channels"),
]


def _conv_graph(rng, n, cin, h, w, cout, k, stride, pads, dil, groups, activation=None, bias=True):
    b = wgnn.GraphBuilder()
    x = b.input("x", (n, cin, h, w))
    weight = b.constant(rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32))
    bias_op = b.constant(rng.standard_normal(cout).astype(np.float32)) if bias else None
    y = b.conv2d(x, weight, bias=bias_op, strides=stride, padding=pads, dilations=dil, groups=groups,
                 activation=activation)
    return b, y, {"x": rng.standard_normal((n, cin, h, w)).astype(np.float32)}


@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv2d(device, precision, rng, case):
    _, n, cin, h, w, cout, k, stride, pads, dil, groups, kernel = case
    b, y, feeds = _conv_graph(rng, n, cin, h, w, cout, k, stride, pads, dil, groups)
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    if kernel in ("conv2d", "matmul") and groups == 1:  # the subgroup variant runs ungrouped ones
        kernel = tiled(kernel)
        if kernel == "conv2d_shared" and cin <= 4:  # (as a product of the input's columns)
            kernel = "im2col"
    assert kernel in kernels_used(session)
    assert got["y"].shape == want["y"].shape
    assert rel_l2(got["y"], want["y"]) < tol(precision)


@pytest.mark.parametrize("groups,cin,cout", [(1, 8, 8), (1, 3, 5), (2, 4, 6), (4, 4, 4)])
def test_conv2d_weights_computed_at_run_time(device, precision, rng, groups, cin, cout):
    """Weights fed as an input (and scaled by the graph first) run on the scalar kernel, read OIHW."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, cin, 7, 6))
    w = b.mul(b.input("w", (cout, cin // groups, 3, 3)), b.constant(np.float32(0.5)))
    y = b.conv2d(x, w, bias=b.constant(rng.standard_normal(cout).astype(np.float32)), strides=(2, 1),
                 padding=(1, 0, 1, 1), groups=groups, activation="relu")
    feeds = {"x": rng.standard_normal((2, cin, 7, 6)).astype(np.float32),
             "w": rng.standard_normal((cout, cin // groups, 3, 3)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    assert "conv2d_generic" in kernels_used(session)
    assert rel_l2(got["y"], want["y"]) < tol(precision)


ACTIVATIONS = ["relu", "relu6", "sigmoid", "tanh", "leaky_relu", "hard_sigmoid", "hard_swish"]


# Each path's kernels between the relayouts in and out, and its (Cin, Cout, K, groups).
PATHS = {"conv2d": (["conv2d"], (8, 8, 5, 1)), "depthwise": (["depthwise"], (8, 8, 3, 8)),
         "matmul": (["matmul"], (8, 8, 1, 1)), "conv2d_generic": (["conv2d_generic"], (6, 6, 3, 2)),
         "winograd": (["winograd_input", "matmul", "winograd_output"], (8, 8, 3, 1))}


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("path", list(PATHS))
def test_fused_activation(device, precision, rng, activation, path):
    kernels, (cin, cout, k, groups) = PATHS[path]
    b, y, feeds = _conv_graph(rng, 1, cin, 6, 7, cout, k, 1, (k // 2,) * 4, 1, groups)
    y = b.activation(y, activation if activation != "relu6" else "clip",
                     **({"alpha": 0.0, "beta": 6.0} if activation == "relu6" else {}))
    feeds["x"] *= 3  # reach both sides of every activation's kinks
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    kernels = [tiled(k) if k in ("conv2d", "matmul") else k for k in kernels]
    assert kernels_used(session) == ["elementwise", *kernels, "elementwise"]  # layout in, fused conv, layout out
    assert rel_l2(got["y"], want["y"]) < tol(precision)


UNARY = ["abs", "neg", "exp", "log", "sqrt", "reciprocal", "floor", "ceil", "round", "sin", "cos", "erf", "sign",
         "softplus", "softsign", "elu", "selu", "celu", "gelu", "gelu_tanh", "tan", "asin", "acos", "atan", "sinh",
         "cosh", "asinh", "acosh", "atanh", "mish", "swish", "thresholded_relu", "shrink"]


@pytest.mark.parametrize("kind", UNARY)
def test_elementwise_function(device, precision, rng, kind):
    """ONNX's unary functions, standalone, against numpy's float64 results; inputs inside each
    function's domain (quarter steps for the rounding ones, exact in f16, halves included)."""
    x = rng.uniform(-4, 4, (2, 3, 5, 7)).astype(np.float32)
    if kind in ("floor", "ceil", "round", "sign"):
        x = (rng.integers(-20, 20, x.shape) + rng.choice([0.0, 0.25, 0.5, 0.75], x.shape)).astype(np.float32)
    elif kind in ("log", "sqrt"):
        x = np.abs(x) + 0.1
    elif kind == "reciprocal":
        x = np.sign(x) * (np.abs(x) + 0.5)
    elif kind in ("asin", "acos", "atanh"):
        x = x / 4.2
    elif kind == "acosh":
        x = np.abs(x) + 1
    elif kind == "tan":
        x = x / 3
    b = wgnn.GraphBuilder()
    xi = b.input("x", x.shape)
    name = kind.removesuffix("_tanh")
    y = b.activation(xi, name, alpha=1.0 if kind == "gelu_tanh" else None)
    session, got, want = run_both(b, {"y": y}, {"x": x.astype(np.float32)}, precision=precision)
    assert kernels_used(session) == ["elementwise"]
    assert rel_l2(got["y"], want["y"]) < tol(precision)


def test_hyperbolic_functions_keep_their_precision_near_zero_and_far(device, rng):
    """sinh, asinh and atanh near 0 (where exp and log forms cancel), asinh of large negative values
    (where log(x + sqrt(x^2 + 1)) loses everything), cosh and acosh far out: each element within
    a few f32 roundings of numpy's float64."""
    tiny = np.array([1e-6, -3e-5, 1e-3, -0.01, 0.1, -0.124, 0.126, 0.24, -0.26, 0.6], np.float32)
    cases = {"sinh": np.concatenate([tiny, [3.0, -20.0, 80.0]]), "asinh": np.concatenate([tiny, [3.0, -5e3, 1e5,
             -3e37]]), "atanh": np.concatenate([tiny, [0.9, -0.999]]), "cosh": np.array([0.0, 1e-3, -2.0, 60.0]),
             "acosh": np.array([1.0, 1.001, 3.0, 5e3, 1e30])}
    for kind, x in cases.items():
        x = x.astype(np.float32)
        b = wgnn.GraphBuilder()
        y = b.activation(b.input("x", x.shape), kind)
        got = b.build({"y": y}).compute({"x": x})["y"].astype(np.float64)
        want = getattr(np, {"asinh": "arcsinh", "atanh": "arctanh", "acosh": "arccosh"}.get(kind, kind))(
            x.astype(np.float64))
        err = np.abs(got - want) / np.maximum(np.abs(want), 1e-30)
        assert err.max() < (2e-5 if kind in ("cosh", "acosh") else 2e-6), (kind, x[err.argmax()], got[err.argmax()],
                                                                 want[err.argmax()])


@pytest.mark.parametrize("kind", ["exp", "gelu", "erf", "softplus"])
def test_function_fused_into_conv(device, precision, rng, kind):
    b, y, feeds = _conv_graph(rng, 1, 8, 6, 7, 8, 1, 1, (0,) * 4, 1, 1)
    y = b.activation(y, kind)
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    assert tiled("matmul") in kernels_used(session) and "activation" not in [n.op for n in session.graph.nodes]
    assert rel_l2(got["y"], want["y"]) < tol(precision)


@pytest.mark.parametrize("path", list(PATHS))
def test_fused_prelu_per_channel(device, precision, rng, path):
    kernels, (cin, cout, k, groups) = PATHS[path]
    b, y, feeds = _conv_graph(rng, 1, cin, 5, 6, cout, k, 1, (k // 2,) * 4, 1, groups)
    slope = b.constant(rng.uniform(0.05, 0.5, (cout, 1, 1)).astype(np.float32))
    y = b.prelu(y, slope)
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    assert kernels_used(session)[1:-1] == [tiled(k) if k in ("conv2d", "matmul") else k for k in kernels]
    assert "activation" not in [n.op for n in session.graph.nodes]
    assert rel_l2(got["y"], want["y"]) < tol(precision)


@pytest.mark.parametrize("m,k,n", [(5, 8, 12), (1, 1024, 1000), (7, 6, 5), (3, 13, 4), (9, 257, 64), (70, 20, 67),
                                   (70, 21, 67)])
def test_matmul_constant_weights(device, precision, rng, m, k, n):
    b = wgnn.GraphBuilder()
    a = b.input("a", (m, k))
    w = b.constant(rng.standard_normal((k, n)).astype(np.float32))
    bias = b.constant(rng.standard_normal(n).astype(np.float32))
    y = b.gemm(a, w, bias)
    feeds = {"a": rng.standard_normal((m, k)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    aligned = k % 4 == 0 and n % 4 == 0
    # a classifier (4 MB of weights): the register-tiled kernel at tile 1 on a software adapter
    # (policy.single_row), gemv on a GPU; K not a multiple of 4: the register-tiled kernels reading
    # A as scalars; N not one: the register-tiled kernels over B padded with zero columns, their rows
    # stored up to N (N_RAGGED), or for a large result B padded by pad_matmul_columns, the product
    # sliced back (a copy)
    padded = n % 4 and m * n >= 4096
    from wgnn.backends.compute.policy import AdapterProfile

    single = "matmul" if AdapterProfile.from_device(device).kind == "cpu" else "gemv"
    expected = [single if m == 1 and aligned else tiled("matmul")]
    assert kernels_used(session) == expected + (["elementwise"] if padded else [])
    assert rel_l2(got["y"], want["y"]) < tol(precision)


@pytest.mark.parametrize("also", ["softmax", "softmax_and_sum"])
def test_a_padded_classifier_feeds_its_softmax_in_place(device, precision, rng, also):
    """A classifier over thousands of classes, N not a multiple of 4 (PP-OCR's 18385 characters):
    the product runs on the vec4 kernel over zero-padded columns (``pad_matmul_columns``) and the
    softmax over the last axis reads the real columns where they lie, with no copy of them; where
    something else reads them too, they are copied as before."""
    b = wgnn.GraphBuilder()
    a = b.input("a", (2, 9, 24))
    logits = b.matmul(a, b.constant((rng.standard_normal((24, 1023)) / 4).astype(np.float32)),
                      name="classifier")
    outputs = {"p": b.softmax(logits, axis=-1), "logp": b.log_softmax(logits, axis=-1)}
    if also == "softmax_and_sum":
        outputs["sum"] = b.reduce(logits, "sum", [2])
    feeds = {"a": rng.standard_normal(a.shape).astype(np.float32)}
    session, got, want = run_both(b, outputs, feeds, precision=precision)
    for name in outputs:
        assert rel_l2(got[name], want[name]) < tol(precision), name
    assert session.pass_log["pad_matmul_columns"] == 1
    ops = [d.node.op for d in session._exe.dispatches]
    assert ops.count("slice") == (also != "softmax"), ops
    # read in place, the rows (1023 values, 1024 apart) are read as vec4s, the last one masked
    sources = [src for src in session._exe.pipelines if "// Softmax" in src]
    assert all(("const W: u32 = 4u;" in src) == (also == "softmax") for src in sources), len(sources)


def test_matmul_scalar_a_batched(device, precision, rng):
    """K not a multiple of 4: A is read as scalars, each matrix of the batch at its own offset (in
    elements), the rows past a tile's end dropped, the last K % 4 values of every row added (on the
    octet kernel where the device has subgroups: a row of B at a time through the octet)."""
    b = wgnn.GraphBuilder()
    a = b.input("a", (3, 10, 7))
    c = b.input("c", (3, 7, 8))
    y = b.matmul(a, c)
    feeds = {"a": rng.standard_normal((3, 10, 7)).astype(np.float32),
             "c": rng.standard_normal((3, 7, 8)).astype(np.float32)}
    session, got, _ = run_both(b, {"y": y}, feeds, precision=precision)
    assert kernels_used(session) == [tiled("matmul")]
    assert rel_l2(got["y"], feeds["a"] @ feeds["c"]) < tol(precision)


@pytest.mark.parametrize("k", [12, 10])
def test_matmul_ragged_columns(device, precision, rng, k):
    """N not a multiple of 4 on the register-tiled kernels (N_RAGGED), against numpy: attention's
    scores over a sequence of any length (B computed at run time, a batch of them, read as scalars),
    a product by constant weights with bias and activation (B padded with zero columns), and one
    written in place into a concat's result along its middle axis (rows of 2 x 6 values, whole
    vec4s there, 36 apart: Y_SLICE), stored a value at a time; K a multiple of 4 and not (A read
    as scalars too)."""
    b = wgnn.GraphBuilder()
    q, keys = b.input("q", (2, 5, k)), b.input("keys", (2, k, 7))
    x, other = b.input("x", (2, 2, k)), b.input("other", (2, 4, 6))
    w, bias = rng.standard_normal((k, 7)).astype(np.float32), rng.standard_normal(7).astype(np.float32)
    outs = {"scores": b.matmul(q, keys, name="scores"),
            "dense": b.relu(b.gemm(b.reshape(x, (4, k)), b.constant(w), b.constant(bias))),
            "joined": b.concat([b.matmul(x, b.input("v", (k, 6)), name="part"), other], axis=1)}
    feeds = {"q": rng.standard_normal((2, 5, k)).astype(np.float32),
             "keys": rng.standard_normal((2, k, 7)).astype(np.float32),
             "x": rng.standard_normal((2, 2, k)).astype(np.float32),
             "other": rng.standard_normal((2, 4, 6)).astype(np.float32),
             "v": rng.standard_normal((k, 6)).astype(np.float32)}
    session, got, _ = run_both(b, outs, feeds, precision=precision)
    want = {"scores": feeds["q"] @ feeds["keys"], "dense": np.maximum(feeds["x"].reshape(4, k) @ w + bias, 0),
            "joined": np.concatenate([feeds["x"] @ feeds["v"], feeds["other"]], axis=1)}
    for name in outs:
        assert rel_l2(got[name], want[name]) < tol(precision), name
    # on the octet kernel where the device has subgroups, else the register-tiled one
    kernel = tiled("matmul")
    assert "matmul_generic" not in kernels_used(session) and kernels_used(session).count(kernel) == 3
    assert all(session.kernel_choices()[n].split()[0] == {"matmul": "tiled", "matmul_shared": "subgroup"}[kernel]
               for n in ("scores", "part"))
    ragged = [src for src in session._exe.pipelines if "const N_RAGGED: bool = true;" in src]
    # (in fp16 the compile plans no part of this concat in place: it copies both)
    assert any("const Y_SLICE: bool = true;" in src for src in ragged) or precision == "fp16"


def test_matmul_batched_runtime_operands(device, precision, rng):
    b = wgnn.GraphBuilder()
    a = b.input("a", (3, 5, 8))
    c = b.input("c", (3, 8, 4))
    d = b.input("d", (8, 6))
    y = b.matmul(a, c)
    z = b.matmul(a, d)
    feeds = {"a": rng.standard_normal((3, 5, 8)).astype(np.float32),
             "c": rng.standard_normal((3, 8, 4)).astype(np.float32),
             "d": rng.standard_normal((8, 6)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y, "z": z}, feeds, precision=precision)
    assert kernels_used(session) == [tiled("matmul")] * 2  # (z: N = 6, N_RAGGED)
    assert rel_l2(got["y"], feeds["a"] @ feeds["c"]) < tol(precision)
    assert rel_l2(got["z"], want["z"]) < tol(precision)


@pytest.mark.parametrize("trans_a,trans_b,alpha,beta", [(False, True, 1.0, 1.0), (True, False, 0.5, 2.0)])
def test_gemm_attributes(device, precision, rng, trans_a, trans_b, alpha, beta):
    b = wgnn.GraphBuilder()
    a_shape = (8, 4) if trans_a else (4, 8)
    a = b.input("a", a_shape)
    w = rng.standard_normal((12, 8) if trans_b else (8, 12)).astype(np.float32)
    c = rng.standard_normal((1, 12)).astype(np.float32)
    y = b.gemm(a, b.constant(w), b.constant(c), alpha=alpha, beta=beta, a_transpose=trans_a, b_transpose=trans_b)
    x = rng.standard_normal(a_shape).astype(np.float32)
    _, got, _ = run_both(b, {"y": y}, {"a": x}, precision=precision)
    want = alpha * (x.T if trans_a else x) @ (w.T if trans_b else w) + beta * c
    assert rel_l2(got["y"], want) < tol(precision)


POOL_CASES = [
    ("max_3x3_s2", "max", (3, 3), 2, (0, 0, 0, 0), False, False),
    ("max_ceil", "max", (3, 3), 2, (0, 0, 0, 0), True, False),
    ("max_padded", "max", (3, 3), 2, (1, 1, 1, 1), False, False),
    ("avg_exclude_pad", "avg", (3, 3), 1, (1, 1, 1, 1), False, False),
    ("avg_include_pad", "avg", (3, 3), 2, (1, 1, 1, 1), False, True),
    ("avg_ceil_include_pad", "avg", (2, 2), 2, (0, 1, 0, 1), True, True),
    ("global_avg", "avg", None, 1, (0, 0, 0, 0), False, False),
    ("global_max", "max", None, 1, (0, 0, 0, 0), False, False),
]


@pytest.mark.parametrize("width", [9, 23])
@pytest.mark.parametrize("channels", [5, 8], ids=["scalar", "vec4"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_pooling(device, precision, rng, case, channels, width):
    """5 channels run one per invocation (pool.wgsl), 8 as two vec4s: windows at most 3 wide with a
    column stride of 1 or 2 four outputs of a row per invocation (pool_rows.wgsl; 23 columns make a
    last tile of three outputs or fewer), the others one (global pooling of so small an image too)."""
    _, mode, window, stride, pads, ceil, include = case
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, channels, 10, width))
    if mode == "max":
        y = b.max_pool2d(x, window=window, strides=stride, padding=pads, ceil_mode=ceil)
    else:
        y = b.average_pool2d(x, window=window, strides=stride, padding=pads, ceil_mode=ceil,
                             count_include_pad=include)
    feeds = {"x": rng.standard_normal((2, channels, 10, width)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    rows = channels % 4 == 0 and window is not None
    assert ("pool_rows" if rows else "pool") in kernels_used(session)
    assert rel_l2(got["y"], want["y"]) < tol(precision)


@pytest.mark.parametrize("variant", ["workgroup", "row"])
@pytest.mark.parametrize("size", [(3, 5), (10, 23)], ids=["fewer_pixels_than_invocations", "ragged"])
@pytest.mark.parametrize("channels", [6, 16], ids=["scalar", "vec4"])
def test_global_pooling_in_both_variants(device, precision, rng, variant, size, channels):
    """Global average and max pooling with each window over a workgroup (pool_global.wgsl) or in one
    invocation (pool.wgsl), forced: images of fewer pixels than a workgroup's invocations and of a
    number no multiple of it; a NaN in one image's channel propagates through the max (as in ONNX
    Runtime) and not into other channels. With vec4s, the max pool reads a channel slice of a wider
    tensor in place and both write into their concat's result."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 2 * channels) + size)
    part = b.slice(x, starts=[channels], ends=[2 * channels], axes=[1])
    y = b.concat([b.average_pool2d(part, window=size), b.max_pool2d(part, window=size)], axis=1)
    data = rng.standard_normal((2, 2 * channels) + size).astype(np.float32)
    data[1, channels + 2, size[0] - 1, size[1] - 1] = np.nan
    session, got, want = run_both(b, {"y": y}, {"x": data}, precision=precision,
                                  kernels={"pool2d": variant})
    assert kernels_used(session).count("pool_global" if variant == "workgroup" else "pool") == 2
    nan = np.isnan(want["y"])
    assert nan.sum() == 2 and np.array_equal(np.isnan(got["y"]), nan)
    assert rel_l2(np.where(nan, 0, got["y"]), np.where(nan, 0, want["y"])) < tol(precision)
    if channels % 4 == 0:
        assert kernels_used(session).count("concat") == 0 and "slice" not in kernels_used(session)


@pytest.mark.parametrize("include", [False, True])
def test_dilated_average_pooling(device, precision, rng, include):
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 4, 9, 8))
    y = b.average_pool2d(x, window=(3, 2), strides=(2, 1), padding=(1, 1, 0, 2), dilations=(2, 3),
                         count_include_pad=include)
    feeds = {"x": rng.standard_normal((1, 4, 9, 8)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    assert kernels_used(session)[1] == "pool"
    assert rel_l2(got["y"], want["y"]) < tol(precision)


@pytest.mark.parametrize("shape,axis", [((3, 1000), -1), ((2, 7, 5), 1), ((1, 6, 4, 4), 1), ((4, 70), 0)])
def test_softmax(device, precision, rng, shape, axis):
    b = wgnn.GraphBuilder()
    x = b.input("x", shape)
    y = b.softmax(x, axis=axis)
    data = (rng.standard_normal(shape) * 20).astype(np.float32)
    session, got, want = run_both(b, {"y": y}, {"x": data}, precision=precision)
    assert "softmax" in kernels_used(session)
    assert rel_l2(got["y"], want["y"]) < tol(precision)
    np.testing.assert_allclose(got["y"].sum(axis=axis), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape,axis", [((3, 1000), -1), ((1, 6, 4, 4), 1)])
def test_log_softmax(device, precision, rng, shape, axis):
    b = wgnn.GraphBuilder()
    y = b.log_softmax(b.input("x", shape), axis=axis)
    data = (rng.standard_normal(shape) * 20).astype(np.float32)
    session, got, want = run_both(b, {"y": y}, {"x": data}, precision=precision)
    assert "softmax" in kernels_used(session)
    assert rel_l2(got["y"], want["y"]) < tol(precision)
    # finite where the probability itself rounds to zero: logits 1e4 apart
    b = wgnn.GraphBuilder()
    _, got, _ = run_both(b, {"y": b.log_softmax(b.input("x", (1, 3)))}, {"x": np.array([[1e4, 0, -1e4]], np.float32)},
                         precision=precision)
    np.testing.assert_allclose(got["y"], [[0, -1e4, -2e4]], rtol=1e-3)


def test_softmax_of_huge_logits_does_not_overflow(device, precision):
    b = wgnn.GraphBuilder()
    y = b.softmax(b.input("x", (1, 4)))
    _, got, _ = run_both(b, {"y": y}, {"x": np.array([[1e4, 1e4 - 1, -1e4, 0]], np.float32)}, precision=precision)
    e = np.exp([0.0, -1.0])
    np.testing.assert_allclose(got["y"], [[e[0] / e.sum(), e[1] / e.sum(), 0, 0]], rtol=1e-6, atol=1e-7)


BINARY_SHAPES = [((2, 3, 4, 5), (2, 3, 4, 5)), ((2, 3, 4, 5), (3, 1, 1)), ((2, 3, 4, 5), (5,)),
                 ((4, 1), (1, 6)), ((1, 8, 3, 3), (1, 8, 1, 1))]


@pytest.mark.parametrize("kind", ["add", "sub", "mul", "div", "max", "min", "pow"])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_broadcasting_binary(device, precision, rng, kind, shapes):
    b = wgnn.GraphBuilder()
    x, z = b.input("x", shapes[0]), b.input("z", shapes[1])
    y = b._binary(kind, x, z, "y")
    feeds = {"x": rng.standard_normal(shapes[0]).astype(np.float32),
             "z": rng.standard_normal(shapes[1]).astype(np.float32)}
    if kind == "div":
        feeds["z"] = np.where(np.abs(feeds["z"]) < 0.1, 0.5, feeds["z"]).astype(np.float32)
    if kind == "pow":
        feeds["x"] = np.abs(feeds["x"]).astype(np.float32) + 0.1
    _, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    assert rel_l2(got["y"], want["y"]) < tol(precision)


def test_binary_in_channels_last_layout(device, precision, rng):
    """An add between two conv outputs runs in NHWC with a broadcast (C,1,1) constant."""
    b, y, feeds = _conv_graph(rng, 1, 4, 6, 6, 8, 3, 1, (1, 1, 1, 1), 1, 1)
    z = b.mul(y, b.constant(rng.standard_normal((8, 1, 1)).astype(np.float32)))
    y = b.add(z, y)
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    assert rel_l2(got["y"], want["y"]) < tol(precision)


def test_data_movement(device, precision, rng):
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 6, 5, 7))
    t = b.transpose(x, (0, 2, 3, 1))
    s = b.slice(x, [1, 4, 0], [6, -100, 7], axes=[1, 2, 3], steps=[2, -1, 3])
    p = b.pad(x, [0, 1, 2, 0, 0, 0, 1, 3])
    pe = b.pad(x, [0, 0, 1, 2, 0, 0, 2, 1], mode="edge")
    pr = b.pad(x, [0, 0, 2, 1, 0, 0, 1, 2], mode="reflect")
    c = b.concat([x, b.relu(x), x], axis=1)
    g = b.gather(x, b.constant(np.array([3, -1, 0], np.int64)), axis=1)
    r = b.reshape(b.transpose(x, (0, 1, 3, 2)), (2, -1))
    lrn = b.lrn(x, size=3, alpha=1e-2, beta=0.75, bias=2.0)
    outputs = {"t": t, "s": s, "p": p, "pe": pe, "pr": pr, "c": c, "g": g, "r": r, "lrn": lrn}
    data = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    _, got, want = run_both(b, outputs, {"x": data}, precision=precision)
    if precision == "fp32":  # exact: data movement does no arithmetic
        np.testing.assert_array_equal(got["t"], data.transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(got["s"], data[:, 1:6:2, 4::-1, 0:7:3])
        np.testing.assert_array_equal(got["pr"], np.pad(data, ((0, 0), (0, 0), (2, 1), (1, 2)), mode="reflect"))
        np.testing.assert_array_equal(got["g"], data[:, [3, 5, 0]])
        np.testing.assert_array_equal(got["r"], data.transpose(0, 1, 3, 2).reshape(2, -1))
    for name in outputs:
        assert got[name].shape == want[name].shape, name
        assert rel_l2(got[name], want[name]) < tol(precision), name


def test_conv_then_reshape_to_logical_order(device, precision, rng):
    """Flattening a channels-last 4-D tensor with H, W > 1 needs a real layout change first."""
    b, y, feeds = _conv_graph(rng, 1, 4, 5, 6, 8, 3, 1, (1, 1, 1, 1), 1, 1)
    flat = b.flatten(y)
    _, got, want = run_both(b, {"flat": flat}, feeds, precision=precision)
    assert rel_l2(got["flat"], want["flat"]) < tol(precision)


REDUCE_KINDS = ["sum", "mean", "max", "min", "prod", "sum_square", "l1", "l2", "log_sum_exp"]


def test_max_and_min_of_infinities(device):
    """The max of a row of -inf is -inf (ONNX Runtime's; a masked attention row tests for it), the
    min of +inf rows +inf, and log-sum-exp of -inf rows -inf."""
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, -np.inf, 2.0]], np.float32)
    b = wgnn.GraphBuilder()
    xi = b.input("x", x.shape)
    got = b.build({"max": b.reduce(xi, "max", [1]), "min": b.reduce(b.activation(xi, "neg"), "min", [1]),
                   "lse": b.reduce(xi, "log_sum_exp", [1])}).compute({"x": x})
    np.testing.assert_array_equal(got["max"].reshape(-1), [-np.inf, 2.0])
    np.testing.assert_array_equal(got["min"].reshape(-1), [np.inf, -2.0])
    assert got["lse"].reshape(-1)[0] == -np.inf


@pytest.mark.parametrize("kind", REDUCE_KINDS)
def test_reductions(device, precision, rng, kind):
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 3, 5, 7))
    # reduced over logical axes, including ones that are not contiguous in channels-last storage
    y = b.conv2d(x, b.constant(rng.uniform(-0.3, 0.3, (4, 3, 1, 1)).astype(np.float32)))
    outputs = {f"{kind}_{k}": b.reduce(y, kind, axes, keepdims=kd, name=f"{kind}_{k}")
               for k, (axes, kd) in enumerate([((1,), True), ((0, 2), False), (None, False), ((3, 1), True)])}
    outputs["input_level"] = b.reduce(x, kind, (2, 3), keepdims=False, name="input_level")
    data = rng.uniform(0.5, 1.5, (2, 3, 5, 7)).astype(np.float32)
    session, got, want = run_both(b, outputs, {"x": data}, precision=precision)
    assert kernels_used(session).count("reduce") == 5
    # A product's relative error is the sum of its factors' (up to 28 here, some near zero), so
    # rounding its f16 inputs costs it more than a sum; fp32 keeps the common bound.
    bound = tol(precision) * (4 if kind == "prod" and precision == "fp16" else 1)
    for name in outputs:
        assert got[name].shape == want[name].shape, name
        assert rel_l2(got[name], want[name]) < bound, name


# (N, Cin, H, W, Cout, K, stride, pads (t, b, l, r), dilation, groups, output_padding)
CONV_TRANSPOSE_CASES = [
    (1, 4, 5, 6, 3, 2, 2, (0, 0, 0, 0), 1, 1, 0),
    (2, 3, 4, 5, 4, 3, 2, (1, 1, 1, 1), 1, 1, 1),
    (1, 4, 6, 5, 4, 4, 2, (1, 2, 1, 2), 1, 2, 0),
    (1, 2, 5, 5, 2, 3, 1, (0, 0, 0, 0), 2, 1, 0),
]


def test_conv_transpose_reference_is_the_adjoint_of_conv(rng):
    """<conv_transpose(x), y> == <x, conv(y)> with the same weights: the reference is the true transpose."""
    from wgnn.ops.nn import conv_reference, conv_transpose_reference

    for n, cin, h, w, cout, k, stride, (t, bt, lf, r), dil, groups, _ in CONV_TRANSPOSE_CASES:
        wt = rng.standard_normal((cin, cout // groups, k, k))
        x = rng.standard_normal((n, cin, h, w))
        oh = (h - 1) * stride + dil * (k - 1) + 1 - t - bt
        ow = (w - 1) * stride + dil * (k - 1) + 1 - lf - r
        y = rng.standard_normal((n, cout, oh, ow))
        up = conv_transpose_reference(x, wt, (stride,) * 2, (t, lf, bt, r), (dil,) * 2, groups, (oh, ow))
        # conv's filter is [Cout_conv=cin, Cin_conv/groups=cout/groups, K, K]: the same array
        down = conv_reference(np.pad(y, ((0, 0), (0, 0), (t, bt + stride), (lf, r + stride))), wt, (stride,) * 2,
                              (0, 0, 0, 0), (dil,) * 2, groups)[:, :, :h, :w]
        assert np.isclose(np.sum(up * y), np.sum(x * down))


@pytest.mark.parametrize("runtime_weights", [False, True], ids=["packed", "runtime_weights"])
@pytest.mark.parametrize("case", CONV_TRANSPOSE_CASES, ids=lambda c: "x".join(map(str, c[:6])))
def test_conv_transpose(device, precision, rng, case, runtime_weights):
    """Constant weights are packed at load time; weights fed at run time are read in ONNX's order.
    (Without the passes: one whose filter is its stride would otherwise run as a 1x1 convolution,
    ``transposed_as_pixel_shuffle``.)"""
    n, cin, h, w, cout, k, stride, pads, dil, groups, out_pad = case
    b = wgnn.GraphBuilder()
    x = b.input("x", (n, cin, h, w))
    wdata = rng.standard_normal((cin, cout // groups, k, k)).astype(np.float32)
    weight = b.input("w", wdata.shape) if runtime_weights else b.constant(wdata)
    y = b.conv_transpose2d(x, weight, bias=b.constant(rng.standard_normal(cout).astype(np.float32)),
                           strides=stride, padding=pads, dilations=dil, groups=groups, output_padding=out_pad,
                           activation="relu")
    feeds = {"x": rng.standard_normal((n, cin, h, w)).astype(np.float32)}
    if runtime_weights:
        feeds["w"] = wdata
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision, optimize=False)
    assert kernels_used(session).count("conv_transpose") == 1
    assert got["y"].shape == want["y"].shape
    assert rel_l2(got["y"], want["y"]) < tol(precision)


def test_resize_reference_known_values():
    """Hand-checked values: 2x bilinear half-pixel, align-corners, and nearest rounding."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 1, 1, 3))
    data = {"x": np.array([[[[0.0, 4.0, 8.0]]]], np.float32)}
    outs = {"half": b.resize(x, (1, 6), mode="linear", coordinate_mode="half_pixel"),
            "corners": b.resize(x, (1, 5), mode="linear", coordinate_mode="align_corners"),
            "nearest": b.resize(x, (1, 6), mode="nearest", coordinate_mode="asymmetric", nearest_mode="floor")}
    got = wgnn.reference.run_reference(b.build_graph(outs), data)
    np.testing.assert_allclose(got["half"].ravel(), [0, 1, 3, 5, 7, 8])
    np.testing.assert_allclose(got["corners"].ravel(), [0, 2, 4, 6, 8])
    np.testing.assert_allclose(got["nearest"].ravel(), [0, 0, 4, 4, 8, 8])


RESIZE_CASES = [("linear", "half_pixel", "round_prefer_floor", (11, 14)),
                ("linear", "align_corners", "round_prefer_floor", (9, 4)),
                ("linear", "asymmetric", "round_prefer_floor", (12, 10)),
                ("linear", "pytorch_half_pixel", "round_prefer_floor", (1, 7)),
                ("nearest", "asymmetric", "floor", (10, 15)),
                ("nearest", "tf_half_pixel_for_nn", "floor", (3, 4)),
                ("nearest", "align_corners", "round_prefer_ceil", (11, 13)),
                ("nearest", "half_pixel", "ceil", (8, 8)),
                ("cubic", "half_pixel", "antialias", (4, 3)),
                ("cubic", "tf_crop_and_resize", "exclude_outside", (9, 11)),
                # linear through the filtered sampler (antialiased, or taps outside dropped), not the
                # two-neighbour one the others take
                ("linear", "half_pixel", "antialias", (3, 4)),
                ("linear", "half_pixel", "exclude_outside", (11, 14))]


@pytest.mark.parametrize("channels", [5, 8], ids=["scalars", "vec4s"])
@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_resize(device, precision, rng, case, channels):
    """Channels in whole vec4s are resized four to an invocation (one source position and its weights
    for the four), other counts one element at a time: the same results. Linear resizing without
    antialiasing or dropped taps reads the two neighbours directly (``sample_bilinear``)."""
    mode, coords, nearest, size = case
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, channels, 6, 7))
    if mode == "cubic" or nearest in ("antialias", "exclude_outside"):
        y = b.resize(x, size, mode=mode, coordinate_mode=coords, antialias=nearest == "antialias",
                     exclude_outside=nearest == "exclude_outside",
                     roi=((0.1, 0.9), (-0.2, 1.1)) if coords == "tf_crop_and_resize" else None,
                     extrapolation_value=-2.0)
    else:
        y = b.resize(x, size, mode=mode, coordinate_mode=coords, nearest_mode=nearest)
    feeds = {"x": rng.standard_normal((2, channels, 6, 7)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    assert kernels_used(session).count("resize") == 1
    assert got["y"].shape == want["y"].shape == (2, channels) + size
    assert rel_l2(got["y"], want["y"]) < tol(precision)


# -- indexing: cumulative sums, top-k, gathers and scatters ----------------------------------------

def test_indexing_ops_against_numpy(device, precision, rng):
    """The builder's indexing ops (ONNX's CumSum, CumProd, TopK, GatherElements, GatherND,
    ScatterElements, ScatterND) in one graph, with indices computed on the GPU (negative ones and
    duplicates included), against the numpy reference; values on a grid of quarters (powers of two
    for the products), exact in f16."""
    x_np = (rng.integers(-40, 40, (2, 5, 6, 7)) / 4).astype(np.float32)
    b = wgnn.GraphBuilder()
    x = b.input("x", x_np.shape)
    idx = b.input("idx", (2, 5, 6, 4), "int64")
    rows = b.input("rows", (3, 2, 2), "int64")
    powers = b.input("powers", (2, 5, 7))
    outs = {"cumsum": b.cumulative_sum(x, 2, exclusive=True, reversed=True),
            "cumprod": b.cumulative_product(powers, -1, exclusive=True),
            "cumprod_reversed": b.cumulative_product(powers, 1, reversed=True),
            "gather_elements": b.gather_elements(x, idx, axis=3),
            "gather_nd": b.gather_nd(x, rows),
            "scatter_add": b.scatter_elements(x, idx, b.activation(b.gather_elements(x, idx, axis=3), "neg"), axis=3,
                                              reduction="add"),
            "scatter_nd_max": b.scatter_nd(x, rows, b.mul(b.gather_nd(x, rows), b.constant(np.float32(-2))),
                                           reduction="max")}
    values, indices = b.top_k(b.add(x, b.constant(np.arange(7, dtype=np.float32) / 64)), 3, axis=3)  # no ties
    outs.update(top_values=values, top_indices=indices)
    feeds = {"x": x_np, "idx": rng.integers(-7, 7, (2, 5, 6, 4)).astype(np.int64),
             "powers": rng.choice(np.array([-2, -1, -0.5, 0.5, 1, 2], np.float32), (2, 5, 7)),
             "rows": np.array([[[1, -2], [0, 0]], [[1, 3], [0, 0]], [[-1, 3], [0, 4]]], np.int64)}
    session, got, want = run_both(b, outs, feeds, precision=precision)
    for name in outs:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("mode,ratio,half_pixel", [("avg", 0, True), ("max", 2, False)])
def test_roi_align_against_numpy(device, precision, rng, mode, ratio, half_pixel):
    """RoiAlign (and MaxRoiPool) on regions inside, across and outside the edges, tiny and large ones
    (adaptive grids of 1 to 5 points a side), from a feature map computed on the GPU, against the
    numpy reference."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 5, 11, 13))
    rois = b.input("rois", (5, 4))
    batch = b.input("batch", (5,), "int64")
    features = b.activation(x, "relu")
    y = b.roi_align(features, rois, batch, (3, 2), sampling_ratio=ratio, spatial_scale=0.5,
                    half_pixel=half_pixel, mode=mode)
    pooled = b.max_roi_pool(features, b.input("rois5", (5, 5)), (3, 2), spatial_scale=0.5)
    feeds = {"x": rng.standard_normal((2, 5, 11, 13)).astype(np.float32),
             "rois": np.array([[1, 2, 20, 18], [-6, -4, 8, 9], [22, 18, 34, 30], [4, 4, 4.5, 4.2], [0, 0, 26, 22]],
                              np.float32),
             "batch": np.array([0, 1, 1, 0, 1], np.int64)}
    feeds["rois5"] = np.concatenate([feeds["batch"][:, None].astype(np.float32), feeds["rois"]], 1)
    _, got, want = run_both(b, {"y": y, "pooled": pooled}, feeds, precision=precision)
    assert rel_l2(got["y"], want["y"]) < tol(precision) and rel_l2(got["pooled"], want["pooled"]) < tol(precision)


def test_bitcast_of_a_computed_float32_keeps_its_bits(device, precision, rng):
    """BitCast reads every bit of a float32 tensor: one computed on the GPU stays f32 in fp16 sessions
    (f16 would change its bits), and ints read back as float32 come out whole."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (3, 8))
    bits = b.bitcast(b.add(x, x), "int32")
    back = b.bitcast(b.add(bits, b.constant(np.int32(1))), "float32")
    x_np = rng.standard_normal((3, 8)).astype(np.float32)
    _, got, want = run_both(b, {"bits": bits, "back": back}, {"x": x_np}, precision=precision)
    np.testing.assert_array_equal(got["bits"], (x_np + x_np).view(np.int32))
    np.testing.assert_array_equal(got["back"], want["back"])


def test_max_unpool_after_max_pool_with_indices(device, precision, rng):
    """A SegNet decoder's step: max pooling with indices, then unpooling to the input's size (each
    maximum back in place, zeros elsewhere; overlapping windows name a place twice, with one value)."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 5, 9, 11))
    outs = {}
    for window, stride in ((2, 2), (3, 2)):
        pooled, where = b.max_pool2d_with_indices(x, window=(window, window), strides=stride)
        outs[f"unpooled_{window}"] = b.max_unpool(pooled, where, (2, 5, 9, 11))
    x_np = (rng.integers(-40, 40, (2, 5, 9, 11)) / 4).astype(np.float32)
    _, got, want = run_both(b, outs, {"x": x_np}, precision=precision)
    for name in outs:
        np.testing.assert_array_equal(got[name], want[name])
        assert np.count_nonzero(want[name]) > 0


def test_det_against_numpy(device, precision, rng):
    """Determinants of a batch of 6 x 6 matrices computed on the GPU (pivoting needed: a zero on the
    diagonal; a singular one), against numpy's."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (3, 6, 6))
    x_np = rng.standard_normal((3, 6, 6)).astype(np.float32)
    x_np[0, 0, 0] = 0.0
    x_np[2, 3] = x_np[2, 1] * 2
    d = b.det(b.activation(b.activation(x, "neg"), "neg"))  # of a tensor computed on the GPU
    _, got, want = run_both(b, {"d": d}, {"x": x_np}, precision=precision)
    assert rel_l2(got["d"][:2], want["d"][:2]) < tol(precision) and abs(got["d"][2]) < 1e-3 * abs(want["d"][0])


def test_integer_cumsum_and_top_k_stay_exact(device, rng):
    """Integer tensors: the running sums in i32 (past 2^24, where f32 would round) and top-k
    comparing integers."""
    x_np = rng.integers(-(1 << 27), 1 << 27, (3, 50)).astype(np.int32)
    b = wgnn.GraphBuilder()
    x = b.input("x", x_np.shape, "int32")
    values, indices = b.top_k(x, 7, largest=False)
    session, got, want = run_both(b, {"sum": b.cumulative_sum(x, 1), "v": values, "i": indices}, {"x": x_np})
    for name in ("sum", "v", "i"):
        np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize("mode,padding,align", [("nearest", "zeros", False), ("linear", "reflection", True),
                                                 ("cubic", "border", False)])
def test_grid_sample_against_numpy(device, precision, rng, mode, padding, align):
    """grid_sample against the numpy reference (ONNX's algorithm), grid points past the borders too."""
    x = rng.standard_normal((2, 3, 6, 8)).astype(np.float32)
    grid = rng.uniform(-1.4, 1.4, (2, 4, 5, 2)).astype(np.float32)
    b = wgnn.GraphBuilder()
    y = b.grid_sample(b.input("x", x.shape), b.input("grid", grid.shape), mode=mode, padding_mode=padding,
                      align_corners=align)
    session, got, want = run_both(b, {"y": y}, {"x": x, "grid": grid}, precision=precision)
    assert kernels_used(session) == ["grid_sample"]
    assert rel_l2(got["y"], want["y"]) < tol(precision)


@pytest.mark.parametrize("mode,padding", [("nearest", "border"), ("linear", "zeros"), ("cubic", "reflection")])
def test_grid_sample_volumetric_against_numpy(device, rng, mode, padding):
    """grid_sample of an NCDHW volume (a grid of (x, y, z)) against the numpy reference."""
    x = rng.standard_normal((1, 2, 4, 5, 6)).astype(np.float32)
    grid = rng.uniform(-1.3, 1.3, (1, 3, 2, 4, 3)).astype(np.float32)
    b = wgnn.GraphBuilder()
    y = b.grid_sample(b.input("x", x.shape), b.input("grid", grid.shape), mode=mode, padding_mode=padding)
    _, got, want = run_both(b, {"y": y}, {"x": x, "grid": grid})
    assert got["y"].shape == (1, 2, 3, 2, 4)
    assert rel_l2(got["y"], want["y"]) < tol("fp32")


def _walked_arg(x: np.ndarray, axis: int, kind: str, last: bool) -> np.ndarray:
    """ArgMax / ArgMin as one walk from index 0 decides (NaN never wins a comparison)."""
    moved = np.moveaxis(x, axis, -1)
    out = np.zeros(moved.shape[:-1], np.int64)
    for at in np.ndindex(*moved.shape[:-1]):
        row, best, index = moved[at], moved[at][0], 0
        for k in range(1, row.shape[0]):
            v = row[k]
            if (v > best or (last and v == best)) if kind == "max" else (v < best or (last and v == best)):
                best, index = v, k
        out[at] = index
    return out


@pytest.mark.parametrize("variant", ["workgroup", "row"])
@pytest.mark.parametrize("last", [False, True], ids=["first", "last"])
def test_arg_max_and_min_in_both_variants(device, precision, rng, variant, last):
    """ArgMax and ArgMin with each output's axis over a workgroup (a few outputs over a long axis:
    what the defaults take below 64 outputs) or walked by one invocation, forced: along 1000 values
    and along a middle axis of 7; ties (values from a handful) resolved to the first or the last
    index; a NaN at index 0 is the answer, any other NaN passed over; integer tensors too. As one
    walk from index 0 decides, which both variants must give."""
    x = rng.integers(0, 6, (3, 1000)).astype(np.float32)
    x[1, 0], x[2, [5, 700]] = np.nan, np.nan
    m = rng.integers(-3, 3, (2, 7, 5)).astype(np.int32)
    b = wgnn.GraphBuilder()
    xi, mi = b.input("x", x.shape), b.input("m", m.shape, dtype="int32")
    outputs = {"xmax": b.arg_max(xi, 1, keepdims=False, select_last_index=last),
               "xmin": b.arg_min(xi, 1, keepdims=False, select_last_index=last),
               "mmax": b.arg_max(mi, 1, select_last_index=last), "mmin": b.arg_min(mi, 1, select_last_index=last)}
    session = wgnn.InferenceSession(b.build_graph(outputs), precision=precision, kernels={"arg_reduce": variant})
    got = session.compute({"x": x, "m": m})
    assert set(session.kernel_choices().values()) == {f"{variant} wg64"}
    for name, data, kind in (("xmax", x, "max"), ("xmin", x, "min"), ("mmax", m, "max"), ("mmin", m, "min")):
        want = _walked_arg(data, 1, kind, last)
        np.testing.assert_array_equal(got[name].reshape(want.shape), want, err_msg=name)
    assert got["xmax"][1] == got["xmin"][1] == 0
