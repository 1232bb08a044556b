"""Measuring kernel choices: for each convolution and matrix product of a graph, time the kernel
variants that can run it on this device, and keep the fastest in the adapter's ``ChoiceCache``,
where the kernel policy finds it on every later load (``wgnn tune``, ``InferenceSession(tune=True)``).

Each distinct node signature (op, shapes, attributes) is measured once: the node alone, compiled
once per candidate (``candidates``: every eligible variant at a few tile, workgroup and split-K
sizes), run ``runs`` times after a warm-up, its own dispatches timed on the GPU with timestamp
queries (wall clock where the adapter has none). Measuring stops when ``seconds`` run out; the
nodes not reached keep the policy's defaults, and the report says how many were measured.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .backends.compute import ComputeExecutable
from .backends.compute.policy import (
    GPU_GEMM_SIZES,
    ROW_OPS,
    SPLIT_VARIANTS,
    VARIANTS,
    AdapterProfile,
    Choice,
    ChoiceCache,
    KernelPolicy,
    problem_of,
    signature,
)
from .errors import WgnnError
from .graph import Graph, Node, Operand
from .runtime import Device
from .scheduler import compile_graph

log = logging.getLogger("wgnn.tune")


def candidates(op: str, variants: list[str]) -> list[Choice]:
    """The choices worth timing for ``variants`` of ``op``: each variant at a few sizes (gemm with
    the policy's split-K and without; where those agree, ``tune`` measures one)."""
    out: list[Choice] = []
    for v in variants:
        if v in SPLIT_VARIANTS:
            out += [Choice(v, tile, wg, split) for tile, wg in GPU_GEMM_SIZES for split in (None, 1)]
        elif v == "nbits":  # rows per invocation, and invocations sharing a block's K
            out += [Choice(v, tile, 64, split) for tile in (1, 4, 8) for split in (1, 4, 16)]
        elif v == "gemv":
            out += [Choice(v, workgroup=64), Choice(v, workgroup=256)]
        elif VARIANTS[op][v]:  # (depthwise from tile 1: a small layer's workgroups on a GPU)
            out += [Choice(v, tile) for tile in ((1,) if v == "depthwise" else ()) + (2, 4, 8, 16)
                    if tile in VARIANTS[op][v]]
        else:
            out.append(Choice(v))
    return out


def _alone(node: Node) -> Graph:
    """A graph of ``node`` alone: its computed inputs become graph inputs, its constants stay."""
    inputs, ins = {}, []
    for k, t in enumerate(node.inputs):
        if t is None or t.is_constant:
            ins.append(t)
            continue
        operand = Operand(f"in{k}", t.shape, t.dtype, is_input=True)
        inputs[operand.name] = operand
        ins.append(operand)
    outs = [Operand("out" if k == 0 else f"out{k}", o.shape, o.dtype) for k, o in enumerate(node.outputs)]
    clone = Node(node.op, ins, outs, dict(node.attrs), name=node.name)
    for out in outs:  # (every output: an LSTM step's h and c)
        out.producer = clone
    return Graph([clone], inputs, {out.name: out for out in outs})


def _timer(exe, device: Device, feeds: dict, own: list[int] | None = None):
    """After one run of ``exe`` (the first, which uploads), a function that runs it again and
    returns milliseconds: the GPU time of its dispatches ``own`` (None: all) from timestamp queries
    where a compute executable's adapter has them, else the run's wall clock."""
    from .profiler import Timestamps

    stamps = None
    if isinstance(exe, ComputeExecutable) and "timestamp-query" in device.features:
        stamps = Timestamps(device, len(exe.dispatches))
    exe.run(feeds)

    def once() -> float:
        start = time.perf_counter()
        exe.run(feeds, timestamps=stamps)
        if stamps is None:
            return (time.perf_counter() - start) * 1000
        spans = stamps.durations_ms()
        return float((spans if own is None else spans[own]).sum())

    return once


def _time(node: Node, choice: Choice, device: Device, precision: str, runs: int) -> float:
    """Median milliseconds of ``node``'s own dispatches with ``choice`` (relayouts around it excluded)."""
    exe = compile_graph(_alone(node), device, precision=precision, kernels={node.name: choice})
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(o.shape).astype(o.dtype) for n, o in exe.graph.inputs.items()}
    own = [i for i, d in enumerate(exe.dispatches)
           if d.node.name == node.name or d.node.name.startswith(node.name + "/")]
    once = _timer(exe, device, feeds, own)
    return float(np.median([once() for _ in range(runs)]))


@dataclass
class TuneReport:
    """What ``tune`` did: per signature the times of every candidate and the winner."""

    adapter: str
    measured: dict[str, dict[str, float]] = field(default_factory=dict)  # signature -> {choice label: ms}
    chosen: dict[str, str] = field(default_factory=dict)  # signature -> the winner's label
    cached: int = 0  # signatures already in the cache, not measured again
    skipped: int = 0  # signatures left at the defaults when the time ran out
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"kernel tuning on {self.adapter}: measured {len(self.measured)} node signatures in "
                f"{self.seconds:.1f} s ({self.cached} already cached, {self.skipped} left at the defaults "
                "when the time ran out)")


