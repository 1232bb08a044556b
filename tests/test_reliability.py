"""Malformed and invalid models are refused by name, never crash, hang or escape as an error that is
not wgnn's: a fuzzing run over mutated real models, and the invalid models ONNX Runtime refuses."""

from __future__ import annotations

import numpy as np
import pytest

import wgnn

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)


def _model(nodes, inputs=(X,), inits=(), opset=17) -> bytes:
    graph = helper.make_graph(nodes, "g", list(inputs), [Y], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _w(dtype=TensorProto.FLOAT):
    w = numpy_helper.from_array(np.ones((4, 4, 3, 3), np.float32), "w")
    w.data_type = dtype  # a float initializer relabelled when dtype is not FLOAT
    return w


INVALID = {
    "concat_axis_10": (_model([helper.make_node("Concat", ["x", "x"], ["y"], axis=10, name="the_node")]),
                       "axis 10 is out of range"),
    "softmax_axis_99": (_model([helper.make_node("Softmax", ["x"], ["y"], axis=99, name="the_node")]),
                        "axis 99 is out of range"),
    "kernel_shape_300": (_model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[300, 300],
                                                  name="the_node")], inits=[_w()]), "kernel_shape \\[300, 300\\]"),
    "opset_999": (_model([helper.make_node("Relu", ["x"], ["y"], name="the_node")], opset=999), "opset 999"),
    "bool_input_to_relu": (_model([helper.make_node("Sigmoid", ["x"], ["y"], name="the_node")],
                                  inputs=[helper.make_tensor_value_info("x", TensorProto.BOOL, [1, 4])]),
                           "sigmoid of a bool tensor"),
    "initializer_relabelled_int32": (_model([helper.make_node("Conv", ["x", "w"], ["y"], name="the_node")],
                                            inits=[_w(TensorProto.INT32)]), "int32 weights"),
    "dilations_-1": (_model([helper.make_node("Conv", ["x", "w"], ["y"], dilations=[-1, -1], name="the_node")],
                            inits=[_w()]), "dilations \\[-1, -1\\]"),
    "strides_0": (_model([helper.make_node("Conv", ["x", "w"], ["y"], strides=[0, 0], name="the_node")],
                         inits=[_w()]), "strides \\[0, 0\\]"),
    "pads_100000": (_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[100000] * 4, name="the_node")],
                           inits=[_w()]), "beyond what a GPU buffer holds"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_models_are_refused_by_name(case):
    data, message = INVALID[case]
    with pytest.raises(wgnn.WgnnError, match=message) as info:
        wgnn.InferenceSession(data)
    if case != "opset_999":
        assert "the_node" in str(info.value)


def test_input_shapes_must_be_whole_numbers():
    data = _model([helper.make_node("Relu", ["x"], ["y"])],
                  inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])])
    for shape in ((1.5, 4), (-1, 4)):
        with pytest.raises(wgnn.ModelLoadError, match="whole numbers"):
            wgnn.InferenceSession(data, input_shapes={"x": shape})


