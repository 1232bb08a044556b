"""The GPU speed targets of the GPU-kernel and INT8 issues, read from what `bash bench/gpu.sh
targets` wrote, each with the value measured, its bound and whether it holds.

    python bench/targets.py OUT_FOLDER [--markdown]

OUT_FOLDER holds `bench-targets.json` (the suite at batch 1 and 32), `profile.txt` (ResNet50 at
batch 32) and `demo.txt` (the face demo headless). A target whose numbers are missing (a column
that did not run, a file that is absent) is listed as not measured, never as holding. The targets:

- batch 1, compute FP32 median latency <= 0.7x ONNX Runtime WebGPU's, each of the four zoo CNNs;
- batch 32, ResNet50 compute FP32 throughput >= 1.5x ONNX Runtime WebGPU's;
- batch 32, ResNet50 compute FP16 throughput >= 1.5x compute FP32's;
- ResNet50's convolutions at batch 32 >= 10 TFLOP/s in FP32: the profile's conv2d, matmul and
  Winograd transform dispatches together (the classifier's matmul is in there too, 0.06% of the
  FLOPs), their FLOPs over their summed GPU time;
- the face demo headless >= 300 FPS end to end;
- INT8 >= 1.5x FP32 on ResNet50 (batch 1 latency, compute FP32 over compute INT8).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ZOO = ("mobilenet_v1", "mobilenet_v2", "squeezenet1_1", "resnet50")
CONV_OPS = ("conv2d", "matmul", "winograd_input", "winograd_output")


def _cell(models: dict, model: str, column: str, key: str) -> float | None:
    """A measured cell's ``key``, or None: not run, failed, or (ONNX Runtime WebGPU) run by another
    execution provider. wgnn's cells say "ok", a peer's "ok (the provider that ran it)"."""
    cell = models.get(model, {}).get(column, {})
    status = cell.get("status", "ok")
    ok = status == "ok" or (status.startswith("ok (") and (column != "ONNX Runtime WebGPU" or "WebGpu" in status))
    value = cell.get(key) if ok else None
    return float(value) if value else None


def _ratio_target(name: str, value: float | None, other: float | None, bound: float, at_most: bool,
                  unit: str) -> dict:
    if value is None or other is None:
        return {"target": name, "measured": None, "bound": bound, "holds": None}
    ratio = value / other
    return {"target": name, "measured": ratio, "bound": bound, "holds": ratio <= bound if at_most else ratio >= bound,
            "detail": f"{value:.2f} / {other:.2f} {unit}"}


def conv_tflops(profile_text: str) -> tuple[float, str] | None:
    """(TFLOP/s, detail) of the convolution dispatches in a `wgnn profile` report's "by op" line."""
    line = next((ln for ln in profile_text.splitlines() if ln.startswith("by op: ")), None)
    if line is None:
        return None
    ms = gflop = 0.0
    for op, op_ms, op_gflop in re.findall(r"(\w+) ([\d.]+) ms, ([\d.]+) GFLOP", line):
        if op in CONV_OPS:
            ms, gflop = ms + float(op_ms), gflop + float(op_gflop)
    if ms == 0:
        return None
    return gflop / ms, f"{gflop:.1f} GFLOP in {ms:.2f} ms"  # GFLOP per ms is TFLOP/s


def demo_fps(demo_text: str) -> float | None:
    found = re.findall(r"([\d.]+) FPS end to end", demo_text)
    return float(found[-1]) if found else None


def evaluate(folder: Path) -> list[dict]:
    """Every target with what was measured (None where it was not)."""
    bench = folder / "bench-targets.json"
    models = json.loads(bench.read_text())["models"] if bench.exists() else {}
    rows = []
    for model in ZOO:
        rows.append(_ratio_target(f"{model} batch 1: compute FP32 / ONNX Runtime WebGPU latency",
                                  _cell(models, model, "compute FP32", "median_ms"),
                                  _cell(models, model, "ONNX Runtime WebGPU", "median_ms"), 0.7, True, "ms"))
    rows.append(_ratio_target("resnet50 batch 32: compute FP32 / ONNX Runtime WebGPU throughput",
                              _cell(models, "resnet50@32", "compute FP32", "images_per_s"),
                              _cell(models, "resnet50@32", "ONNX Runtime WebGPU", "images_per_s"), 1.5, False,
                              "images/s"))
    rows.append(_ratio_target("resnet50 batch 32: compute FP16 / compute FP32 throughput",
                              _cell(models, "resnet50@32", "compute FP16", "images_per_s"),
                              _cell(models, "resnet50@32", "compute FP32", "images_per_s"), 1.5, False, "images/s"))
    profile = folder / "profile.txt"
    tflops = conv_tflops(profile.read_text()) if profile.exists() else None
    rows.append({"target": "resnet50 batch 32: convolutions' TFLOP/s in FP32", "bound": 10.0,
                 "measured": tflops[0] if tflops else None, "holds": tflops[0] >= 10.0 if tflops else None,
                 "detail": tflops[1] if tflops else ""})
    demo = folder / "demo.txt"
    fps = demo_fps(demo.read_text()) if demo.exists() else None
    rows.append({"target": "face demo headless, 640x480: frames per second end to end", "bound": 300.0,
                 "measured": fps, "holds": fps >= 300.0 if fps is not None else None, "detail": ""})
    rows.append(_ratio_target("resnet50 batch 1: INT8 speed-up over FP32 (FP32 / INT8 latency)",
                              _cell(models, "resnet50", "compute FP32", "median_ms"),
                              _cell(models, "resnet50", "compute INT8", "median_ms"), 1.5, False, "ms"))
    return rows


def report(rows: list[dict], environment: str = "", markdown: bool = False) -> str:
    def verdict(row):
        return "not measured" if row["holds"] is None else ("holds" if row["holds"] else "misses")

    def value(row):
        return "-" if row["measured"] is None else f"{row['measured']:.3g}"

    if markdown:
        lines = ([environment, ""] if environment else []) + ["| target | measured | bound | verdict | from |",
                                                               "|---|---|---|---|---|"]
        lines += [f"| {r['target']} | {value(r)} | {r['bound']:g} | {verdict(r)} | {r.get('detail', '')} |"
                  for r in rows]
    else:
        lines = ([environment] if environment else []) + [
            f"{verdict(r):>12}  {r['target']}: {value(r)} (bound {r['bound']:g}) {r.get('detail', '')}".rstrip()
            for r in rows]
    held = sum(1 for r in rows if r["holds"])
    lines.append(f"{held} of {len(rows)} targets hold; {sum(1 for r in rows if r['holds'] is None)} not measured")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where `bash bench/gpu.sh targets` wrote its results ($OUT)")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"targets: {args.folder} is not a folder", file=sys.stderr)
        return 2
    environment = ""
    bench = args.folder / "bench-targets.json"
    if bench.exists():
        suite = json.loads(bench.read_text())
        env = suite.get("environment", {})
        environment = f"{env.get('adapter', '?')}, driver {env.get('driver', '?')}, {env.get('date', '?')}"
        if "partial" in suite:  # the suite was cut short: the models it measured
            environment += f" (suite cut short after {suite['partial']})"
    print(report(evaluate(args.folder), environment, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
