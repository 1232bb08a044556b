"""wgnn as a drop-in for ONNX Runtime scripts: the API as they use it, symbolic dimensions, threads
and a wgpu device opened elsewhere."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_shared_after, plan_weights, rel_l2

import wgnn
from wgnn import zoo

ROOT = Path(__file__).resolve().parent.parent

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def ort_style_script(rt, model_bytes: bytes, batches: list[np.ndarray]) -> dict:
    """What a user's ONNX Runtime script does, written once against the module ``rt``."""
    options = rt.SessionOptions()
    options.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 2
    rt.set_default_logger_severity(3)
    # the GPU provider where the runtime has it, as scripts pick one (wgnn: WebGPU; this onnxruntime: CPU)
    providers = [p for p in ("WebGpuExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
                 if p in rt.get_available_providers()]
    session = rt.InferenceSession(model_bytes, options, providers=providers)
    inp = session.get_inputs()[0]
    outs = [o.name for o in session.get_outputs()]
    found = {"input": (inp.name, list(inp.shape), inp.type), "outputs": outs,
             "meta": (session.get_modelmeta().producer_name, session.get_modelmeta().graph_name,
                      session.get_modelmeta().custom_metadata_map)}
    for x in batches:  # one session, several batch sizes
        found[f"all@{len(x)}"] = session.run(None, {inp.name: x})
        found[f"empty@{len(x)}"] = session.run([], {inp.name: x})
        found[f"subset@{len(x)}"] = session.run(outs[:1], {inp.name: x})
    # OrtValues: on the host, and on the runtime's device where it has one ("cuda" is ONNX Runtime's
    # name for a GPU; wgnn takes any device type but "cpu" for its own), through run_with_ort_values
    # and an IOBinding
    device_type = "cuda" if rt is not ort else "cpu"
    x0 = rt.OrtValue.ortvalue_from_numpy(batches[0].copy(), device_type, 0)  # (a host one refers to the array)
    found["ortvalue"] = (x0.shape(), x0.data_type(), x0.is_tensor(), x0.has_value())
    found[f"ortvalues@{len(batches[0])}"] = [v.numpy() for v in session.run_with_ort_values(None, {inp.name: x0})]
    found[f"run_ortvalue@{len(batches[0])}"] = session.run(None, {inp.name: x0})
    binding = session.io_binding()
    binding.bind_ortvalue_input(inp.name, x0)
    binding.bind_output(outs[0])
    session.run_with_iobinding(binding)
    found[f"iobinding@{len(batches[0])}"] = binding.copy_outputs_to_cpu()
    x0.update_inplace(batches[0] * 2)
    found[f"updated@{len(batches[0])}"] = [v.numpy() for v in session.run_with_ort_values(None, {inp.name: x0})]
    found["providers"] = session.get_providers()
    session.disable_fallback()
    session.set_providers(providers)
    found["overridable"], found["profile file"] = session.get_overridable_initializers(), session.end_profiling()
    done, box = threading.Event(), {}

    def callback(outputs, user_data, err):
        box.update(outputs=outputs, user_data=user_data, err=err, thread=threading.current_thread())
        done.set()

    session.run_async(None, {inp.name: batches[0]}, callback, "mine")
    assert done.wait(120)
    found[f"async@{len(batches[0])}"] = box["outputs"]
    found["async"] = (box["user_data"], box["err"], box["thread"] is not threading.current_thread())
    try:
        session.run_async(None, {"not an input": batches[0]}, callback, "mine")
    except ValueError:  # ONNX Runtime's and wgnn's (InputError) before anything runs
        found["bad feed"] = "raised"
    return found


def test_the_same_ort_script_runs_on_wgnn(device):
    model = zoo.build("squeezenet1_1", softmax=False, classes=16)
    model.producer_name = "wgnn-tests"
    helper.set_model_props(model, {"labels": "sixteen classes"})
    data = model.SerializeToString()
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((n, 3, 224, 224)).astype(np.float32) for n in (1, 4)]
    want = ort_style_script(ort, data, batches)
    got = ort_style_script(wgnn, data, batches)
    assert got["input"] == want["input"] == ("input", ["batch", 3, 224, 224], "tensor(float)")
    assert got["outputs"] == want["outputs"] and got["meta"] == want["meta"]
    for key in ("overridable", "profile file", "async", "bad feed", "ortvalue"):
        assert got[key] == want[key], key
    assert got["async"] == ("mine", "", True)
    for key in want:
        if "@" in key:
            assert len(got[key]) == len(want[key]), key
            for g, w in zip(got[key], want[key]):
                assert g.shape == w.shape and rel_l2(g, w) < 1e-4, key
    assert got["providers"] == ["WebGpuExecutionProvider"] and wgnn.get_device() == "GPU"


def test_providers_and_options_that_cannot_be_honoured(device):
    model = zoo.build("squeezenet1_1", softmax=False, classes=8)
    with pytest.raises(wgnn.ConfigError, match="wgnn is a WebGPU execution provider"):
        wgnn.InferenceSession(model, providers=["CUDAExecutionProvider"])
    with pytest.raises(wgnn.ConfigError, match="cannot run \\['TensorrtExecutionProvider'\\]"):
        wgnn.InferenceSession(model, providers=["WebGpuExecutionProvider", "TensorrtExecutionProvider"])
    options = ort.SessionOptions()
    options.enable_profiling = True
    with pytest.raises(wgnn.ConfigError, match="wgnn profile"):
        wgnn.InferenceSession(model, options, providers=["WebGpuExecutionProvider"])
    with pytest.warns(UserWarning, match="preferredLayout"):
        wgnn.InferenceSession(model, providers=[("WebGpuExecutionProvider", {"preferredLayout": "NHWC"})])
    session = wgnn.InferenceSession(model)
    with pytest.raises(wgnn.ConfigError, match="wgnn is a WebGPU execution provider"):
        session.set_providers(["CUDAExecutionProvider"])
    # run_async: a feed of the wrong dtype fails on the worker thread, and the callback says why
    done, box = threading.Event(), {}
    session.run_async(None, {"input": np.zeros((1, 3, 224, 224))}, lambda o, d, e: (box.update(o=o, e=e), done.set()))
    assert done.wait(60) and box["o"] == [] and box["e"].startswith("InputError") and "float32" in box["e"]
    off = ort.SessionOptions()
    off.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert not wgnn.InferenceSession(model, off).pass_log.get("fuse_activation")
    assert wgnn.InferenceSession(model, wgnn.SessionOptions()).pass_log.get("fuse_activation")