def test_fuzzing_finds_no_crash_hang_or_foreign_error(device):
    """A seeded run of wgnn.fuzz over small real models (ONNX and TFLite), each mutant loaded and run
    in a watched worker; `wgnn fuzz --count 2000` is the long run."""
    from wgnn import fuzz, zoo

    models = ["squeezenet1_1", "ppocr_cls", "iris_landmark", "face_landmark"]
    for name in models[1:]:
        try:
            zoo.fetch(name)
        except zoo.FetchError as exc:
            pytest.skip(f"cannot fetch {name}: {exc}")
    report = fuzz.fuzz(120, seed=7, timeout=60, models=models)
    assert sum(report.counts.values()) == 120
    assert report.clean, report.summary()
    assert report.counts["refused"] > 20 and report.counts["ok"] > 10  # the mutants reached both outcomes


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_random_graphs_give_onnxruntimes_results(device, precision):
    """A seeded run of wgnn.fuzz_graphs: random graphs of text-model, CNN, data-movement, vision,
    recurrent and integer pieces (products with run-time scales and biases, attention's heads, dynamic
    quantization; convolutions, batch norms, pads, concats of a tensor with itself, gates; transposes
    and reductions; resizes, transposed convolutions, pooling with padding; LSTMs, GRUs, RNNs;
    QLinear ops on uint8 and int8 codes), each against ONNX Runtime CPU, and random TFLite graphs
    against LiteRT; `wgnn fuzz --graphs --count 10000` is the long run. It found seven faults (a part
    of two nested concats left unwritten, a sum scaled before a softmax taken for its mask, a gate
    dropped where a pad joined its convolution, a second batch norm folded under another reader, an
    IndexError in a residual block's fusion, an LSTM's clip applied to its cell state, a KeyError
    where a max pool of codes met a relayout), each now tested on its own."""
    from wgnn import fuzz_graphs

    if precision == "fp16" and "shader-f16" not in device.features:
        pytest.skip(f"{device.name} lacks shader-f16")
    report = fuzz_graphs.differential(200 if precision == "fp32" else 100, seed=11, precision=precision)
    runs = 200 if precision == "fp32" else 100
    assert report.reference.startswith("ONNX Runtime CPU") and sum(report.counts.values()) == runs
    assert report.clean and report.counts["match"] >= sum(report.counts.values()) - 2, report.summary()  # (fp16:
    # an overflow past f16's range at most, which the session warns of)
    # every kernel variant, the GPU-class ones too, with random sizes (tiles, workgroups, split-K)
    varied = fuzz_graphs.differential(60 if precision == "fp32" else 30, seed=11, precision=precision, kernels="random")
    assert varied.clean and varied.counts["match"] >= sum(varied.counts.values()) - 1, varied.summary()
    if precision == "fp32":  # the texture path: what it cannot run refused by name, nothing wrong
        texture = fuzz_graphs.differential(60, seed=11, backend="texture")
        assert texture.clean and texture.counts["match"] > 10 and texture.counts["refused"] > 10, texture.summary()


def test_random_graphs_run_again_with_other_values_and_another_size(device, monkeypatch):
    """Each random graph's session runs again with other values (what one run leaves in the planned
    buffers must not reach the next) and, where x's first axis is symbolic, with one more along it
    (a plan per shape): a session that gave the first run's outputs again is a mismatch named so."""
    from wgnn import fuzz_graphs
    from wgnn.session import InferenceSession

    real_run = InferenceSession.run
    first = {}

    def replays(self, names, feeds, *args, **kwargs):  # the first run's outputs, whatever is fed
        return first.setdefault(id(self), real_run(self, names, feeds, *args, **kwargs))

    monkeypatch.setattr(InferenceSession, "run", replays)
    outcome, detail = fuzz_graphs.check(0, "cnn")
    assert outcome == "mismatch" and detail.startswith("second run: "), detail

    def first_size(self, names, feeds, *args, **kwargs):  # right, but for the first size of x
        sizes = first.setdefault(id(self), len(feeds["x"]))
        return real_run(self, names, {**feeds, "x": feeds["x"][:sizes]}, *args, **kwargs)

    first.clear()
    monkeypatch.setattr(InferenceSession, "run", first_size)
    model, _ = fuzz_graphs.random_graph(0, "cnn")
    assert [i for i in model.graph.input if i.name == "x"][0].type.tensor_type.shape.dim[0].dim_param == "N"
    outcome, detail = fuzz_graphs.check(0, "cnn")
    assert outcome == "mismatch" and detail.startswith(("x's first axis 1 -> 2: ", "x's first axis 2 -> 3: ")), detail


