"""Soak: does wgnn hold memory over many runs and many sessions?

    python bench/soak.py [--runs 10000] [--sessions 1000] [--model squeezenet] [--json FILE]

RSS is read after a garbage collection, as it is and after ``malloc_trim`` (glibc keeps freed
heap memory, which would otherwise read as held); growth is measured on the trimmed figure.

1. ``--runs`` runs of one session (a small builder graph: a convolution, a pooling, a matmul and a
   softmax, so that each run is mostly wgnn's own work rather than the driver's), the process's
   resident memory (RSS) sampled every tenth of the way; growth is measured after a warm-up tenth.
2. ``--sessions`` create-run-drop cycles of a session of ``--model`` (``small``: that graph; or a
   zoo CNN with 10 classes, about a second a cycle on lavapipe), RSS sampled the same way; growth
   per session after the warm-up.

GPU memory is not readable through WebGPU; on lavapipe it is host memory and shows in RSS.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import numpy as np

import wgnn
from wgnn import zoo


def rss_mb(trim: bool = False) -> float:
    """Resident memory; ``trim``: after glibc hands freed heap back to the system (malloc_trim), so
    that memory freed but kept by the allocator does not count as held."""
    if trim:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize() / 2**20


def small_graph():
    rng = np.random.default_rng(0)
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 8, 16, 16))
    h = b.conv2d(x, b.constant(rng.standard_normal((8, 8, 3, 3)).astype(np.float32)), padding=(1, 1, 1, 1),
                 activation="relu")
    h = b.flatten(b.average_pool2d(h))
    y = b.softmax(b.matmul(h, b.constant(rng.standard_normal((8, 10)).astype(np.float32))))
    return b, y, {"x": rng.standard_normal((1, 8, 16, 16)).astype(np.float32)}


def sample(count: int, step, label: str) -> dict:
    points = []
    every = max(count // 10, 1)
    start = time.perf_counter()
    for k in range(count):
        step(k)
        if (k + 1) % every == 0:
            gc.collect()
            raw = round(rss_mb(), 2)
            points.append((k + 1, round(rss_mb(trim=True), 2), raw))
            print(f"{label}: {k + 1}/{count}, RSS {raw:.1f} MB, {points[-1][1]:.1f} MB trimmed", file=sys.stderr,
                  flush=True)
    warm = points[0]
    last = points[-1]
    return {"count": count, "seconds": round(time.perf_counter() - start, 1),
            "rss_mb": [(k, raw) for k, _, raw in points], "rss_trimmed_mb": [(k, t) for k, t, _ in points],
            "growth_after_warmup_mb": round(last[1] - warm[1], 2),
            "growth_after_warmup_percent": round(100 * (last[1] - warm[1]) / warm[1], 2),
            "per_item_after_warmup_mb": round((last[1] - warm[1]) / max(last[0] - warm[0], 1), 4)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--model", default="small")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    device = wgnn.default_device()
    b, y, feeds = small_graph()
    one = b.build({"y": y})
    runs = sample(args.runs, lambda k: one.run(None, feeds), "runs")
    if args.model == "small":
        def cycle(k):
            b.build({"y": y}).run(None, feeds)
    else:
        model = zoo.build(zoo.canonical(args.model), classes=10).SerializeToString()
        x = zoo.random_input(0)

        def cycle(k):
            wgnn.InferenceSession(model).run(None, {"input": x})

    sessions = sample(args.sessions, cycle, "sessions")
    result = {"adapter": device.name, "date": time.strftime("%Y-%m-%d"), "wgnn": wgnn.__version__,
              "runs": runs, "sessions": {"model": args.model, **sessions}}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
