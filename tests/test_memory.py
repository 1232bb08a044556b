"""The buffer planner: no two tensors live at the same time overlap, checked from the plan itself;
a concat's parts written where they lie in its result, on every kernel that can."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import lstm_against_onnxruntime, rel_l2, run_both, tol

import wgnn
from wgnn import zoo
from wgnn.backends.compute.policy import Choice
from wgnn.memory import Block, check_plan, lower_bound, plan_buffers


def test_random_lifetimes_never_overlap():
    rng = np.random.default_rng(7)
    for _ in range(50):
        blocks = []
        for i in range(int(rng.integers(1, 40))):
            first = int(rng.integers(0, 30))
            blocks.append(Block(i, int(rng.integers(1, 5000)), first, first + int(rng.integers(0, 8))))
        plan = plan_buffers(blocks, alignment=64)
        assert check_plan(blocks, plan.offsets) == []
        assert all(off % 64 == 0 for off in plan.offsets.values())
        assert plan.report.lower_bound_bytes <= plan.arena_bytes <= plan.report.naive_bytes + 64 * len(blocks)


def test_disjoint_lifetimes_share_bytes():
    blocks = [Block("a", 4096, 0, 1), Block("b", 2048, 1, 2), Block("c", 4096, 2, 3)]
    plan = plan_buffers(blocks, alignment=256)
    assert plan.offsets["a"] == plan.offsets["c"] == 0
    assert plan.arena_bytes == 6144 == lower_bound(blocks)


def test_a_plan_does_not_depend_on_the_blocks_keys():
    """Blocks that tie in every order the planner tries keep the order they come in, so a graph
    plans the same on every run: the keys (in a compile, objects' ids, which are addresses) do not
    break ties."""
    rng = np.random.default_rng(11)
    shapes = [(int(rng.choice([256, 512, 1024])), int(rng.integers(0, 6))) for _ in range(60)]
    placed = []
    for keys in (range(60), rng.permutation(10_000)[:60], [str(k) for k in rng.permutation(60)]):
        blocks = [Block(key, size, first, first + 2) for key, (size, first) in zip(keys, shapes)]
        plan = plan_buffers(blocks, alignment=256)
        placed.append([plan.offsets[b.key] for b in blocks])
    assert placed[0] == placed[1] == placed[2]


def test_check_plan_detects_a_clash():
    blocks = [Block("a", 100, 0, 2), Block("b", 100, 1, 3)]
    assert check_plan(blocks, {"a": 0, "b": 50}) == [("a", "b")]


def test_oversized_tensor_is_rejected():
    with pytest.raises(ValueError, match="max-storage-buffer-binding-size"):
        plan_buffers([Block("big", 1000, 0, 0)], max_binding_size=512)


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_zoo_plans_are_valid_and_near_the_lower_bound(device, name):
    session = wgnn.InferenceSession(zoo.build(name))
    exe = session._exe
    assert check_plan(exe.blocks, exe.plan.offsets) == []
    report = session.memory_report()
    assert report.planned_bytes <= 1.15 * report.lower_bound_bytes
    assert report.naive_bytes > 3 * report.planned_bytes


# A concat's parts written in place: (N, Cin, H, W, Cout, K, stride, pads, groups) of the convolution
# that writes the first part, and the variant it is forced to. Every variant on the vec4 epilogue
# writes its part where it lies in the concat's result; the scalar kernel's part is copied.
IN_PLACE_CONVS = {
    "pointwise": ((2, 24, 5, 7, 12, 1, 1, (0, 0, 0, 0), 1), Choice("pointwise", tile=4)),
    "subgroup_1x1": ((2, 24, 5, 7, 12, 1, 1, (0, 0, 0, 0), 1), Choice("subgroup", tile=8)),
    "subgroup_3x3": ((1, 8, 9, 11, 12, 3, 1, (1, 1, 1, 1), 1), Choice("subgroup", tile=16)),
    "direct": ((1, 8, 9, 11, 12, 3, 2, (1, 0, 1, 2), 1), Choice("direct", tile=4)),
    "grouped": ((1, 16, 7, 9, 8, 3, 1, (1, 1, 1, 1), 2), Choice("direct", tile=2)),
    "gemm_split": ((1, 16, 9, 11, 12, 3, 1, (1, 1, 1, 1), 1), Choice("gemm", tile=2, workgroup=64, split=2)),
    "gemm_1x1": ((2, 24, 5, 7, 12, 1, 1, (0, 0, 0, 0), 1), Choice("gemm", tile=4, workgroup=256)),
    "winograd": ((1, 8, 9, 11, 12, 3, 1, (1, 1, 1, 1), 1), Choice("winograd")),
    "depthwise": ((1, 8, 10, 13, 8, 3, 1, (1, 1, 1, 1), 8), Choice("depthwise", tile=2)),
    "gemv": ((1, 40, 1, 1, 12, 1, 1, (0, 0, 0, 0), 1), Choice("gemv")),
    "generic": ((1, 8, 9, 11, 12, 3, 1, (1, 1, 1, 1), 1), Choice("generic")),
}


def _concat_copies(session) -> int:
    return sum(d.node.op == "concat" for d in session._exe.dispatches)


@pytest.mark.parametrize("case", list(IN_PLACE_CONVS))
@pytest.mark.parametrize("concat_is_output", [False, True], ids=["read_by_conv", "graph_output"])
def test_concat_parts_are_written_in_place(device, precision, rng, case, concat_is_output):
    (n, cin, h, w, cout, k, stride, pads, groups), choice = IN_PLACE_CONVS[case]
    b = wgnn.GraphBuilder()
    x = b.input("x", (n, cin, h, w))
    a = b.conv2d(x, b.constant(rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32)),
                 bias=b.constant(rng.standard_normal(cout).astype(np.float32)), strides=stride, padding=pads,
                 groups=groups, activation="relu", name="conv")
    oh, ow = a.shape[2:]
    x2 = b.input("x2", (n, 4, oh, ow))
    second = b.conv2d(x2, b.constant(rng.standard_normal((8, 4, 1, 1)).astype(np.float32)), name="second")
    cat = b.concat([a, second, x2], axis=1, name="cat")  # x2, a graph input, is always copied
    y = cat if concat_is_output else b.conv2d(
        cat, b.constant(rng.standard_normal((4, cout + 12, 1, 1)).astype(np.float32)), name="after")
    feeds = {"x": rng.standard_normal((n, cin, h, w)).astype(np.float32),
             "x2": rng.standard_normal((n, 4, oh, ow)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision, kernels={"conv": choice})
    assert session.kernel_choices()["conv"].split()[0] == choice.variant
    # The result stored as the graph's own float32 output (no relayout to NCHW after it where one
    # pixel makes both orders the same) takes no f16 part as it is: those are copied, converted.
    converted = precision == "fp16" and concat_is_output and oh * ow == 1
    assert _concat_copies(session) == (3 if converted else 2 if choice.variant == "generic" else 1)
    exe = session._exe
    assert check_plan(exe.blocks, exe.plan.offsets) == []
    assert rel_l2(got["y"], want["y"]) < tol(precision)


@pytest.mark.parametrize("variant", ["tiled", "subgroup", "gemm", "gemv", "generic"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_matmul_results_are_written_into_a_concat(device, precision, rng, variant, axis):
    """Along the last axis, each part's rows lie apart in the result; along the first (or for a
    single row) they follow one another: a part that is then one run of the result's elements,
    starting where the adapter can bind storage, is written there by any kernel and read there by
    its other readers (``data.contiguous_parts``), so no copy of it is left either."""
    m = 1 if variant == "gemv" else 7
    b = wgnn.GraphBuilder()
    a = b.input("a", (m, 20))
    first = b.matmul(a, b.constant(rng.standard_normal((20, 12)).astype(np.float32)), name="mm")
    second = b.matmul(a, b.constant(rng.standard_normal((20, 12)).astype(np.float32)), name="other")
    # second, read twice, and the ReLU of it (an element-wise kernel) are copied
    cat = b.concat([first, b.relu(second), second], axis=axis, name="cat")
    feeds = {"a": rng.standard_normal((m, 20)).astype(np.float32)}
    session, got, want = run_both(b, {"y": b.relu(cat)}, feeds, precision=precision, kernels={"mm": variant})
    runs = axis == 0 or m == 1  # each part one run of the result's elements
    element = 2 if precision == "fp16" else 4
    placed = [runs and start * m * 12 * element % device.storage_alignment == 0 for start in (0, 1, 2)]
    # the first part: mm's vec4 epilogue writes it into the concat either way, the scalar one only there
    copies = (variant == "generic" and not placed[0]) + (not placed[1]) + (not placed[2])
    assert _concat_copies(session) == copies
    assert rel_l2(got["y"], want["y"]) < tol(precision)


@pytest.mark.parametrize("first", ["input", "twice"])
def test_a_part_of_two_nested_concats_is_copied_into_the_outer_one(device, precision, rng, first):
    """concat(concat(x, t), t) along the channels, stored channels first (each part one run of the
    result's elements): t lies inside the inner concat's place in the outer result (a part of two
    concats lies in the first), and the outer concat still copies it into its own second place
    (it once took t's being somewhere in its result for being there: those channels stayed zero);
    the inner concat copies nothing onto t where it already lies. Against numpy, the plan sound."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 4, 4))
    t = b.relu(x)
    inner = b.concat([x, t] if first == "input" else [b.concat([x, x], axis=1), t], axis=1)
    y = b.concat([inner, t], axis=1)
    feeds = {"x": rng.standard_normal((1, 8, 4, 4)).astype(np.float32)}
    session, got, _ = run_both(b, {"y": y}, feeds, precision=precision)
    xs, ts = feeds["x"], np.maximum(feeds["x"], 0)
    want = np.concatenate(([xs, ts] if first == "input" else [xs, xs, ts]) + [ts], axis=1)
    np.testing.assert_allclose(got["y"], want, rtol=1e-3 if precision == "fp16" else 0)
    exe = session._exe
    assert check_plan(exe.blocks, exe.plan.offsets) == []
    if precision == "fp32":  # (fp16: the float32 output stored apart from the f16 parts, all copied)
        # the input's copies (once or twice) and t's into the outer result: none of t onto itself
        assert _concat_copies(session) == (1 if first == "input" else 2) + 1


def test_contiguous_blocks():
    """Where a block of a tensor is one run of its stored elements, and where it starts."""
    from wgnn.backends.compute.data import contiguous_block

    assert contiguous_block((28, 1, 2048), (0, 1, 2), (1, 1, 2048), (5, 0, 0)) == 5 * 2048  # a time step's row
    assert contiguous_block((28, 2, 64), (0, 1, 2), (1, 1, 64), (3, 1, 0)) == 3 * 128 + 64  # inside one step
    assert contiguous_block((28, 2, 64), (0, 1, 2), (28, 1, 64), (0, 1, 0)) is None  # one direction of each step
    assert contiguous_block((1, 8, 4, 4), (0, 2, 3, 1), (1, 4, 4, 4), (0, 4, 0, 0)) is None  # channels, stored last
    assert contiguous_block((1, 8, 4, 4), (0, 1, 2, 3), (1, 4, 4, 4), (0, 4, 0, 0)) == 64  # stored first
    assert contiguous_block((6, 10), (0, 1), (2, 10), (3, 0)) == 30 and contiguous_block((6, 10), (0, 1), (6, 10),
                                                                                          (0, 0)) == 0


def test_contiguous_slices_read_in_place_unless_an_output_is_one(device, rng):
    """Rows of a graph input (256 bytes each, where any adapter binds storage) read straight from its
    buffer by their readers (no slice kernel), except the one a graph output is a view of: an output
    owns its buffer, so that slice still copies."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (6, 64))
    first = b.reshape(b.slice(x, [2], [3], axes=[0]), [64])
    second = b.relu(b.slice(x, [4], [5], axes=[0]))
    third = b.sigmoid(b.slice(x, [1], [3], axes=[0]))
    session = wgnn.InferenceSession(b.build_graph({"first": first, "second": second, "third": third}))
    feeds = {"x": rng.standard_normal((6, 64)).astype(np.float32)}
    got = session.run(None, feeds)
    np.testing.assert_array_equal(got[0], feeds["x"][2])
    np.testing.assert_array_equal(got[1], np.maximum(feeds["x"][4:5], 0))
    np.testing.assert_allclose(got[2], 1 / (1 + np.exp(-feeds["x"][1:3])), rtol=1e-6)
    assert [d.node.op for d in session._exe.dispatches].count("slice") == 1


@pytest.mark.parametrize("hidden", [128, 12])
def test_lstm_steps_read_and_write_their_rows_in_place(device, precision, rng, hidden):
    """A bidirectional LSTM: each step reads its row of the input projection where it lies
    (``data.contiguous_slices``) and writes its hidden state straight into its direction's output
    sequence, where the next step's product reads it (``data.contiguous_parts``; the two directions'
    states interleaved step by step, ``recurrent.finish``): with 128 hidden units (rows of 256 bytes
    or more, where any adapter binds storage) no slice or concat copy is left but the last states'
    into Y_h, and the last cell states are written into Y_c (in fp32). With 12 (48-byte rows) the rows
    that start where the adapter cannot bind are copied as before. ONNX Runtime's outputs either
    way; the plan never overlaps."""
    steps, size = 6, 16
    x = rng.standard_normal((steps, 1, size)).astype(np.float32)
    consts = {"w": (rng.standard_normal((2, 4 * hidden, size)) / 4).astype(np.float32),
              "r": (rng.standard_normal((2, 4 * hidden, hidden)) / 4 / np.sqrt(hidden / 8)).astype(np.float32),
              "b": rng.standard_normal((2, 8 * hidden)).astype(np.float32)}
    session, outputs, want = lstm_against_onnxruntime(x, consts, ["x", "w", "r", "b"],
                                                      {"hidden_size": hidden, "direction": "bidirectional"}, precision)
    for got, expected in zip(outputs, want):
        assert rel_l2(got, expected) < tol(precision)
    exe = session._exe
    assert check_plan(exe.blocks, exe.plan.offsets) == []
    copies = [d.node.name.split("/")[-1] for d in exe.dispatches if d.node.op in ("slice", "concat")]
    if hidden == 128:  # (fp16: the states are stored f16, Y and Y_c as the model's float32: converted copies)
        half = precision == "fp16"
        assert sorted(copies) == ["last0", "last0"] + ["last1", "last1"] * half + ["y"] * (2 * steps * half)
    elif device.storage_alignment > 16:
        assert len(copies) > 4


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_sppf_pools_read_and_write_their_concat_in_place(device, precision, rng, mode):
    """YOLOv8's SPPF block: a convolution's result pooled three times in a chain (5x5, stride 1,
    padded) and the four concatenated. Every part is written where it lies in the concat's result,
    and each pool reads its input there (pool.wgsl's channel window), so the concat copies nothing;
    and a pool of a channel slice reads it in place. The reference's values; a 3x3 pool (the
    row-tiled kernel, which takes no window) and the part it reads are still copied."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 9, 11))
    y = b.conv2d(x, b.constant((rng.standard_normal((8, 8, 1, 1)) / 3).astype(np.float32)), activation="relu")

    def pool(t, k):
        return (b.max_pool2d if mode == "max" else b.average_pool2d)(t, window=(k, k), padding=(k // 2,) * 4)

    p1 = pool(y, 5)
    p2 = pool(p1, 5)
    p3 = pool(p2, 5)
    sppf = b.concat([y, p1, p2, p3], axis=1)
    sliced = pool(b.slice(sppf, [4], [12], axes=[1]), 5)
    z = b.conv2d(x, b.constant((rng.standard_normal((8, 8, 1, 1)) / 3).astype(np.float32)), activation="relu")
    rowed = b.concat([z, pool(z, 3)], axis=1)
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32)}
    session, got, want = run_both(b, {"sppf": sppf, "sliced": sliced, "rowed": rowed}, feeds, precision=precision)
    for name in got:
        assert rel_l2(got[name], want[name]) < tol(precision), name
    ops = [d.node.op for d in session._exe.dispatches]
    # (rowed's two parts: its 3x3 pool runs the row-tiled kernel, which takes no window, so neither
    # it nor the convolution it reads is written in place)
    assert "slice" not in ops and ops.count("concat") == 2, ops
    assert [d.node.name for d in session._exe.dispatches if d.node.op == "concat"] == [rowed.name] * 2
    exe = session._exe
    assert check_plan(exe.blocks, exe.plan.offsets) == []


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_an_upsampled_map_is_written_into_its_concat(device, precision, rng, mode):
    """An FPN's top-down step (YOLOv8's neck, PP-PicoDet's): a map upsampled 2x and concatenated with
    a finer convolution's result along the channels. The resize writes its vec4s of channels where
    they lie in the concat's result (y_slice.wgsl), as the convolution does, so the concat copies
    nothing; a resize of 6 channels (no whole vec4s) is still copied. The reference's values."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 10, 12))

    def conv(t, out, stride=1):
        return b.conv2d(t, b.constant((rng.standard_normal((out, t.shape[1], 3, 3)) / 4).astype(np.float32)),
                        strides=stride, padding=(1, 1, 1, 1), activation="relu")

    fpn = b.concat([b.resize(conv(x, 12, stride=2), (10, 12), mode=mode), conv(x, 8)], axis=1, name="fpn")
    odd = b.concat([b.resize(conv(x, 6, stride=2), (10, 12), mode=mode), conv(x, 4)], axis=1, name="odd")
    # a part the next level up also upsamples (YOLOv8's neck): the resize reads it in the concat's result
    lateral = conv(x, 8, stride=2)
    shared = b.concat([lateral, conv(x, 4, stride=2)], axis=1, name="shared")
    up = b.resize(lateral, (10, 12), mode=mode)
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32)}
    session, got, want = run_both(b, {"y": conv(fpn, 8), "odd": conv(odd, 4), "shared": conv(shared, 4),
                                      "up": conv(up, 4)}, feeds, precision=precision)
    for name in got:
        assert rel_l2(got[name], want[name]) < tol(precision), name
    copies = [d.node.name for d in session._exe.dispatches if d.node.op == "concat"]
    assert copies == ["odd", "odd"], copies  # (10 channels: no part of it lies on whole vec4s)
    exe = session._exe
    assert check_plan(exe.blocks, exe.plan.offsets) == []


@pytest.mark.parametrize("variant", ["default", "direct", "gemm_split", "generic"])
def test_channel_slices_and_shared_concat_parts_are_read_in_place(device, precision, rng, variant):
    """YOLOv8's C2f block: a convolution's result split in two along the channels, a bottleneck on
    the second half (a 3x3 convolution, then another whose residual, added after its SiLU, is that
    half), and the result, the half and the bottleneck's output concatenated: every part is written
    where it lies in the concat's result and the bottleneck reads its input and residual there
    (channel windows), so neither the split nor the concat copies anything. Forcing the
    bottleneck's second convolution off Winograd (direct, split-K, the scalar kernel with its copy
    of the residual) keeps the reference's results."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 10, 9))

    def conv(t, o, k, name):
        y = b.conv2d(t, b.constant((rng.standard_normal((o, t.shape[1], k, k)) / 3).astype(np.float32)),
                     bias=b.constant(rng.standard_normal(o).astype(np.float32)), padding=(k // 2,) * 4, name=name)
        return b.mul(y, b.sigmoid(y))

    y = conv(x, 16, 1, "cv1")
    half = b.slice(y, [8], [16], axes=[1])
    m = b.add(half, conv(conv(half, 8, 3, "m_cv1"), 8, 3, "m_cv2"))
    m2 = b.add(m, conv(conv(m, 8, 3, "m2_cv1"), 8, 3, "m2_cv2"))
    out = conv(b.concat([y, m, m2], axis=1), 8, 1, "cv2")
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32)}
    kernels = {} if variant == "default" else \
        {"m_cv2": Choice("gemm", split=2) if variant == "gemm_split" else Choice(variant)}
    session, got, want = run_both(b, {"y": out}, feeds, precision=precision, kernels=kernels)
    assert rel_l2(got["y"], want["y"]) < tol(precision)
    ops = [d.node.op for d in session._exe.dispatches]
    # (the scalar kernel writes its own result, m, which the concat then copies)
    assert "slice" not in ops and ops.count("concat") == (variant == "generic"), ops
    exe = session._exe
    assert check_plan(exe.blocks, exe.plan.offsets) == []