def test_session_and_run_options_that_packages_set(device):
    """What scripts call on ONNX Runtime's options, answered as it answers: config entries kept (a
    missing one is ONNX Runtime's RuntimeError, word for word), the memory and thread switches
    accepted, a custom-operator library refused with the reason; symbolic dimensions fixed by name
    pin the inputs whose every symbolic dimension is named, compiled once at load."""
    ours, theirs = wgnn.SessionOptions(), ort.SessionOptions()
    for options in (ours, theirs):
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_mem_pattern = options.enable_cpu_mem_arena = False
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    messages = []  # (wgnn's, then ONNX Runtime's)
    for options, run in ((ours, wgnn.RunOptions()), (theirs, ort.RunOptions())):
        run.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        assert run.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"
        assert run.logid == "" and run.only_execute_path_to_fetches is False
        for getter in (options.get_session_config_entry, run.get_run_config_entry):
            with pytest.raises(RuntimeError) as caught:
                getter("nope")
            messages.append(str(caught.value))
    assert messages[:2] == messages[2:]
    with pytest.raises(wgnn.ConfigError, match="custom operators"):
        ours.register_custom_ops_library("libortextensions.so")

    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 4])],
                              [numpy_helper.from_array(np.arange(32, dtype=np.float32).reshape(8, 4), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    options = wgnn.SessionOptions()
    options.add_free_dimension_override_by_name("batch", 2)
    assert wgnn.InferenceSession(model, options).get_inputs()[0].shape == ["batch", "seq", 8]  # (seq unnamed)
    options.add_free_dimension_override_by_name("seq", 5)
    session = wgnn.InferenceSession(model, options)
    assert session.get_inputs()[0].shape == [2, 5, 8] and session.plans_compiled == 1
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ np.arange(32, dtype=np.float32).reshape(8, 4),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(wgnn.InputError, match="expected shape"):
        session.run(None, {"x": np.zeros((2, 6, 8), np.float32)})
    with pytest.raises(wgnn.ConfigError, match="whole number"):
        options.add_free_dimension_override_by_name("seq", 2.5)
    binding = session.io_binding()
    binding.bind_cpu_input("x", x)
    binding.synchronize_inputs()
    session.run_with_iobinding(binding)
    binding.synchronize_outputs()
    assert binding.copy_outputs_to_cpu()[0].shape == (2, 5, 4)


def test_execution_provider_devices_as_onnx_runtime_lists_them(device):
    """ONNX Runtime's device API (1.22 on): ``get_ep_devices`` lists the WebGPU provider on each
    adapter that runs compute shaders, described as ONNX Runtime describes a device;
    ``add_provider_for_devices`` makes sessions without ``providers`` run there; the selection
    policy is accepted; devices of two providers are refused."""
    devices = wgnn.get_ep_devices()
    assert devices and all(d.ep_name == "WebGpuExecutionProvider" for d in devices)
    first = devices[0]
    assert all(d.device.type in (wgnn.OrtHardwareDeviceType.CPU, wgnn.OrtHardwareDeviceType.GPU) for d in devices)
    assert device.adapter.info["vendor_id"] in {d.device.vendor_id for d in devices}  # (the default adapter's)
    assert set(first.ep_options) == {"deviceId"} and first.ep_metadata["version"] == wgnn.__version__
    options = wgnn.SessionOptions()
    assert not options.has_providers()
    options.add_provider_for_devices([first], {})
    options.set_provider_selection_policy(wgnn.OrtExecutionProviderDevicePolicy.PREFER_GPU)
    assert options.has_providers()
    model = zoo.build("squeezenet1_1", softmax=False, classes=8)
    session = wgnn.InferenceSession(model, options)
    chosen = wgnn.list_adapters()[int(first.ep_options["deviceId"])]
    assert session.adapter_name.startswith(chosen.info["device"])
    x = zoo.random_input(4)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    assert rel_l2(session.run(None, {"input": x})[0], want[0]) < 1e-4
    cpu = ort.get_ep_devices()[0]  # (ONNX Runtime's CPU provider's device)
    with pytest.raises(wgnn.ConfigError, match="one execution provider"):
        options.add_provider_for_devices([first, cpu], {})


def _const(name, value):
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def _detector(rng) -> onnx.ModelProto:
    """Detector-like: symbolic N, H and W; a strided convolution, an upsampling back to H x W and a
    per-pixel score, as a text detector's probability map."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["c2", "", "scales"], ["up"], mode="linear"),
             helper.make_node("Sigmoid", ["up"], ["prob"])]
    inits = [_const("w1", rng.normal(0, 0.3, (8, 3, 3, 3))), _const("b1", rng.normal(0, 0.1, 8)),
             _const("w2", rng.normal(0, 0.3, (1, 8, 3, 3))), _const("b2", rng.normal(0, 0.1, 1)),
             _const("scales", [1, 1, 2, 2])]
    graph = helper.make_graph(nodes, "detector", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _recognizer(rng) -> onnx.ModelProto:
    """Recognizer-like: a text line of fixed height and symbolic width; convolutions, pooling the
    height away, then per column a classifier over characters and a softmax (as CRNN/CTC heads)."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("ReduceMean", ["p1", "axes"], ["m"], keepdims=0),  # [1, C, W/2]
             helper.make_node("Transpose", ["m"], ["t"], perm=[0, 2, 1]),  # [1, W/2, C]
             helper.make_node("MatMul", ["t", "fc"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["chars"], axis=-1)]
    inits = [_const("w1", rng.normal(0, 0.3, (12, 3, 3, 3))), _const("b1", rng.normal(0, 0.1, 12)),
             numpy_helper.from_array(np.array([2], np.int64), "axes"), _const("fc", rng.normal(0, 0.3, (12, 20)))]
    graph = helper.make_graph(nodes, "recognizer", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  [1, 3, 32, "width"])],
                              [helper.make_tensor_value_info("chars", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("kind,shapes", [
    ("detector", [(1, 3, 32, 48), (2, 3, 40, 24), (1, 3, 32, 48), (1, 3, 64, 64)]),
    ("recognizer", [(1, 3, 32, 100), (1, 3, 32, 36), (1, 3, 32, 320)]),
])
def test_symbolic_dimensions_compile_per_shape(device, kind, shapes):
    rng = np.random.default_rng(1)
    model = (_detector if kind == "detector" else _recognizer)(rng)
    data = model.SerializeToString()
    session = wgnn.InferenceSession(data)
    reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == reference.get_inputs()[0].shape
    for shape in shapes:
        x = rng.uniform(0, 1, shape).astype(np.float32)
        (got,) = session.run(None, {"x": x})
        (want,) = reference.run(None, {"x": x})
        assert got.shape == want.shape and rel_l2(got, want) < 1e-4, shape
    # one plan per shape (and the one compiled at load for sizes of 1, where those fit the model);
    # a shape seen before reuses its plan
    compiled = session.plans_compiled
    assert len(set(shapes)) <= compiled <= len(set(shapes)) + 1
    session.run(None, {"x": rng.uniform(0, 1, shapes[0]).astype(np.float32)})
    assert session.plans_compiled == compiled
    # A dimension the model fixes is still checked.
    with pytest.raises(wgnn.InputError, match="expected shape"):
        session.run(None, {"x": np.zeros((1, 4, 32, 32), np.float32)})


def test_the_plan_at_placeholder_sizes_makes_its_pipelines_when_it_runs(device):
    """The plan a session with symbolic dimensions compiles when it loads (at sizes of 1) is the
    plan of its first run only where that run is at those sizes: its pipelines (a shader compile
    each) are made by its own first run, not at load. Run at those sizes, it computes as the plans
    of other sizes do, with the layouts its bind groups were made with."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("Softmax", ["r"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "tokens", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 24])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 40])],
                              [numpy_helper.from_array(rng.standard_normal((24, 40)).astype(np.float32), "w"),
                               numpy_helper.from_array(rng.standard_normal(40).astype(np.float32), "b")])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    fresh = wgnn.Device(device.adapter)  # (a device of its own: no pipeline made by another test)
    session = wgnn.InferenceSession(data, device=fresh)
    reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert fresh.pipeline_count == 0 and session._exe.deferred
    for shape in [(7, 24), (1, 24), (12, 24)]:  # (a size of 1: the plan made at load)
        x = rng.uniform(0, 1, shape).astype(np.float32)
        (got,) = session.run(None, {"x": x})
        (want,) = reference.run(None, {"x": x})
        assert got.shape == want.shape and rel_l2(got, want) < 1e-4, shape
    assert session.plans_compiled == 3 and not session._exe.deferred
    assert fresh.pipeline_count == len(set().union(*(plan["_exe"].pipelines for plan in session._plans.values())))


def test_a_later_plans_graph_as_imported_is_imported_again_when_asked(device):
    """Only the plan a session compiles first keeps a copy of its graph as imported: a later plan
    (another shape) imports it again when ``source_graph`` or ``run_reference`` asks, for its own
    shape, and keeps it from then on; the first plan's stays as it was. ``run_reference`` at another
    shape than the current plan's (or on a session that has not run) runs that shape's graph."""
    rng = np.random.default_rng(4)
    session = wgnn.InferenceSession(_recognizer(rng).SerializeToString())
    wide, narrow = (rng.uniform(0, 1, (1, 3, 32, w)).astype(np.float32) for w in (40, 24))
    session.run(None, {"x": wide})
    first = session.source_graph
    assert first is not None and first.inputs["x"].shape == wide.shape
    (got,) = session.run(None, {"x": narrow})
    assert session._source_graph is None  # (not imported again until asked)
    kept = session.source_graph
    assert kept.inputs["x"].shape == narrow.shape
    assert session.source_graph is kept and session._plans[session._key]["_source_graph"] is kept
    np.testing.assert_allclose(session.run_reference({"x": narrow})["chars"], got, rtol=1e-4, atol=1e-5)
    (got_wide,) = session.run(None, {"x": wide})
    assert session.source_graph is first
    # run_reference at a shape other than the current plan's, and before any run: that shape's plan
    np.testing.assert_allclose(session.run_reference({"x": narrow})["chars"], got, rtol=1e-4, atol=1e-5)
    assert session.source_graph is kept
    fresh = wgnn.InferenceSession(_recognizer(np.random.default_rng(4)).SerializeToString())
    np.testing.assert_allclose(fresh.run_reference({"x": wide})["chars"], got_wide, rtol=1e-4, atol=1e-5)


def test_the_collector_is_paused_while_a_new_shape_compiles_and_only_then(device, monkeypatch):
    """A new shape's import and compile run with Python's cyclic collector off (its full
    collections of every object in the process were a sixth of a T5 token's new-shape cost), and
    it is on again afterwards; nested pauses turn it on once, after the last; where it was off
    already, it stays off."""
    import gc

    import wgnn.session as session_module
    from wgnn.session import collector_paused

    seen = []
    compile_graph = session_module.compile_graph

    def recording(*args, **kwargs):
        seen.append(gc.isenabled())
        return compile_graph(*args, **kwargs)

    monkeypatch.setattr(session_module, "compile_graph", recording)
    session = wgnn.InferenceSession(_recognizer(np.random.default_rng(5)).SerializeToString())
    for width in (20, 28):
        session.run(None, {"x": np.zeros((1, 3, 32, width), np.float32)})
    assert seen == [False, False] and gc.isenabled()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_plans_are_bounded(device):
    session = wgnn.InferenceSession(_recognizer(np.random.default_rng(2)).SerializeToString())
    for width in range(8, 8 + 4 * (session.MAX_PLANS + 3), 4):
        session.run(None, {"x": np.zeros((1, 3, 32, width), np.float32)})
    assert session.plans_compiled == session.MAX_PLANS


def test_plans_are_kept_within_their_memory(device):
    """Beyond the newest plan, a session keeps plans while they hold at most PLAN_BYTES of GPU memory
    (their shared arena, and each one's inputs, outputs and read-back), dropping the least recently
    used; the newest stays whatever its size."""
    data = _recognizer(np.random.default_rng(2)).SerializeToString()
    reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    session = wgnn.InferenceSession(data)
    widths = list(range(200, 264, 8))
    session.PLAN_BYTES = 0
    for width in widths:
        x = np.random.default_rng(width).uniform(0, 1, (1, 3, 32, width)).astype(np.float32)
        assert rel_l2(session.run(None, {"x": x})[0], reference.run(None, {"x": x})[0]) < 1e-4
        assert session.plans_compiled == 1
    held = session._exe.held_bytes
    assert held > 3 * 32 * widths[-1] * 4  # at least its input
    arena = session._shared.arena.size
    session.PLAN_BYTES = arena + 3 * held
    for width in widths:
        session.run(None, {"x": np.zeros((1, 3, 32, width), np.float32)})
        kept = [plan["_exe"].held_bytes for plan in session._plans.values()]
        assert arena + sum(kept) <= session.PLAN_BYTES and len(kept) >= 2
    assert session.plans_compiled <= 4
    assert [key[0][0][1][3] for key in session._plans][-1] == widths[-1]


def test_texture_plans_count_their_weights(device):
    """The texture backend's plans do not share their weights: each plan's count in PLAN_BYTES."""
    session = wgnn.InferenceSession(_detector(np.random.default_rng(2)).SerializeToString(), backend="texture")
    session.run(None, {"x": np.zeros((1, 3, 32, 32), np.float32)})
    exe = session._exe
    assert 0 < exe.constant_bytes < exe.held_bytes
    session.PLAN_BYTES = 2 * exe.held_bytes
    for width in range(32, 64, 8):
        session.run(None, {"x": np.zeros((1, 3, 32, width), np.float32)})
        assert sum(plan["_exe"].held_bytes for plan in session._plans.values()) <= session.PLAN_BYTES
    assert session.plans_compiled <= 2


def test_plans_share_one_arena(device):
    """From its second plan on, a session's plans put their intermediates in one arena, which grows
    (by half at least) where a plan needs more: a plan compiled before it grew binds the new one
    when it next runs, and gives ONNX Runtime's results. The first plan keeps its own."""
    data = _recognizer(np.random.default_rng(3)).SerializeToString()
    reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    session = wgnn.InferenceSession(data)  # (no plan at load: a width of 1 is too narrow for it)
    arenas = []
    for width in (40, 400, 44, 40, 1200, 44, 400):
        x = np.random.default_rng(width).uniform(0, 1, (1, 3, 32, width)).astype(np.float32)
        assert rel_l2(session.run(None, {"x": x})[0], reference.run(None, {"x": x})[0]) < 1e-4, width
        exe = session._exe
        assert (exe.shared is None) == (width == 40)
        if exe.shared is not None:
            assert exe.arena is exe.shared.arena and exe.arena.size >= exe.plan.arena_bytes
            if not arenas or arenas[-1] is not exe.arena:
                arenas.append(exe.arena)
    # one for 400 (44 fits in it), one for 1200; the runs at 44 and 400 after it bound the last
    assert len(arenas) == 2


@pytest.mark.parametrize("given", ["bytes", "proto"])
def test_plans_share_the_weights(device, given):
    """A plan per shape, the weights shared: each plan after the second binds the weights the second
    uploaded and holds its arrays on the host, and still gives ONNX Runtime's results; a model
    given as a ModelProto is left as it was (one given as bytes is the session's to strip)."""
    rng = np.random.default_rng(4)
    # a line of symbolic width: a convolution with a batch norm (which the passes fold into its
    # weights: arrays each plan derives), pooled over the height, a classifier per column
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["n"]),
             helper.make_node("Relu", ["n"], ["r"]),
             helper.make_node("ReduceMean", ["r", "axes"], ["m"], keepdims=0),
             helper.make_node("Transpose", ["m"], ["t"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["t", "fc"], ["chars"])]
    inits = [_const("w", rng.normal(0, 0.3, (48, 3, 3, 3))), _const("scale", rng.uniform(0.5, 2, 48)),
             _const("shift", rng.normal(0, 0.1, 48)), _const("mean", rng.normal(0, 0.1, 48)),
             _const("var", rng.uniform(0.5, 2, 48)), numpy_helper.from_array(np.array([2], np.int64), "axes"),
             _const("fc", rng.normal(0, 0.3, (48, 200)))]
    graph = helper.make_graph(nodes, "line", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                            [1, 3, 32, "width"])],
                              [helper.make_tensor_value_info("chars", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    before = model.SerializeToString()
    session = wgnn.InferenceSession(before if given == "bytes" else model)
    reference = ort.InferenceSession(before, providers=["CPUExecutionProvider"])
    for width in (100, 36, 320, 36):
        x = rng.uniform(0, 1, (1, 3, 32, width)).astype(np.float32)
        assert rel_l2(session.run(None, {"x": x})[0], reference.run(None, {"x": x})[0]) < 1e-4
    # The first plan (compiled when the session loaded, at width 1) keeps its own: sharing starts
    # with the second, so that a session that runs one shape hashes nothing.
    plans = plan_weights(session)
    assert len(plans) == 4 and not plans[0][0].keys() & plans[1][0].keys()
    assert_shared_after(plans, 2)
    if given == "proto":
        assert model.SerializeToString() == before


class _CountingSha256:
    """Stands for hashlib where the compile hashes weights: counts the bytes each sha256 reads."""

    def __init__(self):
        import hashlib

        self.bytes, self._sha256 = 0, hashlib.sha256

    def sha256(self, data=b""):
        self.bytes += memoryview(data).nbytes
        return self._sha256(data)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_plans_after_the_second_hash_no_weights(device, monkeypatch, precision):
    """What a plan derives from the weights is derived once for the session (a batch norm and a
    scale folded into convolutions, channels padded to fours, a filter's Winograd transform), and
    packing it again hashes nothing: a plan after the second reads under 2% of the weights' bytes
    through SHA-256 (import, passes and packing: the biases, each a few hundred bytes, folded anew),
    where each plan used to hash them all; weights kept in a Constant node are not hashed again
    either. Each plan gives ONNX Runtime's results."""
    from wgnn.backends.compute import context
    from wgnn.importers.onnx import common

    rng = np.random.default_rng(6)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),  # 3 -> 4 input channels
             helper.make_node("BatchNormalization", ["c1", "scale", "shift", "mean", "var"], ["n1"]),
             helper.make_node("Relu", ["n1"], ["r1"]),
             helper.make_node("Constant", [], ["w2"], value=_const("w2", rng.normal(0, 0.1, (48, 48, 3, 3)))),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c2", "gain"], ["g2"]),  # a scale per channel
             helper.make_node("ReduceMean", ["g2", "axes"], ["m"], keepdims=0),
             helper.make_node("Transpose", ["m"], ["t"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["t", "fc"], ["chars"])]  # 201 columns: padded to 204
    inits = [_const("w1", rng.normal(0, 0.3, (48, 3, 3, 3))), _const("scale", rng.uniform(0.5, 2, 48)),
             _const("shift", rng.normal(0, 0.1, 48)), _const("mean", rng.normal(0, 0.1, 48)),
             _const("var", rng.uniform(0.5, 2, 48)), _const("gain", rng.uniform(0.5, 2, (48, 1, 1))),
             numpy_helper.from_array(np.array([2], np.int64), "axes"), _const("fc", rng.normal(0, 0.3, (48, 201)))]
    graph = helper.make_graph(nodes, "line", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                            [1, 3, 16, "width"])],
                              [helper.make_tensor_value_info("chars", TensorProto.FLOAT, None)], inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    weights = 4 * (48 * 48 * 9 + 48 * 27 + 48 * 201)
    counter = _CountingSha256()
    for module in (context, common, wgnn.graph):
        monkeypatch.setattr(module, "hashlib", counter)
    session = wgnn.InferenceSession(data, precision=precision)
    reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for width in (40, 48, 56, 64, 72):
        before = counter.bytes
        x = rng.uniform(0, 1, (1, 3, 16, width)).astype(np.float32)
        assert rel_l2(session.run(None, {"x": x})[0], reference.run(None, {"x": x})[0]) < (
            1e-4 if precision == "fp32" else 3e-3), width
        if width >= 56:  # (the first plan hashes nothing, the second everything it packs)
            assert counter.bytes - before < 0.02 * weights, (width, counter.bytes - before)
    assert session.plans_compiled >= 5 and session.pass_log["fold_batchnorm"] and session.pass_log["fold_conv_affine"]
    assert session.pass_log["pad_conv_channels"] and session.pass_log["pad_matmul_columns"]


def test_a_recurrent_models_new_widths_pack_its_weights_once(device, monkeypatch):
    """A bidirectional LSTM unrolled a step a column, then a Gemm over 801 characters with its weights
    stored transposed (as ddddocr's recognizer): each new width packs the recurrent weights once, not
    once a step, and the Gemm's padded weights are those an earlier plan packed (a view of the
    initializer, not a copy of it a plan), so a plan after the second hashes less than three packings
    of the recurrent weights. Each width gives ONNX Runtime's results."""
    from wgnn.backends.compute import context
    from wgnn.importers.onnx import common

    rng = np.random.default_rng(8)
    hidden = 16
    nodes = [helper.make_node("LSTM", ["x", "w", "r", "b"], ["y"], hidden_size=hidden, direction="bidirectional"),
             helper.make_node("Reshape", ["y", "rows"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc", "fc_b"], ["chars"], transB=1)]
    inits = [_const("w", rng.normal(0, 0.3, (2, 4 * hidden, 8))),
             _const("r", rng.normal(0, 0.3, (2, 4 * hidden, hidden))), _const("b", rng.normal(0, 0.1, (2, 8 * hidden))),
             numpy_helper.from_array(np.array([-1, 2 * hidden]), "rows"),
             _const("fc", rng.normal(0, 0.3, (801, 2 * hidden))), _const("fc_b", rng.normal(0, 0.1, 801))]
    graph = helper.make_graph(nodes, "line", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["width", 1, 8])],
                              [helper.make_tensor_value_info("chars", TensorProto.FLOAT, None)], inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]).SerializeToString()
    packed_r = 2 * 4 * (hidden * 4 * hidden + 2 * 4 * hidden)  # (both directions' R^T, bias and scale rows)
    counter = _CountingSha256()
    for module in (context, common, wgnn.graph):
        monkeypatch.setattr(module, "hashlib", counter)
    session = wgnn.InferenceSession(data)
    reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for width in (24, 32, 40, 48):
        before = counter.bytes
        x = rng.uniform(-1, 1, (width, 1, 8)).astype(np.float32)
        assert rel_l2(session.run(None, {"x": x})[0], reference.run(None, {"x": x})[0]) < 1e-4, width
        if width >= 40:  # (the first plan hashes nothing, the second everything it packs)
            assert counter.bytes - before < 3 * packed_r, (width, counter.bytes - before)
    assert session.pass_log["pad_matmul_columns"]


def test_an_integer_products_weight_digits_are_made_once_a_session(device, monkeypatch):
    """A dynamically quantized product (DynamicQuantizeLinear, MatMulInteger with constant int8
    weights, as ddddocr's recognizer) imported again for each new shape derives its weights'
    digits once for the session: every plan binds the same arrays; and its kernel's int8 words
    (four weights a u32) are checked and packed once for the session too (``SharedBuffers.made``),
    not once a plan. Each shape gives ONNX Runtime's integers."""
    from wgnn.backends.compute import nn
    from wgnn.importers.onnx import quant

    rng = np.random.default_rng(9)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("MatMulInteger", ["xq", "w", "xz", "wz"], ["y"])]
    inits = [numpy_helper.from_array(rng.integers(-128, 128, (32, 300)).astype(np.int8), "w"),
             numpy_helper.from_array(np.array(3, np.int8), "wz")]
    graph = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", 32])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)], inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    made, words = [], []
    original, pack = quant._weight_digits, nn._int8_weights
    monkeypatch.setattr(quant, "_weight_digits", lambda *args: made.append(1) or original(*args))
    monkeypatch.setattr(nn, "_int8_weights", lambda *args: words.append(pack(*args)) or words[-1])
    session = wgnn.InferenceSession(data)
    reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    checked = []
    for rows in (3, 5, 7):
        x = rng.normal(0, 1, (rows, 32)).astype(np.float32)
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], reference.run(None, {"x": x})[0])
        checked.append(len(words))
    assert session.plans_compiled >= 3 and len(made) == 1
    assert checked[0] >= 1 and checked[-1] == checked[0], checked  # (w - 3 in two digits: a check each)


