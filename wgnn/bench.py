"""The benchmark suite (``wgnn bench`` with no model): the WebNN proof of concept's comparison
table for your machine, with the peers a user would otherwise pick measured in the same run.

For each model every configuration is loaded first (cold start: load and compile time, pipelines),
warmed up, then timed in *interleaved blocks*: up to ``BLOCKS`` rounds, in each of which every
configuration (after ONNX Runtime CPU's, whose threads spin on after its runs, once the process
is idle again: ``settle``) does one uncounted run and then its share of the timed runs back to
back. The rounds spread a slow phase of the machine over all columns alike; the runs inside a
block follow a run of the same configuration, as a peer's runs in its own process do (on a real
GPU, a run that follows another program's work pays for cold caches and clocks: interleaving
single runs measured MobileNet V1 at 7.3 ms on an H100 whose dispatches take 1.7 ms). Peers that
cannot share the process (ONNX Runtime's WebGPU build installs the same module name as ONNX
Runtime) run in their own virtual environments, in a subprocess, with their own warm-up;
``bench/setup_peers.sh`` makes those.
A column that cannot run says why, instead of disappearing.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import zoo
from .errors import ConfigError

# column -> (kind, backend, precision)
COLUMNS: dict[str, tuple[str, str | None, str | None]] = {
    "numpy reference": ("reference", None, None),
    "texture FP32": ("wgnn", "texture", "fp32"),
    "texture FP16": ("wgnn", "texture", "fp16"),
    "compute FP32": ("wgnn", "compute", "fp32"),
    "compute FP16": ("wgnn", "compute", "fp16"),
    # the zoo CNN quantized by ONNX Runtime's quantizer (QDQ; wgnn.zoo.quantize on the packaged photo)
    "compute INT8": ("wgnn-int8", "compute", "fp32"),
    "ONNX Runtime CPU": ("ort-cpu", None, None),
    "ONNX Runtime CPU INT8": ("ort-cpu-int8", None, None),
    "ONNX Runtime WebGPU": ("peer", "ort-webgpu", None),
    "wonnx": ("peer", "wonnx", None),
    "LiteRT CPU": ("litert", None, None),
}
# Which columns can read which format; the others say so instead of running.
READS = {"ort-cpu": "onnx", "peer": "onnx", "litert": "tflite", "wgnn-int8": "onnx", "ort-cpu-int8": "onnx"}
BLOCKS = 5  # rounds of back-to-back runs per configuration (see the module's docstring)


def settle(limit_s: float = 1.0, window_s: float = 0.01) -> None:
    """Wait (at most ``limit_s``) until this process's threads are idle: ONNX Runtime's thread
    pool spins on after a run by default, and on a machine of few cores that took them from the
    column timed next (SqueezeNet's compute FP32 on lavapipe's two cores: 33.5 ms after ONNX
    Runtime CPU's block against 23 alone; 20-50 ms of spinning)."""
    end = time.perf_counter() + limit_s
    while time.perf_counter() < end:
        used = time.process_time()
        time.sleep(window_s)
        if time.process_time() - used < window_s / 5:
            return


# ``--models mediapipe``: the pretrained TFLite models of wgnn.zoo.fetch that the demos use
MEDIAPIPE_SUITE = ["face_detection_short_range", "selfie_segmentation", "face_landmark", "pose_landmark_full"]
PEER_SCRIPT = Path(__file__).with_name("peer_runner.py")


@dataclass
class Cell:
    """One model in one configuration, at one batch size."""

    times_ms: list[float] = field(default_factory=list)
    load_s: float | None = None
    pipelines: int | None = None
    status: str = "ok"  # or why it did not run
    batch: int = 1
    check: str | None = None  # a peer's outputs against ONNX Runtime CPU's (``_check_outputs``)

    @property
    def median_ms(self) -> float | None:
        return float(np.median(self.times_ms)) if self.times_ms else None

    def as_dict(self) -> dict:
        spread = [float(min(self.times_ms)), float(max(self.times_ms))] if self.times_ms else None
        median = self.median_ms
        return {"median_ms": median, "min_max_ms": spread, "runs": len(self.times_ms), "batch": self.batch,
                "images_per_s": self.batch * 1000 / median if median else None,
                "load_s": self.load_s, "pipelines": self.pipelines, "status": self.status,
                **({"check": self.check} if self.check else {})}


def peer_python(peer: str) -> str | None:
    """The interpreter of a peer's virtual environment: $WGNN_PEER_<NAME>, else .venv-peers/<name>."""
    env = os.environ.get(f"WGNN_PEER_{peer.upper().replace('-', '_')}")
    if env:
        return env
    candidate = Path(".venv-peers") / peer / "bin" / "python"
    return str(candidate) if candidate.exists() else None


def _shapes(feeds: dict) -> dict:
    return {name: tuple(value.shape) for name, value in feeds.items()}


def _wgnn_runner(model, backend: str, precision: str, feeds: dict) -> tuple[Callable[[], object], float, int]:
    from .errors import TooLargeForAdapter
    from .session import InferenceSession

    start = time.perf_counter()
    try:
        session = InferenceSession(model, backend=backend, precision=precision,
                                   input_shapes=_shapes(feeds) if not isinstance(model, bytes) else None)
    except TooLargeForAdapter:  # a batch beyond the adapter's limits: in parts, where the model allows
        session = InferenceSession(model, backend=backend, precision=precision)
        session.prepare(feeds)
    load = time.perf_counter() - start
    return (lambda: session.run(None, feeds)), load, session.pipeline_count


def _reference_runner(model, feeds: dict) -> tuple[Callable[[], object], float, int]:
    from .importers import load
    from .passes import optimize
    from .reference import run_reference

    start = time.perf_counter()
    graph, _, _ = load(model, input_shapes=_shapes(feeds) if not isinstance(model, bytes) else None)
    optimize(graph)  # the same folded, fused graph the GPU runs, executed by numpy
    load = time.perf_counter() - start
    return (lambda: run_reference(graph, feeds)), load, 0


def _ort_cpu_runner(model, feeds: dict) -> tuple[Callable[[], object], float, int]:
    import onnxruntime as ort

    start = time.perf_counter()
    data = model if isinstance(model, bytes) else model.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    load = time.perf_counter() - start
    return (lambda: session.run(None, feeds)), load, 0


def _litert_runner(model: bytes, feeds: dict) -> tuple[Callable[[], object], float, int]:
    from ai_edge_litert.interpreter import Interpreter

    start = time.perf_counter()
    interpreter = Interpreter(model_content=model, num_threads=os.cpu_count())  # XNNPACK on every core
    interpreter.allocate_tensors()
    inputs = {d["name"]: d["index"] for d in interpreter.get_input_details()}
    outputs = [d["index"] for d in interpreter.get_output_details()]
    load = time.perf_counter() - start

    def run():
        for name, value in feeds.items():
            interpreter.set_tensor(inputs[name], value)
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in outputs]

    return run, load, 0


