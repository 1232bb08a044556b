"""One model on one input, wgnn FP32 and FP16 against ONNX Runtime CPU and ONNX Runtime WebGPU: what
``bench/text.py`` and ``bench/models.py`` measure for each of their cases.

wgnn's two sessions run interleaved in this process (``int8.interleaved_ms``), then ONNX Runtime CPU
with its default options (its threads spin on after a run, which would take the cores from a
column timed after it), ONNX Runtime WebGPU in its own interpreter (``wgnn/peer_runner.py``, where
``bench/setup_peers.sh`` made its environment), each the median of ``runs`` after a warm-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

import wgnn
from wgnn.bench import PEER_SCRIPT, peer_python

sys.path.insert(0, str(Path(__file__).parent))
from int8 import interleaved_ms  # noqa: E402  (bench/int8.py: the runs of each column interleaved)


def peer_ms(path: Path, feeds: dict, runs: int) -> tuple[float | None, str]:
    """ONNX Runtime WebGPU's median ms on ``path`` with ``feeds``, and what ran it (or why not)."""
    python = peer_python("ort-webgpu")
    if python is None:
        return None, "not installed (bench/setup_peers.sh)"
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "feeds.npz"
        np.savez(npz, **feeds)
        done = subprocess.run([python, str(PEER_SCRIPT), "ort-webgpu", str(path), str(runs), "1", str(npz)],
                              capture_output=True, text=True, timeout=1800)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None, f"failed: {done.stderr.strip()[-300:]}"
    if "error" in result:
        return None, result["error"][:300]
    return float(np.median(result["times_ms"])), result["provider"]


def compare(path: Path, feeds: dict, runs: int, output: str | None = None) -> dict:
    """The median ms of each column, the WebGPU peer's status, wgnn's ``output`` (default: the
    first) against ONNX Runtime CPU's (relative L2, per precision), the dispatches of wgnn's plan
    and the adapter; and a one-line summary under "line"."""
    import onnxruntime as ort

    # ONNX Runtime's threads spin on after a run, by default, and took the cores from the column timed
    # next (on lavapipe, 2 cores, the voice filter's FP32 60-67 ms against 37 measured alone; a
    # pause of 50 ms between runs did not end it): the reference outputs come from a session that
    # does not spin, and ONNX Runtime CPU is timed as it comes, in a block of its own after wgnn's
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    reference = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [output] if output else None
    want = reference.run(names, feeds)[0]
    shapes = {k: v.shape for k, v in feeds.items()}
    sessions = {p: wgnn.InferenceSession(str(path), precision=p, input_shapes=shapes) for p in ("fp32", "fp16")}
    agreement = {p: float(np.linalg.norm(s.run(names, feeds)[0] - want) / np.linalg.norm(want))
                 for p, s in sessions.items()}
    fns = {f"wgnn {p.upper()}": (lambda s=s: s.run(None, feeds)) for p, s in sessions.items()}
    times = interleaved_ms(fns, runs)
    cpu = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    times.update(interleaved_ms({"ONNX Runtime CPU": partial(cpu.run, None, feeds)}, runs))
    del cpu  # (its threads, and their spinning, end with it)
    times["ONNX Runtime WebGPU"], status = peer_ms(path, feeds, runs)
    dispatches = len(sessions["fp32"]._exe.dispatches)
    constants = {p: round(s._exe.constant_bytes / 1e6, 1) for p, s in sessions.items()}
    line = ", ".join(f"{k} {v:.1f} ms" if v is not None else f"{k} -" for k, v in times.items())
    return {"shapes": {k: list(v) for k, v in shapes.items()}, "median_ms": times, "webgpu": status,
            "rel_l2_vs_ort_cpu": agreement, "dispatches": dispatches, "adapter": sessions["fp32"].adapter_name,
            "constant_mb": constants,
            "line": f"{line} [{status}]; vs ONNX Runtime CPU {agreement['fp32']:.1e} (fp32), "
                    f"{agreement['fp16']:.1e} (fp16); {dispatches} dispatches; weights on the GPU "
                    f"{constants['fp32']:.1f} MB (fp32), {constants['fp16']:.1f} MB (fp16)"}
