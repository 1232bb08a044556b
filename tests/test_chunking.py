"""A batch too large for the adapter's bindings, run as parts of the batch (wgnn.chunking): which
models treat their samples alone, the session's parts against one run of the whole batch, and the
error where a model mixes its samples."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import wgnn
from wgnn import zoo
from wgnn.chunking import batch_axes, part_size
from wgnn.errors import TooLargeForAdapter

LIMIT = "max-storage-buffer-binding-size"


def _graph(build, n=4):
    b = wgnn.GraphBuilder()
    x = b.input("x", (n, 3, 8, 8))
    return b.build_graph({"y": build(b, x)})


def test_batch_axes_follow_the_samples_through_a_network():
    rng = np.random.default_rng(0)

    def net(b, x):
        y = b.relu(b.conv2d(x, b.constant(rng.standard_normal((6, 3, 3, 3)).astype(np.float32)), padding=(1, 1, 1, 1)))
        y = b.add(y, b.constant(np.ones((1, 6, 1, 1), np.float32)))  # one value per channel
        y = b.transpose(b.reshape(y, (4, 6, 64)), (2, 0, 1))  # the samples now along axis 1
        y = b.softmax(y, axis=2)
        return b.reduce(y, "mean", axes=[0], keepdims=False)  # back on axis 0

    assert batch_axes(_graph(net), {"x"}, 4) == ({"y": 0}, None)
    moved = _graph(lambda b, x: b.transpose(x, (1, 0, 2, 3)))
    assert batch_axes(moved, {"x"}, 4) == ({"y": 1}, None)  # the parts are joined along axis 1
    arg = _graph(lambda b, x: b.arg_max(b.transpose(x, (1, 0, 2, 3)), axis=0, keepdims=False))
    assert batch_axes(arg, {"x"}, 4) == ({"y": 0}, None)  # (the axis before the batch's dropped)


@pytest.mark.parametrize("build,why", [
    (lambda b, x: b.sub(x, b.reduce(x, "mean", axes=[0])), "reduces over the batch axis"),
    (lambda b, x: b.reshape(x, (2, 2, 3, 8, 8)), "merges the batch axis"),
    (lambda b, x: b.mul(x, b.constant(np.arange(4, dtype=np.float32).reshape(4, 1, 1, 1))), "different constant"),
    (lambda b, x: b.softmax(x, axis=0), "works along the batch axis"),
    (lambda b, x: b._add("layer_norm", [b.transpose(x, (1, 2, 0, 3)), b.constant(np.ones(256, np.float32)),
                                          b.constant(np.zeros(256, np.float32))], {"axis": 1, "epsilon": 1e-5})[0],
     "works along the batch axis"),  # (layer_norm: over its axis and the ones after it)
    (lambda b, x: b.concat([x, b.slice(x, [0], [1], axes=[0])], axis=0), "slices the batch axis"),
    (lambda b, x: b.div(x, b.cast(b.gather(b.shape(x), b.constant(np.array(0, np.int64))), "float32")),
     "computes on the batch's size"),
])
def test_what_mixes_samples_is_named(build, why):
    axes, reason = batch_axes(_graph(build), {"x"}, 4)
    assert axes is None and why in reason, reason


def test_the_batch_size_may_shape_a_reshape():
    """The shape of a batched tensor given to a reshape (as exporters write x.view(x.size(0), -1))."""
    def flatten(b, x):
        n = b.gather(b.shape(x), b.constant(np.array([0], np.int64)))
        return b.reshape(x, b.concat([n, b.constant(np.array([-1], np.int64))], axis=0))

    assert batch_axes(_graph(flatten), {"x"}, 4) == ({"y": 0}, None)


def test_part_sizes_are_as_even_as_the_fewest_parts_allow():
    assert part_size(37, 178, 128) == 19  # two parts (19 + 18), not 18 + 18 + 1
    assert part_size(32, 154, 128) == 16
    assert part_size(4, 1000, 1) == 1
    assert part_size(2, 129, 128) == 1


def test_a_batch_beyond_the_binding_limit_runs_in_parts(device, monkeypatch, caplog):
    """MobileNet V2 on 5 real photos with the adapter's binding limit at 16 MiB (its largest tensor
    at batch 5: 24 MB): runs of 3 samples, the last padded; every logit as one run of the batch gives
    them, the parts' plan compiled once, and the session says so."""
    photos = zoo.packaged_photos()
    x = np.concatenate(photos + photos[:1])
    model = zoo.build("mobilenet_v2", softmax=False)
    want = wgnn.InferenceSession(model, device=device).run(None, {"input": x})[0]
    monkeypatch.setitem(device.limits, LIMIT, 16 << 20)
    session = wgnn.InferenceSession(model, device=device)
    with caplog.at_level(logging.WARNING, logger="wgnn"):
        got = session.run(None, {"input": x})[0]
    assert session.batch_parts == {5: 3}
    assert "batch 5 runs as 2 runs of 3" in caplog.text and "max-storage-buffer-binding-size" in caplog.text
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the compile at batch 5 that failed left the arena the plans share as the part's plan sized it
    shared = session._exe.shared
    assert shared is not None and shared.arena is session._exe.arena
    assert shared.arena.size == session._exe.plan.arena_bytes
    compiled = session.plans_compiled
    np.testing.assert_array_equal(session.run(None, {"input": x})[0], got)
    assert session.plans_compiled == compiled
    np.testing.assert_array_equal(session.run(None, {"input": x[:3]})[0], got[:3])  # the part's own plan
    with pytest.raises(TooLargeForAdapter, match="results kept on the GPU need the whole batch"):
        session.run_on_gpu({"input": x})


def test_a_model_that_mixes_its_samples_is_refused_and_keeps_its_plan(device, monkeypatch):
    """Centering by the batch's mean cannot run in parts: the size error says which node mixes the
    samples, and the plan compiled before stays usable."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1024])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1024])
    graph = helper.make_graph([helper.make_node("ReduceMean", ["x"], ["m"], axes=[0], name="batch_mean"),
                               helper.make_node("Sub", ["x", "m"], ["y"], name="center")], "center", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = wgnn.InferenceSession(model.SerializeToString(), device=device)
    small = np.random.default_rng(1).standard_normal((2, 1024)).astype(np.float32)
    want = session.run(None, {"x": small})[0]
    monkeypatch.setitem(device.limits, LIMIT, 64 << 10)
    mixes = "cannot run in parts: reduce node 'batch_mean' reduces over the batch"
    with pytest.raises(TooLargeForAdapter, match=mixes):
        session.run(None, {"x": np.ones((64, 1024), np.float32)})
    assert session.source_graph.inputs["x"].shape == (2, 1024)  # (the failed compile's graph is not kept)
    np.testing.assert_array_equal(session.run(None, {"x": small})[0], want)
    np.testing.assert_allclose(want, small - small.mean(0), atol=1e-6)
