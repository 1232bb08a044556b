"""The error FP16 costs, per model, against an FP32 reference, on a real photo.

For each zoo CNN (reference: ONNX Runtime CPU) and each MediaPipe model (reference: LiteRT), the
worst relative L2 error over the model's outputs, for:

- ``fp32``: wgnn in fp32 (the baseline: how close wgnn's own arithmetic is);
- ``fp16 f32-math``: f16 storage with every product in f32 (``gemm`` forced where the workgroup
  GEMM can run, so the only change from the next column is the arithmetic);
- ``fp16 f16-math``: the same kernels with f16 products (``gemm_f16``): 16 products per output
  summed in f16, then f32.

    python bench/fp16_error.py [--json FILE] [--models a,b,...]

The input is scikit-image's astronaut photo: letterboxed to each MediaPipe model's input in [0, 1],
resized to 224x224 with ImageNet's normalization for the zoo CNNs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import wgnn
from wgnn import mediapipe as mp
from wgnn import zoo

MODES = {
    "fp32": ("fp32", None),
    "fp16 f32-math": ("fp16", {"conv2d": "gemm", "matmul": "gemm"}),
    "fp16 f16-math": ("fp16", {"conv2d": "gemm_f16", "matmul": "gemm_f16"}),
}


def rel_l2(got: np.ndarray, want: np.ndarray) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def _photo() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def _zoo_case(name: str, photo: np.ndarray):
    import onnxruntime as ort

    from wgnn.batch import prepare_image

    model = zoo.build(name, softmax=False)
    feeds = {"input": prepare_image(photo, "imagenet", (224, 224))[0][None]}
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    return model, feeds, want


def _mediapipe_case(name: str, photo: np.ndarray):
    from ai_edge_litert.interpreter import Interpreter

    path = zoo.fetch(name)
    it = Interpreter(model_content=path.read_bytes(), num_threads=1)
    it.allocate_tensors()
    detail = it.get_input_details()[0]
    x, _ = mp.letterbox(photo, tuple(detail["shape"][1:3]), (0.0, 1.0))
    it.set_tensor(detail["index"], x)
    it.invoke()
    want = [it.get_tensor(d["index"]) for d in it.get_output_details()]
    return path, {detail["name"]: x}, want


def measure(names: list[str]) -> dict:
    photo = _photo()
    rows = {}
    for name in names:
        model, feeds, want = (_zoo_case if name in zoo.MODELS else _mediapipe_case)(name, photo)
        row = {}
        for mode, (precision, kernels) in MODES.items():
            session = wgnn.InferenceSession(model, precision=precision, kernels=kernels)
            got = session.run(None, dict(feeds) if name in zoo.MODELS else
                              {session.get_inputs()[0].name: next(iter(feeds.values()))})
            row[mode] = max(rel_l2(g, w) for g, w in zip(got, want))
            if kernels:
                row[mode + " nodes"] = sum(c.startswith(kernels["conv2d"] + " ")
                                           for c in session.kernel_choices().values())
        rows[name] = row
        print(f"{name:34s} " + "  ".join(f"{m}={row[m]:.2e}" for m in MODES), file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--models", default=",".join(zoo.MODELS + tuple(zoo.PRETRAINED)))
    args = parser.parse_args(argv)
    device = wgnn.runtime.default_device()
    start = time.time()
    rows = measure(args.models.split(","))
    print("| model | " + " | ".join(MODES) + " | nodes on f16 math |")
    print("|---|" + "---|" * (len(MODES) + 1))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[m]:.1e}" for m in MODES) + f" | {row['fp16 f16-math nodes']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"adapter": device.name, "date": time.strftime("%Y-%m-%d"), "wgnn": wgnn.__version__,
                       "seconds": round(time.time() - start), "worst_rel_l2": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
