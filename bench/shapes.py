"""What a new input shape costs a session: the models PyPI packages ship with symbolic inputs, each
run at a series of shapes in one session (a plan compiled per shape, ``session.MAX_PLANS`` kept).

Per model it prints the session's load time, the median time a run at a new shape takes beyond a
second run at that shape (the import, the passes and the compile), and what each plan after the
first adds: the bytes of weights uploaded to the GPU for it (the buffers of weights its executable
binds that no earlier plan did) and the process's resident memory (on a software adapter such as
lavapipe the GPU's buffers are host memory, so this counts them too). The inputs are random: what
is measured does not depend on their values.

    python bench/shapes.py [--models a,b,...] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import time

import numpy as np

import wgnn
from wgnn import zoo

# model -> the shapes of its symbolic input(s), in the order they are run
SHAPES = {
    "all_minilm_l6_v2": [(1, n) for n in (16, 24, 32, 40, 48, 56, 64, 72, 80, 96)],
    "ppocrv5_rec": [(1, 3, 48, w) for w in (160, 192, 224, 256, 288, 320, 352, 384, 416, 448)],
    "nudenet_320n": [(1, 3, h, w) for h, w in ((320, 320), (256, 384), (384, 256), (320, 416), (416, 320),
                                                (288, 352), (352, 288), (256, 256), (384, 384), (448, 320))],
    # a captcha recognizer: a bidirectional LSTM over the image's columns, unrolled per step
    "ddddocr": [(1, 1, 64, w) for w in (160, 200, 240, 280, 300, 320, 360, 400, 440, 480)],
}


def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def _feeds(session, shape, rng) -> dict:
    feeds = {}
    for arg in session.get_inputs():
        if arg.type == "tensor(int64)":
            feeds[arg.name] = rng.integers(1, 1000, shape).astype(np.int64)
        else:
            feeds[arg.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def measure(name: str) -> dict:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    session = wgnn.InferenceSession(str(zoo.fetch(name)))
    load = time.perf_counter() - start
    seen: set[int] = set()
    new_shape, uploaded, resident = [], [], []
    for shape in SHAPES[name]:
        feeds = _feeds(session, shape, rng)
        before = _resident_mb()
        start = time.perf_counter()
        session.run(None, feeds)
        first = time.perf_counter() - start
        start = time.perf_counter()
        session.run(None, feeds)
        new_shape.append(first - (time.perf_counter() - start))
        gc.collect()
        resident.append(_resident_mb() - before)
        buffers = getattr(session._exe, "constant_buffers", None)
        if buffers is None:  # (a wgnn before plans shared their weights: each uploaded all of its own)
            uploaded.append(session._exe.constant_bytes)
        else:
            uploaded.append(sum(b.size for b in buffers if id(b) not in seen))
            seen.update(id(b) for b in buffers)
    # the first shape run may create pipelines the load's placeholder shapes did not need: the
    # medians are of the shapes after it
    return {"model": name, "load_s": load, "plans": session.plans_compiled,
            "new_shape_s": float(np.median(new_shape[1:])),
            "weights_uploaded_mb": float(np.median(uploaded[1:])) / 2**20,
            "resident_mb": float(np.median(resident[1:])), "shapes": [list(s) for s in SHAPES[name]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(SHAPES))
    parser.add_argument("--json")
    args = parser.parse_args()
    adapter = wgnn.runtime.default_device().name
    print(f"adapter: {adapter}; medians over the shapes after the first")
    print(f"{'model':<18} {'load s':>7} {'new shape s':>12} {'weights uploaded MB':>20} {'resident MB':>12}")
    rows = []
    for name in args.models.split(","):
        try:
            row = measure(name)
        except zoo.FetchError as exc:  # a machine without the network (a lent GPU) and without the model
            print(f"{name}: skipped, {exc}", flush=True)
            continue
        rows.append(row)
        print(f"{name:<18} {row['load_s']:7.2f} {row['new_shape_s']:12.3f} {row['weights_uploaded_mb']:20.2f} "
              f"{row['resident_mb']:12.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"adapter": adapter, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
