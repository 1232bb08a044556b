"""Fuzzing the loaders and the compiler: mutated copies of real models, each loaded and run in a
watched worker process, so that a crash, a hang or an exception that is not wgnn's is found and
named.

    wgnn fuzz [--count 2000] [--seed 0] [--timeout 60] [--models squeezenet,face_landmark,model.onnx,...]

The corpus: the zoo CNNs built as ONNX, and the cached pretrained models (MediaPipe's TFLite ones,
PaddleOCR's ONNX ones), whatever of them is available. Each mutant is one of:

- bytes: a few random bytes overwritten, a cut (truncation), a span duplicated or removed;
- ONNX structure: an attribute set to an extreme or wrong value (0, -1, 100000, a float where an
  int goes), a dimension of an initializer or an input changed, an input of a node dropped or
  repeated, an op type swapped, an initializer's dtype relabelled, the opset raised;
- TFLite structure: bytes overwritten inside the flatbuffer's tables and vectors (its first part,
  where the schema lives, rather than the weights).

Each is loaded (``InferenceSession``) and, if it loads, run once on random input. The outcomes:
``ok`` (it ran), ``refused`` (a ``wgnn.WgnnError``: what wgnn should say of a bad file),
``exception`` (anything else: a bug), ``crash`` (the worker died) and ``hang`` (no answer within
the timeout). A worker handles many mutants in turn and is replaced after a crash or a hang.
"""

from __future__ import annotations

import multiprocessing as mp_
import os
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

OUTCOMES = ("ok", "refused", "exception", "crash", "hang")


@dataclass
class Mutant:
    source: str  # the corpus model it came from
    kind: str  # what was done to it
    data: bytes


@dataclass
class FuzzReport:
    counts: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str, str, str]] = field(default_factory=list)  # (outcome, source, kind, detail)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not any(self.counts[o] for o in ("exception", "crash", "hang"))

    def summary(self) -> str:
        total = sum(self.counts.values())
        lines = [f"{total} mutants in {self.seconds:.0f} s: " + ", ".join(f"{self.counts[o]} {o}" for o in OUTCOMES)]
        for outcome, source, kind, detail in self.failures[:50]:
            lines.append(f"  {outcome}: {source} [{kind}]: {detail}")
        return "\n".join(lines)


# -- the corpus -------------------------------------------------------------------------------

def corpus(names: list[str] | None = None) -> dict[str, bytes]:
    """{name: model bytes}: zoo CNNs (built), pretrained models already in the cache (or fetched;
    unavailable ones are left out), and model files by path."""
    from . import zoo

    wanted = names or ["squeezenet1_1", "mobilenet_v2", "face_detection_short_range", "face_landmark",
                       "iris_landmark", "selfie_segmentation", "ppocr_cls"]
    found: dict[str, bytes] = {}
    for name in wanted:
        try:
            if Path(name).is_file():
                found[Path(name).name] = Path(name).read_bytes()
            elif name in zoo.pretrained_names():
                found[name] = zoo.fetch(name).read_bytes()
            else:
                found[name] = zoo.build(zoo.canonical(name), classes=100).SerializeToString()
        except Exception as exc:  # noqa: BLE001 - a model that cannot be had is left out, said below
            print(f"wgnn fuzz: leaving out {name}: {exc}", file=sys.stderr)
    return found


# -- mutations --------------------------------------------------------------------------------

def _bytes_mutant(rng: random.Random, data: bytes, region: int | None = None) -> tuple[str, bytes]:
    buf = bytearray(data)
    limit = min(len(buf), region or len(buf))
    choice = rng.randrange(4)
    if choice == 0:
        n = rng.randint(1, 8)
        for _ in range(n):
            buf[rng.randrange(limit)] = rng.randrange(256)
        return f"overwrite {n} bytes", bytes(buf)
    if choice == 1:
        cut = rng.randrange(1, len(buf))
        return f"truncate at {cut}", bytes(buf[:cut])
    start = rng.randrange(limit)
    length = rng.randint(1, 64)
    if choice == 2:
        return f"duplicate {length} bytes at {start}", bytes(buf[:start + length] + buf[start:])
    return f"remove {length} bytes at {start}", bytes(buf[:start] + buf[start + length:])


EXTREMES = [0, -1, 100000, 2**31 - 1, 3, 1.5]


def _onnx_mutant(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(data)
    g = model.graph
    choice = rng.randrange(7)
    nodes = [n for n in g.node]
    node = rng.choice(nodes)
    if choice == 0 and any(a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS) for a in node.attribute):
        attr = rng.choice([a for a in node.attribute if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS)])
        value = rng.choice(EXTREMES)
        if isinstance(value, float):
            new = helper.make_attribute(attr.name, [value] * max(1, len(attr.ints)) if attr.ints else value)
        else:
            new = helper.make_attribute(attr.name, [value] * len(attr.ints) if attr.ints else value)
        node.attribute.remove(attr)
        node.attribute.append(new)
        return f"{node.op_type} {node.name}: {attr.name} = {value}", model.SerializeToString()
    if choice == 1 and g.initializer:
        init = rng.choice(list(g.initializer))
        if init.dims:
            k = rng.randrange(len(init.dims))
            init.dims[k] = rng.choice([0, 1, init.dims[k] + 1, 300])
            return f"initializer {init.name}: dim {k} = {init.dims[k]}", model.SerializeToString()
    if choice == 2 and len(node.input) > 0:
        if rng.random() < 0.5:
            dropped = node.input.pop(rng.randrange(len(node.input)))
            return f"{node.op_type} {node.name}: input {dropped} dropped", model.SerializeToString()
        node.input.append(node.input[0])
        return f"{node.op_type} {node.name}: input {node.input[0]} repeated", model.SerializeToString()
    if choice == 3:
        op = rng.choice(["Add", "Concat", "Softmax", "MaxPool", "Conv", "Relu", "Reshape", "Gemm", "Transpose"])
        old, node.op_type = node.op_type, op
        return f"{node.name}: {old} -> {op}", model.SerializeToString()
    if choice == 4 and g.initializer:
        init = rng.choice(list(g.initializer))
        init.data_type = rng.choice([TensorProto.INT32, TensorProto.INT64, TensorProto.FLOAT16, TensorProto.BOOL])
        return f"initializer {init.name}: dtype relabelled {init.data_type}", model.SerializeToString()
    if choice == 5:
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = rng.choice([1, 5, 999])
                return f"opset {o.version}", model.SerializeToString()
    dims = g.input[0].type.tensor_type.shape.dim
    k = rng.randrange(len(dims))
    dims[k].dim_value = rng.choice([0, 2, 5, 1000])
    return f"input dim {k} = {dims[k].dim_value}", model.SerializeToString()


