"""Batch inference: one model over many images (or sentences), in one process or on a Ray Data
cluster, with one row per input written to a Parquet file.

    wgnn batch MODEL INPUTS --out results.parquet [--batch-size 16] [--ray [ADDRESS] --workers N]

INPUTS is a folder (every file in it, sorted), a glob, or a Parquet/CSV table with a ``path`` or a
``bytes`` column. Each input is decoded (Pillow) and pre-processed by a preset (``PRESETS``: the
zoo CNNs' ImageNet normalisation, MediaPipe's letterbox, or a plain resize to [0, 1]), the batches
run through one ``InferenceSession`` while the next batch is decoded on another thread, and each
input becomes a row: its index and path, an ``error`` (empty when it ran; a file that is not an
image is a row with the reason, never a crash), every output flattened (its shape in
``<output>__shape``), and for the face and pose detectors the decoded boxes in image pixels. A
rerun with the same ``--out`` skips the inputs already written there.

A text model (``zoo.PRETRAINED_TEXT``: all-MiniLM-L6-v2) takes sentences instead: INPUTS a ``.txt``
file (one per line) or a table with a ``text`` column. Each batch is tokenized together and padded
to a power of two of sentences and of tokens (so a session compiles a handful of shapes, not one per
batch), and each row holds the sentence's ``sentence_embedding``.

With ``--ray``, the same work is a Ray Data pipeline: ``ray.data.from_items`` of the inputs,
``map_batches`` with ``BatchPredictor`` (one session per actor, one actor per GPU where the cluster
has GPUs, else per worker), and the rows gathered in input order into the same Parquet file; the
results equal the single-process run's. Ray is an optional extra: ``pip install 'wgnn[ray]'``.
"""

from __future__ import annotations

import glob
import io
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Preset:
    """How an image becomes a model input: ``resize`` (letterbox keeps the aspect ratio, stretch
    does not), the value range or a per-channel mean/std on [0, 1] values, and the layout."""

    name: str
    letterbox: bool = False
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