def test_an_int8_table_is_converted_once_a_session(device, monkeypatch):
    """An int8 embedding table that a Gather reads (stored as i32 on the GPU, four times its bytes;
    a quantized T5's is 64 MB so) in a model whose token count is symbolic: a new length neither
    converts nor hashes it again (a plan after the second hashes under a tenth of its i32 bytes,
    where each plan hashed all of them). Each length gives ONNX Runtime's results."""
    from wgnn.backends.compute import context

    rng = np.random.default_rng(10)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["rows"]),
             helper.make_node("DequantizeLinear", ["rows", "t_scale", "t_zero"], ["embedded"]),
             helper.make_node("MatMul", ["embedded", "w"], ["y"])]
    inits = [numpy_helper.from_array(rng.integers(-128, 128, (4000, 64)).astype(np.int8), "table"),
             numpy_helper.from_array(np.array(0.02, np.float32), "t_scale"),
             numpy_helper.from_array(np.array(0, np.int8), "t_zero"), _const("w", rng.normal(0, 0.1, (64, 32)))]
    graph = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "tokens"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    counter = _CountingSha256()
    monkeypatch.setattr(context, "hashlib", counter)
    session = wgnn.InferenceSession(data)
    reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    hashed = []
    for tokens in (3, 5, 7, 9):
        before = counter.bytes
        ids = rng.integers(0, 4000, (1, tokens)).astype(np.int64)
        assert rel_l2(session.run(None, {"ids": ids})[0], reference.run(None, {"ids": ids})[0]) < 1e-5
        hashed.append(counter.bytes - before)
    assert session.plans_compiled >= 4 and max(hashed[2:]) < 4000 * 64 * 4 // 10, hashed


