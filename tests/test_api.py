"""The public surface: loading forms, descriptions, GPU-resident results, the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import rel_l2

import wgnn
from wgnn import cli, zoo


def test_load_forms_and_descriptions(device, tmp_path):
    model = zoo.build("squeezenet1_1", classes=16)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    x = zoo.random_input(0)
    results = [wgnn.InferenceSession(m).run(None, {"input": x})[0]
               for m in (model, model.SerializeToString(), str(path), path)]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    session = wgnn.InferenceSession(path)
    # the batch is symbolic in the zoo models: listed by name, as ONNX Runtime lists it
    assert session.get_inputs() == [wgnn.NodeArg("input", ["batch", 3, 224, 224], "tensor(float)")]
    assert session.get_outputs() == [wgnn.NodeArg("output", [1, 16], "tensor(float)")]
    assert session.pipeline_count <= 10 < session.dispatch_count


def test_a_builder_graph_leaves_the_callers_arrays_as_they_were(device, rng):
    """Compiling a GraphBuilder graph (its batch norm folded into the convolution, its weights
    packed) neither changes the caller's arrays nor makes them read-only: they stay the caller's."""
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    mean, var = rng.standard_normal(8).astype(np.float32), rng.uniform(0.5, 2, 8).astype(np.float32)
    fc = rng.standard_normal((288, 5)).astype(np.float32)
    kept = [a.copy() for a in (w, mean, var, fc)]
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 4, 6, 6))
    y = b.batch_normalization(b.conv2d(x, b.constant(w), padding=(1, 1, 1, 1)), b.constant(mean), b.constant(var))
    for precision in ("fp32", "fp16"):
        session = b.build({"y": b.matmul(b.reshape(y, (1, 288)), b.constant(fc))}, precision=precision)
        session.compute({"x": np.ones((1, 4, 6, 6), np.float32)})
    for array, before in zip((w, mean, var, fc), kept):
        assert array.flags.writeable and np.array_equal(array, before)


def test_results_stay_on_gpu_between_sessions(device, rng):
    b1 = wgnn.GraphBuilder()
    x = b1.input("x", (1, 8, 6, 6))
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    first = b1.build({"y": b1.conv2d(x, b1.constant(w), padding=(1, 1, 1, 1))})
    b2 = wgnn.GraphBuilder()
    second = b2.build({"z": b2.sigmoid(b2.input("y", (1, 8, 6, 6)))})

    data = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    on_gpu = first.run_on_gpu({"x": data})["y"]
    assert isinstance(on_gpu, wgnn.GPUTensor) and on_gpu.shape == (1, 8, 6, 6)
    kept = on_gpu.clone()
    chained = second.compute({"y": on_gpu})["z"]
    host = first.compute({"x": data})["y"]
    np.testing.assert_allclose(on_gpu.numpy(), host, rtol=1e-6)
    np.testing.assert_allclose(chained, 1 / (1 + np.exp(-host)), rtol=1e-5)
    first.run_on_gpu({"x": np.zeros_like(data)})  # overwrites on_gpu, not the clone
    np.testing.assert_allclose(kept.numpy(), host, rtol=1e-6)
    assert rel_l2(on_gpu.numpy(), np.zeros_like(host)) == 0


def test_forgotten_pipelines_leave_live_sessions_whole(device, rng):
    """``Device.forget_pipelines`` drops the cache (``wgnn fuzz --graphs`` does every 500 graphs: about
    2 MB a pipeline on lavapipe): a session that made its pipelines keeps them, a session whose plan
    makes them at its first run (symbolic sizes) makes them then with the layouts its bind groups
    were made with, and a new session makes its own again; every result the numpy reference's."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = rng.standard_normal((24, 40)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 24])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 40])],
                              [numpy_helper.from_array(w, "w")])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    fresh = wgnn.Device(device.adapter)
    made = wgnn.InferenceSession(data, device=fresh)
    x = rng.standard_normal((5, 24)).astype(np.float32)
    made.run(None, {"x": x})
    deferred = wgnn.InferenceSession(data, device=fresh)
    assert deferred._exe.deferred and fresh.forget_pipelines() > 0 and fresh.pipeline_count == 0
    for session in (made, deferred, wgnn.InferenceSession(data, device=fresh)):
        for rows in (5, 1):
            (got,) = session.run(None, {"x": x[:rows]})
            np.testing.assert_allclose(got, np.maximum(x[:rows] @ w, 0), rtol=1e-5, atol=1e-5)
    assert fresh.pipeline_count > 0