def load_suite_model(name: str, seed: int, batch: int = 1) -> tuple[object, str, dict]:
    """(model, format, feeds): a zoo CNN (ONNX, normal random input of ``batch`` images) or a
    pretrained TFLite model (uniform random input in [0, 1], like a normalised image; its batch is
    the model's own)."""
    if name in zoo.PRETRAINED:
        from .importers import load

        model = zoo.fetch(name).read_bytes()
        graph, _, _ = load(model)
        rng = np.random.default_rng(seed)
        return model, "tflite", {n: rng.random(o.shape, np.float32) for n, o in graph.inputs.items()}
    image = np.random.default_rng(seed).standard_normal((batch,) + zoo.INPUT_SHAPE[1:]).astype(np.float32)
    return zoo.build(name), "onnx", {"input": image}


def _run_peer(peer: str, model_path: Path, runs: int, warmup: int, batch: int = 1,
              feeds: dict | None = None) -> tuple[Cell, dict | None]:
    """``peer`` timed on ``model_path`` in its own process; with ``feeds``, on them, and the outputs
    of its first run returned too (by name; flat where the peer gives them flat)."""
    python = peer_python(peer)
    if python is None:
        return Cell(status=f"not installed (bench/setup_peers.sh makes .venv-peers/{peer})", batch=batch), None
    with tempfile.TemporaryDirectory() as tmp:
        args = [str(batch)]
        if feeds is not None:
            args = [str(Path(tmp) / "feeds.npz"), str(Path(tmp) / "outputs.npz")]
            np.savez(args[0], **feeds)
        try:  # the peer inherits this process's environment, hence its Vulkan driver
            done = subprocess.run([python, str(PEER_SCRIPT), peer, str(model_path), str(runs), str(warmup), *args],
                                  capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            return Cell(status="timed out", batch=batch), None
        outputs = None
        if feeds is not None and Path(args[1]).exists():
            with np.load(args[1]) as data:
                outputs = {name: data[name] for name in data.files}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return Cell(status=f"failed: {reason[:160]}", batch=batch), None
    result = json.loads(lines[-1])
    if "error" in result:
        return Cell(status=f"failed: {result['error'][:160]}", batch=batch), None
    return Cell(times_ms=result["times_ms"], load_s=result["load_s"], status=f"ok ({result.get('provider', peer)})",
                batch=batch), outputs


def _reference_outputs(model, feeds: dict) -> tuple[dict, str]:
    """The outputs of ``model`` on ``feeds`` by name, from ONNX Runtime CPU where it is installed,
    else from wgnn's numpy reference; and which of them gave them."""
    try:
        import onnxruntime as ort
    except ImportError:
        return _reference_runner(model, feeds)[0](), "the numpy reference"
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds))), "ONNX Runtime CPU"