def test_weights_beyond_the_adapters_largest_buffer_lie_in_several(device, monkeypatch):
    """An adapter allocates buffers up to max-buffer-size (WebGPU's default: 256 MiB): weights that
    take more than that are uploaded into several buffers, each within it, and the model gives the
    results it gives in one (SqueezeNet's 4.8 MB of weights under a limit of 4.5 MiB, which its 4 MB
    of intermediates fit); a single weight beyond it is refused with its size."""
    from onnx import TensorProto, helper, numpy_helper

    model = zoo.build("squeezenet1_1", softmax=False)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    (want,) = wgnn.InferenceSession(model, device=device).run(None, {"input": x})
    limit = 9 << 19
    monkeypatch.setitem(device.limits, "max-buffer-size", limit)
    session = wgnn.InferenceSession(model, device=device)
    (got,) = session.run(None, {"input": x})
    buffers = session._exe.constant_buffers
    assert len(buffers) >= 2 and all(b.size <= limit for b in buffers)
    assert sum(b.size for b in buffers) >= session._exe.constant_bytes
    np.testing.assert_array_equal(got, want)
    w = np.random.default_rng(1).standard_normal((1024, 1280)).astype(np.float32)  # 5 MiB
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "wide",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1280])],
                              [numpy_helper.from_array(w, "w")])
    with pytest.raises(wgnn.errors.TooLargeForAdapter, match="weight tensor needs 5242880 bytes, more than this "
                                                      "adapter's max-buffer-size"):
        wgnn.InferenceSession(helper.make_model(graph), device=device)
