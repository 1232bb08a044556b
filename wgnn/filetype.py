"""What kind of content a file holds, by Magika's pretrained classifier on the GPU.

Magika (``zoo.fetch("magika")``, from the ``magika`` wheel) reads the first and the last 1024 bytes
of a file, each stripped of ASCII whitespace at the file's ends and padded with the token 256, and
gives the probabilities of 214 content types (``zoo.magika_labels()``: source languages, documents,
archives, images, executables, ...). ``features`` prepares those 2048 integers as the ``magika``
package does (its reading of at most 4096 bytes from each end); ``FileTypes.classify`` runs a
batch of files and returns each one's most likely type and its probability: the model's answer,
without the per-type confidence thresholds the ``magika`` package applies on top.

    from wgnn.filetype import FileTypes
    FileTypes().classify(["setup.py", "photo.jpg"])   # [("python", 0.99...), ("jpeg", 1.0)]
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import zoo

BEG, END, BLOCK, PADDING = 1024, 1024, 4096, 256


def features(data: bytes) -> np.ndarray:
    """The model's 2048 int32 inputs for a file's content: its first ``BEG`` bytes after leading
    whitespace, then its last ``END`` bytes before trailing whitespace, each taken from at most
    ``BLOCK`` bytes at that end, padded with ``PADDING`` (after the beginning, before the end)."""
    head = data[:BLOCK].lstrip()[:BEG]
    tail = data[-BLOCK:].rstrip()[-END:]
    out = np.full(BEG + END, PADDING, np.int32)
    out[:len(head)] = np.frombuffer(head, np.uint8)
    out[BEG + END - len(tail):] = np.frombuffer(tail, np.uint8)
    return out


def read_features(item: str | os.PathLike | bytes) -> np.ndarray:
    """``features`` of a file (only the ``BLOCK`` bytes at each end of a longer one are read) or of
    content given as bytes."""
    if isinstance(item, bytes):
        return features(item)
    path = Path(item)
    with open(path, "rb") as f:
        size = path.stat().st_size
        if size <= 2 * BLOCK:
            return features(f.read())
        head = f.read(BLOCK)
        f.seek(size - BLOCK)
        return features(head + f.read(BLOCK))


class FileTypes:
    """Magika's classifier in a wgnn session (``precision`` and ``device`` as for
    ``InferenceSession``)."""

    def __init__(self, *, precision: str = "fp32", device=None):
        from .session import InferenceSession

        self.labels = zoo.magika_labels()
        self.session = InferenceSession(str(zoo.fetch("magika")), precision=precision, device=device)

    def probabilities(self, items: list[str | os.PathLike | bytes]) -> np.ndarray:
        """The 214 probabilities of each of ``items`` (paths or contents), one row each."""
        if not items:
            return np.zeros((0, len(self.labels)), np.float32)
        batch = np.stack([read_features(item) for item in items])
        return self.session.run(None, {"bytes": batch})[0]

    def classify(self, items: list[str | os.PathLike | bytes]) -> list[tuple[str, float]]:
        """(content type, probability) of each of ``items``: the most likely type."""
        scores = self.probabilities(items)
        return [(self.labels[int(row.argmax())], float(row.max())) for row in scores]
