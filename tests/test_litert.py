"""wgnn.litert: LiteRT's interpreter API on wgnn sessions, against LiteRT itself (ai-edge-litert), and
a package that imports tflite_runtime itself (openWakeWord) running on it unmodified."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest
from helpers import fetch_or_skip, recording, rel_l2

import wgnn
import wgnn.litert
from wgnn import mediapipe as mp

litert = pytest.importorskip("ai_edge_litert.interpreter")


def _both(path, **kwargs):
    return litert.Interpreter(model_path=str(path), **kwargs), wgnn.litert.Interpreter(model_path=str(path), **kwargs)


def _run(interpreter, *inputs):
    for d, x in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(d["index"], x)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


def _same_details(got: list[dict], want: list[dict]):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert set(g) == set(w) and set(g["quantization_parameters"]) <= set(w["quantization_parameters"])
        for key in ("name", "index", "dtype", "quantization"):
            assert g[key] == w[key], key
        for key in ("shape", "shape_signature"):
            np.testing.assert_array_equal(g[key], w[key])
            assert g[key].dtype == w[key].dtype, key
        for key in ("scales", "zero_points"):
            np.testing.assert_array_equal(g["quantization_parameters"][key], w["quantization_parameters"][key])


def test_the_interpreter_api_as_litert_answers_it(device):
    """MediaPipe's face detector through the interpreter API on a real photo: the details LiteRT
    gives, its outputs (within 1e-5 relative), an input written in place through ``tensor()``, and
    LiteRT's refusals of a wrong dtype or shape; what wgnn cannot do is said (other tensors than
    inputs and outputs, delegates, running before allocating)."""
    skimage = pytest.importorskip("skimage")
    path = fetch_or_skip("face_detection_short_range")
    want_it, got_it = _both(path)
    for it in (want_it, got_it):
        it.allocate_tensors()
    _same_details(got_it.get_input_details(), want_it.get_input_details())
    _same_details(got_it.get_output_details(), want_it.get_output_details())
    x, _ = mp.letterbox(skimage.data.astronaut(), (128, 128), (-1.0, 1.0))
    want = _run(want_it, x)
    got = _run(got_it, x)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype and rel_l2(g, w) < 1e-5
    index = got_it.get_input_details()[0]["index"]
    got_it.tensor(index)()[...] = x[:, ::-1]  # (mirrored, written in place)
    got_it.invoke()
    mirrored = _run(want_it, np.ascontiguousarray(x[:, ::-1]))
    assert rel_l2(got_it.tensor(got_it.get_output_details()[1]["index"])(), mirrored[1]) < 1e-5
    with pytest.raises(ValueError, match="Got value of type float64 but expected type float32"):
        got_it.set_tensor(index, x.astype(np.float64))
    with pytest.raises(ValueError, match="shape"):
        got_it.set_tensor(index, x[:, :64])
    with pytest.raises(ValueError, match="none of the model's inputs"):
        got_it.get_tensor(5)
    with pytest.raises(ValueError, match="inputs and outputs"):
        got_it.get_tensor_details()
    with pytest.raises(ValueError, match="delegate"):
        wgnn.litert.load_delegate("libedgetpu.so.1")
    fresh = wgnn.litert.Interpreter(model_content=path.read_bytes())
    with pytest.raises(ValueError, match="allocate_tensors"):
        fresh.set_tensor(index, x)
    with pytest.raises(RuntimeError, match="allocate_tensors"):
        fresh.invoke()
    for bad in (b"not a model at all", path.read_bytes()[:200]):
        with pytest.raises(wgnn.ModelLoadError, match="not a (valid )?TFLite model"):
            wgnn.litert.Interpreter(model_content=bad)
    with pytest.raises(ValueError, match="Could not open"):  # (ValueError, as LiteRT raises)
        wgnn.litert.Interpreter(model_path=str(path) + ".missing")


def test_resizing_inputs_as_litert_does(device):
    """openWakeWord's spectrogram leaves its samples dynamic: resized (strictly) to two lengths and
    back, it runs each on one session, compiling each length once, with LiteRT's results; the face
    detector's fixed batch resized to 2 (not strictly) runs on a session of its own, its computed
    tensors' stored shapes taken as placeholders as LiteRT takes them; a strict resize of a fixed
    dimension is refused."""
    path = fetch_or_skip("oww_melspectrogram_tflite")
    voice = (recording("Front_Center", 16000) * 32767)[:4000].astype(np.float32)
    want_it, got_it = _both(path)
    sessions = set()
    for n in (1280, 1760, 1280):
        for it in (want_it, got_it):
            it.resize_tensor_input(0, [1, n], strict=True)
            it.allocate_tensors()
        np.testing.assert_array_equal(got_it.get_input_details()[0]["shape"], [1, n])
        # the outputs' shapes as LiteRT gives them once allocated, before a run
        np.testing.assert_array_equal(got_it.get_output_details()[0]["shape"], want_it.get_output_details()[0]["shape"])
        want, got = _run(want_it, voice[None, :n]), _run(got_it, voice[None, :n])
        np.testing.assert_array_equal(got_it.get_output_details()[0]["shape"], want[0].shape)
        assert got[0].shape == want[0].shape and rel_l2(got[0], want[0]) < 1e-5
        sessions.add(id(got_it._session))
    assert len(sessions) == 1 and len(got_it._session._plans) == 2

    face = fetch_or_skip("face_detection_short_range")
    want_it, got_it = _both(face)
    for it in (want_it, got_it):
        with pytest.raises(RuntimeError, match="(?i)strict"):
            it.resize_tensor_input(0, [2, 128, 128, 3], strict=True)
    x = np.random.default_rng(0).random((2, 128, 128, 3), dtype=np.float32)
    for it in (want_it, got_it):
        it.resize_tensor_input(0, [2, 128, 128, 3])
        it.allocate_tensors()
    # the signatures of tensors the model gives none follow their shapes, inputs' and outputs' alike
    _same_details(got_it.get_input_details(), want_it.get_input_details())
    _same_details(got_it.get_output_details(), want_it.get_output_details())
    for g, w in zip(_run(got_it, x), _run(want_it, x)):  # (its reshapes to [1, -1, 16] take both images' anchors)
        assert g.shape == w.shape and w.shape[1] == 2 * 896 and rel_l2(g, w) < 1e-5


def test_openwakeword_runs_unmodified_on_wgnn_standing_in_for_litert(device):
    """openWakeWord 0.5.1's default framework (TFLite: tflite_runtime's interpreter, four models of
    its own, resized as it streams) on alsa-utils' recorded voice: on wgnn standing in for the
    interpreter, the embeddings and every frame's scores LiteRT gives through the same calls."""
    pytest.importorskip("openwakeword")
    voice = (recording("Front_Center", 16000) * 32767).astype(np.int16)

    def stream():
        for name in [n for n in sys.modules if n.startswith("openwakeword")]:
            del sys.modules[name]
        from openwakeword.model import Model

        np.random.seed(0)  # (openWakeWord starts its buffers with random noise)
        model = Model(wakeword_models=["hey_jarvis", "alexa"], inference_framework="tflite")
        scores = [model.predict(voice[i:i + 1280]) for i in range(0, len(voice) - 1280, 1280)]
        return scores, model.preprocessor.get_features(16), model

    saved = {name: sys.modules.get(name) for name in ("tflite_runtime", "tflite_runtime.interpreter")}
    package = types.ModuleType("tflite_runtime")
    package.__path__, package.interpreter = [], litert  # (LiteRT itself, under the name openWakeWord imports)
    sys.modules.update({"tflite_runtime": package, "tflite_runtime.interpreter": litert})
    try:
        want, want_features, _ = stream()
        before = wgnn.litert.install()
        try:
            got, features, model = stream()
        finally:
            wgnn.litert.uninstall(before)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for name in [n for n in sys.modules if n.startswith("openwakeword")]:
            del sys.modules[name]
    assert isinstance(model.preprocessor.melspec_model, wgnn.litert.Interpreter)
    assert all(isinstance(m, wgnn.litert.Interpreter) for m in model.models.values())
    assert features.shape == (1, 16, 96) and np.abs(want_features).max() > 10
    np.testing.assert_allclose(features, want_features, atol=1e-5 * np.abs(want_features).max())
    assert len(got) == len(want) > 10 and [sorted(g) for g in got] == [sorted(w) for w in want]
    np.testing.assert_allclose([list(g.values()) for g in got], [list(w.values()) for w in want], atol=1e-7)


