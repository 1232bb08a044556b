"""Pre- and post-processing for MediaPipe's vision models, so a caller gets boxes, masks and
landmarks rather than raw tensors.

- ``letterbox``: fit an image into a model's square input, keeping its aspect ratio (zero border),
  and the ``Letterbox`` record that maps model coordinates back to the image.
- BlazeFace/BlazePose detection: ``ssd_anchors`` (MediaPipe's SSD anchor layout), ``decode_detections``
  (boxes and keypoints relative to the anchors, sigmoid scores), ``weighted_nms`` (overlapping
  detections are averaged, weighted by score, rather than dropped).
- ``FaceDetector``, ``SelfieSegmenter``, ``FaceLandmarker`` and ``PoseLandmarker``: a model from
  ``wgnn.zoo.fetch`` run by an ``InferenceSession``, with the steps above around it.

Coordinates are normalised to [0, 1] of the image (x right, y down) unless a name says pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

# -- images ----------------------------------------------------------------------------------------


def to_float_rgb(image: np.ndarray) -> np.ndarray:
    """An HxWx3 float32 image in [0, 1] from uint8 or float input (alpha and grey handled)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"expected an HxWx3 (or 4) image, got shape {image.shape}")
    image = image[:, :, :3]
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32)


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Half-pixel bilinear resize of an HxWxC array (the sampling GPU texture units do)."""
    h, w = image.shape[:2]

    def axis(out: int, size: int):
        src = np.clip((np.arange(out) + 0.5) * (size / out) - 0.5, 0, size - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, size - 1)
        return lo, hi, (src - lo).astype(np.float32)

    y0, y1, fy = axis(height, h)
    x0, x1, fx = axis(width, w)
    top = image[y0][:, x0] * (1 - fx)[None, :, None] + image[y0][:, x1] * fx[None, :, None]
    bottom = image[y1][:, x0] * (1 - fx)[None, :, None] + image[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into a model input: ``scale`` (input pixels per image pixel, y and x)
    and the border added before the image on each axis, in input pixels."""

    image_size: tuple[int, int]  # (height, width)
    input_size: tuple[int, int]
    scale: tuple[float, float]
    pad_top: float
    pad_left: float

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Points normalised to the model input -> normalised to the image (last axis x, y)."""
        ih, iw = self.input_size
        h, w = self.image_size
        xy = np.asarray(xy, np.float64)
        x = (xy[..., 0] * iw - self.pad_left) / (self.scale[1] * w)
        y = (xy[..., 1] * ih - self.pad_top) / (self.scale[0] * h)
        return np.stack([x, y], axis=-1)

    @property
    def region(self) -> tuple[int, int, int, int]:
        """Where the image lies in the input: (top, left, height, width) in input pixels."""
        h, w = self.image_size
        return (int(self.pad_top), int(self.pad_left), round(self.scale[0] * h), round(self.scale[1] * w))


def fit(image_size: tuple[int, int], input_size: tuple[int, int], keep_aspect: bool = True) -> Letterbox:
    """How an image of ``image_size`` (height, width) is placed into a model input: centred at the
    largest scale that keeps its aspect ratio, or stretched over the whole input."""
    h, w = image_size
    ih, iw = input_size
    if not keep_aspect:
        return Letterbox((h, w), (ih, iw), (ih / h, iw / w), 0.0, 0.0)
    scale = min(ih / h, iw / w)
    rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
    top, left = (ih - rh) // 2, (iw - rw) // 2
    return Letterbox((h, w), (ih, iw), (rh / h, rw / w), float(top), float(left))


def letterbox(image: np.ndarray, size: tuple[int, int], value_range: tuple[float, float] = (0.0, 1.0)
              ) -> tuple[np.ndarray, Letterbox]:
    """A (1, H, W, 3) float32 model input holding the whole image, centred with a zero border, scaled
    to ``value_range``; and the ``Letterbox`` to map results back."""
    rgb = to_float_rgb(image)
    lb = fit(rgb.shape[:2], size)
    top, left, rh, rw = lb.region
    lo, hi = value_range
    canvas = np.full((*size, 3), lo, np.float32)  # the border is black in the model's range
    canvas[top:top + rh, left:left + rw] = resize_bilinear(rgb, rh, rw) * (hi - lo) + lo
    return canvas[None], lb


# -- SSD detection ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorSpec:
    """One detection model's anchors and decoding constants (MediaPipe's graph options)."""

    model: str
    input_size: int
    strides: tuple[int, ...]
    num_keypoints: int
    min_score: float
    interpolated_aspect: float = 1.0  # 0: one anchor per layer and cell
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    nms_threshold: float = 0.3
    value_range: tuple[float, float] = (-1.0, 1.0)


FACE_SHORT_RANGE = DetectorSpec("face_detection_short_range", 128, (8, 16, 16, 16), 6, 0.5)
FACE_FULL_RANGE = DetectorSpec("face_detection_full_range_sparse", 192, (4,), 6, 0.6, interpolated_aspect=0.0)
POSE = DetectorSpec("pose_detection", 224, (8, 16, 32, 32, 32), 4, 0.5, value_range=(-1.0, 1.0))


def ssd_anchors(spec: DetectorSpec) -> np.ndarray:
    """(N, 2) anchor centres, normalised. Layers with equal strides share one grid; each layer adds
    one anchor per cell, two when the interpolated aspect ratio is on. Anchor sizes are fixed at
    1, so only the centres matter."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        per_cell = 0
        last = layer
        while last < len(spec.strides) and spec.strides[last] == spec.strides[layer]:
            per_cell += 2 if spec.interpolated_aspect > 0 else 1
            last += 1
        grid = math.ceil(spec.input_size / spec.strides[layer])
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cells, per_cell, axis=0))
        layer = last
    return np.concatenate(centres).astype(np.float64)