def test_a_dequantized_weight_is_folded_once_a_session(device, monkeypatch):
    """A weight that a DequantizeLinear dequantizes at load (QDQ, int8 weights: 1 MB once folded)
    in a model whose token count is symbolic: a new length neither folds nor hashes it again
    (``fold_constants`` through ``Graph.derive``: a plan after the second hashes under a tenth of
    its bytes, where each plan folded and hashed all of them), and every plan's graph holds the one
    array. Each length gives ONNX Runtime's results (without its optimizer, which fuses the two into
    a MatMulNBits that quantizes x too)."""
    from wgnn.backends.compute import context

    rng = np.random.default_rng(11)
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"]),
             helper.make_node("MatMul", ["x", "w"], ["y"])]
    inits = [numpy_helper.from_array(rng.integers(-128, 128, (64, 4096)).astype(np.int8), "w_q"),
             numpy_helper.from_array(np.array(0.01, np.float32), "w_scale"),
             numpy_helper.from_array(np.array(3, np.int8), "w_zero")]
    graph = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "tokens", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    counter = _CountingSha256()
    for module in (context, wgnn.graph):
        monkeypatch.setattr(module, "hashlib", counter)
    session = wgnn.InferenceSession(data)
    options = ort.SessionOptions()  # (its optimizer makes the two an 8-bit MatMulNBits that quantizes x)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    reference = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    hashed = []
    for tokens in (3, 5, 7, 9):
        before = counter.bytes
        x = rng.normal(0, 1, (1, tokens, 64)).astype(np.float32)
        assert rel_l2(session.run(None, {"x": x})[0], reference.run(None, {"x": x})[0]) < 1e-5
        hashed.append(counter.bytes - before)
    assert session.plans_compiled >= 4 and max(hashed[2:]) < 64 * 4096 * 4 // 10, hashed
    weights = {i for _, arrays in plan_weights(session) for i, n in arrays.items() if n == 64 * 4096 * 4}
    assert len(weights) == 1, weights


