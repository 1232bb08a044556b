"""INT8 against FP32, per zoo CNN, on this machine's adapter, with ONNX Runtime CPU beside it.

Each model is quantized by ONNX Runtime's ``quantize_static`` (``wgnn.zoo.quantize``: uint8
activations, per-channel int8 weights, calibrated on four of scikit-image's photos) in both
formats, then timed (median of ``--runs`` after a warm-up, the runs of wgnn's sessions interleaved,
then those of ONNX Runtime's) on another photo:

- wgnn FP32 (the float model) and wgnn INT8 (the QDQ and QOperator files, and the QDQ file with
  every quantized convolution forced onto the packed-int8 kernel, ``gemm_i8``);
- ONNX Runtime CPU on the same three files;

and the agreement of wgnn's INT8 logits with ONNX Runtime CPU's (share within one output
quantization step, top-1).

    python bench/int8.py [--models a,b,...] [--runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import wgnn
from wgnn import zoo
from wgnn.batch import prepare_image

CALIBRATION = ("astronaut", "coffee", "rocket", "retina")


def photo(name: str) -> np.ndarray:
    import skimage

    image = getattr(skimage.data, name)()
    image = np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]
    return prepare_image(image, "imagenet", (224, 224))[0][None]


def interleaved_ms(fns: dict, runs: int) -> dict:
    """Median milliseconds of each function, their runs interleaved (one of each in turn, after a
    warm-up each), so that a machine that speeds up or slows down affects them alike."""
    times = {label: [] for label in fns}
    for fn in fns.values():
        fn()
    for _ in range(runs):
        for label, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[label].append((time.perf_counter() - start) * 1e3)
    return {label: float(np.median(t)) for label, t in times.items()}


def measure(name: str, runs: int, calibration: list, x: np.ndarray) -> dict:
    import onnxruntime as ort

    files = {"FP32": zoo.build(name, softmax=False).SerializeToString()}
    steps = {}  # the output quantization step of each quantized file
    for fmt in zoo.QUANT_FORMATS:
        path = zoo.quantize(name, calibration, fmt=fmt)
        files[f"INT8 {fmt}"], steps[f"INT8 {fmt}"] = path.read_bytes(), zoo.output_step(path)
    row: dict = {}
    wgnn_runs = [(label, model, None) for label, model in files.items()]
    # the QDQ file again with every quantized convolution on the packed-int8 kernel (gemm_i8)
    wgnn_runs.append(("INT8 qdq gemm_i8", files["INT8 qdq"], {"conv2d": "gemm_i8"}))
    steps["INT8 qdq gemm_i8"] = steps["INT8 qdq"]
    sessions = {f"wgnn {label}": wgnn.InferenceSession(model, kernels=kernels) for label, model, kernels in wgnn_runs}
    # wgnn first, with no ONNX Runtime thread pool alive
    row.update(interleaved_ms({k: (lambda s=s: s.run(None, {"input": x})) for k, s in sessions.items()}, runs))
    got = {label: sessions[f"wgnn {label}"].run(None, {"input": x})[0] for label, _, _ in wgnn_runs}
    del sessions
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no spinning between runs
    cpus = {f"ORT CPU {label}": ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
            for label, model in files.items()}
    row.update(interleaved_ms({k: (lambda s=s: s.run(None, {"input": x})) for k, s in cpus.items()}, runs))
    agreement = {}
    for label in files:
        cpu = cpus[f"ORT CPU {label}"]
        if label != "FP32":
            want = cpu.run(None, {"input": x})[0]
            for mine in [k for k in got if k.startswith(label)]:
                agreement[mine] = {"within_one_step": float(np.mean(np.abs(got[mine] - want) <= steps[mine] * 1.001)),
                                   "same_top1": bool(np.argmax(got[mine]) == np.argmax(want))}
    row["agreement"] = agreement
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(zoo.MODELS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    calibration = [photo(n) for n in CALIBRATION]
    x = photo("chelsea")
    device = wgnn.default_device()
    result = {"adapter": device.name, "runs": args.runs,
              "models": {}}
    print(f"adapter: {device.name}")
    for name in args.models.split(","):
        row = measure(name, args.runs, calibration, x)
        result["models"][name] = row
        times = "  ".join(f"{k} {v:.1f} ms" for k, v in row.items() if k != "agreement")
        print(f"{name}: {times}")
        for label, a in row["agreement"].items():
            print(f"    wgnn {label} vs ORT CPU: {a['within_one_step']:.1%} within one step, "
                  f"top-1 {'same' if a['same_top1'] else 'differs'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
