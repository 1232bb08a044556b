"""A small TFLite flatbuffer writer: models that LiteRT and wgnn both run, for the tests' one-op (or
few-op) models and ``wgnn fuzz --graphs``' random TFLite graphs.

The ``tflite`` package only reads models, so this writes the flatbuffer with ``flatbuffers.Builder``.
Each table's field slots and scalar types are read off the ``tflite`` reader's own accessors
(``self._tab.Offset(6)`` is slot 1; ``Get(Int32Flags, ...)`` an int32), so the schema is not
transcribed here.
"""

from __future__ import annotations

import inspect
import re
from functools import cache

import flatbuffers
import numpy as np
import tflite

TYPES = {"float32": tflite.TensorType.FLOAT32, "float16": tflite.TensorType.FLOAT16,
         "int32": tflite.TensorType.INT32, "int8": tflite.TensorType.INT8, "uint8": tflite.TensorType.UINT8,
         "int64": tflite.TensorType.INT64, "bool": tflite.TensorType.BOOL}


# Operators whose first version LiteRT no longer registers.
MIN_VERSIONS = {"BROADCAST_TO": 2}


class Ref:
    """An offset (vector, string or table) stored in a table field."""

    def __init__(self, offset: int):
        self.offset = offset


@cache
def _field(cls: type, name: str) -> tuple[int, str | None]:
    source = inspect.getsource(getattr(cls, name))
    slot = (int(re.search(r"Offset\((\d+)\)", source).group(1)) - 4) // 2
    kind = re.search(r"number_types\.(\w+)Flags, o \+ self\._tab\.Pos", source)
    return slot, kind.group(1) if kind else None


def table(b: flatbuffers.Builder, cls: type, **fields) -> int:
    """Write a table of ``cls`` (a tflite reader class) with the given fields (reader names)."""
    slots = {name: _field(cls, name) for name in fields}
    b.StartObject(max((s for s, _ in slots.values()), default=-1) + 1)
    for name, value in fields.items():
        slot, kind = slots[name]
        if isinstance(value, Ref):
            b.PrependUOffsetTRelativeSlot(slot, value.offset, 0)
        else:
            getattr(b, f"Prepend{kind}Slot")(slot, value, not value)  # always written
    return b.EndObject()


def vector(b: flatbuffers.Builder, values, dtype=np.int32) -> Ref:
    return Ref(b.CreateNumpyVector(np.asarray(values, dtype)))


def table_vector(b: flatbuffers.Builder, offsets: list[int]) -> Ref:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return Ref(b.EndVector())