def test_a_constant_is_read_as_it_is_whatever_its_doc_string_says(device):
    """A session keeps, of a Constant's tensor it read, the key its array is shared by (in the tensor's
    doc_string, its bytes dropped): a model's own tensor whose doc_string looks like one is still read
    from its values, at every shape."""
    from wgnn.importers.onnx.common import SHARED_TENSOR

    value = np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1)
    tensor = numpy_helper.from_array(value, "k")
    tensor.ClearField("raw_data")
    tensor.float_data.extend(value.reshape(-1).tolist())
    tensor.doc_string = SHARED_TENSOR + "00" * 32
    nodes = [helper.make_node("Constant", [], ["k"], value=tensor), helper.make_node("Mul", ["x", "k"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    session = wgnn.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
                                    .SerializeToString())
    for n in (3, 5, 7):
        x = np.ones((1, 4, n), np.float32)
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], x * value)


def test_derived_arrays_are_kept_while_held_and_their_sources_read_only():
    """SharedArrays.derive: the same function of the same arrays (the same objects) and the same other
    arguments gives the array computed before, while something holds it; another array, another
    argument, or a result no longer held computes anew. The arrays it read are read-only from then
    on; one that views memory another object owns is neither frozen nor kept."""
    import gc

    from wgnn.graph import SharedArrays

    calls = []

    def scaled(a, k):
        calls.append(k)
        return a * k

    arrays = SharedArrays()
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    first = arrays.derive(scaled, a, 2.0)
    assert arrays.derive(scaled, a, 2.0) is first and calls == [2.0] and not a.flags.writeable
    assert arrays.derive(scaled, a, 3.0) is not first and arrays.derive(scaled, a.copy(), 2.0) is not first
    assert arrays.derive(scaled, a.T, 2.0) is not first  # (a view of a is another array)
    first_id = id(first)
    del first
    gc.collect()
    again = arrays.derive(scaled, a, 2.0)
    assert len(calls) == 5 and np.array_equal(again, a * 2)
    foreign = np.frombuffer(bytearray(16), np.float32)  # (the bytearray may still change)
    assert arrays.derive(scaled, foreign, 2.0) is not arrays.derive(scaled, foreign, 2.0)
    assert foreign.flags.writeable
    assert first_id != id(again) or np.array_equal(again, a * 2)
    # a chain, of which a graph holds only the last step: the first is computed again, the last found
    last = arrays.derive(np.pad, arrays.derive(scaled, a, 5.0), ((0, 1), (0, 0)))
    gc.collect()
    assert arrays.derive(np.pad, arrays.derive(scaled, a, 5.0), ((0, 1), (0, 0))) is last
    assert calls.count(5.0) == 2 and not last.flags.writeable
    assert arrays.derive(np.pad, arrays.derive(scaled, a, 6.0), ((0, 1), (0, 0))) is not last


