"""The profiler's bookkeeping (FLOPs and bytes per dispatch) against hand-computed values, and a
profile whose GPU times add up."""

from __future__ import annotations

import numpy as np
from helpers import tiled

import wgnn
from wgnn.backends.compute import Choice
from wgnn.profiler import profile


def _session(device):
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 10, 10))
    # two groups keep it on the direct conv2d kernel (ungrouped, it would run in Winograd form)
    y = b.conv2d(x, b.constant(np.ones((16, 4, 3, 3), np.float32)), bias=b.constant(np.zeros(16, np.float32)),
                 padding=(1, 1, 1, 1), groups=2, activation="relu")
    z = b.gemm(b.input("a", (5, 8)), b.constant(np.ones((8, 12), np.float32)),
               b.constant(np.zeros(12, np.float32)))
    p = b.max_pool2d(y, window=(2, 2), strides=2)
    return b.build({"y": y, "z": z, "p": p})


def test_flops_and_bytes_per_dispatch(device):
    session = _session(device)
    by_kernel = {d.kernel: d for d in session._exe.dispatches if d.kernel != "elementwise"}
    conv, matmul, pool = by_kernel["conv2d"], by_kernel[tiled("matmul")], by_kernel["pool_rows"]
    # conv: 10x10 outputs x 16 channels, each 4 (channels per group) x 3 x 3 multiply-adds
    assert conv.flops == 2 * 10 * 10 * 16 * 4 * 9
    # input 8x10x10, weights 16x4x3x3, bias 16, output 16x10x10 (float32)
    assert conv.bytes_moved == 4 * (800 + 576 + 16 + 1600)
    assert matmul.flops == 2 * 5 * 8 * 12
    # a 5x8, the weights 8x12 as bound: one panel of 32 columns (nn._panels), bias 12, output 5x12
    assert matmul.bytes_moved == 4 * (40 + 8 * 32 + 12 + 60)
    assert pool.flops == 16 * 5 * 5 * 4  # 4 reads per output
    assert pool.bytes_moved == 4 * (1600 + 400)


def test_flops_of_a_winograd_convolution(device):
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 10, 10))
    y = b.conv2d(x, b.constant(np.ones((16, 8, 3, 3), np.float32)), padding=(1, 1, 1, 1))
    session = b.build({"y": y})
    by_kernel = {d.kernel: d for d in session._exe.dispatches if d.kernel != "elementwise"}
    tiles = 5 * 5  # 2x2 output tiles of the 10x10 output
    assert by_kernel["winograd_input"].flops == 32 * tiles * 8  # B^T d B: 32 additions per patch and channel
    assert by_kernel[tiled("matmul")].flops == 2 * 16 * tiles * 16 * 8  # 16 products [tiles, 8] x [8, 16]
    assert by_kernel["winograd_output"].flops == 36 * tiles * 16  # A^T M A per tile and output channel
    # input 8x10x10, V 16x25x8; V, U 16x8x16 (bound as 16 panels of 32 columns, nn._panels), the
    # matmul's zero bias 16, M 16x25x16 (float32)
    assert by_kernel["winograd_input"].bytes_moved == 4 * (800 + 3200)
    assert by_kernel[tiled("matmul")].bytes_moved == 4 * (3200 + 16 * 8 * 32 + 16 + 6400)


def test_profile_rows_cover_every_dispatch(device):
    session = _session(device)
    feeds = {"x": np.ones((1, 8, 10, 10), np.float32), "a": np.ones((5, 8), np.float32)}
    result = profile(session, feeds, runs=2, warmup=1)
    assert [r.kernel for r in result.rows] == [d.kernel for d in session._exe.dispatches]
    assert [r.variant for r in result.rows] == [d.variant for d in session._exe.dispatches]
    # (a product of 5 rows: the subgroup variant at 8 rows an octet)
    tiled_variant = "subgroup x8 wg64" if tiled("matmul") == "matmul_shared" else "tiled x8 wg64"
    assert {r.variant for r in result.rows if r.kernel == tiled("matmul")} == {tiled_variant}
    assert all(r.gpu_ms >= 0 for r in result.rows) and result.gpu_ms > 0
    assert result.gpu_ms <= result.wall_ms * 1.5  # timestamps are nanoseconds, not another unit
    assert 0 < result.plain_ms  # (the runs without timestamps, timed apart)
    table = result.table(top=2)
    assert "GFLOP/s" in table and "more dispatches" in table and "wall clock" in table and "variant" in table
    assert f"{result.plain_ms:.2f} ms a run without the timestamps" in table


def test_split_k_counts_the_products_flops_once(device):
    b = wgnn.GraphBuilder()
    y = b.matmul(b.input("a", (6, 256)), b.constant(np.ones((256, 8), np.float32)), name="mm")
    session = b.build({"y": y}, kernels={"mm": Choice("gemm", tile=2, split=4)})
    flops = {d.kernel: d.flops for d in session._exe.dispatches}
    assert flops == {"matmul_gemm": 2 * 6 * 256 * 8, "splitk_reduce": 0}
