"""ONNX If: the branch its condition chooses, imported in place. Conditions known from shapes fold at
import; a condition on small inputs (Silero VAD's sample rate) compiles a plan per value fed; a
condition computed on the GPU runs in stages (refused by name inside a subgraph). Loop and Scan
unrolled, their trip counts and conditions known the same ways. Silero VAD's pretrained models (the
``silero-vad`` wheel) against ONNX Runtime CPU on recorded speech and noise."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import fetch_or_skip, recording

import wgnn
from wgnn.importers import load

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _branch(name, op, value, out):
    """A branch graph: ``out = op(x, value)`` on the outer graph's x."""
    const = numpy_helper.from_array(np.asarray(value, np.float32), f"{name}_c")
    node = helper.make_node(op, ["x", f"{name}_c"], [out], name=f"{name}_{op}")
    return helper.make_graph([node], name, [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], [const])


def _if_model(cond_nodes, inputs, opset=17):
    """y = If(cond, then: x + 1, else: x * 3), cond made by ``cond_nodes``; x is 2 x 3 floats."""
    node = helper.make_node("If", ["cond"], ["y"], name="pick", then_branch=_branch("then", "Add", 1, "t"),
                            else_branch=_branch("else", "Mul", 3, "e"))
    graph = helper.make_graph(cond_nodes + [node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])] + inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def test_if_on_a_shape_imports_the_branch_it_takes(device):
    """The condition follows from x's shape (Shape -> Gather -> Equal), so it folds at import: one
    plan, the then branch's Add compiled and the else branch's Mul not."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "k"], ["d"], axis=0),
             helper.make_node("Equal", ["d", "three"], ["cond"])]
    model = onnx.load_from_string(_if_model(nodes, []))
    model.graph.initializer.extend([numpy_helper.from_array(np.array(1, np.int64), "k"),
                                    numpy_helper.from_array(np.array(3, np.int64), "three")])
    session = wgnn.InferenceSession(model.SerializeToString())
    assert [n.attrs.get("kind") for n in session.source_graph.nodes] == ["add"]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], x + 1)


def test_if_on_an_input_value_compiles_a_plan_per_value(device):
    """A bool input chooses the branch: each value fed compiles its plan once, and both give ONNX
    Runtime's answer; until the first run the session describes the inputs as declared."""
    model = _if_model([], [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])])
    session = wgnn.InferenceSession(model)
    reference = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x", "cond"] and session.plans_compiled == 0
    assert session.value_inputs == {"cond": "bool"}
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    for cond in (True, False, True, False):
        feed = {"x": x, "cond": np.array(cond)}
        np.testing.assert_allclose(session.run(None, feed)[0], reference.run(None, feed)[0], rtol=1e-6)
    assert session.plans_compiled == 2
    with pytest.raises(wgnn.InputError, match="cond.*expected dtype bool, got int64"):
        session.run(None, {"x": x, "cond": np.array(1)})


def test_load_names_the_inputs_an_if_needs(device):
    """``load`` alone stops at such an If and names the input; given its value it imports the branch,
    and the graph still takes the input."""
    nodes = [helper.make_node("Equal", ["rate", "k16"], ["cond"])]
    model = onnx.load_from_string(_if_model(nodes, [helper.make_tensor_value_info("rate", TensorProto.INT64, [])]))
    model.graph.initializer.append(numpy_helper.from_array(np.array(16000, np.int64), "k16"))
    data = model.SerializeToString()
    with pytest.raises(wgnn.InputValuesNeeded, match=r"If node 'pick' needs the value.*\['rate'\]") as caught:
        load(data)
    assert caught.value.names == ("rate",)
    graph, _, _ = load(data, input_values={"rate": np.array(8000, np.int64)})
    assert set(graph.inputs) == {"x", "rate"} and [n.attrs.get("kind") for n in graph.nodes] == ["mul"]
    with pytest.raises(wgnn.ModelLoadError, match="input_values\\['rate'\\].*int64"):
        load(data, input_values={"rate": np.array(8000, np.int32)})


