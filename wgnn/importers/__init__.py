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


class ModelSource:
    """A model that a session imports again for every new shape of its symbolic inputs (and value of
    the inputs an If reads). An ONNX model is read and parsed once, and its initializers converted
    once: every import shares those arrays (read-only), so the plans of one session hold one copy
    of the weights on the host. Where the parsed model is this source's own (the model came as a
    path or bytes), the initializers' bytes in it are dropped once converted. A TFLite model is
    imported from the model as given each time."""

    def __init__(self, model: Any):
        self.model = model
        self.format = detect_format(model)
        self._proto = None
        self._arrays: dict = {}

    @property
    def shared(self) -> set[int]:
        """The ids of the arrays every import shares."""
        return {id(a) for a in self._arrays.values()}

    def load(self, *, input_shapes: dict[str, tuple[int, ...]] | None = None,
             input_values: dict[str, Any] | None = None) -> tuple[Graph, int | None, str]:
        """As ``load(model, ...)``."""
        if self.format == "tflite":
            return load(self.model, input_shapes=input_shapes, input_values=input_values)
        from .onnx import load_model as load_onnx

        proto = self.proto()
        try:
            graph, opset = load_onnx(proto, input_shapes=input_shapes, input_values=input_values, arrays=self._arrays,
                                      as_read=True)
        finally:
            if self._proto is not self.model:
                self._drop_read_initializers()
        return graph, opset, "onnx"

    def proto(self):
        """The ONNX model as read, once (``load`` drops the bytes of the initializers it has read:
        their arrays are the ones kept)."""
        from .onnx import read_model

        if self._proto is None:
            self._proto = read_model(self.model)
        return self._proto

    def release(self) -> None:
        """Forget what was read: a later import reads the model as given again."""
        self._proto, self._arrays = None, {}

    def _drop_read_initializers(self) -> None:
        from .onnx.common import SHARED_TENSOR, tensor_key
        from .onnx.proto import ModelProto, TensorProto

        dropped = False
        for init in self._proto.graph.initializer:  # (by the array read: a message's ByteSize serializes it)
            if init.name in self._arrays and self._arrays[init.name].nbytes > 256:
                init.CopyFrom(TensorProto(name=init.name, dims=init.dims, data_type=init.data_type))
                dropped = True
        # A Constant node's tensor (what some models keep their weights in): its bytes give way to
        # the key its array is shared by, which the next import reads instead of hashing them again.
        for node in self._proto.graph.node:
            for attr in node.attribute if node.op_type == "Constant" else ():
                tensor = attr.t
                if attr.name != "value" or len(tensor.raw_data) <= 256:
                    continue
                key = tensor_key(tensor)
                if key in self._arrays:
                    tensor.CopyFrom(TensorProto(name=tensor.name, dims=tensor.dims, data_type=tensor.data_type,
                                                doc_string=SHARED_TENSOR + key[2].hex()))
                    dropped = True
        if dropped:  # a copy, so that the memory the bytes took (the parsed message's arena) goes too
            light = ModelProto()
            light.CopyFrom(self._proto)
            self._proto = light