def test_install_and_python_m_wgnn_litert(device, tmp_path):
    """install() gives both module names wgnn's interpreter, uninstall() puts back what was there;
    ``python -m wgnn.litert SCRIPT ARGS`` runs a script standing in from its first line."""
    before = wgnn.litert.install()
    try:
        import ai_edge_litert.interpreter as standing
        import tflite_runtime.interpreter as tflite

        assert tflite.Interpreter is standing.Interpreter is wgnn.litert.Interpreter
    finally:
        wgnn.litert.uninstall(before)
    import ai_edge_litert.interpreter as real

    assert real.Interpreter is not wgnn.litert.Interpreter
    script = tmp_path / "app.py"
    script.write_text("import sys\nimport tflite_runtime.interpreter as t\n"
                      "print(t.Interpreter.__module__, sys.argv[1:])\n")
    done = subprocess.run([sys.executable, "-m", "wgnn.litert", str(script), "a", "b"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "wgnn.litert ['a', 'b']"


def test_a_quantized_models_integers_through_the_interpreter(device):
    """A full-integer uint8 network (wgnn/tflite_writer.py): its quantized input and output details
    (scale, zero point, their parameters) as LiteRT gives them, uint8 in and out, within one step of
    LiteRT's integers."""
    from test_tflite_quant import conv, q

    from wgnn.tflite_writer import ModelWriter

    m = ModelWriter()
    x = m.input((1, 8, 8, 4), "uint8", quant=q(0.02, 128))
    h = conv(m, x, q(0.02, 128), (1, 8, 8, 8), q(0.05, 100), fused=1, dtype="uint8")
    model = m.bytes([conv(m, h, q(0.05, 100), (1, 8, 8, 8), q(0.1, 90), dtype="uint8")])
    want_it, got_it = litert.Interpreter(model_content=model), wgnn.litert.Interpreter(model_content=model)
    for it in (want_it, got_it):
        it.allocate_tensors()
    _same_details(got_it.get_input_details(), want_it.get_input_details())
    _same_details(got_it.get_output_details(), want_it.get_output_details())
    assert got_it.get_output_details()[0]["quantization"] == (np.float32(0.1), 90)
    feed = np.random.default_rng(0).integers(0, 256, (1, 8, 8, 4)).astype(np.uint8)
    (want,), (got,) = _run(want_it, feed), _run(got_it, feed)
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_signature_runners_as_litert_runs_them(device):
    """openWakeWord's spectrogram and embedding models carry a ``serving_default`` signature: its
    list, and its runner called by input name at two lengths (resized as given) and at a batch of
    windows, give LiteRT's outputs by name; a wrong or missing input name is refused as LiteRT
    refuses it, and a model without signatures (the face detector) names none."""
    voice = (recording("Front_Center", 16000) * 32767)[:4000].astype(np.float32)
    spectrogram = fetch_or_skip("oww_melspectrogram_tflite")
    want_it, got_it = _both(spectrogram)
    assert got_it.get_signature_list() == want_it.get_signature_list() == {
        "serving_default": {"inputs": ["input"], "outputs": ["output"]}}
    want_run, got_run = want_it.get_signature_runner(), got_it.get_signature_runner("serving_default")
    assert set(got_run.get_input_details()) == {"input"}
    _same_details([got_run.get_input_details()["input"]], [want_run.get_input_details()["input"]])
    for n in (1280, 3200):
        want, got = want_run(input=voice[None, :n]), got_run(input=voice[None, :n])
        assert set(got) == set(want) == {"output"}
        assert got["output"].shape == want["output"].shape and rel_l2(got["output"], want["output"]) < 1e-5
    with pytest.raises(ValueError, match="Invalid Input name"):
        got_run(samples=voice[None, :1280])
    with pytest.raises(ValueError, match="Invalid number of inputs"):
        got_run()
    embedding = fetch_or_skip("oww_embedding_tflite")
    windows = np.random.default_rng(0).standard_normal((3, 76, 32, 1)).astype(np.float32)
    (want,), (got,) = ([*r.get_signature_runner()(input_1=windows).values()] for r in _both(embedding))
    assert got.shape == want.shape and rel_l2(got, want) < 1e-5
    face = wgnn.litert.Interpreter(model_path=str(fetch_or_skip("face_detection_short_range")))
    assert face.get_signature_list() == {}
    with pytest.raises(ValueError, match="0 signatures"):
        face.get_signature_runner()