def tune(graph: Graph, device: Device, *, precision: str = "fp32", seconds: float = 120.0, runs: int = 3,
         cache: ChoiceCache | None = None, remeasure: bool = False) -> TuneReport:
    """Measure the kernel choices of ``graph``'s convolutions and matrix products (an optimized
    graph, as ``InferenceSession`` compiles it) and store the winners in ``cache`` (default: this
    adapter's file). Signatures already cached are skipped unless ``remeasure``."""
    start = time.perf_counter()
    adapter = AdapterProfile.from_device(device)
    cache = cache or ChoiceCache.for_adapter(adapter.key)
    policy = KernelPolicy(adapter, precision=precision)
    report = TuneReport(device.name)
    # Matrix products first, as the compile core will see them (after the Winograd rewrite, whose 16
    # products are matrix products too), then the convolutions, Winograd among their candidates.
    rewritten = graph.copy()
    policy.rewrite(rewritten)
    nodes = ([n for n in rewritten.nodes if n.op == "matmul"] + [n for n in graph.nodes if n.op == "conv2d"]
             + [n for n in graph.nodes if n.op in ROW_OPS or n.op == "dynamic_range"])
    seen: set[str] = set()
    for node in nodes:
        key = signature(node, precision)
        if key in seen:
            continue
        seen.add(key)
        if cache.get(node.op, key) is not None and not remeasure:
            report.cached += 1
            continue
        if time.perf_counter() - start > seconds:
            report.skipped += 1
            continue
        # Completed as the policy would (defaults filled in, split-K sized for this product), so
        # that two candidates that would run alike are measured once.
        problem = problem_of(node) if node.op in ("conv2d", "matmul") else None
        options = list(dict.fromkeys(policy.complete(node.op, c, problem) for c in
                                     candidates(node.op, policy.eligible(node.op, node))))
        if len(options) < 2:
            continue
        times: dict[Choice, float] = {}
        for choice in options:
            try:
                times[choice] = _time(node, choice, device, precision, runs)
            except WgnnError as exc:  # a size this node cannot take (e.g. a tile over the limits)
                log.debug("%s: %s not measured: %s", node.name, choice.label, exc)
        if not times:
            continue
        best = min(times, key=times.get)
        cache.put(node.op, key, best)
        report.measured[key] = {c.label: t for c, t in times.items()}
        report.chosen[key] = best.label
        log.info("%s %s: %s (%.3f ms)", node.op, node.name, best.label, times[best])
    cache.save(adapter.key)
    report.seconds = time.perf_counter() - start
    return report


# -- precision="auto" -------------------------------------------------------------------------

AUTO_GAIN = 0.95  # fp16 is picked where the probe runs in at most this share of fp32's time


def _probe(shape: tuple[int, int, int, int]) -> Graph:
    """A few layers shaped like a CNN's middle on an input of ``shape`` (N, 128, H, W): 1x1 128 ->
    256, 3x3 depthwise, 3x3 256 -> 128 and 1x1 128 -> 128, each with a relu."""
    from .builder import OpBuilder
    from .passes import DEFAULT_RULES, optimize

    rng = np.random.default_rng(0)
    b = OpBuilder()
    x = b.input("x", shape)
    for out, groups, size in ((256, 1, 1), (256, 256, 3), (128, 1, 3), (128, 1, 1)):
        fan_in = x.shape[1] // groups * size * size
        w = (rng.standard_normal((out, x.shape[1] // groups, size, size)) / np.sqrt(fan_in)).astype(np.float32)
        x = b.conv2d(x, b.constant(w), bias=b.constant(np.zeros(out, np.float32)), padding=[size // 2] * 4,
                     groups=groups, activation="relu")
    graph = b.build_graph({"y": x})
    optimize(graph, DEFAULT_RULES)
    return graph


def _probe_ms(device: Device, backend: str, precision: str, shape: tuple[int, int, int, int]):
    """A function that runs the probe once and returns its milliseconds (``_timer``)."""
    exe = compile_graph(_probe(shape), device, backend=backend, precision=precision)
    return _timer(exe, device, {"x": np.random.default_rng(1).standard_normal(shape).astype(np.float32)})


def auto_precision(device: Device, backend: str = "compute", *, cache: ChoiceCache | None = None,
                   rounds: int = 5) -> str:
    """What ``precision="auto"`` runs on ``device``: "fp32" where the adapter lacks shader-f16,
    else whichever of fp32 and fp16 runs a probe of CNN layers faster on this adapter and driver
    (fp16 only where it takes at most ``AUTO_GAIN`` of fp32's time: f16 costs accuracy). Measured
    once per adapter, driver and backend (alternating rounds, medians; about 1 s on a software
    adapter, mostly compiling), said in the log, and kept in the adapter's ``ChoiceCache``."""
    if "shader-f16" not in device.features:
        return "fp32"
    adapter = AdapterProfile.from_device(device)
    cache = cache or ChoiceCache.for_adapter(adapter.key)
    key = f"auto|{backend}"
    known = cache.get("precision", key)
    if known is not None:
        return known.variant
    start = time.perf_counter()
    # sized so that the layers' arithmetic, not their launch, is what a GPU's timestamps see
    shape = (1, 128, 14, 14) if adapter.kind == "cpu" else (8, 128, 28, 28)
    runs = {p: _probe_ms(device, backend, p, shape) for p in ("fp32", "fp16")}
    times: dict[str, list[float]] = {"fp32": [], "fp16": []}
    for _ in range(rounds):
        for p, once in runs.items():
            times[p].append(once())
    ms = {p: float(np.median(t)) for p, t in times.items()}
    chosen = "fp16" if ms["fp16"] <= AUTO_GAIN * ms["fp32"] else "fp32"
    cache.put("precision", key, Choice(chosen))
    cache.save(adapter.key)
    log.warning("precision='auto' on %s (%s backend): measured once, fp32 %.3f ms and fp16 %.3f ms on a probe of "
                "CNN layers %s in %.1f s; picks %s (kept in %s)", device.name, backend, ms["fp32"], ms["fp16"],
                "x".join(map(str, shape)), time.perf_counter() - start, chosen, cache.path)
    return chosen
