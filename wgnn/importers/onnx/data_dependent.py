"""ONNX operators whose output shape depends on their input values: NonZero, Compress, Unique,
NonMaxSuppression, ImageDecoder.

A static plan cannot hold them: how many elements they give is known only once their inputs are.
Where the inputs are known when compiling, the importer computes them then (``fold``). Otherwise an
``InferenceSession`` runs the model in stages (``wgnn.stages``): the GPU plan up to the node, the
node here on the host (its inputs read back), and a plan for the rest compiled per size of the
node's result. Each function follows the operator's ONNX definition (and ONNX Runtime's CPU
kernel where the definition leaves an order or a tie open) and takes the node's inputs (None for an
omitted optional one) and attributes, returning its outputs.
"""

from __future__ import annotations

import numpy as np

Arrays = list[np.ndarray | None]


def non_zero(inputs: Arrays, attrs: dict) -> list[np.ndarray]:
    """The indices of the non-zero elements, [rank, count], in row-major order."""
    x = inputs[0]
    if x.ndim == 0:
        return [np.zeros((0, int(x != 0)), np.int64)]
    return [np.array(np.nonzero(x), np.int64).reshape(x.ndim, -1)]


def compress(inputs: Arrays, attrs: dict) -> list[np.ndarray]:
    """The slices along ``axis`` (of the flattened input without one) whose condition is true; a
    condition shorter than the axis leaves the rest out."""
    x, condition = inputs[0], np.asarray(inputs[1]).astype(bool).reshape(-1)
    axis = attrs.get("axis")
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = int(axis) + (x.ndim if int(axis) < 0 else 0)
    if condition.size > x.shape[axis]:
        raise ValueError(f"the condition has {condition.size} elements, more than the {x.shape[axis]} of axis {axis}")
    return [np.compress(condition, x, axis=axis)]


def unique(inputs: Arrays, attrs: dict) -> list[np.ndarray]:
    """Y (the unique elements, or slices along ``axis``), the index of each one's first occurrence, the
    index in Y of each input element (or slice), and the counts; Y sorted ascending, or (sorted=0) in
    order of first occurrence."""
    x = inputs[0]
    axis = attrs.get("axis")
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = int(axis) + (x.ndim if int(axis) < 0 else 0)
    y, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=axis)
    inverse = inverse.reshape(-1)
    if not attrs.get("sorted", 1):
        order = np.argsort(first, kind="stable")  # by first occurrence
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        y, first, counts, inverse = np.take(y, order, axis=axis), first[order], counts[order], rank[inverse]
    return [y, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)]


def _corners(boxes: np.ndarray, center_point_box: int) -> tuple[np.ndarray, ...]:
    """(y_min, x_min, y_max, x_max) of each box, in the boxes' float type."""
    if center_point_box:
        xc, yc, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
        return yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2
    y1, x1, y2, x2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2), np.maximum(x1, x2)