@dataclass
class Detection:
    """A box (xmin, ymin, xmax, ymax), its score and keypoints ((K, 2) x, y), all normalised."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def pixels(self, height: int, width: int) -> np.ndarray:
        return self.box * np.array([width, height, width, height])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (xmin, ymin, xmax, ymax) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, spec: DetectorSpec,
                      anchors: np.ndarray | None = None, min_score: float | None = None) -> list[Detection]:
    """Detections above the score threshold from the raw model outputs ((1, N, C) boxes, (1, N, 1)
    logits). Box rows hold (dx, dy, w, h, kx0, ky0, ...) in input pixels relative to the anchor."""
    anchors = ssd_anchors(spec) if anchors is None else anchors
    raw = np.asarray(raw_boxes, np.float64).reshape(len(anchors), -1)
    logits = np.clip(np.asarray(raw_scores, np.float64).reshape(-1), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.nonzero(scores >= (spec.min_score if min_score is None else min_score))[0]
    size = float(spec.input_size)
    out = []
    for i in keep:
        cx, cy = raw[i, 0] / size + anchors[i, 0], raw[i, 1] / size + anchors[i, 1]
        w, h = raw[i, 2] / size, raw[i, 3] / size
        kp = raw[i, 4:4 + 2 * spec.num_keypoints].reshape(-1, 2) / size + anchors[i]
        out.append(Detection(np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]), float(scores[i]), kp))
    return out


def weighted_nms(detections: list[Detection], threshold: float) -> list[Detection]:
    """MediaPipe's weighted non-maximum suppression: the best remaining detection absorbs every one
    overlapping it by IoU > ``threshold``; its box and keypoints become their score-weighted mean."""
    remaining = sorted(detections, key=lambda d: -d.score)
    kept = []
    while remaining:
        best = remaining[0]
        overlaps = [iou(d.box, best.box) > threshold for d in remaining]
        group = [d for d, o in zip(remaining, overlaps) if o]
        remaining = [d for d, o in zip(remaining, overlaps) if not o]
        weights = np.array([d.score for d in group])
        box = np.sum([d.box * s for d, s in zip(group, weights)], axis=0) / weights.sum()
        kps = np.sum([d.keypoints * s for d, s in zip(group, weights)], axis=0) / weights.sum()
        kept.append(Detection(box, best.score, kps))
    return kept


def _session(model: str, session, **options):
    if session is not None:
        return session
    from . import zoo
    from .session import InferenceSession

    return InferenceSession(zoo.fetch(model), **options)


def _to_image(det: Detection, lb: Letterbox) -> Detection:
    corners = lb.to_image(det.box.reshape(2, 2)).reshape(-1)
    return Detection(corners, det.score, lb.to_image(det.keypoints) if det.keypoints.size else det.keypoints)


class FaceDetector:
    """BlazeFace: ``detect(image)`` -> faces as ``Detection`` (6 keypoints: eyes, nose, mouth, ears)."""

    def __init__(self, spec: DetectorSpec = FACE_SHORT_RANGE, *, session=None, **session_options):
        self.spec = spec
        self.session = _session(spec.model, session, **session_options)
        self.anchors = ssd_anchors(spec)
        self.input_name = self.session.get_inputs()[0].name

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        return letterbox(image, (self.spec.input_size,) * 2, self.spec.value_range)

    def postprocess(self, raw_boxes: np.ndarray, raw_scores: np.ndarray, lb: Letterbox) -> list[Detection]:
        found = decode_detections(raw_boxes, raw_scores, self.spec, self.anchors)
        return [_to_image(d, lb) for d in weighted_nms(found, self.spec.nms_threshold)]

    def detect(self, image: np.ndarray) -> list[Detection]:
        x, lb = self.preprocess(image)
        boxes, scores = self.session.run(None, {self.input_name: x})
        return self.postprocess(boxes, scores, lb)


class SelfieSegmenter:
    """``mask(image)``: per-pixel person probability at the image's size."""

    def __init__(self, model: str = "selfie_segmentation", *, session=None, **session_options):
        self.session = _session(model, session, **session_options)
        self.input_name = self.session.get_inputs()[0].name
        self.input_size = tuple(self.session.get_inputs()[0].shape[1:3])

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """The whole image stretched to the input, values in [0, 1] (as MediaPipe feeds it)."""
        rgb = to_float_rgb(image)
        return resize_bilinear(rgb, *self.input_size)[None].astype(np.float32)

    @staticmethod
    def postprocess(raw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The model's (1, h, w, 1) probabilities resized to ``size`` (height, width)."""
        prob = np.asarray(raw, np.float32).reshape(raw.shape[1], raw.shape[2], 1)
        return np.clip(resize_bilinear(prob, *size)[:, :, 0], 0.0, 1.0)

    def mask(self, image: np.ndarray) -> np.ndarray:
        (raw,) = self.session.run(None, {self.input_name: self.preprocess(image)})
        return self.postprocess(raw, np.asarray(image).shape[:2])


@dataclass
class Landmarks:
    """Landmark points (N, 3): x, y normalised to the image, z in the same scale as x; and the
    model's confidence that its subject is there. ``visibility``: per point, where the model gives it."""

    points: np.ndarray
    presence: float
    visibility: np.ndarray | None = None


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def decode_landmarks(raw: np.ndarray, values_per_point: int, input_size: int, lb: Letterbox) -> np.ndarray:
    """(N, values_per_point) rows in input pixels -> (N, 3) x, y in the image and z, normalised."""
    pts = np.asarray(raw, np.float64).reshape(-1, values_per_point)[:, :3] / input_size
    xy = lb.to_image(pts[:, :2])
    z = pts[:, 2] / (lb.scale[1] * lb.image_size[1] / lb.input_size[1])
    return np.column_stack([xy, z])


class FaceLandmarker:
    """Face mesh: 468 points for a face crop (ideally a detection's box enlarged by 25%)."""

    def __init__(self, *, session=None, **session_options):
        self.session = _session("face_landmark", session, **session_options)
        self.input_name = self.session.get_inputs()[0].name

    def landmarks(self, crop: np.ndarray) -> Landmarks:
        x, lb = letterbox(crop, (192, 192), (0.0, 1.0))
        points, flag = self.session.run(None, {self.input_name: x})
        return Landmarks(decode_landmarks(points, 3, 192, lb), float(_sigmoid(np.ravel(flag)[0])))


class PoseLandmarker:
    """BlazePose full: 33 body points (plus 6 auxiliary ones) with visibility, for a person crop."""

    def __init__(self, *, session=None, **session_options):
        self.session = _session("pose_landmark_full", session, **session_options)
        self.input_name = self.session.get_inputs()[0].name

    def landmarks(self, crop: np.ndarray) -> Landmarks:
        x, lb = letterbox(crop, (256, 256), (0.0, 1.0))
        outs = dict(zip([o.name for o in self.session.get_outputs()], self.session.run(None, {self.input_name: x})))
        raw = outs["Identity"].reshape(-1, 5)
        return Landmarks(decode_landmarks(raw[:33], 5, 256, lb), float(_sigmoid(np.ravel(outs["Identity_1"])[0])),
                         _sigmoid(raw[:33, 3]))
