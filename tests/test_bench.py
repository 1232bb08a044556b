"""The benchmark suite: columns in interleaved blocks, a reason for every column that did not run, JSON and PNG."""

from __future__ import annotations

import json

import pytest

from wgnn.bench import format_table, run_suite, write_json, write_png


def test_suite_writes_table_json_and_chart(device, tmp_path):
    columns = ["numpy reference", "compute FP32", "ONNX Runtime CPU", "ONNX Runtime WebGPU"]
    messages = []
    result = run_suite(["squeezenet"], columns=columns, runs=2, warmup=1, progress=messages.append)
    cells = result["models"]["squeezenet1_1"]
    for column in ("numpy reference", "compute FP32", "ONNX Runtime CPU"):
        assert cells[column]["runs"] == 2 and cells[column]["median_ms"] > 0, column
        assert cells[column]["load_s"] is not None
    assert cells["compute FP32"]["pipelines"] > 0
    web = cells["ONNX Runtime WebGPU"]  # installed and on a driver Dawn accepts, or a reason why not
    measured = web["median_ms"] is not None
    assert (not measured and web["status"] != "ok") or (measured and web["status"].startswith("ok"))
    assert any("runs 2-2 of 2" in m for m in messages)  # progress is reported

    text = format_table(result)
    assert result["environment"]["adapter"] in text and "cold start" in text
    if web["median_ms"] is None:
        assert web["status"] in text

    write_json(result, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["models"]["squeezenet1_1"]["compute FP32"]["runs"] == 2
    write_png(result, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_suite_batch_sizes(device):
    partials = []  # what a run cut short after its first model keeps
    result = run_suite(["squeezenet"], columns=["compute FP32"], runs=1, warmup=0, batches=[1, 2],
                       progress=lambda m: None, measured=partials.append)
    assert [p["partial"] for p in partials] == ["1 of 2 models"] and "partial" not in result
    assert list(partials[0]["models"]) == ["squeezenet1_1"]
    assert partials[0]["models"]["squeezenet1_1"]["compute FP32"]["median_ms"] > 0
    one, two = result["models"]["squeezenet1_1"]["compute FP32"], result["models"]["squeezenet1_1@2"]["compute FP32"]
    assert one["batch"] == 1 and two["batch"] == 2 and result["batches"] == [1, 2]
    assert two["images_per_s"] == 2 * 1000 / two["median_ms"]
    assert "/s)" in format_table(result)


def test_suite_int8_columns(device):
    """The INT8 columns run the zoo CNN quantized by ONNX Runtime's quantizer (calibrated on the
    photo wgnn ships), in wgnn and in ONNX Runtime CPU."""
    pytest.importorskip("onnxruntime.quantization")
    pytest.importorskip("PIL")
    result = run_suite(["squeezenet"], columns=["compute INT8", "ONNX Runtime CPU INT8"], runs=1, warmup=0,
                       progress=lambda m: None)
    cells = result["models"]["squeezenet1_1"]
    assert all(cells[c]["median_ms"] > 0 for c in ("compute INT8", "ONNX Runtime CPU INT8")), cells


def test_gpu_targets_are_read_from_what_the_run_wrote(device, tmp_path, capsys):
    """bench/targets.py (the last step of `bash bench/gpu.sh targets`) on the files that step writes:
    a suite JSON, a profile report, the demo's line. Each target gets the ratio of the cells it
    names and a verdict; one whose cells or file are missing is 'not measured', never 'holds'."""
    import numpy as np
    from helpers import bench_script

    from wgnn import zoo
    from wgnn.profiler import profile

    targets = bench_script("targets")

    result = run_suite(["squeezenet"], columns=["compute FP32"], runs=1, warmup=0, progress=lambda m: None)
    measured = result["models"]["squeezenet1_1"]["compute FP32"]
    # the other columns as a GPU run fills them: ORT WebGPU 2x slower than FP32 (a peer's cell names the
    # provider that ran it: another provider's time is no WebGPU figure), INT8 at 1.25x FP32's speed
    peer = dict(measured, median_ms=2 * measured["median_ms"], status="ok (WebGpuExecutionProvider)")
    result["models"]["squeezenet1_1"]["ONNX Runtime WebGPU"] = peer
    result["models"]["mobilenet_v2"] = {"compute FP32": measured,
                                        "ONNX Runtime WebGPU": dict(peer, status="ok (CPUExecutionProvider)")}
    result["models"]["resnet50"] = {"compute FP32": measured,
                                    "compute INT8": dict(measured, median_ms=measured["median_ms"] / 1.25)}
    write_json(result, tmp_path / "bench-targets.json")
    session = __import__("wgnn").InferenceSession(zoo.build("squeezenet1_1"))
    report = profile(session, {"input": np.zeros((1, 3, 224, 224), np.float32)}, runs=1)
    (tmp_path / "profile.txt").write_text(report.table(top=5))
    (tmp_path / "demo.txt").write_text("face headless 640x480 on X: 60 frames, 312.5 FPS end to end (after the first "
                                       "frame)\n")
    rows = {r["target"]: r for r in targets.evaluate(tmp_path)}
    squeeze = rows["squeezenet1_1 batch 1: compute FP32 / ONNX Runtime WebGPU latency"]
    assert squeeze["measured"] == 0.5 and squeeze["holds"] is True
    assert rows["mobilenet_v1 batch 1: compute FP32 / ONNX Runtime WebGPU latency"]["holds"] is None  # not run
    assert rows["mobilenet_v2 batch 1: compute FP32 / ONNX Runtime WebGPU latency"]["holds"] is None  # not on WebGPU
    int8 = rows["resnet50 batch 1: INT8 speed-up over FP32 (FP32 / INT8 latency)"]
    assert int8["holds"] is False and abs(int8["measured"] - 1.25) < 1e-9
    assert rows["resnet50 batch 32: compute FP16 / compute FP32 throughput"]["holds"] is None  # no batch 32 here
    tflops = rows["resnet50 batch 32: convolutions' TFLOP/s in FP32"]
    by_op = report.by_op()
    want = sum(by_op[op][1] for op in targets.CONV_OPS if op in by_op) / 1e9 / \
        sum(by_op[op][0] for op in targets.CONV_OPS if op in by_op)
    assert abs(tflops["measured"] - want) < 0.01 * want + 1e-3 and tflops["holds"] is False  # lavapipe: not 10
    assert rows["face demo headless, 640x480: frames per second end to end"]["measured"] == 312.5
    text = targets.report(targets.evaluate(tmp_path), "env", markdown=True)
    assert "| squeezenet1_1 batch 1: compute FP32 / ONNX Runtime WebGPU latency | 0.5 | 0.7 | holds |" in text
    assert text.endswith("2 of 9 targets hold; 5 not measured")
    assert targets.main([str(tmp_path / "missing")]) == 2
    write_json(dict(result, partial="3 of 8 models"), tmp_path / "bench-targets.json")  # a suite cut short
    capsys.readouterr()
    assert targets.main([str(tmp_path)]) == 0
    assert "(suite cut short after 3 of 8 models)" in capsys.readouterr().out


def test_the_peer_runner_imports_the_peers_own_onnxruntime(tmp_path):
    """The WebGPU peer's script lies in wgnn/ beside wgnn's own ``onnxruntime`` stand-in, which a
    script's folder first on sys.path would import in its place (every ONNX Runtime WebGPU cell then
    an ImportError). Run with this environment's ONNX Runtime (CPU only), it reaches the real module:
    its error is the missing WebGPU provider."""
    import subprocess
    import sys

    from wgnn import zoo
    from wgnn.bench import PEER_SCRIPT

    path = tmp_path / "m.onnx"
    path.write_bytes(zoo.build("squeezenet1_1").SerializeToString())
    done = subprocess.run([sys.executable, str(PEER_SCRIPT), "ort-webgpu", str(path), "1", "0"],
                          capture_output=True, text=True, timeout=300)
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert "WebGpuExecutionProvider missing" in line.get("error", ""), line


def test_the_peer_runner_says_which_nodes_onnx_runtime_ran_on_its_cpu_provider():
    """ONNX Runtime's WebGPU provider hands the ops it has no kernel for (DynamicQuantizeLSTM, ...)
    to its CPU provider, so its column times host work too: the peer runner reads which nodes went
    where from the session's verbose log. A model it ran wholly on one provider lists none."""
    from wgnn.peer_runner import placements

    tag = "[V:onnxruntime:, session_state.cc:1355 VerifyEachNodeIsAssignedToAnEp]"
    log = "\n".join([
        "2026-12-05 08:15:15.45 [V:onnxruntime:, session_state.cc:1347 VerifyEachNodeIsAssignedToAnEp] Node placements",
        f"2026-12-05 08:15:15.45 {tag}  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 3",
        f"2026-12-05 08:15:15.45 {tag}   DynamicQuantizeLSTM (node_LSTM_67_quant)",
        f"2026-12-05 08:15:15.45 {tag}   Slice (node_Slice_76)",
        f"2026-12-05 08:15:15.45 {tag}   Slice (node_Slice_77)",
        f"2026-12-05 08:15:15.45 {tag}  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 2",
        f"2026-12-05 08:15:15.45 {tag}   Shape (node_Shape_0)", f"2026-12-05 08:15:15.45 {tag}   Transpose (t)",
        "2026-12-05 08:15:15.46 [V:onnxruntime:, session_state.cc:1400 SaveInitializedTensors] Saving tensors.",
        "   Conv (not a placement)"])
    assert placements(log) == {"CPUExecutionProvider": {"DynamicQuantizeLSTM": 1, "Slice": 2},
                               "WebGpuExecutionProvider": {"Shape": 1, "Transpose": 1}}
    whole = f"2026-12-05 08:16:04.27 {tag}  All nodes placed on [WebGpuExecutionProvider]. Number of nodes: 59"
    assert placements(whole) == {}


# A stand-in for wonnx's Python module with its API (flat lists in and out), computing with ONNX
# Runtime CPU, or wrongly (WRONG set): what the suite does with a peer's outputs, without wonnx.
FAKE_WONNX = '''
import os
import numpy as np
import onnxruntime as ort


class Session:
    @staticmethod
    def from_path(path):
        session = Session()
        session.ort = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session

    def run(self, feeds):
        shaped = {i.name: np.asarray(feeds[i.name], np.float32).reshape(i.shape) for i in self.ort.get_inputs()}
        names = [o.name for o in self.ort.get_outputs()]
        outs = self.ort.run(None, shaped)
        if os.environ.get("WRONG"):
            outs = [o[..., ::-1] for o in outs]
        return {n: o.reshape(-1).tolist() for n, o in zip(names, outs)}
'''


@pytest.mark.parametrize("wrong", [False, True])
def test_a_peers_outputs_are_checked_against_onnx_runtime_cpu(device, tmp_path, monkeypatch, wrong):
    """The wonnx column runs the same feeds as wgnn's columns in its own process and writes its
    first run's outputs (flat, as wonnx gives them); the suite says whether they agree with ONNX
    Runtime CPU's, in the JSON and the table, rather than timing a peer that computes something else."""
    import sys

    (tmp_path / "wonnx.py").write_text(FAKE_WONNX)
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={tmp_path} exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    monkeypatch.setenv("WGNN_PEER_WONNX", str(python))
    if wrong:
        monkeypatch.setenv("WRONG", "1")
    result = run_suite(["mobilenet_v1"], columns=["wonnx"], runs=1, warmup=0, progress=lambda m: None)
    cell = result["models"]["mobilenet_v1"]["wonnx"]
    assert cell["status"] == "ok (wonnx)" and cell["runs"] == 1
    verdict = "differs from" if wrong else "agrees with"
    assert cell["check"].startswith(f"{verdict} ONNX Runtime CPU: max |diff|"), cell["check"]
    assert f"mobilenet_v1 / wonnx: {verdict}" in format_table(result)


def test_the_model_wonnx_reads_computes_the_same(tmp_path):
    """wonnx refuses symbolic dimensions, reads intermediates' shapes from the file and takes a Gemm's
    B as K x N only: the zoo model it is given has its batch fixed, every shape inferred and the
    classifier's weights stored transposed, and computes what the zoo model computes."""
    import numpy as np
    import onnxruntime as ort
    from onnx import numpy_helper

    from wgnn import zoo
    from wgnn.bench import _for_peer

    model = zoo.build("mobilenet_v1")
    fixed = _for_peer(model, "wonnx", batch=2)
    dims = [d for v in list(fixed.graph.input) + list(fixed.graph.output) for d in v.type.tensor_type.shape.dim]
    assert dims[0].dim_value == 2 and not any(d.dim_param for d in dims)
    outputs = {o for node in fixed.graph.node for o in node.output} - {o.name for o in fixed.graph.output}
    assert outputs <= {v.name for v in fixed.graph.value_info}
    (gemm,) = [n for n in fixed.graph.node if n.op_type == "Gemm"]
    assert [a.i for a in gemm.attribute if a.name == "transB"] == [0]
    before = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    after = {t.name: numpy_helper.to_array(t) for t in fixed.graph.initializer}
    assert np.array_equal(after[gemm.input[1]], before[gemm.input[1]].T)
    x = {"input": np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)}
    want = ort.InferenceSession(model.SerializeToString()).run(None, x)[0]
    got = ort.InferenceSession(fixed.SerializeToString()).run(None, x)[0]
    np.testing.assert_array_equal(got, want)
    assert _for_peer(model, "ort-webgpu").graph.node[-1] == model.graph.node[-1]  # others: the batch only


def test_settle_waits_while_a_thread_of_this_process_spins():
    """Between columns the suite waits until the process is idle: a thread that spins on (as ONNX
    Runtime's pool does after a run, by default) holds it until the thread stops, and an idle
    process passes at once."""
    import threading
    import time

    from wgnn.bench import settle

    stop = time.perf_counter() + 0.3

    def spin():
        while time.perf_counter() < stop:
            pass

    thread = threading.Thread(target=spin)
    thread.start()
    settle(limit_s=5.0)
    assert time.perf_counter() >= stop - 0.02  # (it waited out the spinning)
    thread.join()
    start = time.perf_counter()
    settle(limit_s=5.0)
    assert time.perf_counter() - start < 2.0
