"""Model-format importers: thin maps from a file format onto ``OpBuilder`` calls.

``load`` tells the formats apart by content (a TFLite flatbuffer carries the identifier ``TFL3``
at byte 4), so a file's extension does not matter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from ..graph import Graph


def _head(model: Any) -> bytes | None:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model[:8])
    if isinstance(model, (str, Path)) and Path(model).is_file():
        try:
            with open(model, "rb") as f:
                return f.read(8)
        except OSError as exc:
            raise ModelLoadError(f"cannot read model file {str(model)!r}: {exc}") from exc
    return None


def detect_format(model: Any) -> str:
    """"tflite" or "onnx" (the default, whose loader gives the precise error for anything else)."""
    from .tflite import TFL_IDENTIFIER

    head = _head(model)
    return "tflite" if head is not None and head[4:8] == TFL_IDENTIFIER else "onnx"


def load(model: Any, *, input_shapes: dict[str, tuple[int, ...]] | None = None,
         input_values: dict[str, Any] | None = None) -> tuple[Graph, int | None, str]:
    """(graph, ONNX opset or None, format) for an ONNX or TFLite model: path, bytes or ModelProto.
    ``input_values``: the values of the inputs an ONNX ``If`` branches on (``InputValuesNeeded``)."""
    if detect_format(model) == "tflite":
        from .tflite import load_model as load_tflite

        return load_tflite(model, input_shapes=input_shapes), None, "tflite"
    from .onnx import load_model as load_onnx

    graph, opset = load_onnx(model, input_shapes=input_shapes, input_values=input_values)
    return graph, opset, "onnx"
