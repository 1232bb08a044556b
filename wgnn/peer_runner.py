"""Times one peer runtime on one ONNX model, in that peer's own virtual environment.

Run by ``wgnn.bench`` as a script (this environment has no wgnn installed):
    python peer_runner.py ort-webgpu|wonnx MODEL.onnx RUNS WARMUP [BATCH | FEEDS.npz] [OUTPUTS.npz]
(BATCH: an image batch for the input named "input"; FEEDS.npz: the model's inputs by name;
OUTPUTS.npz: where the first run's outputs are written, by name, for the caller to check.)
It prints one JSON line: {"times_ms": [...], "load_s": ..., "provider": ...} or {"error": ...}.
"""

import json
import os
import re
import sys
import tempfile
import time
from collections import Counter

# Run as a script, this file's folder (wgnn/) comes first on sys.path, where onnxruntime.py (wgnn's
# stand-in for ONNX Runtime's module) would be imported in place of the peer's own onnxruntime.
HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != HERE]

import numpy as np  # noqa: E402


def cpu_placed(ort, path: str) -> tuple[dict[str, int], int]:
    """The ops of ``path`` that ONNX Runtime runs on its CPU provider beside WebGPU (those its WebGPU
    provider has no kernel for, and small shape arithmetic it keeps on the host), by op type, and the
    number of nodes placed in all: read from a session's verbose log, the one place it says which
    node runs where ({} where the log does not say)."""
    options = ort.SessionOptions()
    options.log_severity_level = 0
    sys.stderr.flush()
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)  # (the library writes its log to the process's stderr)
        try:
            ort.InferenceSession(path, options, providers=["WebGpuExecutionProvider"])
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        text = log.read().decode(errors="replace")
    placed = placements(text)
    return dict(placed.get("CPUExecutionProvider", {})), sum(sum(c.values()) for c in placed.values())


def placements(log: str) -> dict[str, Counter]:
    """Provider -> op type -> nodes, from ONNX Runtime's verbose log of a session's creation (its
    "Node(s) placed on [PROVIDER]" lists)."""
    placed: dict[str, Counter] = {}
    where = None
    for line in log.splitlines():
        header = re.search(r"Node\(s\) placed on \[(\w+)\]", line)
        if header:
            where = placed.setdefault(header.group(1), Counter())
        elif where is not None and (node := re.search(r"VerifyEachNodeIsAssignedToAnEp\]\s+(\w+) \(", line)):
            where[node.group(1)] += 1
        elif "VerifyEachNodeIsAssignedToAnEp" not in line:
            where = None
    return placed


def main() -> None:
    peer, path, runs, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    extra = sys.argv[5] if len(sys.argv) > 5 else "1"
    if extra.endswith(".npz"):
        with np.load(extra) as data:
            feeds = {name: data[name] for name in data.files}
    else:
        feeds = {"input": np.random.default_rng(0).standard_normal((int(extra), 3, 224, 224)).astype(np.float32)}
    try:
        start = time.perf_counter()
        if peer == "ort-webgpu":
            import onnxruntime as ort

            if "WebGpuExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError(f"WebGpuExecutionProvider missing: {ort.get_available_providers()}")
            session = ort.InferenceSession(path, providers=["WebGpuExecutionProvider"])
            provider = session.get_providers()[0]
            if provider != "WebGpuExecutionProvider":
                # ONNX Runtime falls back to its CPU provider when Dawn refuses the adapter: not this column.
                raise RuntimeError(f"WebGPU provider not used (ONNX Runtime fell back to {provider}); "
                                   "Dawn refuses older Mesa drivers: see bench/setup_peers.sh --mesa-backports")

            names = [o.name for o in session.get_outputs()]

            def run():
                return dict(zip(names, session.run(None, feeds)))
        elif peer == "wonnx":
            import wonnx

            session = wonnx.Session.from_path(path)
            provider = "wonnx"
            flat = {name: value.reshape(-1).tolist() for name, value in feeds.items()}  # (it takes flat lists)

            def run():
                return session.run(flat)
        else:
            raise ValueError(f"unknown peer {peer!r}")
        first = run()  # the first run compiles on some runtimes: count it as loading
        load = time.perf_counter() - start
        if peer == "ort-webgpu":  # (a second session, for its log alone: not timed as loading)
            on_cpu, nodes = cpu_placed(ort, path)
            if on_cpu:  # (what this column times on the host, not on the GPU)
                provider += (f"; {sum(on_cpu.values())} of {nodes} nodes on its CPU provider: "
                             + ", ".join(f"{op} x{n}" for op, n in sorted(on_cpu.items(), key=lambda x: -x[1])))
        if len(sys.argv) > 6:  # (flat for wonnx: the caller reshapes)
            np.savez(sys.argv[6], **{name: np.asarray(value) for name, value in first.items()})
        for _ in range(warmup):
            run()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            run()
            times.append((time.perf_counter() - t) * 1000)
        print(json.dumps({"times_ms": times, "load_s": load, "provider": provider}))
    except BaseException as exc:  # the suite reports why (a Rust panic is no Exception)
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))


if __name__ == "__main__":
    main()
