"""Helpers shared by the test modules."""

from __future__ import annotations

import numpy as np

import wgnn
from wgnn.reference import run_reference


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom else float(np.abs(a).max())


def run_both(builder: wgnn.GraphBuilder, outputs: dict, feeds: dict, **options):
    """(session, GPU results, numpy results of the graph before any pass)."""
    graph = builder.build_graph(outputs)
    reference = run_reference(graph.copy(), feeds)
    session = wgnn.InferenceSession(graph, **options)
    return session, session.compute(feeds), reference


def bench_script(name: str):
    """The module of ``bench/NAME.py`` (loaded from this checkout, registered as ``NAME``)."""
    import importlib.util
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def kernels_used(session: wgnn.InferenceSession) -> list[str]:
    return [d.kernel for d in session._exe.dispatches]


def tiled(kernel: str) -> str:
    """The name of the register-tiled ``kernel`` ("conv2d" or "matmul") the default policy of a
    software adapter runs: its subgroup form (``*_shared``) where the device has subgroups."""
    return f"{kernel}_shared" if "subgroup" in wgnn.default_device().features else kernel


def tol(precision: str) -> float:
    """Relative L2 error allowed against the f32 numpy reference on ordinary data."""
    return {"fp32": 1e-5, "fp16": 5e-3}[precision]


def run_litert(model: bytes, feeds: list[np.ndarray]) -> list[np.ndarray]:
    """LiteRT's outputs for a TFLite model (the tests' reference interpreter), or a skip without it."""
    import pytest

    pytest.importorskip("ai_edge_litert.interpreter")
    from wgnn.fuzz_graphs import litert_outputs

    return litert_outputs(model, feeds)


def sample(make, *args):
    """``make(*args)``, one of ``wgnn.samples``' real inputs, or a skip naming the Debian package
    (or the Python one) that this machine lacks for it."""
    import pytest

    try:
        return make(*args)
    except (FileNotFoundError, ImportError) as exc:
        pytest.skip(str(exc))


def recording(name: str, rate: int) -> np.ndarray:
    """One of alsa-utils' 48 kHz recordings as float32 samples in [-1, 1) at ``rate`` (``wgnn.samples``)."""
    from wgnn import samples

    return sample(samples.recording, name, rate)


def fetch_or_skip(name: str):
    """A pretrained model's path, or a skip saying why it could not be fetched (offline)."""
    import pytest

    from wgnn import zoo

    try:
        return zoo.fetch(name)
    except zoo.FetchError as exc:
        pytest.skip(f"cannot fetch {name}: {exc}")


def lstm_against_onnxruntime(x: np.ndarray, consts: dict, inputs: list[str], attrs: dict, precision: str,
                             **options):
    """A one-node ONNX LSTM model (inputs ``inputs``: "x" and the names of ``consts``, "" for those
    left out; outputs y, yh, yc), run by ONNX Runtime CPU and by a wgnn session of ``precision``
    (and ``options``): (the session, its outputs, ONNX Runtime's)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("LSTM", inputs, ["y", "yh", "yc"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "yh", "yc")],
                              [numpy_helper.from_array(v, n) for n, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=7)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    session = wgnn.InferenceSession(model, precision=precision, **options)
    return session, session.run(None, {"x": x}), want


def plan_weights(session) -> list[tuple[dict, dict]]:
    """Per plan of ``session``, oldest first: {id: buffer} of the GPU buffers its weights lie in, and
    {id: bytes} of the host arrays of its graph's constants."""
    return [({id(b): b for b in plan["_exe"].constant_buffers},
             {id(o.value): o.value.nbytes for n in plan["graph"].nodes for o in n.inputs
              if o is not None and o.is_constant})
            for plan in session._plans.values()]


def assert_shared_after(plans: list[tuple[dict, dict]], first: int, *, share: float = 0.01) -> None:
    """Every plan from index ``first`` on binds the weight buffers and holds the constant arrays
    that the plans before it have, but for at most ``share`` of the bytes (the constants that
    depend on the shape) (``plan_weights``)."""
    for k in range(first, len(plans)):
        buffers = set().union(*(b.keys() for b, _ in plans[:k]))
        arrays = set().union(*(a.keys() for _, a in plans[:k]))
        own_buffers, own_arrays = plans[k]
        new = sum(b.size for key, b in own_buffers.items() if key not in buffers)
        assert new <= share * sum(b.size for b in own_buffers.values())
        new = sum(n for key, n in own_arrays.items() if key not in arrays)
        assert new <= share * sum(own_arrays.values())