def _suppresses(corners, areas, i: int, rest: np.ndarray, threshold) -> np.ndarray:
    """Whether box ``i``, selected, suppresses each box of ``rest``: intersection over union above the
    threshold, and never where the boxes do not overlap or either has no area."""
    y0, x0, y1, x1 = corners
    iy0, ix0 = np.maximum(y0[i], y0[rest]), np.maximum(x0[i], x0[rest])
    iy1, ix1 = np.minimum(y1[i], y1[rest]), np.minimum(x1[i], x1[rest])
    inter = (ix1 - ix0) * (iy1 - iy0)
    union = areas[i] + areas[rest] - inter
    overlap = (ix1 > ix0) & (iy1 > iy0) & (inter > 0) & (areas[i] > 0) & (areas[rest] > 0) & (union > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return overlap & (inter / np.where(union > 0, union, 1) > threshold)


def non_max_suppression(inputs: Arrays, attrs: dict) -> list[np.ndarray]:
    """[selected, 3] rows (batch, class, box): per batch and class, the boxes scoring above
    ``score_threshold`` from the highest score down (ties: the lower index first), each kept unless
    a box kept before it overlaps it by more than ``iou_threshold`` (intersection over union), at
    most ``max_output_boxes_per_class`` of them (none when absent or 0)."""
    boxes, scores = inputs[0].astype(np.float32), inputs[1].astype(np.float32)
    if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.ndim != 3 or scores.shape[0] != boxes.shape[0] \
            or scores.shape[2] != boxes.shape[1]:
        raise ValueError(f"boxes must be [batches, boxes, 4] and scores [batches, classes, boxes]; got {boxes.shape} "
                         f"and {scores.shape}")

    def scalar(i, default):
        value = inputs[i] if len(inputs) > i else None
        return default if value is None or value.size == 0 else value.reshape(-1)[0]

    limit = max(int(scalar(2, 0)), 0)
    iou = np.float32(scalar(3, 0))
    score_threshold = scalar(4, None)
    rows = []
    for b in range(boxes.shape[0]):
        corners = _corners(boxes[b], int(attrs.get("center_point_box", 0)))
        areas = (corners[2] - corners[0]) * (corners[3] - corners[1])
        for c in range(scores.shape[1]):
            s = scores[b, c]
            candidates = np.arange(s.size) if score_threshold is None else np.flatnonzero(s > score_threshold)
            order = candidates[np.argsort(-s[candidates], kind="stable")]  # stable: ties keep index order
            kept = []
            while order.size and len(kept) < limit:
                i, order = order[0], order[1:]
                kept.append(i)
                order = order[~_suppresses(corners, areas, i, order, iou)]
            rows += [(b, c, i) for i in kept]
    return [np.array(rows, np.int64).reshape(-1, 3)]


def image_decoder(inputs: Arrays, attrs: dict) -> list[np.ndarray]:
    """The image an encoded file (JPEG, PNG, BMP, TIFF, WebP, ... as bytes) holds, (H, W, 3) RGB or
    BGR, or (H, W, 1) grayscale, uint8: decoded by Pillow."""
    import io

    try:
        from PIL import Image
    except ImportError:
        raise ValueError("decoding images needs Pillow (pip install pillow, or wgnn[batch])") from None
    fmt = attrs.get("pixel_format", "RGB")
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    if fmt not in ("RGB", "BGR", "Grayscale"):
        raise ValueError(f"pixel_format {fmt!r} is not RGB, BGR or Grayscale")
    try:
        image = Image.open(io.BytesIO(np.asarray(inputs[0], np.uint8).tobytes()))
        image.load()
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the input's
        raise ValueError(f"the encoded image cannot be decoded ({type(exc).__name__}: {exc})") from None
    if fmt == "Grayscale":
        return [np.asarray(image.convert("L"), np.uint8)[:, :, None]]
    rgb = np.asarray(image.convert("RGB"), np.uint8)
    return [np.ascontiguousarray(rgb[:, :, ::-1]) if fmt == "BGR" else rgb]


# ONNX op -> (function, dtype of each output: "int64" or the input's, "x")
OPS = {
    "NonZero": (non_zero, ("int64",)),
    "Compress": (compress, ("x",)),
    "Unique": (unique, ("x", "int64", "int64", "int64")),
    "NonMaxSuppression": (non_max_suppression, ("int64",)),
    "ImageDecoder": (image_decoder, ("uint8",)),
}


def run(op_type: str, inputs: Arrays, attrs: dict, n_outputs: int) -> list[np.ndarray]:
    """The first ``n_outputs`` outputs of ``op_type`` on ``inputs``."""
    return OPS[op_type][0](inputs, attrs)[:n_outputs]


def output_dtypes(op_type: str, input_dtype: str) -> tuple[str, ...]:
    return tuple(input_dtype if t == "x" else t for t in OPS[op_type][1])