def test_packing_a_view_again_hashes_nothing(device):
    """ConstantPool with a session's SharedBuffers: a chunk packed from the same view of the same
    (read-only) array as before is bound where it lies without being converted or hashed (its bytes
    made only if the store lost them); another array, or the same bytes in a new array, is hashed."""
    from wgnn.backends.compute.context import ConstantPool, SharedBuffers

    store = SharedBuffers()
    w = np.arange(64, dtype=np.float32).reshape(8, 8)
    pool = ConstantPool(16, store=store)
    ref = pool.add(w.T, "f32")
    (chunk,) = pool.entries
    assert chunk.data is not None and bytes(chunk.data) == np.ascontiguousarray(w.T).tobytes()
    buffer = device.buffer(256)
    store.keep(chunk.key, buffer, 0)

    again = ConstantPool(16, store=store)
    assert again.add(w.T, "f32") == ref
    assert again.entries[0].data is None and again.entries[0].key == chunk.key
    assert bytes(ConstantPool.data(again.entries[0])) == bytes(chunk.data)  # (made on demand)
    copied = ConstantPool(16, store=store)
    copied.add(w.T.copy(), "f32")  # the same bytes, another array: hashed, found by its key
    assert copied.entries[0].data is not None and copied.entries[0].key == chunk.key
    other = ConstantPool(16, store=store)
    other.add(w, "f32")  # another view: other bytes
    assert other.entries[0].key != chunk.key

    del buffer  # the store lost the chunk: the next pool packs the view's bytes, without hashing
    import gc

    gc.collect()
    lost = ConstantPool(16, store=store)
    lost.add(w.T, "f32")
    assert lost.entries[0].data is not None and lost.entries[0].key == chunk.key


def test_shared_weights_are_forgotten_where_no_plan_holds_them(device):
    from wgnn.backends.compute.context import SharedBuffers

    store = SharedBuffers()
    buffer = device.buffer(64)
    store.keep(b"key", buffer, 16)
    assert store.find(b"key") == (buffer, 16) and len(store) == 1
    del buffer
    import gc

    gc.collect()
    assert store.find(b"key") is None and len(store) == 0


def test_runs_from_many_threads_on_one_session(device):
    """8 threads x 4 runs on one session (a symbolic batch, two shapes among them) and a second
    session beside it: every result equals the single-threaded one."""
    model = zoo.build("squeezenet1_1", softmax=False, classes=16)
    session = wgnn.InferenceSession(model)
    other = wgnn.InferenceSession(zoo.build("mobilenet_v2", softmax=False, classes=8))
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((1 + i % 2, 3, 224, 224)).astype(np.float32) for i in range(8)]
    other_input = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    expected = [session.run(None, {"input": x})[0] for x in inputs]
    other_expected = other.run(None, {"input": other_input})[0]
    results: dict[tuple[int, int], np.ndarray] = {}
    errors: list[BaseException] = []

    def work(t: int):
        try:
            for r in range(4):
                if t == 7 and r % 2:
                    results[(t, r)] = other.run(None, {"input": other_input})[0]
                else:
                    results[(t, r)] = session.run(None, {"input": inputs[t]})[0]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for (t, r), got in results.items():
        want = other_expected if (t == 7 and r % 2) else expected[t]
        np.testing.assert_array_equal(got, want)
    assert len(results) == 32


