"""Bad input gets a clear error that names what was expected."""

from __future__ import annotations

import numpy as np
import pytest

import wgnn
from wgnn import zoo

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _model_with(op: str, **attrs) -> onnx.ModelProto:
    node = helper.make_node(op, ["x"], ["y"], name="the_node", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_unsupported_operator_names_op_node_and_opset():
    with pytest.raises(wgnn.UnsupportedOperatorError) as info:
        wgnn.InferenceSession(_model_with("StringNormalizer"))
    message = str(info.value)
    assert "StringNormalizer" in message and "the_node" in message and "opset 17" in message
    assert "SUPPORTED_OPS" in message
    assert info.value.op_type == "StringNormalizer" and info.value.node_name == "the_node"


@pytest.fixture(scope="module")
def small_session(device):
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 4, 6, 6))
    y = b.relu(b.conv2d(x, b.constant(np.ones((4, 4, 3, 3), np.float32))))
    return b.build({"y": y})


def test_wrong_input_name(small_session):
    with pytest.raises(ValueError, match=r"expected \['x'\], got \['input'\]"):
        small_session.run(None, {"input": np.zeros((1, 4, 6, 6), np.float32)})


def test_wrong_input_shape(small_session):
    with pytest.raises(ValueError, match=r"expected shape \(1, 4, 6, 6\), got \(1, 4, 6, 5\)"):
        small_session.run(None, {"x": np.zeros((1, 4, 6, 5), np.float32)})


def test_wrong_input_dtype(small_session):
    with pytest.raises(ValueError, match="expected dtype float32, got float64"):
        small_session.run(None, {"x": np.zeros((1, 4, 6, 6))})


def test_input_errors_are_wgnn_errors_and_value_errors(small_session):
    """What ONNX Runtime users catch (ValueError) and wgnn's own base class both catch them; feeds
    are anything numpy converts, with the dtype still checked (Python numbers, which have none, take
    the input's, as in ONNX Runtime)."""
    for feeds in ({"x": np.zeros((1, 4, 6, 5), np.float32)}, {"input": np.zeros(1)}, {"x": [[1.0]]},
                  {"x": object()}, [np.zeros(1)]):
        with pytest.raises(wgnn.InputError) as info:
            small_session.run(None, feeds)
        assert isinstance(info.value, ValueError) and isinstance(info.value, wgnn.WgnnError)
    nested = np.ones((1, 4, 6, 6), np.float32).tolist()
    (listed,) = small_session.run(None, {"x": nested})  # a list of Python floats: as float32
    (got,) = small_session.run(None, {"x": np.float32(nested)})
    np.testing.assert_array_equal(listed, got)
    with pytest.raises(wgnn.InputError, match="expected dtype float32, got float64"):
        small_session.run(None, {"x": np.float64(nested)})  # an array keeps its dtype: refused


@pytest.mark.parametrize("argv,message", [
    (["run", "mobilenet_v2", "--input", "WRONG"], "expected shape"),
    (["run", "x", "--backend", "cuda"], "'cuda' is not one of compute, texture"),
    (["run", "squeezenet", "--precision", "fp8"], "'fp8' is not one of fp32, fp16, auto"),
    (["bench", "--models", "foo"], "unknown zoo model 'foo'"),
    (["bench", "--columns", "bar"], "unknown columns ['bar']"),
    (["demo", "face", "--source", "missing.mp4", "--headless"], "missing.mp4"),
])
def test_cli_mistakes_are_one_line(argv, message, tmp_path, capsys, device):
    from wgnn import cli

    argv = [str(tmp_path / "wrong.npy") if a == "WRONG" else a for a in argv]
    np.save(tmp_path / "wrong.npy", np.zeros((1, 3, 10, 10), np.float32))
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own mistakes
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.splitlines()) == 1, err