def test_if_on_a_computed_value_runs_in_stages(device):
    """A condition computed from a whole tensor (its sum) needs the GPU's answer before the branch is
    known: the session runs the sum as one stage, then the If compiled for the value it gives (a
    plan per value), both branches against ONNX Runtime. Inside a branch it is refused by name."""
    ort = pytest.importorskip("onnxruntime")
    nodes = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["cond"])]
    model = onnx.load_from_string(_if_model(nodes, []))
    model.graph.initializer.append(numpy_helper.from_array(np.array(0, np.float32), "zero"))
    session = wgnn.InferenceSession(model.SerializeToString())
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for feed in (x, -x, x):
        np.testing.assert_array_equal(session.run(None, {"x": feed})[0], ref.run(None, {"x": feed})[0])
    assert session.plans_compiled == 3  # the sum, and the If for each value of its condition
    outer = helper.make_node("If", ["c"], ["y"], name="outer", then_branch=model.graph, else_branch=model.graph)
    graph = helper.make_graph([outer], "o", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                                             helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    nested = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(wgnn.UnsupportedOperatorError, match=r"If.*'pick'.*computed on the GPU from input\(s\) \['x'\]"):
        wgnn.InferenceSession(nested).run(None, {"x": x, "c": np.array(True)})


def test_nested_if_in_the_branch_taken_adds_its_input(device):
    """The outer If branches on ``a``; the branch it takes holds an If on ``b``: the session learns
    of ``b`` on the first run and compiles per (a, b)."""
    inner = helper.make_node("If", ["b"], ["t"], name="inner", then_branch=_branch("t2", "Add", 10, "u"),
                             else_branch=_branch("e2", "Add", 20, "v"))
    then = helper.make_graph([inner], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    outer = helper.make_node("If", ["a"], ["y"], name="outer", then_branch=then,
                             else_branch=_branch("e", "Mul", 3, "e"))
    graph = helper.make_graph([outer], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                                             helper.make_tensor_value_info("a", TensorProto.BOOL, []),
                                             helper.make_tensor_value_info("b", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    session = wgnn.InferenceSession(model)
    x = np.ones((2, 3), np.float32)
    for a, b, want in ((True, False, 21), (True, True, 11), (False, True, 3), (False, False, 3)):
        got = session.run(None, {"x": x, "a": np.array(a), "b": np.array(b)})[0]
        np.testing.assert_array_equal(got, np.full((2, 3), want, np.float32))
    assert session.value_inputs == {"a": "bool", "b": "bool"}


# -- Silero VAD, pretrained, on recorded speech ------------------------------------------------------


def _stream(session, audio: np.ndarray, rate: int, with_rate: bool = True) -> np.ndarray:
    """Speech probabilities of ``audio`` in windows of 512 samples (256 at 8 kHz), each with the 64
    (32) samples before it, the LSTM state carried from window to window, as silero-vad feeds it."""
    size, context = (512, 64) if rate == 16000 else (256, 32)
    padded = np.concatenate([np.zeros(context, np.float32), audio])
    state, probabilities = np.zeros((2, 1, 128), np.float32), []
    for start in range(0, len(audio) - size + 1, size):
        feed = {"input": padded[start:start + context + size][None], "state": state}
        if with_rate:
            feed["sr"] = np.array(rate, np.int64)
        probability, state = session.run(None, feed)
        probabilities.append(probability.item())
    return np.array(probabilities)


def test_silero_vad_matches_onnxruntime_on_recorded_speech(device):
    """Silero VAD (its If chooses the 16 or 8 kHz network by the sr input) through one session at
    both rates: ONNX Runtime's probabilities within 1e-5 over whole recordings, state carried, and
    the voice found where there is one (not in the noise)."""
    path = str(fetch_or_skip("silero_vad"))
    session = wgnn.InferenceSession(path)
    reference = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for name, rate in (("Front_Center", 16000), ("Front_Center", 8000), ("Noise", 16000)):
        audio = recording(name, rate)
        got, want = _stream(session, audio, rate), _stream(reference, audio, rate)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        speech = int(np.sum(want > 0.5))
        assert (speech >= 20) if name != "Noise" else (speech == 0), (name, rate, speech)
        assert np.array_equal(got > 0.5, want > 0.5)
    assert session.plans_compiled == 2 and session.value_inputs == {"sr": "int64"}


def test_silero_vad_16k_export_folds_its_shape_conditions(device):
    """The 16 kHz export (opset 15): its three Ifs branch on shapes, which fold at import."""
    path = str(fetch_or_skip("silero_vad_16k_op15"))
    session = wgnn.InferenceSession(path)
    reference = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    audio = recording("Front_Center", 16000)[:16 * 512]
    np.testing.assert_allclose(_stream(session, audio, 16000), _stream(reference, audio, 16000), rtol=0, atol=1e-5)
    assert not session.value_inputs


def test_a_run_without_the_branching_input_is_refused_by_name(device):
    model = _if_model([], [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])])
    session = wgnn.InferenceSession(model)
    x = np.ones((2, 3), np.float32)
    with pytest.raises(wgnn.InputError, match=r"feed every input an If branches on \['cond'\] with its declared "
                                              r"dtype \(bool\)"):
        session.run(None, {"x": x})
    with pytest.raises(wgnn.InputError, match="cond"):
        session.run(None, {"x": x, "cond": np.array(1.0)})
    np.testing.assert_array_equal(session.run(None, {"x": x, "cond": np.array(False)})[0], x * 3)


def test_cli_run_of_a_model_with_an_if_on_an_input(tmp_path, capsys, device):
    """``wgnn run`` on such a model: without inputs, one line naming the input the If reads; with
    them (an .npz by name), a run checked against the numpy reference."""
    from wgnn import cli

    model = tmp_path / "if.onnx"
    model.write_bytes(_if_model([], [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]))
    with pytest.raises(SystemExit) as info:
        cli.main(["run", str(model)])
    assert "needs the values of ['cond']" in str(info.value) and "--input inputs.npz" in str(info.value)
    np.savez(tmp_path / "in.npz", x=np.ones((2, 3), np.float32), cond=np.array(False))
    assert cli.main(["run", str(model), "--input", str(tmp_path / "in.npz")]) == 0
    assert "check y against the numpy reference" in capsys.readouterr().out


# -- Loop and Scan, unrolled ---------------------------------------------------------------------

def _loop_model(trip_input: bool) -> bytes:
    """acc = x; for i in range(M): acc = acc * 0.5 + i (while i < 100, a condition known each step), and
    each step's acc + 1 scanned out. M is x's first dimension (Shape -> Gather), or an input."""
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["acc_in", "half"], ["h"]),
         helper.make_node("Add", ["h", "fi"], ["acc_out"]),
         helper.make_node("Add", ["acc_out", "one"], ["scan"]),
         helper.make_node("Less", ["i", "cap"], ["cond_out"])],  # (i < 100: known at each step)
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info(n, t, None) for n, t in (("cond_out", TensorProto.BOOL),
                                                               ("acc_out", TensorProto.FLOAT),
                                                               ("scan", TensorProto.FLOAT))],
        [numpy_helper.from_array(np.float32(0.5), "half"), numpy_helper.from_array(np.float32(1), "one"),
         numpy_helper.from_array(np.int64(100), "cap")])
    nodes = [] if trip_input else [helper.make_node("Shape", ["x"], ["s"]),
                                   helper.make_node("Gather", ["s", "zero"], ["m"], axis=0)]
    nodes.append(helper.make_node("Loop", ["m", "", "x"], ["acc", "steps"], name="loop", body=body))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])]
    if trip_input:
        inputs.append(helper.make_tensor_value_info("m", TensorProto.INT64, []))
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                                                   for n in ("acc", "steps")],
                              [numpy_helper.from_array(np.int64(0), "zero")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("trip_input", [False, True], ids=["trip_from_shape", "trip_an_input"])
def test_loop_unrolled_against_onnxruntime(device, trip_input):
    """A Loop's carried value and scan output, as ONNX Runtime computes them: the trip count from a
    shape (folded at import), or from a small int64 input (a plan per value fed, 0 steps too)."""
    model = _loop_model(trip_input)
    session = wgnn.InferenceSession(model)
    reference = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    trips = [3, 1, 3] if trip_input else [None]
    for m in trips:
        feeds = {"x": x} if m is None else {"x": x, "m": np.array(m, np.int64)}
        got, want = session.run(None, feeds), reference.run(None, feeds)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-6)
    if trip_input:
        assert list(session.value_inputs) == ["m"]


