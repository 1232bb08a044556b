"""Host time of a run's encoding and read-back: through wgpu-py against straight through wgpu-native.

A compute executable encodes its first run through wgpu-py, whose every call captures errors, and
later runs through wgpu-native's functions themselves (``backends/compute/__init__.py``,
``_native_pass_calls``). This measures both ways, alternating, each as a command encoder that
begins one compute pass, records every dispatch, ends the pass and finishes (nothing is
submitted), and prints the medians beside the model's run wall clock on the same adapter, so the
share of a run that is host encoding shows on a GPU, where the kernels are fast. Then it times whole
runs of a graph too small for its kernel to matter (one add and relu of 64 values), alternating
the read-back through wgpu-py's ``map_sync`` with wgnn's map on the calling thread
(``runtime._NATIVE_MAP``): a run's floor of submit, wait and map.

    python bench/host_overhead.py [--models a,b,...] [--repeats N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import wgnn
from wgnn import zoo

MODELS = ("mobilenet_v1", "mobilenet_v2", "squeezenet1_1", "resnet50")


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def measure(name: str, repeats: int) -> dict:
    session = wgnn.InferenceSession(zoo.build(name))
    exe = session._exe
    device = exe.device.device
    feeds = {"input": zoo.random_input(0)}
    session.compute(feeds)  # the first run: encoded through wgpu-py, validated

    def through_wgpu_py():
        enc = device.create_command_encoder()
        cpass = enc.begin_compute_pass()
        for d in exe.dispatches:
            d.encode(cpass)
        cpass.end()
        enc.finish()

    def native():
        enc = device.create_command_encoder()
        exe.encode(enc)
        enc.finish()

    rounds = {"wgpu-py": [], "native": []}
    for _ in range(5):  # alternating blocks, so that drift in the machine's speed hits both
        rounds["wgpu-py"].append(_median_ms(through_wgpu_py, repeats))
        rounds["native"].append(_median_ms(native, repeats))
    run_ms = _median_ms(lambda: session.compute(feeds), max(3, min(repeats // 10, 20)))
    return {"dispatches": len(exe.dispatches), "encode_wgpu_py_ms": float(np.median(rounds["wgpu-py"])),
            "encode_native_ms": float(np.median(rounds["native"])), "run_ms": run_ms}


def read_back(repeats: int) -> dict:
    from wgnn import runtime

    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 64))
    session = wgnn.InferenceSession(b.build_graph({"y": b.relu(b.add(x, x))}))
    feeds = {"x": np.ones((1, 64), np.float32)}
    native = runtime._NATIVE_MAP
    rounds = {"wgpu-py": [], "native": []}
    try:
        for _ in range(5):
            runtime._NATIVE_MAP = None
            rounds["wgpu-py"].append(_median_ms(lambda: session.run(None, feeds), repeats * 3))
            runtime._NATIVE_MAP = native
            rounds["native"].append(_median_ms(lambda: session.run(None, feeds), repeats * 3))
    finally:
        runtime._NATIVE_MAP = native
    return {"run_map_sync_ms": float(np.median(rounds["wgpu-py"])),
            "run_native_map_ms": float(np.median(rounds["native"]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--json")
    args = ap.parse_args()
    device = wgnn.default_device()
    print(f"adapter: {device.name}; encode = command encoder, one compute pass, every dispatch, finish "
          f"(median of 5 alternating blocks of {args.repeats})")
    print(f"{'model':16s} {'dispatches':>10s} {'wgpu-py ms':>11s} {'native ms':>10s} {'saved ms':>9s} {'run ms':>9s}")
    results = {}
    for name in args.models.split(","):
        r = results[name] = measure(name, args.repeats)
        print(f"{name:16s} {r['dispatches']:10d} {r['encode_wgpu_py_ms']:11.3f} {r['encode_native_ms']:10.3f} "
              f"{r['encode_wgpu_py_ms'] - r['encode_native_ms']:9.3f} {r['run_ms']:9.2f}")
    tiny = read_back(args.repeats)
    print(f"a tiny graph's run (submit, wait, map): {tiny['run_map_sync_ms']:.3f} ms read back through wgpu-py's "
          f"map_sync, {tiny['run_native_map_ms']:.3f} ms mapped on the calling thread")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"adapter": device.name, "date": time.strftime("%Y-%m-%d"), "models": results,
                       "tiny_run": tiny}, f, indent=1)


if __name__ == "__main__":
    main()