def test_pipelines_are_shared_across_shapes(device, rng):
    def session(size):
        b = wgnn.GraphBuilder()
        x = b.input("x", (1, 8, size, size))
        return b.build({"y": b.conv2d(x, b.constant(np.ones((8, 8, 3, 3), np.float32)), activation="relu")})

    before = device.pipeline_count
    session(17)  # (both with 16 or more 4x4 tiles: F(4x4, 3x3) on the software adapter)
    after_first = device.pipeline_count
    session(29)
    assert device.pipeline_count == after_first >= before


def test_cli_run_info_bench(device, tmp_path, capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "adapter" in out and "kernel policy: the defaults for a cpu adapter" in out  # (the tests set cpu)
    assert cli.main(["info", "--ops"]) == 0
    assert "Conv" in capsys.readouterr().out.split()
    assert cli.main(["run", "squeezenet", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "relative L2 error" in out and "(ok" in out and "latency: median" in out
    result = tmp_path / "bench.json"
    assert cli.main(["bench", "squeezenet", "--runs", "2", "--warmup", "1", "--json", str(result)]) == 0
    data = json.loads(result.read_text())
    assert data["median_ms"] > 0 and data["adapter"] == device.name


def test_cli_run_feeds_each_input_its_own_dtype(device, tmp_path, capsys):
    """``wgnn run`` without --input: random data for float inputs in their own float type (float16
    too), zeros for integer ones (indices that are valid for any table)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
             helper.make_node("Mul", ["h", "h"], ["square"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [3]),
                                           helper.make_tensor_value_info("h", TensorProto.FLOAT16, [2, 3])],
                              [helper.make_tensor_value_info(n, t, None) for n, t in (("rows", TensorProto.FLOAT),
                                                                                      ("square", TensorProto.FLOAT16))],
                              [numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "table")])
    path = tmp_path / "mixed.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    assert cli.main(["run", str(path), "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("(ok") == 2 and "output rows: shape (3, 3), min 0, max 2" in out


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    assert cli.main(["run", str(bad)]) == 2
    assert "wgnn: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["run", "no_such_model"])


def test_quickstart_demo_runs(device, capsys):
    import runpy
    from pathlib import Path

    runpy.run_path(str(Path(__file__).parents[1] / "demos" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "features max abs error against numpy" in out and "sum 1.0000" in out


def test_cli_kernels_and_tune(device, capsys):
    assert cli.main(["profile", "squeezenet", "--runs", "1", "--top", "40", "--kernels", "conv2d=gemm:2"]) == 0
    out = capsys.readouterr().out
    assert "gemm x2 wg64" in out and "conv2d_gemm" in out
    assert cli.main(["tune", "squeezenet", "--seconds", "1", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    measured, skipped = re.search(r"measured (\d+) node signatures .*, (\d+) left at the defaults", out).groups()
    assert int(measured) >= 1 and int(skipped) >= 1  # the time ran out: bounded
    with pytest.raises(SystemExit, match="kernels"):
        cli.main(["run", "squeezenet", "--kernels", "conv2d"])


def test_onnx_runtime_conventions(device, rng, capsys):
    """What ONNX Runtime scripts rely on: run([]) returns every output, get_providers(), np.asarray
    of a GPU tensor, wgnn --version."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 3))
    session = b.build({"y": b.relu(x), "z": b.sigmoid(x)})
    feeds = {"x": rng.standard_normal((2, 3)).astype(np.float32)}
    every, none = session.run([], feeds), session.run(None, feeds)
    assert len(every) == len(none) == 2 and all(np.array_equal(a, c) for a, c in zip(every, none))
    assert session.get_providers() == ["WebGpuExecutionProvider"]
    on_gpu = session.run_on_gpu(feeds)["y"]
    assert np.array_equal(np.asarray(on_gpu), np.maximum(feeds["x"], 0))
    assert np.asarray(on_gpu, dtype=np.float64).dtype == np.float64
    assert "shape=(2, 3)" in repr(on_gpu) and "float32" in repr(on_gpu)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.startswith(f"wgnn {wgnn.__version__}")


def test_submitting_in_chunks_gives_the_same_results(device, monkeypatch):
    """$WGNN_SUBMIT_CHUNK=N submits every N dispatches as they are encoded (a GPU experiment), and
    runs after the first encode straight through wgpu-native: the results do not change."""
    model = zoo.build("squeezenet1_1", softmax=False, classes=8)
    x = zoo.random_input(5)
    session = wgnn.InferenceSession(model)
    exe = session._exe
    assert exe.handles == []
    want = session.run(None, {"input": x})[0]  # through wgpu-py
    assert len(exe.handles) == len(exe.dispatches)
    np.testing.assert_array_equal(session.run(None, {"input": x})[0], want)  # through wgpu-native
    for chunk in ("1", "7"):
        monkeypatch.setenv("WGNN_SUBMIT_CHUNK", chunk)
        np.testing.assert_array_equal(session.run(None, {"input": x})[0], want)
    other = zoo.random_input(6)
    assert not np.array_equal(session.run(None, {"input": other})[0], want)  # (it does compute)


def test_read_back_maps_on_the_calling_thread(device, monkeypatch):
    """Outputs are read back through wgpu-native's map on the calling thread (``runtime._NATIVE_MAP``,
    no empty submit first, no hand-off to wgpu-py's poll thread): the same bytes as wgpu-py's
    map_sync, the buffer left unmapped for either, and a map on a destroyed device raises an error
    that the device names as lost."""
    from wgnn import runtime

    assert runtime._NATIVE_MAP is not None  # wgpu-py runs on wgpu-native
    model = zoo.build("squeezenet1_1", softmax=False, classes=8)
    x = zoo.random_input(7)
    own = wgnn.Device()
    session = wgnn.InferenceSession(model, device=own)
    got = session.run(None, {"input": x})[0]
    assert session._exe.readback.map_state == "unmapped"
    monkeypatch.setattr(runtime, "_NATIVE_MAP", None)  # wgpu-py's map_sync
    np.testing.assert_array_equal(session.run(None, {"input": x})[0], got)
    monkeypatch.undo()
    np.testing.assert_array_equal(session.run(None, {"input": x})[0], got)
    exe = session._exe
    enc = own.device.create_command_encoder()
    exe.write_inputs(enc, {"input": x})
    exe.encode(enc)
    exe.copy_outputs(enc)
    own.queue.submit([enc.finish()])
    own.device.destroy()
    with pytest.raises(Exception) as raised:
        own.read_mapped(exe.readback)
    assert isinstance(own.gpu_error(raised.value, "reading"), wgnn.DeviceLostError) and own.lost


def test_cli_profiles_benches_and_tunes_at_the_shapes_of_given_inputs(device, tmp_path, capsys, rng):
    """A model with a symbolic width: ``--input`` gives the shapes ``profile``, ``bench MODEL`` and
    ``tune`` run at (without it, 1); the suite refuses it."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(rng.standard_normal((8, 4, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, "width"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, "half"])], [w])
    model = tmp_path / "wide.onnx"
    model.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    np.save(tmp_path / "x.npy", rng.standard_normal((1, 4, 8, 40)).astype(np.float32))
    assert cli.main(["profile", str(model), "--runs", "1", "--input", str(tmp_path / "x.npy")]) == 0
    assert "1x4x8x40 -> 1x8x4x20" in capsys.readouterr().out
    assert cli.main(["bench", str(model), "--runs", "1", "--warmup", "0", "--input", str(tmp_path / "x.npy")]) == 0
    assert "median" in capsys.readouterr().out
    assert cli.main(["tune", str(model), "--seconds", "1", "--runs", "1", "--input", str(tmp_path / "x.npy")]) == 0
    assert "[1, 4, 8, 40]" in capsys.readouterr().out  # the signature measured is at width 40
    with pytest.raises(SystemExit, match="--input applies to one model"):
        cli.main(["bench", "--input", str(tmp_path / "x.npy")])


def test_quick_type_parsing_gives_cffis_own_types():
    """runtime._quick_type_parsing: wgpu-py's C type strings parse, with only the typedefs they name
    declared in front, to what cffi's full parse gives (pointers to structs, arrays, primitives,
    callbacks with const pointers), and it is installed on this cffi."""
    from wgnn import runtime

    assert runtime.WGPU_NATIVE is not None and runtime.QUICK_TYPES
    parser = runtime.WGPU_NATIVE[0]._parser
    full = type(parser).parse_type_and_quals
    for cdecl in ("WGPUBindGroupEntry[]", "WGPUBufferDescriptor *", "WGPUChainedStruct * ", "char []", "intptr_t",
                  "uint32_t []", "uint8_t *", "WGPUFeatureName[]", "WGPUStringView *", "WGPUBindGroupLayout[]",
                  "void(WGPUDevice const *, WGPUErrorType, WGPUStringView, void *, void *)",
                  "void(WGPURequestAdapterStatus, WGPUAdapter, WGPUStringView, void *, void *)"):
        (want, want_quals), (got, got_quals) = full(parser, cdecl), parser.parse_type_and_quals(cdecl)
        assert (got.get_c_name(), got_quals) == (want.get_c_name(), want_quals), cdecl
    assert any(k.startswith("typedef ") for k in parser._declarations)  # (the full set is back after each)
    # what a parse declares (a struct it meets first) stays declared: the same type the next time
    first = parser.parse_type_and_quals("struct wgnn_quick_probe *")[0]
    assert "struct wgnn_quick_probe" in parser._declarations
    assert parser.parse_type_and_quals("struct wgnn_quick_probe *")[0].totype is first.totype


def test_tflite_and_built_graphs_do_not_import_onnx_or_ml_dtypes(device):
    """``import wgnn`` and ``wgnn.zoo`` leave the onnx package and ml_dtypes unimported (ml_dtypes
    0.7 takes about 0.5 s to import on numpy 2; a TFLite model or a built graph never needs either),
    and a built graph with an int4 tensor imports ml_dtypes itself, so numpy knows the type."""
    import subprocess
    import sys

    script = """
import sys
import numpy as np
import wgnn, wgnn.zoo
assert "onnx" not in sys.modules and "ml_dtypes" not in sys.modules, "imported early"
b = wgnn.GraphBuilder()
x = b.input("x", (6,))
y = b.cast(b.cast(x, "int4"), "float32")
assert "ml_dtypes" in sys.modules and "onnx" not in sys.modules
x = np.array([-9, -8, -1.5, 0, 6.7, 7], np.float32)
got = wgnn.InferenceSession(b.build_graph({"y": y})).run(None, {"x": x})[0]
print(got.tolist())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "[0.0, -8.0, -1.0, 0.0, 6.0, 7.0]", out.stdout


def test_a_sample_whose_file_is_missing_names_the_package_that_ships_it(monkeypatch, tmp_path):
    """``wgnn.samples`` makes real inputs from files Debian packages ship; where one is missing it
    says which package ships it, and the tests skip on that."""
    from wgnn import samples

    monkeypatch.setattr(samples, "SOUNDS", tmp_path)
    monkeypatch.setattr(samples, "APT_ARABIC", tmp_path / "apt.mo")
    with pytest.raises(FileNotFoundError, match="alsa-utils"):
        samples.recording("Front_Center", 16000)
    with pytest.raises(FileNotFoundError, match="package apt ships"):
        samples.arabic_sentences(1)