def test_fuzz_graphs_on_the_command_line(device, capsys):
    """`wgnn fuzz --graphs` with chosen families and random kernels prints its counts and exits 0
    where nothing is wrong; a family it does not have is said by name, exit status 2."""
    from wgnn import cli

    pytest.importorskip("ai_edge_litert.interpreter")  # (the tflite family's reference)
    assert cli.main(["fuzz", "--graphs", "--count", "6", "--families", "bert,tflite,quant", "--kernels", "random"]) == 0
    assert "6 random graphs against ONNX Runtime CPU (LiteRT for tflite)" in capsys.readouterr().out
    assert cli.main(["fuzz", "--graphs", "--count", "2", "--families", "text,nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_random_kernel_choices_reach_the_variants_the_policy_leaves_out(device):
    """``kernels="random"`` (`wgnn fuzz --graphs --kernels random`) runs kernels this adapter's policy
    does not choose for small random graphs: the workgroup-tiled GEMM (a GPU's)."""
    from wgnn import fuzz_graphs
    from wgnn.session import InferenceSession

    ran = {"policy": set(), "random": set()}
    for seed in range(30):
        model, feeds = fuzz_graphs.random_graph(seed, "text")
        for how, kernels in (("policy", None), ("random", fuzz_graphs.random_kernels(seed))):
            session = InferenceSession(model, kernels=kernels)
            session.run(None, feeds)
            ran[how] |= {d.kernel for d in session._exe.dispatches}
    assert "matmul_gemm" in ran["random"] - ran["policy"], ran


def test_random_graphs_compare_with_the_numpy_reference_without_onnxruntime(device, monkeypatch):
    """Where ONNX Runtime is not installed, `wgnn fuzz --graphs` compares with wgnn's own numpy
    reference of the graph as imported; a graph wgnn computes wrong is a mismatch named by its seed
    (here: every Sigmoid made a ReLU on the GPU by a broken rewrite, which the reference does not share)."""
    import builtins

    from wgnn import fuzz_graphs, passes
    from wgnn.ops.activation import Activation

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("not installed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    report = fuzz_graphs.differential(20, seed=3)
    assert report.reference.startswith("wgnn's numpy reference") and report.clean, report.summary()

    def sigmoid_as_relu(graph):
        changed = 0
        for node in graph.nodes:
            act = node.attrs.get("activation")
            if isinstance(act, Activation) and act.kind == "sigmoid":
                node.attrs["activation"] = Activation("relu")
                changed += 1
        return changed

    monkeypatch.setitem(passes.BACKEND_RULES, "compute", passes.BACKEND_RULES["compute"] + [sigmoid_as_relu])
    broken = fuzz_graphs.differential(40, seed=3)
    assert broken.counts["mismatch"] > 0 and all(f[0] == "mismatch" for f in broken.failures), broken.summary()
    assert "random_graph(" in broken.summary()


def test_a_pointwise_conv_with_a_huge_stride_runs(device):
    """Found by `wgnn fuzz --count 300 --seed 77`: a 1x1 Conv with strides 2^31 - 1 (one output pixel)
    gave its matrix product a batch stride and a row stride past 32 bits, which no uniform holds (a
    struct.error while packing). With one product and one row those steps take no part; it runs, and
    a parameter that does not fit its field is a GraphError naming it."""
    from onnx import TensorProto, helper, numpy_helper

    from wgnn import shaders
    from wgnn.errors import GraphError

    rng = np.random.default_rng(5)
    w = rng.standard_normal((16, 8, 1, 1)).astype(np.float32)
    for shape in [(1, 8, 5, 5), (2, 8, 5, 5), (1, 8, 56, 56)]:
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1], strides=[2**31 - 1] * 2)], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [numpy_helper.from_array(w, "w")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
        x = rng.standard_normal(shape).astype(np.float32)
        (got,) = wgnn.InferenceSession(model).run(None, {"x": x})
        np.testing.assert_allclose(got[:, :, 0, 0], x[:, :, 0, 0] @ w[:, :, 0, 0].T, rtol=1e-5, atol=1e-5)
    with pytest.raises(GraphError, match="a_batch_stride = 8589934592 does not fit the kernel's u32"):
        shaders.pack_params([("a_batch_stride", "u32")], {"a_batch_stride": 2**33}, "matmul for node 'c'")


def test_a_depthwise_conv_with_a_huge_stride_runs(device):
    """Found by `wgnn fuzz --count 2000 --seed 11`: a depthwise Conv with strides 2^31 - 1 made the
    depthwise kernel's register array of input columns beyond any GPU's limit, and the shader was
    refused. Such a stride now keeps the convolution off that kernel: it runs, as ONNX Runtime."""
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    data = _model([helper.make_node("Conv", ["x", "w"], ["y"], group=8, strides=[2**31 - 1] * 2, pads=[1] * 4)],
                  inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 9, 9])],
                  inits=[numpy_helper.from_array(w, "w")])
    x = rng.standard_normal((1, 8, 9, 9)).astype(np.float32)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    session = wgnn.InferenceSession(data)
    assert "depthwise" not in set(session.kernel_choices().values())
    np.testing.assert_allclose(session.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-5)