def _check_outputs(got: dict, want: dict, reference: str, tolerance: float = 1e-3) -> str:
    """What a peer's outputs (by name, flat or shaped) say against ``reference``'s (``want``):
    agreement within ``tolerance`` of the reference's largest magnitude, or what differs."""
    worst, scale = 0.0, 0.0
    for name, expected in want.items():
        value = got.get(name)
        if value is None:
            return f"differs from {reference}: no output {name!r} (it gave {sorted(got)})"
        if value.size != expected.size:
            return f"differs from {reference}: output {name!r} has {value.size} values, {reference} {expected.size}"
        diff = np.abs(value.reshape(expected.shape).astype(np.float64) - expected)
        worst, scale = max(worst, float(np.max(diff, initial=0))), max(scale, float(np.max(np.abs(expected),
                                                                                            initial=0)))
    verdict = "agrees with" if worst <= tolerance * max(scale, 1e-30) else "differs from"
    return f"{verdict} {reference}: max |diff| {worst:.1e} (largest |value| {scale:.2g})"


def _for_peer(model, peer: str, batch: int = 1):
    """The zoo model as a peer reads it: the batch size written into the graph (some peers refuse
    symbolic dimensions). For wonnx, also the shape of every intermediate written into the file
    (ONNX's shape inference: it reads them from there) and a Gemm's constant B stored transposed
    where the Gemm transposed it (its Gemm takes B as K x N only); the same function either way."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in list(fixed.graph.input) + list(fixed.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        if dim.HasField("dim_param"):
            dim.dim_value = batch
    if peer != "wonnx":
        return fixed
    from collections import Counter

    from onnx import numpy_helper

    initializers = {t.name: t for t in fixed.graph.initializer}
    readers = Counter(name for node in fixed.graph.node for name in node.input)
    for node in fixed.graph.node:
        trans_b = next((a for a in node.attribute if a.name == "transB" and a.i), None)
        b = initializers.get(node.input[1]) if node.op_type == "Gemm" and trans_b is not None else None
        if b is not None and readers[b.name] == 1:
            b.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(b).T), b.name))
            trans_b.i = 0
    return onnx.shape_inference.infer_shapes(fixed, strict_mode=True)


def run_suite(models: list[str] | None = None, *, columns: list[str] | None = None, runs: int = 5,
              warmup: int = 1, batches: list[int] | None = None, progress: Callable[[str], None] = print,
              measured: Callable[[dict], None] | None = None) -> dict:
    """Measure ``columns`` on ``models`` at each of ``batches`` (default [1]); returns the JSON-ready
    result (see ``write_json``): a model at batch 1 is keyed by its name, at batch B by ``name@B``.
    ``measured``, where given, gets the result so far after each model (``"partial"``: how many of
    how many are in it), so a run cut short keeps what it measured."""
    from .runtime import default_device

    models = [m for name in (models or list(zoo.MODELS))
              for m in (MEDIAPIPE_SUITE if name == "mediapipe" else [name])]
    models = [m if m in zoo.PRETRAINED else zoo.canonical(m) for m in models]
    columns = columns or list(COLUMNS)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ConfigError(f"unknown columns {unknown}; known: {list(COLUMNS)}")
    device = default_device()
    table: dict[str, dict[str, Cell]] = {}
    batches = batches or [1]
    if any(b < 1 for b in batches):
        raise ConfigError(f"batch sizes must be positive, got {batches}")
    jobs = [(m, b) for m in models for b in batches]

    def result(done: int) -> dict:
        out = {"environment": environment(device), "runs": runs, "warmup": warmup, "columns": columns,
               "batches": batches,
               "models": {m: {c: cell.as_dict() for c, cell in cells.items()} for m, cells in table.items()}}
        return out if done == len(jobs) else dict(out, partial=f"{done} of {len(jobs)} models")

    for m_index, (name, batch) in enumerate(jobs, start=1):
        key = name if batch == 1 else f"{name}@{batch}"
        if batch > 1 and name in zoo.PRETRAINED:
            table[key] = {c: Cell(status="the TFLite model's batch size is fixed", batch=batch) for c in columns}
            if measured is not None:
                measured(result(m_index))
            continue
        model, fmt, feeds = load_suite_model(name, m_index, batch)
        name = key
        cells = {c: Cell(batch=batch) for c in columns}
        runners: dict[str, Callable[[], object]] = {}
        quantized = None  # the INT8 columns' model, made (or taken from the cache) once per model
        for column in columns:
            kind, backend, precision = COLUMNS[column]
            if READS.get(kind, fmt) != fmt:
                cells[column].status = f"reads {READS[kind].upper()} models only"
                continue
            if kind == "peer":
                continue
            progress(f"[{name}] loading {column}")
            cell = cells[column]
            try:
                if kind.endswith("-int8") and quantized is None:
                    quantized = zoo.quantize(key.split("@")[0], zoo.packaged_photos(), fmt="qdq").read_bytes()
                if kind == "wgnn":
                    runner, cell.load_s, cell.pipelines = _wgnn_runner(model, backend, precision, feeds)
                elif kind == "wgnn-int8":
                    runner, cell.load_s, cell.pipelines = _wgnn_runner(quantized, backend, precision, feeds)
                elif kind == "ort-cpu-int8":
                    runner, cell.load_s, cell.pipelines = _ort_cpu_runner(quantized, feeds)
                elif kind == "reference":
                    runner, cell.load_s, cell.pipelines = _reference_runner(model, feeds)
                elif kind == "litert":
                    runner, cell.load_s, cell.pipelines = _litert_runner(model, feeds)
                else:
                    runner, cell.load_s, cell.pipelines = _ort_cpu_runner(model, feeds)
            except Exception as exc:  # a column that cannot run says why
                cells[column].status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                continue
            runners[column] = runner
        for _ in range(warmup):
            for runner in runners.values():
                runner()
        blocks = min(BLOCKS, runs)
        done, spun = 0, True  # (the warm-up may have ended with ONNX Runtime CPU)
        for block in range(blocks):
            size = (runs - done) // (blocks - block)
            progress(f"[{name}] runs {done + 1}-{done + size} of {runs}: {', '.join(runners)}")
            for column, runner in runners.items():
                if spun:  # (after ONNX Runtime CPU's block: its threads spin on)
                    settle()
                spun = COLUMNS[column][0] in ("ort-cpu", "ort-cpu-int8")
                runner()  # uncounted: the first run after other columns' work
                for _ in range(size):
                    start = time.perf_counter()
                    runner()
                    cells[column].times_ms.append((time.perf_counter() - start) * 1000)
            done += size
        peers = [c for c in columns if COLUMNS[c][0] == "peer" and fmt == "onnx"]
        reference = None  # (what each peer's outputs are checked against, and its name)
        for column in peers:
            peer = COLUMNS[column][1]
            progress(f"[{name}] {column} in its own process")
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"{name}.onnx"
                try:
                    path.write_bytes(_for_peer(model, peer, batch).SerializeToString())
                except Exception as exc:  # noqa: BLE001 - (ONNX's shape inference refusing the model)
                    cells[column].status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                    continue
                cells[column], outputs = _run_peer(peer, path, runs, warmup, batch, feeds)
            if outputs is not None:
                reference = reference or _reference_outputs(model, feeds)
                cells[column].check = _check_outputs(outputs, *reference)
        table[name] = cells
        if measured is not None and m_index < len(jobs):
            measured(result(m_index))
    return result(len(jobs))


def environment(device) -> dict:
    import wgpu

    from . import __version__

    info = device.adapter.info
    versions = {"wgnn": __version__, "wgpu": wgpu.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    for module, key in (("onnxruntime", "onnxruntime"), ("ai_edge_litert", "ai-edge-litert")):
        try:
            versions[key] = __import__(module).__version__
        except (ImportError, AttributeError):
            pass
    return {"adapter": device.name, "driver": info.get("description", ""), "backend": info.get("backend_type", ""),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "versions": versions,
            "date": time.strftime("%Y-%m-%d")}


def format_table(result: dict) -> str:
    env = result["environment"]
    columns = result["columns"]
    lines = [f"adapter: {env['adapter']} ({env['driver']}); {env['machine']}",
             "versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
             f"median latency in ms over {result['runs']} runs in interleaved blocks after {result['warmup']} warm-up"
             " (for MODEL@B, a batch of B images: images per second in brackets)"]
    width = max(len(c) for c in columns)
    name_width = max([15] + [len(m) + 1 for m in result["models"]])
    lines.append(f"{'model':<{name_width}}" + "".join(f"{c:>{max(width, 12) + 2}}" for c in columns))
    notes, checks = [], []
    for model, cells in result["models"].items():
        row = f"{model:<{name_width}}"
        for c in columns:
            cell = cells[c]
            text = f"{cell['median_ms']:.1f}" if cell["median_ms"] is not None else "-"
            if cell["median_ms"] is not None and cell.get("batch", 1) > 1:
                text += f" ({cell['images_per_s']:.0f}/s)"
            if cell["median_ms"] is None:
                notes.append(f"{model} / {c}: {cell['status']}")
            elif cell.get("check"):
                checks.append(f"  {model} / {c}: {cell['check']}")
            row += f"{text:>{max(width, 12) + 2}}"
        lines.append(row)
    lines.append("cold start (load + compile, s; pipelines):")
    for model, cells in result["models"].items():
        parts = [f"{c} {cell['load_s']:.2f}" + (f" ({cell['pipelines']} pipelines)" if cell["pipelines"] else "")
                 for c, cell in cells.items() if cell["load_s"] is not None]
        lines.append(f"  {model}: " + "; ".join(parts))
    lines += [f"  not measured: {n}" for n in notes]
    if checks:
        lines += ["peers' outputs (their first run):"] + checks
    return "\n".join(lines)


def write_png(result: dict, path: str | Path) -> None:
    """A grouped bar chart on a log scale, like the WebNN proof of concept's figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(result["models"])
    columns = [c for c in result["columns"] if any(result["models"][m][c]["median_ms"] for m in models)]
    fig, ax = plt.subplots(figsize=(max(8, 2.2 * len(models)), 5))
    width = 0.8 / max(len(columns), 1)
    for k, column in enumerate(columns):
        values = [result["models"][m][column]["median_ms"] or 0 for m in models]
        bars = ax.bar(np.arange(len(models)) + (k - (len(columns) - 1) / 2) * width, values, width, label=column)
        ax.bar_label(bars, labels=[f"{v:.0f}" if v else "" for v in values], fontsize=7, rotation=90, padding=2)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(models)), models)
    ax.set_ylabel("median latency (ms, log scale)")
    env = result["environment"]
    ax.set_title(f"wgnn bench on {env['adapter']}\n{env['driver']}, {env['date']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_json(result: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(result, indent=2) + "\n")


def main_suite(args) -> int:
    if getattr(args, "kernels", None):
        raise SystemExit("wgnn: --kernels applies to one model (wgnn bench MODEL --kernels ...), not the suite")
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    batches = [int(b) for b in args.batch.split(",")] if getattr(args, "batch", None) else None
    # the JSON is rewritten after each model (marked "partial" until the suite ends): a run that a time
    # limit cuts short keeps the models it measured
    result = run_suite(args.models.split(",") if args.models else None, columns=columns, runs=args.runs,
                       warmup=args.warmup, batches=batches, progress=lambda m: print(m, file=sys.stderr, flush=True),
                       measured=(lambda partial: write_json(partial, args.json)) if args.json else None)
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
        print(f"JSON written to {args.json}")
    if args.png:
        write_png(result, args.png)
        print(f"chart written to {args.png}")
    return 0