class ModelWriter:
    """Tensors, operators and buffers of one subgraph; ``bytes()`` serialises the model."""

    def __init__(self):
        self.tensors: list[dict] = []
        self.buffers: list[bytes] = [b""]
        self.ops: list[dict] = []
        self.codes: list[tuple[int, str]] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def tensor(self, shape, dtype: str = "float32", data: np.ndarray | None = None, name: str = "",
               quant: tuple[np.ndarray, np.ndarray, int] | None = None, signature=None) -> int:
        """``quant``: (scales, zero points, quantized dimension) of an integer tensor; ``signature``:
        the shape with -1 for dynamic dimensions (shape_signature)."""
        buffer = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data, dtype).tobytes())
            buffer = len(self.buffers) - 1
        self.tensors.append({"shape": list(shape), "type": TYPES[dtype], "buffer": buffer,
                             "name": name or f"t{len(self.tensors)}", "quant": quant, "signature": signature})
        return len(self.tensors) - 1

    def const(self, data, dtype: str = "float32") -> int:
        data = np.asarray(data, dtype)
        return self.tensor(data.shape, dtype, data)

    def input(self, shape, dtype: str = "float32", signature=None, quant=None) -> int:
        index = self.tensor(shape, dtype, name=f"input_{len(self.inputs)}", signature=signature, quant=quant)
        self.inputs.append(index)
        return index

    def op(self, kind: str, inputs: list[int], out_shape, options: str | None = None, custom: bytes | None = None,
           out_dtype: str = "float32", out_signature=None, out_quant=None, **fields) -> int:
        """Add operator ``kind`` (a BuiltinOperator name, or a custom code with ``custom`` options);
        ``out_quant``: the output's (scales, zero points, quantized dimension)."""
        return self.op_outputs(kind, inputs, [out_shape], options, custom, [out_dtype], out_signature, out_quant,
                               **fields)[0]

    def op_outputs(self, kind: str, inputs: list[int], out_shapes, options: str | None = None,
                   custom: bytes | None = None, out_dtypes=None, out_signature=None, out_quant=None,
                   **fields) -> list[int]:
        """``op`` with several outputs (SPLIT, UNPACK, TOPK_V2): their shapes and dtypes."""
        code = (getattr(tflite.BuiltinOperator, kind, tflite.BuiltinOperator.CUSTOM), kind)
        if code not in self.codes:
            self.codes.append(code)
        dtypes = out_dtypes or ["float32"] * len(out_shapes)
        outs = [self.tensor(shape, dtype, signature=out_signature, quant=out_quant)
                for shape, dtype in zip(out_shapes, dtypes)]
        self.ops.append({"code": self.codes.index(code), "inputs": inputs, "outputs": outs, "options": options,
                         "fields": fields, "custom": custom})
        return outs

    def bytes(self, outputs: list[int]) -> bytes:
        self.outputs = outputs
        b = flatbuffers.Builder(1024)
        buffers = [table(b, tflite.Buffer, DataAsNumpy=vector(b, np.frombuffer(d, np.uint8), np.uint8)) if d
                   else table(b, tflite.Buffer) for d in self.buffers]
        tensors = []
        for t in self.tensors:
            name = Ref(b.CreateString(t["name"]))
            extra = {}
            if t["signature"] is not None:
                extra["ShapeSignatureAsNumpy"] = vector(b, t["signature"])
            if t["quant"] is not None:
                scales, zeros, axis = t["quant"]
                extra["Quantization"] = Ref(table(b, tflite.QuantizationParameters,
                                                  ScaleAsNumpy=vector(b, scales, np.float32),
                                                  ZeroPointAsNumpy=vector(b, zeros, np.int64),
                                                  QuantizedDimension=axis))
            tensors.append(table(b, tflite.Tensor, ShapeAsNumpy=vector(b, t["shape"]), Type=t["type"],
                                 Buffer=t["buffer"], Name=name, **extra))
        ops = []
        for o in self.ops:
            fields = {"OpcodeIndex": o["code"], "InputsAsNumpy": vector(b, o["inputs"]),
                      "OutputsAsNumpy": vector(b, o["outputs"])}
            if o["options"]:  # (a list value is a vector field: SqueezeDimsAsNumpy=[1])
                opts = table(b, getattr(tflite, o["options"]), **{k: vector(b, v) if isinstance(v, list) else v
                                                                   for k, v in o["fields"].items()})
                fields.update(BuiltinOptionsType=getattr(tflite.BuiltinOptions, o["options"]),
                              BuiltinOptions=Ref(opts))
            if o["custom"] is not None:
                fields["CustomOptionsAsNumpy"] = vector(b, np.frombuffer(o["custom"], np.uint8), np.uint8)
            ops.append(table(b, tflite.Operator, **fields))
        graph = table(b, tflite.SubGraph, Tensors=table_vector(b, tensors), InputsAsNumpy=vector(b, self.inputs),
                      OutputsAsNumpy=vector(b, outputs), Operators=table_vector(b, ops))
        codes = []
        for builtin, kind in self.codes:
            fields = {"DeprecatedBuiltinCode": min(builtin, 127), "BuiltinCode": builtin,
                      "Version": MIN_VERSIONS.get(kind, 1)}
            if builtin == tflite.BuiltinOperator.CUSTOM:
                fields["CustomCode"] = Ref(b.CreateString(kind))
            codes.append(table(b, tflite.OperatorCode, **fields))
        model = table(b, tflite.Model, Version=3, OperatorCodes=table_vector(b, codes),
                      Subgraphs=table_vector(b, [graph]), Buffers=table_vector(b, buffers))
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())