def test_a_shader_the_gpu_refuses_is_a_wgnn_error_naming_the_kernel(device):
    """A kernel the GPU's shader compiler refuses (here: an array beyond its size limit) raises a
    DeviceError that names the kernel and node, not wgpu's own exception."""
    source = """
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1)
fn main() {
    var big: array<vec4<f32>, 268435456>;
    y[0] = big[0].x;
}
"""
    with pytest.raises(wgnn.DeviceError, match="huge for node 'n1'"):
        device.pipeline(source, "huge for node 'n1'")


def test_a_lost_device_is_said_and_replaced(device):
    """After the default device is destroyed, the next run says the device was lost (a wgnn error),
    and the run after it, and a new session, work on a fresh device."""
    from wgnn import runtime, zoo

    model = zoo.build("squeezenet1_1", softmax=False, classes=8)
    x = zoo.random_input(3)
    saved = runtime._DEFAULT
    try:
        runtime._DEFAULT = None  # a default device of this test's own, destroyed below
        session = wgnn.InferenceSession(model)
        want = session.run(None, {"input": x})[0]
        lost = session.device
        lost.device.destroy()
        with pytest.raises(wgnn.DeviceLostError, match="device was lost"):
            session.run(None, {"input": x})
        assert isinstance(wgnn.DeviceLostError("x"), wgnn.WgnnError)
        np.testing.assert_array_equal(session.run(None, {"input": x})[0], want)
        assert session.device is not lost and not session.device.lost
        np.testing.assert_array_equal(wgnn.InferenceSession(model).run(None, {"input": x})[0], want)
        # a session on a device it was given cannot move: it says so
        own = wgnn.Device()
        mine = wgnn.InferenceSession(model, device=own)
        own.device.destroy()
        with pytest.raises(wgnn.DeviceLostError):
            mine.run(None, {"input": x})
        with pytest.raises(wgnn.DeviceLostError, match="make a new session"):
            mine.run(None, {"input": x})
    finally:
        runtime._DEFAULT = saved


NAN_OPS = {
    "Relu": [helper.make_node("Relu", ["x"], ["y"])],
    "Conv+Relu": [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c"], ["y"])],
    "Clip": [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
    "Max": [helper.make_node("Max", ["x", "zeros"], ["y"])],
    "Min": [helper.make_node("Min", ["x", "zeros"], ["y"])],
    "ReduceMax": [helper.make_node("ReduceMax", ["x"], ["y"], keepdims=1)],
    "Softmax": [helper.make_node("Softmax", ["x"], ["y"], axis=-1)],
    "AveragePool": [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
    "MaxPool": [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
    "GlobalMaxPool": [helper.make_node("GlobalMaxPool", ["x"], ["y"])],
}


@pytest.mark.parametrize("backend", ["compute", "texture"])
@pytest.mark.parametrize("op", list(NAN_OPS))
def test_nan_propagates_where_onnxruntime_gives_nan(device, op, backend):
    """NaN in, NaN out wherever ONNX Runtime gives NaN. (ONNX Runtime's max pooling skips a NaN
    that is not first in its window; wgnn's, as IEEE's max, does not: there wgnn gives NaN in more
    places.)"""
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    x[0, 0, 0, 0] = x[0, 1, 1, 1] = np.nan
    x[0, 3] = np.nan
    inits = [numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.float32(-0.5), "lo"), numpy_helper.from_array(np.float32(0.5), "hi"),
             numpy_helper.from_array(np.zeros((1, 4, 8, 8), np.float32), "zeros")]
    used = {i for n in NAN_OPS[op] for i in n.input}
    data = _model(NAN_OPS[op], inits=[t for t in inits if t.name in used])
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = wgnn.InferenceSession(data, backend=backend).run(None, {"x": x})[0]
    assert np.isnan(want).any()
    if "MaxPool" in op:
        assert np.all(np.isnan(got)[np.isnan(want)])
    else:
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want) & ~np.isnan(got)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-5, atol=1e-6)


def test_an_all_nan_image_gives_nan_scores(device):
    """ONNX Runtime returns NaN probabilities for an all-NaN image; so does wgnn."""
    ort = pytest.importorskip("onnxruntime")
    from wgnn import zoo

    model = zoo.build("squeezenet1_1", classes=10)
    x = np.full((1, 3, 224, 224), np.nan, np.float32)
    reference = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = reference.run(None, {"input": x})[0]
    got = wgnn.InferenceSession(model).run(None, {"input": x})[0]
    assert np.isnan(want).all() and np.isnan(got).all()
