"""Where a dynamically quantized LSTM layer is faster whole (``lstm_layer``, one dispatch) than as
its steps (``lstm_step`` ``row``, two dispatches a step), by size, on this machine's adapter: the
kernel policy's ``LAYER_STATE`` (wgnn/backends/compute/policy.py) is read off such a sweep.

Each case is one LSTM (ONNX's, weights drawn from a fixed seed) through ONNX Runtime's
``quantize_dynamic`` (a DynamicQuantizeLSTM), run both ways in one process, the runs alternated:
median ms of each, their ratio, whether the layer ran whole and whether the outputs are bitwise the
same (they are meant to be).

    python bench/lstm_layer_sizes.py [--cases H:STEPS:BATCH:DIRECTIONS,...] [--runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import wgnn

sys.path.insert(0, str(Path(__file__).parent))
from int8 import interleaved_ms  # noqa: E402  (bench/int8.py: the runs of each column interleaved)
from lstm_variants import sweep  # noqa: E402  (bench/lstm_variants.py: a case a line, then the JSON)

CASES = ("128:40:1:1,256:40:1:1,512:40:1:1,768:40:1:1,128:40:4:1,256:40:1:2,384:40:1:2,512:40:1:2,768:40:1:2,"
         "256:40:2:2")
INPUT_SIZE = 128


def quantized_lstm(hidden: int, steps: int, batch: int, dirs: int, folder: Path) -> tuple[str, np.ndarray]:
    """(the path of a dynamically quantized LSTM of these sizes, an input for it)."""
    from onnxruntime import quantization

    rng = np.random.default_rng(0)
    consts = {"W": rng.normal(0, 0.1, (dirs, 4 * hidden, INPUT_SIZE)),
              "R": rng.normal(0, 0.1, (dirs, 4 * hidden, hidden)), "B": rng.normal(0, 0.1, (dirs, 8 * hidden))}
    node = helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], hidden_size=hidden,
                            direction="bidirectional" if dirs == 2 else "forward")
    graph = helper.make_graph([node], "lstm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, batch, INPUT_SIZE])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    source, target = folder / "float.onnx", folder / f"lstm-{hidden}-{steps}-{batch}-{dirs}.onnx"
    onnx.save(model, str(source))
    quantization.quantize_dynamic(str(source), str(target), weight_type=quantization.QuantType.QInt8)
    return str(target), rng.normal(0, 1, (steps, batch, INPUT_SIZE)).astype(np.float32)


def measure(hidden: int, steps: int, batch: int, dirs: int, runs: int, folder: Path) -> dict:
    path, x = quantized_lstm(hidden, steps, batch, dirs, folder)
    sessions = {v: wgnn.InferenceSession(path, kernels={"lstm_step": v}) for v in ("row", "layer")}
    outputs = {v: s.run(None, {"x": x})[0] for v, s in sessions.items()}
    times = interleaved_ms({v: (lambda s=s: s.run(None, {"x": x})) for v, s in sessions.items()}, runs)
    return {"median_ms": times, "ratio": times["layer"] / times["row"],
            "whole": any(d.kernel == "lstm_layer" for d in sessions["layer"]._exe.dispatches),
            "same": bool(np.array_equal(outputs["row"], outputs["layer"])),
            "default": wgnn.InferenceSession(path).kernel_choices(), "adapter": sessions["row"].adapter_name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=CASES, help="hidden:steps:batch:directions, comma-separated")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:

        def one(case: str) -> tuple[dict, str]:
            hidden, steps, batch, dirs = (int(v) for v in case.split(":"))
            m = measure(hidden, steps, batch, dirs, args.runs, Path(tmp))
            default = "layer" if any(c.startswith("layer") for c in m.pop("default").values()) else "steps"
            times, same = m["median_ms"], "bitwise the same" if m["same"] else "DIFFER"
            whole = "" if m["whole"] else ", NOT run whole"
            return m, (f"{hidden} units, {steps} steps, batch {batch}, {dirs} direction(s): steps "
                       f"{times['row']:.1f} ms, whole {times['layer']:.1f} ms ({m['ratio']:.2f}x{whole}); "
                       f"outputs {same}; the defaults take {default}")

        sweep(args.cases.split(","), one, args.json)


if __name__ == "__main__":
    main()