def test_a_wgpu_device_opened_elsewhere(device):
    """wgpu-py's default device (pygfx's) runs a session as it was opened."""
    import wgpu.utils

    gpu = wgpu.utils.get_default_device()
    model = zoo.build("squeezenet1_1", softmax=False, classes=8)
    session = wgnn.InferenceSession(model, device=gpu)
    assert session.device.device is gpu and wgnn.InferenceSession(model, device=gpu).device is session.device
    x = zoo.random_input(1)
    np.testing.assert_allclose(session.run(None, {"input": x})[0],
                               wgnn.InferenceSession(model).run(None, {"input": x})[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(wgnn.ConfigError, match="wgpu.GPUDevice"):
        wgnn.InferenceSession(model, device="cuda:0")


def test_interop_demo_feeds_wgnns_output_to_the_programs_own_shader(device, capsys):
    import importlib.util
    from pathlib import Path

    pytest.importorskip("PIL")
    path = Path(__file__).parent.parent / "demos" / "interop.py"
    spec = importlib.util.spec_from_file_location("interop_demo", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([]) == 0
    assert "numpy on the same logits agrees: True" in capsys.readouterr().out


def test_io_binding_keeps_outputs_on_the_gpu(device):
    model = zoo.build("squeezenet1_1", softmax=False, classes=8)
    session = wgnn.InferenceSession(model)
    x = zoo.random_input(2)
    want = session.run(None, {"input": x})[0]
    binding = session.io_binding()
    binding.bind_cpu_input("input", x)
    binding.bind_output("output")
    session.run_with_iobinding(binding)
    (on_gpu,) = binding.get_outputs()
    assert isinstance(on_gpu, wgnn.GPUTensor) and on_gpu.shape == want.shape
    np.testing.assert_array_equal(binding.copy_outputs_to_cpu()[0], want)
    # a GPU output fed back as a bound input of another session on the device: no host copy
    head = wgnn.GraphBuilder()
    y = head.relu(head.input("logits", want.shape))
    second = head.build({"y": y})
    bind2 = second.io_binding()
    bind2.bind_input("logits", on_gpu)
    second.run_with_iobinding(bind2)
    np.testing.assert_array_equal(bind2.copy_outputs_to_cpu()[0], np.maximum(want, 0))
    with pytest.raises(wgnn.ConfigError, match="no device pointers"):
        binding.bind_input("input", "cuda", 0, np.float32, [1, 3, 224, 224], 12345)
    with pytest.raises(wgnn.InputError, match="unknown output"):
        binding.bind_output("nope")


def test_paddleocr_models_as_shipped_with_several_shapes(device):
    """PaddleOCR's pretrained detector (N x 3 x H x W), recognizer (1 x 3 x 48 x width) and
    orientation classifier (N x 3 x 48 x W), as rapidocr-onnxruntime ships them, on scikit-image's
    text photo at several shapes in one session each, against ONNX Runtime."""
    from helpers import fetch_or_skip

    from wgnn.batch import prepare_image

    skimage = pytest.importorskip("skimage")
    rgb = np.stack([skimage.data.text()] * 3, -1)

    def image(n, h, w):  # PaddleOCR's normalisation: (x - 0.5) / 0.5
        return np.repeat(prepare_image(rgb, "paddle", (h, w))[0][None], n, axis=0)

    cases = {"ppocr_det": [(1, 352, 896), (2, 352, 896)], "ppocr_rec": [(1, 48, 320), (1, 48, 160)],
             "ppocr_cls": [(1, 48, 192), (3, 48, 192)]}
    for name, shapes in cases.items():
        path = fetch_or_skip(name)
        session = wgnn.InferenceSession(path)
        reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].shape == reference.get_inputs()[0].shape
        for shape in shapes:
            x = image(*shape)
            (got,) = session.run(None, {"x": x})
            (want,) = reference.run(None, {"x": x})
            assert got.shape == want.shape and rel_l2(got, want) < 1e-4, (name, shape)
            if name == "ppocr_det":  # it sees the text: the same text pixels
                assert (want > 0.3).mean() > 0.005 and np.array_equal(got > 0.3, want > 0.3)


def test_ortvalues_on_the_host_and_on_the_gpu(device):
    """wgnn.OrtValue: a host one refers to its array (as ONNX Runtime's does), a GPU one is a
    GPUTensor that sessions read in place; both feed run and run_with_ort_values, and
    update_inplace changes what the next run reads (checking shape and type)."""
    b = wgnn.GraphBuilder()
    y = b.mul(b.input("x", (2, 3)), b.constant(np.float32(3)))
    session = b.build({"y": y})
    base = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = base.copy()
    host = wgnn.OrtValue.ortvalue_from_numpy(x)
    gpu = wgnn.OrtValue.ortvalue_from_numpy(base, "webgpu", 0)
    assert host.device_name() == "cpu" and gpu.device_name() == "webgpu" and isinstance(gpu.value, wgnn.GPUTensor)
    assert gpu.shape() == [2, 3] and gpu.data_type() == "tensor(float)" and gpu.element_type() is np.float32
    for value in (host, gpu):
        np.testing.assert_array_equal(session.run(None, {"x": value})[0], base * 3)
        out = session.run_with_ort_values(["y"], {"x": value})
        np.testing.assert_array_equal(out[0].numpy(), base * 3)
        value.update_inplace(base + 1)
        np.testing.assert_array_equal(session.run(None, {"x": value})[0], (base + 1) * 3)
        with pytest.raises(wgnn.ConfigError, match="update_inplace"):
            value.update_inplace(np.zeros((3, 2), np.float32))
    np.testing.assert_array_equal(x, base + 1)  # the host OrtValue wrote into x
    zeros = wgnn.OrtValue.ortvalue_from_shape_and_type([2, 3], np.float32, "cuda")
    np.testing.assert_array_equal(session.run(None, {"x": zeros})[0], 0)


def test_weights_in_external_files_are_read_beside_the_model(device, tmp_path):
    """A model saved with its weights in a file beside it (as every model over 2 GB is): loaded by
    its path, wgnn reads them from the model's folder as ONNX Runtime does, and gives ORT's logits on
    a real photo; as bytes (no folder to look in), or with the file missing, a clear error."""
    model = zoo.build("squeezenet1_1", softmax=False)
    onnx.save_model(model, tmp_path / "squeezenet.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="squeezenet.weights", size_threshold=0)
    path = str(tmp_path / "squeezenet.onnx")
    x = zoo.packaged_photos()[0]
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    got = wgnn.InferenceSession(path).run(None, {"input": x})[0]
    assert rel_l2(got, want) < 1e-5 and got.argmax() == want.argmax()
    with pytest.raises(wgnn.ModelLoadError, match="external file.*by its path"):
        wgnn.InferenceSession((tmp_path / "squeezenet.onnx").read_bytes())
    (tmp_path / "squeezenet.weights").rename(tmp_path / "elsewhere")
    with pytest.raises(wgnn.ModelLoadError, match=r"external file\(s\) \['squeezenet.weights'\]"):
        wgnn.InferenceSession(path)


def test_a_model_onnx_runtime_optimized_and_saved(device, tmp_path):
    """MobileNet V2 as ONNX Runtime's optimizer saves it (`optimized_model_filepath`, extended level:
    its convolutions fused with their activations into com.microsoft.FusedConv): the same logits as
    ONNX Runtime running that file, on a real photo."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(zoo.build("mobilenet_v2", softmax=False).SerializeToString(), options,
                         providers=["CPUExecutionProvider"])
    saved = onnx.load(options.optimized_model_filepath)
    assert sum(n.op_type == "FusedConv" for n in saved.graph.node) > 10
    x = zoo.packaged_photos()[1]
    want = ort.InferenceSession(options.optimized_model_filepath, providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    got = wgnn.InferenceSession(options.optimized_model_filepath).run(None, {"input": x})[0]
    assert rel_l2(got, want) < 1e-5 and got.argmax() == want.argmax()


# -- wgnn standing in for the onnxruntime module (wgnn.onnxruntime.install) ----------------------------


def _fresh_import(package: str):
    """``package`` imported anew (so that it imports onnxruntime again), its old modules put back after."""
    import importlib
    import sys

    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
    return importlib.import_module(package)


@pytest.fixture
def standing_in():
    """wgnn.onnxruntime installed as onnxruntime for one test, the packages it imported forgotten after."""
    import sys

    import wgnn.onnxruntime

    before = set(sys.modules)
    saved = wgnn.onnxruntime.install()
    try:
        yield wgnn.onnxruntime
    finally:
        wgnn.onnxruntime.uninstall(saved)
        for name in set(sys.modules) - before:
            if name.startswith(("magika", "nudenet", "openwakeword", "rapidocr_onnxruntime", "ddddocr")):
                del sys.modules[name]


@pytest.mark.parametrize("package", ["magika", "nudenet", "rapidocr_onnxruntime", "ddddocr"])
def test_packages_run_unmodified_on_wgnn_standing_in_for_onnxruntime(device, package):
    """Four packages that import onnxruntime themselves, as published, on real files: Magika names
    this repository's files (it asks for CPUExecutionProvider alone and feeds a list of lists of
    ints), NudeNet finds the astronaut's face (it imports onnxruntime.capi), RapidOCR reads
    scikit-image's scanned page (its detector at the page's size, then its classifier and
    recognizer on batches of the lines it found, each batch as wide as its widest line), ddddocr
    reads the page's first line at two widths (its recognizer's LSTM over the image's columns) and
    finds the characters on the page. Each gives what it gives on ONNX Runtime, and its session is
    wgnn's."""
    pytest.importorskip(package)
    files = [ROOT / f for f in ("README.md", "wgnn/zoo.py", "wgnn/demo/astronaut.jpg", "pyproject.toml",
                                "scripts/setup.sh")]

    def results(module):
        if package == "magika":
            found = module.Magika().identify_paths(files)
            return [(r.output.label, r.score) for r in found], None
        if package == "ddddocr":
            import io

            from PIL import Image
            from skimage import data

            def png(image):
                buffer = io.BytesIO()
                Image.fromarray(image).save(buffer, format="PNG")
                return buffer.getvalue()

            page = data.page()
            ocr, det = module.DdddOcr(show_ad=False), module.DdddOcr(det=True, show_ad=False)
            found = [(ocr.classification(png(page[5:40, :width])), 1.0, [width]) for width in (300, 260)]
            return found + [("box", 1.0, box) for box in det.detection(png(page))], ocr
        if package == "rapidocr_onnxruntime":
            from skimage import data

            engine = module.RapidOCR()
            page = np.repeat(data.page()[:, :, None], 3, axis=2)  # (its pipeline takes BGR)
            found, _ = engine(page)
            return [(text, score, np.asarray(box).tolist()) for box, text, score in found], \
                engine.text_rec.session.session
        detector = module.NudeDetector()
        return [(d["class"], d["score"], d["box"]) for d in detector.detect(str(files[2]))], detector

    want, _ = results(_fresh_import(package))
    import sys

    import wgnn.onnxruntime

    saved = wgnn.onnxruntime.install()
    try:
        got, detector = results(_fresh_import(package))
        session = (sys.modules["magika.magika"].rt if detector is None else detector
                   if package == "rapidocr_onnxruntime" else detector.ocr_engine.session
                   if package == "ddddocr" else detector.onnx_session)
    finally:
        wgnn.onnxruntime.uninstall(saved)
        _fresh_import(package)  # (as ONNX Runtime's again, for whoever imports it next)
    assert [g[0] for g in got] == [w[0] for w in want] and [g[2:] for g in got] == [w[2:] for w in want]
    assert np.allclose([g[1] for g in got], [w[1] for w in want], atol=1e-4)
    assert session is wgnn.onnxruntime or isinstance(session, wgnn.InferenceSession)
    if package == "magika":
        assert [g[0] for g in got][:2] == ["markdown", "python"]
    elif package == "rapidocr_onnxruntime":
        assert len(got) == 5 and got[0][0] == "Region-basedsegmentation"
    elif package == "ddddocr":
        assert got[0][0] == "Regionbasedsegmentation" and len(got) > 40  # (56 characters' boxes)
    else:
        assert got and got[0][0] == "FACE_FEMALE"


def test_text2tashkeel_runs_unmodified_on_wgnn_standing_in_for_onnxruntime(device):
    """text2tashkeel 0.1.0 as published (it builds its ONNX Runtime sessions with SessionOptions and
    CPUExecutionProvider) diacritizes three sentences of Debian apt's Arabic translation with its
    default model (two dynamically quantized LSTM networks and a gate, stitched into one file) and
    its BiLSTM-with-attention model: the strings ONNX Runtime gives, from sessions that are wgnn's."""
    pytest.importorskip("text2tashkeel")
    from test_pypi_models import arabic_sentences

    sentences = arabic_sentences(3)
    models = ("rawi-ensemble", "bilstm-int8")

    def diacritized(module):
        found = {m: [module.Diacritizer(m).diacritize(s) for s in sentences] for m in models}
        return found, module.Diacritizer(models[0]).backend

    want, _ = diacritized(_fresh_import("text2tashkeel"))
    import wgnn.onnxruntime

    saved = wgnn.onnxruntime.install()
    try:
        got, backend = diacritized(_fresh_import("text2tashkeel"))
    finally:
        wgnn.onnxruntime.uninstall(saved)
        _fresh_import("text2tashkeel")
    assert got == want
    assert isinstance(backend.sess, wgnn.InferenceSession)
    assert all(len(s) > len(t) for s, t in zip(want[models[0]], sentences))  # (marks were added)


def test_openwakeword_runs_unmodified_on_wgnn_standing_in_for_onnxruntime(device):
    """openWakeWord 0.5.1 as published, its ONNX framework (a spectrogram, an embedding and two
    wake word sessions of its own, fed 80 ms frames as it streams them), on alsa-utils' recorded
    voice: the embeddings it keeps and every frame's scores are ONNX Runtime's (its buffers' random
    start seeded alike), from sessions that are wgnn's."""
    pytest.importorskip("openwakeword")
    from helpers import recording

    voice = (recording("Front_Center", 16000) * 32767).astype(np.int16)

    def stream(module):
        np.random.seed(0)  # (openWakeWord starts its buffers with random noise)
        model = module.model.Model(wakeword_models=["hey_jarvis", "alexa"], inference_framework="onnx")
        scores = [model.predict(voice[i:i + 1280]) for i in range(0, len(voice) - 1280, 1280)]
        return scores, model.preprocessor.get_features(16), model

    want, want_features, _ = stream(_fresh_import("openwakeword"))
    import wgnn.onnxruntime

    saved = wgnn.onnxruntime.install()
    try:
        got, features, model = stream(_fresh_import("openwakeword"))
    finally:
        wgnn.onnxruntime.uninstall(saved)
        _fresh_import("openwakeword")
    assert all(isinstance(s, wgnn.InferenceSession) for s in model.models.values())
    assert isinstance(model.preprocessor.melspec_model, wgnn.InferenceSession)
    assert features.shape == (1, 16, 96) and np.abs(want_features).max() > 10
    np.testing.assert_allclose(features, want_features, atol=1e-5 * np.abs(want_features).max())
    assert len(got) == len(want) > 10 and [sorted(g) for g in got] == [sorted(w) for w in want]
    np.testing.assert_allclose([list(g.values()) for g in got], [list(w.values()) for w in want], atol=1e-7)


def test_standing_in_module_answers_onnxruntimes_calls(device, standing_in, caplog):
    """What packages call on ONNX Runtime's module on the way, answered; a session asked for other
    providers alone runs on WebGPU (wgnn.InferenceSession itself refuses them); the binding's
    exception classes catch the wgnn errors that mean the same; uninstall gives ONNX Runtime back."""
    import onnxruntime as rt
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    assert rt is standing_in and rt.__version__.startswith("1.")
    rt.disable_telemetry_events()
    rt.set_seed(3)
    rt.preload_dlls()
    assert "wgnn" in rt.get_build_info() and rt.get_version_string() == rt.__version__
    assert rt.get_available_providers() == ["WebGpuExecutionProvider"] and rt.get_device() == "GPU"
    model = zoo.build("squeezenet1_1", softmax=False, classes=4).SerializeToString()
    with pytest.raises(wgnn.ConfigError):
        wgnn.InferenceSession(model, providers=["CUDAExecutionProvider"])
    session = rt.InferenceSession(model, providers=[("CUDAExecutionProvider", {"device_id": 0}),
                                                    "CPUExecutionProvider"])
    assert session.get_providers() == ["WebGpuExecutionProvider"] and "run on WebGPU" in caplog.text
    with pytest.raises(InvalidArgument):
        session.run(None, {"input": np.zeros((1, 3, 8, 8), np.float32)})


def test_a_feed_of_python_numbers_takes_the_inputs_dtype(device):
    """Python numbers have no dtype of their own: a list feeds an int32 input as int32 and a float16
    one as float16, as ONNX Runtime converts them; a numpy array of another dtype is still refused, and
    so are numbers the input's type does not hold (a fraction or 2**40 for int32)."""
    nodes = [helper.make_node("Cast", ["a"], ["af"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["af", "bf"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.INT32, [2, 2]),
                                           helper.make_tensor_value_info("b", TensorProto.FLOAT16, [2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    session = wgnn.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    got = session.run(None, {"a": [[1, 2], [3, 4]], "b": [[0.5, 1], [2, 3]]})[0]
    np.testing.assert_array_equal(got, [[1.5, 3], [5, 7]])
    for a in ([[1.5, 2], [3, 4]], [[2**40, 2], [3, 4]], np.array([[1, 2], [3, 4]], np.int64)):
        with pytest.raises(wgnn.InputError, match="input 'a'"):
            session.run(None, {"a": a, "b": [[0.5, 1], [2, 3]]})


def test_python_m_wgnn_onnxruntime_runs_a_script_or_module_standing_in(device, tmp_path):
    """``python -m wgnn.onnxruntime SCRIPT ARGS`` and ``-m MODULE ARGS`` run an ONNX Runtime script as
    written (it asks for CPUExecutionProvider), with its arguments, its sessions wgnn's on WebGPU."""
    import os
    import subprocess
    import sys

    script = tmp_path / "relu_script.py"
    script.write_text(
        "import sys\nimport numpy as np\nimport onnxruntime as ort\nfrom onnx import TensorProto, helper\n"
        "g = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'g',\n"
        "                      [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2])],\n"
        "                      [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])\n"
        "model = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)]).SerializeToString()\n"
        "s = ort.InferenceSession(model, providers=['CPUExecutionProvider'])\n"
        "print(type(s).__module__, s.get_providers()[0], s.run(None, {'x': np.array([-1, 2], np.float32)})[0].tolist(),"
        " sys.argv[1:])\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]), XDG_RUNTIME_DIR="/tmp")
    for how in ([str(script)], ["-m", "relu_script"]):
        done = subprocess.run([sys.executable, "-m", "wgnn.onnxruntime", *how, "a", "b"], capture_output=True,
                              text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        want = "wgnn.onnxruntime WebGpuExecutionProvider [0.0, 2.0] ['a', 'b']"
        assert done.stdout.splitlines()[-1] == want, done.stdout
    usage = subprocess.run([sys.executable, "-m", "wgnn.onnxruntime"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert usage.returncode == 2 and "usage: python -m wgnn.onnxruntime SCRIPT" in usage.stderr