PRESETS = {
    "imagenet": Preset("imagenet", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    "mediapipe": Preset("mediapipe", letterbox=True, value_range=(-1.0, 1.0)),
    "mediapipe01": Preset("mediapipe01", letterbox=True, value_range=(0.0, 1.0)),
    "unit": Preset("unit"),
    "paddle": Preset("paddle", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
}
# Detectors whose raw outputs are decoded into boxes (mediapipe.DetectorSpec by model name).
DETECTORS = ("face_detection_short_range", "face_detection_full_range_sparse", "pose_detection")


def prepare_image(image: np.ndarray, preset: Preset | str, size: tuple[int, int], *, channels_last: bool = False):
    """One image (HxWx3 or x4 uint8, or float in [0, 1]) as a model input of ``size`` (height,
    width) by ``preset``, without a batch axis: HWC if ``channels_last``, else CHW; and the
    ``mediapipe.Letterbox`` that maps results back to the image."""
    from . import mediapipe as mp

    p = PRESETS[preset] if isinstance(preset, str) else preset
    h, w = size
    if p.letterbox:
        x, lb = mp.letterbox(image, (h, w), p.value_range)
        x = x[0]
    else:
        lb = mp.fit(image.shape[:2], (h, w), keep_aspect=False)
        x = mp.resize_bilinear(mp.to_float_rgb(image), h, w)
        if p.mean is not None:
            x = (x - np.asarray(p.mean)) / np.asarray(p.std)
        else:
            lo, hi = p.value_range
            x = lo + x * (hi - lo)
        x = x.astype(np.float32)
    return (x if channels_last else x.transpose(2, 0, 1)), lb


def default_preset(model: str) -> str:
    from . import zoo

    if model in DETECTORS:
        return "mediapipe"
    if model in zoo.PRETRAINED:
        return "mediapipe01"
    if model in zoo.PRETRAINED_OCR:
        return "paddle"
    try:
        zoo.canonical(model)
        return "imagenet"
    except KeyError:
        return "unit"


def list_inputs(spec: str) -> list[dict]:
    """The inputs as rows {"index", "path"} (or "bytes" from a table's bytes column, "text" from a
    table's text column or a .txt file's lines, whose "path" is ``FILE#LINE``)."""
    path = Path(spec)
    if path.suffix.lower() == ".txt" and path.is_file():
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [{"index": i, "path": f"{spec}#{i + 1}", "text": line} for i, line in enumerate(lines)]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        return [{"index": i, "path": str(p)} for i, p in enumerate(files)]
    if path.suffix.lower() in (".parquet", ".csv") and path.is_file():
        import pyarrow.csv
        import pyarrow.parquet

        table = pyarrow.parquet.read_table(path) if path.suffix.lower() == ".parquet" else pyarrow.csv.read_csv(path)
        columns = table.column_names
        if "path" not in columns and "bytes" not in columns and "text" not in columns:
            raise ConfigError(f"{spec}: a table of inputs needs a 'path', 'bytes' or 'text' column, it has {columns}")
        rows = table.to_pylist()
        return [{"index": i, "path": str(r.get("path") or f"{spec}#{i}"),
                 **({"bytes": r["bytes"]} if r.get("bytes") is not None else {}),
                 **({"text": r["text"]} if "text" in columns else {})} for i, r in enumerate(rows)]
    files = sorted(glob.glob(spec, recursive=True))
    if not files:
        raise ConfigError(f"{spec}: no such folder, table (.parquet, .csv) or files matching the glob")
    return [{"index": i, "path": p} for i, p in enumerate(files)]


def _decode(row: dict) -> np.ndarray:
    from PIL import Image

    data = row.get("bytes")
    with Image.open(io.BytesIO(data) if data is not None else row["path"]) as image:
        return np.asarray(image.convert("RGB"))


class BatchPredictor:
    """One model session and its pre- and post-processing; called on a batch of rows ({"index",
    "path", ...} columns, as Ray Data's ``map_batches`` passes them), returns the result columns.
    Construct it once per worker: it opens the device and compiles the model."""

    def __init__(self, model: str, *, preset: str | None = None, precision: str | None = None,
                 backend: str = "compute"):
        from . import zoo
        from .session import InferenceSession

        self.model = model
        self.preset = PRESETS[preset or default_preset(model)]
        self.session = InferenceSession(zoo.resolve(model)[0], precision=precision, backend=backend)
        self.encoder = None
        self.detector = None
        if model in zoo.PRETRAINED_TEXT:
            from .text import SentenceEncoder

            self.encoder = SentenceEncoder(model, session=self.session)
            self.output_names = ["sentence_embedding"]
            return
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = list(inp.shape)
        self.channels_last = self.input_shape[-1] == 3
        self.size = tuple(self.input_shape[1:3] if self.channels_last else self.input_shape[2:4])
        if not all(isinstance(d, int) for d in self.size):
            raise ConfigError(f"{model}: its input's height and width are symbolic ({self.input_shape}); batch "
                              "needs a model with a fixed input size")
        self.batched = not isinstance(self.input_shape[0], int) or self.input_shape[0] != 1
        self.output_names = [o.name for o in self.session.get_outputs()]
        if model in DETECTORS:
            from . import mediapipe as mp

            spec = {s.model: s for s in (mp.FACE_SHORT_RANGE, mp.FACE_FULL_RANGE, mp.POSE)}[model]
            self.detector = mp.FaceDetector(spec, session=self.session)

    def preprocess(self, image: np.ndarray):
        """(model input for one image, without the batch axis; the letterbox, if any)."""
        return prepare_image(image, self.preset, self.size, channels_last=self.channels_last)

    def prepare(self, rows: list[dict]) -> list[tuple[dict, np.ndarray | None, object, str]]:
        """Decode and pre-process each row: (row, input or None, letterbox, error); for a text
        model the row's sentence is its input."""
        out = []
        for row in rows:
            if self.encoder is not None:
                text = row.get("text")
                ok = isinstance(text, str)
                out.append((row, text if ok else None, None, "" if ok else
                            "InputError: a text model takes sentences: a .txt file or a table with a 'text' column"))
                continue
            try:
                x, lb = self.preprocess(_decode(row))
                out.append((row, x, lb, ""))
            except Exception as exc:  # noqa: BLE001 - any undecodable input is that row's error
                out.append((row, None, None, f"{type(exc).__name__}: {exc}"))
        return out

    def run(self, prepared: list[tuple[dict, np.ndarray | None, object, str]]) -> list[dict]:
        """The model on the decoded inputs (one batch where the model's batch is symbolic), and one
        result row per input."""
        good = [k for k, (_, x, _, _) in enumerate(prepared) if x is not None]
        outputs: dict[int, list[np.ndarray]] = {}
        if good and self.encoder is not None:
            texts = [prepared[k][1] for k in good]
            texts += [""] * (_power_of_two(len(texts)) - len(texts))  # padding rows, dropped below
            embedding = self.encoder.encode(texts, batch_size=len(texts))
            for j, k in enumerate(good):
                outputs[k] = [embedding[j]]
        elif good and self.batched:
            stacked = np.stack([prepared[k][1] for k in good])
            results = self.session.run(None, {self.input_name: stacked})
            for j, k in enumerate(good):
                outputs[k] = [r[j] for r in results]
        else:
            for k in good:
                outputs[k] = [r[0] for r in self.session.run(None, {self.input_name: prepared[k][1][None]})]
        rows = []
        for k, (row, _, lb, error) in enumerate(prepared):
            result = {"index": int(row["index"]), "path": str(row["path"]), "error": error}
            for name, value in zip(self.output_names, outputs.get(k, [None] * len(self.output_names))):
                result[name] = None if value is None else np.asarray(value, np.float32).reshape(-1).tolist()
                result[name + "__shape"] = None if value is None else list(value.shape)
            if self.detector is not None:
                boxes = None
                if k in outputs:
                    raw = [o[None] for o in outputs[k]]
                    height, width = lb.image_size
                    boxes = [[*map(float, d.pixels(height, width)), float(d.score)]
                             for d in self.detector.postprocess(*raw, lb)]
                result["boxes"] = boxes
            rows.append(result)
        return rows

    def __call__(self, batch: dict) -> dict:
        """Ray Data's entry: a batch of columns in, the result columns out."""
        keys = list(batch)
        rows = [{key: batch[key][i] for key in keys} for i in range(len(batch[keys[0]]))]
        for row in rows:
            if "bytes" in row and row["bytes"] is not None and not isinstance(row["bytes"], bytes):
                row["bytes"] = bytes(row["bytes"])
            if "text" in row and row["text"] is not None:
                row["text"] = str(row["text"])
        results = self.run(self.prepare(rows))
        return {name: [r.get(name) for r in results] for name in results[0]} if results else {}


def _power_of_two(n: int) -> int:
    """The least power of two >= ``n``."""
    return 1 << max(n - 1, 0).bit_length()


def _done_indices(out: Path) -> tuple[list[dict], set[str]]:
    if not out.exists():
        return [], set()
    import pyarrow.parquet

    rows = pyarrow.parquet.read_table(out).to_pylist()
    return rows, {r["path"] for r in rows}


def _write(out: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet

    rows = sorted(rows, key=lambda r: r["index"])
    table = pa.Table.from_pylist(rows)
    tmp = out.with_name(out.name + ".part")
    pyarrow.parquet.write_table(table, tmp)
    os.replace(tmp, out)


def run_local(predictor: BatchPredictor, inputs: list[dict], batch_size: int, progress=None) -> list[dict]:
    """Batches through one session, the next batch decoded on a thread while the current one runs."""
    batches = [inputs[i:i + batch_size] for i in range(0, len(inputs), batch_size)]
    rows: list[dict] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(predictor.prepare, batches[0]) if batches else None
        for k in range(len(batches)):
            prepared = upcoming.result()
            upcoming = pool.submit(predictor.prepare, batches[k + 1]) if k + 1 < len(batches) else None
            rows += predictor.run(prepared)
            if progress is not None:
                progress.update(len(prepared))
    return rows


def run_ray(model: str, inputs: list[dict], *, batch_size: int, workers: int, address: str | None,
            preset: str | None, precision: str | None, backend: str) -> list[dict]:
    """The same work as a Ray Data pipeline: one ``BatchPredictor`` per actor."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError("--ray needs Ray Data: pip install 'wgnn[ray]' (or pip install 'ray[data]')") from None
    started = not ray.is_initialized()
    if started:
        kwargs = {"address": address} if address and address != "local" else {"num_cpus": max(workers, 1)}
        ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        ds = ray.data.from_items([{k: v for k, v in row.items()} for row in inputs])
        results = ds.map_batches(BatchPredictor, batch_size=batch_size, concurrency=workers,
                                 fn_constructor_kwargs={"model": model, "preset": preset, "precision": precision,
                                                        "backend": backend},
                                 batch_format="numpy", **resources)
        rows = results.take_all()
    finally:
        if started:
            ray.shutdown()
    clean = []
    for r in rows:  # Ray hands back numpy values: plain Python for Parquet
        clean.append({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()})
    return clean


def main(args) -> int:
    """The ``wgnn batch`` command (arguments as parsed by ``wgnn.cli``)."""
    from . import zoo

    try:
        import pyarrow  # noqa: F401
        from tqdm import tqdm
    except ImportError:
        raise ConfigError("wgnn batch needs pyarrow and tqdm: pip install 'wgnn[batch]'") from None
    if args.batch_size < 1 or args.workers < 1:
        raise ConfigError("--batch-size and --workers must be at least 1")
    if args.preset is not None and args.preset not in PRESETS:
        raise ConfigError(f"--preset must be one of {sorted(PRESETS)}, got {args.preset!r}")
    out = Path(args.out)
    inputs = list_inputs(args.inputs)
    done_rows, done = _done_indices(out)
    todo = [r for r in inputs if r["path"] not in done]
    print(f"{len(inputs)} inputs, {len(done)} already in {out}, {len(todo)} to run", file=sys.stderr)
    start = time.perf_counter()
    if args.ray is not None:
        rows = run_ray(args.model, todo, batch_size=args.batch_size, workers=args.workers, address=args.ray,
                       preset=args.preset, precision=args.precision, backend=args.backend) if todo else []
        where = f"Ray ({args.workers} worker{'s' if args.workers > 1 else ''})"
    else:
        predictor = BatchPredictor(args.model, preset=args.preset, precision=args.precision, backend=args.backend)
        with tqdm(total=len(todo), unit="img", file=sys.stderr, disable=None) as bar:
            rows = run_local(predictor, todo, args.batch_size, bar)
        where = f"one process on {predictor.session.device.name}"
    seconds = time.perf_counter() - start
    # earlier rows keep their index; new ones are numbered after them where the inputs changed
    _write(out, done_rows + rows)
    errors = sum(1 for r in rows if r["error"])
    rate = len(rows) / seconds if seconds > 0 else 0.0
    unit = "sentences" if args.model in zoo.PRETRAINED_TEXT else "images"
    print(f"{len(rows)} inputs in {seconds:.1f} s ({rate:.2f} {unit}/s, {where}); {errors} errors; "
          f"{len(done_rows) + len(rows)} rows in {out}")
    return 0