def test_unknown_output_name(small_session):
    with pytest.raises(ValueError, match="unknown output names"):
        small_session.run(["z"], {"x": np.zeros((1, 4, 6, 6), np.float32)})


def test_bad_model_files(tmp_path):
    with pytest.raises(wgnn.ModelLoadError, match="does not exist"):
        wgnn.InferenceSession(tmp_path / "missing.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(wgnn.ModelLoadError, match="empty"):
        wgnn.InferenceSession(empty)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(wgnn.ModelLoadError, match="not a valid ONNX model"):
        wgnn.InferenceSession(garbage)
    truncated = zoo.build("squeezenet1_1").SerializeToString()[:5000]
    with pytest.raises(wgnn.ModelLoadError):
        wgnn.InferenceSession(truncated)
    # a byte of a node's name overwritten, no longer UTF-8 (protobuf then gives the name as bytes)
    data = zoo.build("squeezenet1_1").SerializeToString()
    assert data.count(b"conv_34") > 1
    for damaged in (data.replace(b"conv_34", b"c\xbfnv_34", 1), data.replace(b"conv_34", b"c\xbfnv_34")):
        with pytest.raises(wgnn.ModelLoadError, match="not UTF-8 text"):
            wgnn.InferenceSession(damaged)


def test_dangling_node_input():
    node = helper.make_node("Relu", ["nowhere"], ["y"], name="r")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(wgnn.ModelLoadError, match="'r' .*'nowhere'"):
        wgnn.InferenceSession(helper.make_model(graph))


def test_builder_shape_errors_name_the_node():
    b = wgnn.GraphBuilder()
    x = b.input("x", (1, 3, 8, 8))
    with pytest.raises(wgnn.GraphError, match="conv2d node 'c1'.*3 channels"):
        b.conv2d(x, b.constant(np.zeros((8, 4, 3, 3), np.float32)), name="c1")
    with pytest.raises(wgnn.GraphError, match="binary node 'a1'.*do not broadcast"):
        b.add(x, b.constant(np.zeros((5,), np.float32)), name="a1")
    with pytest.raises(wgnn.GraphError, match="cannot reshape"):
        b.reshape(x, (5, -1))


def test_indexing_and_sampling_mistakes_name_the_node(device):
    """The indexing ops refuse what does not fit by the node's name: indices of another rank, updates
    of another shape, an unknown reduction, constant indices past the axis, k past the axis, a grid
    of another batch; an Einsum diagonal and a DFT along the parts axis are refused as unsupported."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (2, 3, 4))
    idx = b.constant(np.zeros((2, 3), np.int64))
    with pytest.raises(wgnn.GraphError, match="gather_elements node 'ge'.*rank"):
        b.gather_elements(x, idx, axis=1, name="ge")
    full = b.constant(np.zeros((2, 3, 4), np.int64))
    with pytest.raises(wgnn.GraphError, match="scatter_elements node 'se'.*one shape"):
        b.scatter_elements(x, full, b.constant(np.zeros((2, 3, 5), np.float32)), name="se")
    with pytest.raises(wgnn.GraphError, match="scatter_nd node 'sn'.*reduction 'sum'"):
        b.scatter_nd(x, b.constant(np.zeros((1, 1), np.int64)), b.constant(np.zeros((1, 3, 4), np.float32)),
                     reduction="sum", name="sn")
    with pytest.raises(wgnn.GraphError, match="top_k node 'tk'.*k=9"):
        b.top_k(x, 9, name="tk")
    with pytest.raises(wgnn.GraphError, match="grid_sample node 'gs'"):
        b.grid_sample(b.input("img", (2, 3, 5, 5)), b.input("grid", (1, 4, 4, 2)), name="gs")
    past = b.gather_elements(x, b.constant(np.full((2, 3, 4), 7, np.int64)), axis=2, name="past")
    with pytest.raises(wgnn.GraphError, match="gather_elements node 'past'.*reach past"):
        b.build({"y": past})

    def model(node, inputs):
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                                for n, s in inputs.items()],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    with pytest.raises(wgnn.UnsupportedOperatorError, match="'diag'.*repeated index"):
        wgnn.InferenceSession(model(helper.make_node("Einsum", ["a"], ["y"], equation="ii->i", name="diag"),
                                    {"a": [3, 3]}))
    with pytest.raises(wgnn.UnsupportedOperatorError, match="'dft'.*last axis holds 1 or 2"):
        wgnn.InferenceSession(model(helper.make_node("DFT", ["a"], ["y"], axis=1, name="dft"), {"a": [3, 4]}))


def test_no_adapter_error_says_how_to_get_one(monkeypatch):
    from wgnn import runtime

    with pytest.raises(wgnn.NoAdapterError, match="mesa-vulkan-drivers"):
        runtime.choose_adapter("no adapter has this name")
    monkeypatch.setattr(runtime.wgpu.gpu, "request_adapter_sync", lambda **kw: None)
    monkeypatch.delenv("WGNN_ADAPTER", raising=False)
    with pytest.raises(wgnn.NoAdapterError, match="software Vulkan driver"):
        runtime.choose_adapter()


def test_integer_tensors_on_the_gpu(device):
    """int64 and bool tensors run on the GPU as i32: values that do not fit are refused by name,
    the session stays usable, and the texture backend says it cannot hold them."""
    b = wgnn.GraphBuilder()
    x = b.input("x", (4,), "int64")
    y = b.input("y", (4,), "int64")
    outputs = {"sum": b.add(x, y), "bigger": b.greater(x, y), "pick": b.where(b.greater(x, y), x, y)}
    session = b.build(outputs)
    a, c = np.array([1, -5, 7, 2**31 - 2], np.int64), np.array([3, -6, 7, 1], np.int64)
    got = session.compute({"x": a, "y": c})
    assert got["sum"].dtype == np.int64 and got["bigger"].dtype == bool
    np.testing.assert_array_equal(got["sum"], (a + c).astype(np.int32))  # i32 arithmetic wraps
    np.testing.assert_array_equal(got["bigger"], a > c)
    np.testing.assert_array_equal(got["pick"], np.maximum(a, c))
    with pytest.raises(ValueError, match=r"input 'x': int64 value 4294967296 does not fit in 32 bits"):
        session.compute({"x": np.array([1, 2, 3, 2**32], np.int64), "y": c})
    np.testing.assert_array_equal(session.compute({"x": a, "y": c})["bigger"], a > c)
    with pytest.raises(wgnn.UnsupportedOperatorError, match="int64 tensor .* floating-point tensors only"):
        b.build(outputs, backend="texture")


def test_a_headless_device_open_is_quiet(tmp_path):
    """Without XDG_RUNTIME_DIR (a server, a container), opening a device prints nothing on stderr."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    done = subprocess.run([sys.executable, "-c", "import wgnn; print(wgnn.default_device().name)"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip()
    assert done.stderr == ""


def test_pipelines_made_at_once_name_the_kernel_the_gpu_refuses(device, monkeypatch):
    """Device.make_pipelines makes several pipelines on threads: a shader the GPU refuses among them
    is a DeviceError on the calling thread naming its kernel, and the others are made."""
    monkeypatch.setenv("WGNN_PIPELINE_THREADS", "2")
    body = ("@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n"
            "@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) i: vec3<u32>) { y[i.x] = VALUE; }")
    good = [body.replace("VALUE", f"{k}.5") for k in range(3)]
    with pytest.raises(wgnn.DeviceError, match="the broken kernel"):
        device.make_pipelines([(good[0], "first"), (body.replace("VALUE", "nowhere"), "the broken kernel"),
                               (good[1], "second")])
    device.make_pipelines([(source, f"kernel {k}") for k, source in enumerate(good)])
    assert all(source in device._pipelines for source in good)
