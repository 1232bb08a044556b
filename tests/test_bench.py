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
    result = run_suite(["squeezenet"], columns=["compute FP32"], runs=1, warmup=0, batches=[1, 2],
                       progress=lambda m: None)
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
