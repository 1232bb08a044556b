"""``wgnn profile``: where each millisecond goes, from GPU timestamp queries.

Every dispatch is timed on the GPU: with the adapter feature ``timestamp-query-inside-passes``, a
timestamp is written between dispatches inside the one compute pass a normal run uses (so the
profile times the real schedule); otherwise each dispatch gets a compute pass of its own with
timestamps at its beginning and end. Resolved timestamps are nanoseconds (WebGPU's unit).

Each row also carries what the dispatch costs (``Dispatch.flops``, ``Dispatch.bytes_moved``,
computed at compile time from the op and from what is bound), hence achieved GFLOP/s and GB/s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, DeviceError
from .runtime import Device, wgpu


class Timestamps:
    """A query set and read-back buffers sized for one run of ``count`` dispatches."""

    def __init__(self, device: Device, count: int):
        if "timestamp-query" not in device.features:
            raise DeviceError(f"{device.name} offers no timestamp-query feature: GPU times cannot be measured")
        self.device = device
        self.inside = "timestamp-query-inside-passes" in device.features
        self.count = count
        self.queries = count + 1 if self.inside else 2 * count
        self.query_set = device.device.create_query_set(type=wgpu.QueryType.timestamp, count=self.queries)
        nbytes = self.queries * 8
        self.resolved = device.buffer(nbytes, usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC)
        self.readback = device.buffer(nbytes, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST)

    @property
    def method(self) -> str:
        return "timestamps between dispatches inside one compute pass" if self.inside else \
            "one compute pass per dispatch, timestamps at each pass's start and end"

    def encode(self, enc, dispatches) -> None:
        if self.inside:
            cpass = enc.begin_compute_pass()
            cpass._write_timestamp(self.query_set, 0)
            for i, d in enumerate(dispatches):
                d.encode(cpass)
                cpass._write_timestamp(self.query_set, i + 1)
            cpass.end()
            return
        for i, d in enumerate(dispatches):
            cpass = enc.begin_compute_pass(timestamp_writes={
                "query_set": self.query_set, "beginning_of_pass_write_index": 2 * i,
                "end_of_pass_write_index": 2 * i + 1})
            d.encode(cpass)
            cpass.end()

    def resolve(self, enc) -> None:
        enc.resolve_query_set(self.query_set, 0, self.queries, self.resolved, 0)
        enc.copy_buffer_to_buffer(self.resolved, 0, self.readback, 0, self.queries * 8)

    def durations_ms(self) -> np.ndarray:
        """Each dispatch's milliseconds in the last run: ``count`` values."""
        raw = self.device.read_mapped(self.readback)  # (its size rounded up: more than the queries)
        stamps = np.frombuffer(raw, np.uint64, count=self.queries).astype(np.float64)
        spans = np.diff(stamps) if self.inside else stamps[1::2] - stamps[0::2]
        return spans / 1e6


@dataclass
class Row:
    index: int
    node: str
    op: str
    kernel: str
    variant: str  # the kernel policy's choice: variant, tile, workgroup size (else the kernel's name)
    shapes: str
    gpu_ms: float
    flops: int
    bytes_moved: int

    @property
    def gflops(self) -> float:
        return self.flops / (self.gpu_ms * 1e6) if self.gpu_ms > 0 else 0.0

    @property
    def gbytes(self) -> float:
        return self.bytes_moved / (self.gpu_ms * 1e6) if self.gpu_ms > 0 else 0.0


