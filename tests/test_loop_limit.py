"""Loop limits: Mesa's llvmpipe (lavapipe) ends every loop of a shader invocation after 65,535
iterations in all, without an error, so a kernel that walks a long row alone returns a result cut
short. The kernel policy keeps within the adapter's ``Device.loop_limit`` (row kernels spread over a
workgroup, a range over parts, a long quantized LSTM layer in several dispatches), and a node no
variant can run within it is refused by name (``LoopLimitError``) rather than computed wrong. The
limit can be lowered (``WGNN_LOOP_LIMIT``) so that small tensors take the same paths on any adapter."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import fetch_or_skip, sample

import wgnn
from wgnn import samples
from wgnn.errors import LoopLimitError
from wgnn.runtime import LLVMPIPE_LOOP_LIMIT


def build(make, **inputs):
    b = wgnn.GraphBuilder()
    ops = {name: b.input(name, value.shape, str(value.dtype)) for name, value in inputs.items()}
    return b.build_graph({"y": make(b, **ops)})


def run(graph, feeds, **kw):
    return wgnn.InferenceSession(graph, **kw).run(None, feeds)[0]


def test_device_reports_the_driver_loop_limit(device, monkeypatch):
    llvmpipe = "llvmpipe" in str(device.adapter.info.get("device", "")).lower()
    assert device.loop_limit == (LLVMPIPE_LOOP_LIMIT if llvmpipe else None)
    monkeypatch.setenv("WGNN_LOOP_LIMIT", "300")
    assert device.loop_limit == 300
    monkeypatch.setenv("WGNN_LOOP_LIMIT", "0")
    assert device.loop_limit is None


@pytest.mark.parametrize("limit", [None, 200])
def test_row_kernels_over_rows_longer_than_the_limit(device, rng, monkeypatch, limit):
    """Sums, arg-maxima, softmax and layer norms of 64 rows (the defaults' "row" variant: an
    invocation a row) longer than the limit: the real one on lavapipe (70,000 values a row; a row
    summed alone gave 65,535 of 70,000 ones), or a lowered one for 1,000 values on any adapter."""
    if limit is not None:
        monkeypatch.setenv("WGNN_LOOP_LIMIT", str(limit))
    x = rng.standard_normal((64, 70_000 if limit is None else 1_000)).astype(np.float32)
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(1, keepdims=True))
    cases = {
        "sum": (lambda b, x: b.reduce(x, "sum", axes=[1]), x64.sum(1, keepdims=True)),
        "log_sum_exp": (lambda b, x: b.reduce(x, "log_sum_exp", axes=[1]),
                        np.log(np.exp(x64).sum(1, keepdims=True))),
        "arg_max": (lambda b, x: b.arg_max(x, axis=1), x.argmax(1)[:, None]),
        "softmax": (lambda b, x: b.softmax(x, axis=1), e / e.sum(1, keepdims=True)),
        "layer_norm": (lambda b, x: b.layer_normalization(x, axis=1)[0],
                       (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5)),
    }
    for name, (make, want) in cases.items():
        session = wgnn.InferenceSession(build(make, x=x))
        got = session.run(None, {"x": x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=name)
        # (a layer norm's three passes over 17,500 vec4s stay within lavapipe's limit: a row each)
        if device.loop_limit is not None and (limit is not None or name != "layer_norm"):
            assert next(iter(session.kernel_choices().values())).startswith("workgroup"), name


def test_a_range_over_more_values_than_one_workgroup_walks(device, monkeypatch):
    """DynamicQuantizeLinear of 200,000 values under a limit of 1,000: the range one workgroup would
    walk (3,125 values an invocation) is taken in parts; scale and zero point as numpy's."""
    monkeypatch.setenv("WGNN_LOOP_LIMIT", "1000")
    x = np.linspace(-3.0, 5.0, 200_000, dtype=np.float32)
    x[123_457] = 9.0  # (the maximum near the end: a range cut short would miss it)
    graph = build(lambda b, x: b.dynamic_quantize_linear(x)[1], x=x)
    assert run(graph, {"x": x}) == pytest.approx((9.0 + 3.0) / 255, rel=1e-6)