def test_loop_on_a_gpu_computed_trip_count_runs_in_stages(device):
    """A trip count computed from float data: the count is one stage, the Loop unrolled for its value
    the next (a plan per count), against ONNX Runtime."""
    ort = pytest.importorskip("onnxruntime")
    model = onnx.load_from_string(_loop_model(False))
    nodes = list(model.graph.node)
    nodes[:2] = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
                 helper.make_node("Cast", ["total"], ["m"], to=TensorProto.INT64)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    session = wgnn.InferenceSession(model.SerializeToString())
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for total in (3, 5):
        x = np.full((2, 3), total / 6, np.float32)
        for got, want in zip(session.run(None, {"x": x}), ref.run(None, {"x": x})):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-6)


def test_scan_unrolled_against_onnxruntime(device):
    """Scan (opset 16): a running sum over axis 1 read backwards, the states and the per-step
    outputs stacked along axis 1, as ONNX Runtime computes them."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]), helper.make_node("Mul", ["s_out", "two"], ["y_t"])],
        "body", [helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [3]),
                 helper.make_tensor_value_info("x_t", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("y_t", TensorProto.FLOAT, [3])],
        [numpy_helper.from_array(np.float32(2), "two")])
    node = helper.make_node("Scan", ["s0", "xs"], ["s", "ys"], name="scan", body=body, num_scan_inputs=1,
                            scan_input_axes=[1], scan_input_directions=[1], scan_output_axes=[1])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("s0", TensorProto.FLOAT, [3]),
                                            helper.make_tensor_value_info("xs", TensorProto.FLOAT, [3, 5])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("s", "ys")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)]).SerializeToString()
    rng = np.random.default_rng(3)
    feeds = {"s0": rng.standard_normal(3).astype(np.float32), "xs": rng.standard_normal((3, 5)).astype(np.float32)}
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = wgnn.InferenceSession(model).run(None, feeds)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def test_sequence_map_unrolled_against_onnxruntime(device):
    """SequenceMap over a split sequence and a tensor: the body (element * w + its row sums) once per
    element, the results a sequence concatenated back, as ONNX Runtime computes them."""
    body = helper.make_graph(
        [helper.make_node("Mul", ["e", "w"], ["m"]), helper.make_node("ReduceSum", ["e", "ax"], ["r"], keepdims=1),
         helper.make_node("Add", ["m", "r"], ["out"])],
        "body", [helper.make_tensor_value_info("e", TensorProto.FLOAT, None),
                 helper.make_tensor_value_info("w", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1], np.int64), "ax")])
    nodes = [helper.make_node("SplitToSequence", ["x"], ["seq"], axis=1),
             helper.make_node("SequenceMap", ["seq", "w"], ["mapped"], body=body),
             helper.make_node("ConcatFromSequence", ["mapped"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4]),
                                           helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    rng = np.random.default_rng(5)
    feeds = {"x": rng.standard_normal((2, 4)).astype(np.float32), "w": rng.standard_normal((2, 1)).astype(np.float32)}
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    got = wgnn.InferenceSession(model).run(None, feeds)[0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