def mutants(models: dict[str, bytes], count: int, seed: int):
    """``count`` mutants, deterministic in ``seed``."""
    rng = random.Random(seed)
    names = sorted(models)
    for _ in range(count):
        name = rng.choice(names)
        data = models[name]
        onnx_model = not data[4:8] == b"TFL3"
        if onnx_model and rng.random() < 0.6:
            try:
                kind, new = _onnx_mutant(rng, data)
            except Exception as exc:  # noqa: BLE001 - a mutation that could not be made: bytes instead
                kind, new = _bytes_mutant(rng, data)
                kind += f" (structure mutation failed: {type(exc).__name__})"
        else:
            # TFLite: mostly inside the tables and vectors before the weights
            kind, new = _bytes_mutant(rng, data, region=None if onnx_model else min(len(data), 4096))
        yield Mutant(name, kind, new)


# -- the watched worker -------------------------------------------------------------------------

def _classify(data: bytes) -> tuple[str, str]:
    """Load and run one model; (outcome, detail). Runs inside the worker."""
    import numpy as np

    from .errors import WgnnError
    from .ort_compat import ONNX_TYPES
    from .session import InferenceSession
    from .zoo import sample_input

    def feed(shape, dtype: str):
        return sample_input(np.random.default_rng(0), shape, dtype)

    try:
        session = InferenceSession(data)
        if session.graph is not None:
            session.run(None, {name: feed(o.shape, o.dtype) for name, o in session.graph.inputs.items()})
            return "ok", ""
        # Compiled on its first run (symbolic sizes that did not fit, or inputs an If branches on): run
        # it at guessed sizes (1 for a first dimension, 64 for the others); a WgnnError there only says
        # that the guess does not fit, the load itself having succeeded.
        dtypes = {v: k for k, v in ONNX_TYPES.items()}
        feeds = {arg.name: feed(tuple(d if isinstance(d, int) else 1 if k == 0 else 64
                                      for k, d in enumerate(arg.shape)), dtypes.get(arg.type, "float32"))
                 for arg in session.get_inputs()}
        try:
            session.run(None, feeds)
        except WgnnError as exc:
            return "ok", f"loaded; not run at guessed sizes: {type(exc).__name__}"
        return "ok", ""
    except WgnnError as exc:
        return "refused", f"{type(exc).__name__}: {str(exc)[:160]}"
    except Exception as exc:  # noqa: BLE001 - what fuzzing looks for
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return "exception", f"{type(exc).__name__}: {str(exc)[:160]} at {Path(tb.filename).name}:{tb.lineno}"


def _worker(tasks, results) -> None:
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    while True:
        item = tasks.get()
        if item is None:
            return
        results.put(_classify(item))


class _Watch:
    def __init__(self):
        ctx = mp_.get_context("spawn")
        self.ctx = ctx
        self.tasks, self.results = ctx.Queue(), ctx.Queue()
        self.proc = ctx.Process(target=_worker, args=(self.tasks, self.results), daemon=True)
        self.proc.start()

    def run(self, data: bytes, timeout: float) -> tuple[str, str]:
        self.tasks.put(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.results.get(timeout=0.2)
            except Exception:  # noqa: BLE001 - queue.Empty: still working, or dead
                if not self.proc.is_alive():
                    return "crash", f"worker exited with {self.proc.exitcode}"
        return "hang", f"no answer in {timeout:.0f} s"

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)


def fuzz(count: int = 100, *, seed: int = 0, timeout: float = 60.0, models: list[str] | None = None,
         progress=None) -> FuzzReport:
    """Load and run ``count`` mutants of the corpus, each in a watched worker; the report counts the
    outcomes and names every crash, hang and non-wgnn exception."""
    start = time.perf_counter()
    report = FuzzReport()
    corpus_models = corpus(models)
    watch = _Watch()
    try:
        for k, m in enumerate(mutants(corpus_models, count, seed)):
            outcome, detail = watch.run(m.data, timeout)
            report.counts[outcome] += 1
            if outcome in ("exception", "crash", "hang"):
                report.failures.append((outcome, m.source, m.kind, detail))
                if outcome != "exception":
                    watch.stop()
                    watch = _Watch()
            if progress is not None:
                progress(k + 1, outcome)
    finally:
        watch.stop()
    report.seconds = time.perf_counter() - start
    return report


def main(args) -> int:
    """``wgnn fuzz``."""
    from tqdm import tqdm

    with tqdm(total=args.count, unit="mutant", file=sys.stderr, disable=None) as bar:
        report = fuzz(args.count, seed=args.seed, timeout=args.timeout,
                      models=args.models.split(",") if args.models else None,
                      progress=lambda k, outcome: bar.update(1))
    print(report.summary())
    return 0 if report.clean else 1