@pytest.mark.parametrize("limit", [None, 300])
def test_a_cumulative_sum_along_an_axis_longer_than_the_limit(device, rng, monkeypatch, limit):
    """A cumulative sum along more values than the limit (70,000 on lavapipe's, where an invocation
    an output had looped up to the whole axis and was refused; 2,000 under a lowered one) combines
    blocks of about the axis's square root first: numpy's sums, forwards and reversed, inclusive and
    exclusive, f32 and exact int32 (and products)."""
    if limit is not None:
        monkeypatch.setenv("WGNN_LOOP_LIMIT", str(limit))
    length = 70_000 if limit is None else 2_000
    floats = rng.standard_normal((3, length)).astype(np.float32)
    ints = rng.integers(-1000, 1000, (3, length)).astype(np.int32)
    for x in (floats, ints):
        wide = x.astype(np.float64 if x.dtype == np.float32 else np.int64)
        for exclusive in (False, True):
            for reverse in (False, True):
                graph = build(lambda b, x, e=exclusive, r=reverse: b.cumulative_sum(x, axis=1, exclusive=e, reversed=r),
                              x=x)
                got = run(graph, {"x": x})
                want = np.cumsum(wide[:, ::-1] if reverse else wide, axis=1)
                if exclusive:
                    want = np.concatenate([np.zeros_like(want[:, :1]), want[:, :-1]], axis=1)
                want = want[:, ::-1] if reverse else want
                if x.dtype == np.int32:
                    np.testing.assert_array_equal(got, want)
                else:
                    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    near_one = rng.uniform(0.999, 1.001, (2, length)).astype(np.float32)
    got = run(build(lambda b, x: b.cumulative_product(x, axis=1), x=near_one), {"x": near_one})
    # (f32 rounds each of up to 70,000 products: a random walk of about sqrt(n) roundings, which
    # numpy's own f32 product, one after another, takes as far as 1.3e-5 on such data)
    np.testing.assert_allclose(got, np.cumprod(near_one.astype(np.float64), axis=1), rtol=1e-4)


def test_kernels_no_variant_fits_are_refused_by_name(device, monkeypatch):
    """A top-k and a product (of K = 2,000: 504 vec4 steps) whose invocations would loop past the
    limit (here 300) are refused at compile with the node, the kernel and both numbers, never run
    cut short."""
    monkeypatch.setenv("WGNN_LOOP_LIMIT", "300")
    x = np.ones((2, 2000), np.float32)
    for make, kernel in ((lambda b, x: b.top_k(x, 3, axis=1)[0], "top_k"),
                         (lambda b, x: b.matmul(x, b.constant(np.ones((2000, 4), np.float32))), "matmul")):
        with pytest.raises(LoopLimitError, match=f"kernel '{kernel}[a-z_]*' would run [0-9]+ loop iterations") as info:
            wgnn.InferenceSession(build(make, x=x))
        assert info.value.limit == 300 and info.value.iterations > 300
    assert run(build(lambda b, x: b.top_k(x, 3, axis=1)[0], x=x[:, :250]), {"x": x[:, :250]}).shape == (2, 3)


def test_texture_softmax_of_long_rows(device, rng):
    """The texture path's softmax walks a row a texel at a time (four values; along another axis,
    four rows at a time): a row of 20,000 values, which a lane at a time had cut short on lavapipe
    (8 x 20,000 iterations a fragment), gives numpy's values."""
    x = (rng.standard_normal((2, 3, 20_000)) * 4).astype(np.float32)
    for axis in (2, 1):
        got = run(build(lambda b, x, axis=axis: b.softmax(x, axis=axis), x=x), {"x": x}, backend="texture")
        e = np.exp(x - x.max(axis, keepdims=True))
        np.testing.assert_allclose(got, e / e.sum(axis, keepdims=True), rtol=1e-4, atol=1e-9)


def test_a_long_quantized_lstm_layer_runs_in_several_dispatches(device):
    """text2tashkeel's rawi-v2 (dynamically quantized bidirectional LSTM layers of 256 units) on all
    of apt's Arabic sentences as one text of 1,062 characters: run in one dispatch, a layer's
    invocation would loop about 105,000 times, and on lavapipe 72% of the characters then got
    another class than ONNX Runtime gives. Past the limit each layer runs in several dispatches of
    at most 496 steps (three of 354; two of 340 for the first 680 characters): the classes agree
    (but for the few that a state value rounding to a neighbouring quantization step moves, as for
    short sentences; 99.9% measured)."""
    ort = pytest.importorskip("onnxruntime")
    path = fetch_or_skip("tashkeel_rawi_v2")
    vocab = json.loads(path.with_name(wgnn.zoo.TASHKEEL_VOCAB[0]).read_text(encoding="utf-8"))
    text = " ".join(sample(samples.arabic_sentences, 38))
    ids = samples.tashkeel_ids(text, vocab)
    assert ids.shape == (1, 1062)
    session = wgnn.InferenceSession(str(path))
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # (and its first 680 characters: cut short from about 662 steps on lavapipe, 99 loops a step)
    for feeds in ({"input": ids}, {"input": ids[:, :680]}):
        got, want = session.run(None, feeds)[0], reference.run(None, feeds)[0]
        assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.99, feeds["input"].shape
        layers = [d for d in session._exe.dispatches if d.kernel == "lstm_layer"]  # (this shape's plan)
        if device.loop_limit is not None:
            assert len(layers) == 2 * (3 if feeds["input"].shape[1] == 1062 else 2), feeds["input"].shape