@dataclass
class Profile:
    rows: list[Row]
    wall_ms: float  # a run's median wall clock with the timestamps written
    runs: int
    method: str
    adapter: str
    plain_ms: float | None = None  # and without them (writing them costs time of its own)

    @property
    def gpu_ms(self) -> float:
        return float(sum(r.gpu_ms for r in self.rows))

    def table(self, top: int | None = None) -> str:
        rows = sorted(self.rows, key=lambda r: -r.gpu_ms)[:top]
        lines = [f"{'#':>3}  {'node':<28} {'kernel':<15} {'variant':<18} {'shapes':<36} {'GPU ms':>8} {'%':>5} "
                 f"{'MFLOP':>8} {'MB':>7} {'GFLOP/s':>8} {'GB/s':>6}"]
        for r in rows:
            lines.append(f"{r.index:>3}  {r.node[:28]:<28} {r.kernel:<15} {r.variant[:18]:<18} {r.shapes[:36]:<36} "
                         f"{r.gpu_ms:>8.3f} "
                         f"{100 * r.gpu_ms / self.gpu_ms if self.gpu_ms else 0:>5.1f} {r.flops / 1e6:>8.2f} "
                         f"{r.bytes_moved / 1e6:>7.2f} {r.gflops:>8.2f} {r.gbytes:>6.2f}")
        if top is not None and top < len(self.rows):
            lines.append(f"     ... {len(self.rows) - top} more dispatches")
        total_flops = sum(r.flops for r in self.rows)
        lines.append(f"sum of dispatch GPU times {self.gpu_ms:.2f} ms ({total_flops / 1e9:.3f} GFLOP, "
                     f"{total_flops / (self.gpu_ms * 1e6) if self.gpu_ms else 0:.2f} GFLOP/s); wall clock "
                     f"{self.wall_ms:.2f} ms per run; dispatches account for "
                     f"{100 * self.gpu_ms / self.wall_ms if self.wall_ms else 0:.0f}% of it"
                     + (f"; {self.plain_ms:.2f} ms a run without the timestamps" if self.plain_ms is not None else ""))
        lines.append("by op: " + "; ".join(f"{op} {ms:.2f} ms, {flops / 1e9:.3f} GFLOP, "
                                           f"{flops / (ms * 1e6) if ms else 0:.2f} GFLOP/s"
                                           for op, (ms, flops) in self.by_op().items()))
        return "\n".join(lines)

    def by_op(self) -> dict[str, tuple[float, int]]:
        """{IR op: (GPU ms, FLOPs)} over its dispatches, slowest op first (Winograd's transforms and
        products are ops of their own)."""
        totals: dict[str, list] = {}
        for r in self.rows:
            t = totals.setdefault(r.op, [0.0, 0])
            t[0] += r.gpu_ms
            t[1] += r.flops
        return {op: (ms, flops) for op, (ms, flops) in sorted(totals.items(), key=lambda kv: -kv[1][0])}


def _shapes(node) -> str:
    ins = [i for i in node.inputs if i is not None and not i.is_constant]
    first = "x".join(map(str, ins[0].shape)) if ins else "-"
    return f"{first} -> {'x'.join(map(str, node.outputs[0].shape))}"


def profile(session, feeds: dict, *, runs: int = 5, warmup: int = 1) -> Profile:
    """Median GPU time of each dispatch of ``session`` over ``runs`` runs (after ``warmup``), at the
    shapes of ``feeds``."""
    if session.backend != "compute":
        raise ConfigError("profiling needs the compute backend")
    stages = session.stages
    if stages is not None:
        raise ConfigError(f"this model runs in stages around {stages.op_type} node {stages.node_name!r} (see "
                          "wgnn.stages); the profiler times one GPU plan: profile the parts before and after that "
                          "node as models of their own")
    session.prepare(feeds)  # the plan for the feeds' shapes (a model with symbolic dimensions)
    exe = session._exe
    checked = session._check_feeds(feeds)
    stamps = Timestamps(session.device, len(exe.dispatches))
    for _ in range(warmup):
        exe.run(checked)
    # Runs with timestamps and without, alternated: writing them is work of its own (on lavapipe
    # 26-63 us a dispatch, so a profile's small dispatches look dearer than they run), and the
    # plain runs' wall clock is what a session's runs take.
    per_run, walls, plain = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        exe.run(checked, timestamps=stamps)
        walls.append((time.perf_counter() - start) * 1000)
        per_run.append(stamps.durations_ms())
        start = time.perf_counter()
        exe.run(checked)
        plain.append((time.perf_counter() - start) * 1000)
    times = np.median(np.stack(per_run), axis=0)
    rows = [Row(i, d.node.name, d.node.op, d.kernel, d.variant, _shapes(d.node), float(t), d.flops, d.bytes_moved)
            for i, (d, t) in enumerate(zip(exe.dispatches, times))]
    return Profile(rows, float(np.median(walls)), runs, stamps.method, session.adapter_name, float(np.median(plain)))
