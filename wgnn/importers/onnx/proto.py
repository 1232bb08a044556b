"""ONNX's protobuf messages, and the two readers the importer needs on every model (a tensor's
values, an attribute's value), without importing the onnx package.

``import onnx`` takes 0.65 s from a fresh process here, 0.55 s of it ml_dtypes (which its helpers
import, and which registers its types' loops with numpy slowly on numpy 2.4), most of what an ONNX
model's cold start pays before its first result. Its messages alone take 0.02 s: they are the onnx
package's own generated module (``onnx_ml_pb2``), loaded here from its folder. Protobuf keeps one
class per message type, so where the onnx package is (or is later) imported its ``ModelProto`` is
this module's and ``isinstance`` holds either way. What only some models need (operator schemas and
function bodies, external data, element types numpy lacks, building messages with ``onnx.helper``)
imports the onnx package when asked for (``full``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import numpy as np

_PRIVATE = "wgnn.importers.onnx._onnx_ml_pb2"


def _messages():
    """The module that holds ONNX's message classes: the onnx package where it is imported already,
    else its generated ``onnx_ml_pb2`` loaded by itself."""
    if "onnx" in sys.modules or _PRIVATE in sys.modules:
        return sys.modules.get(_PRIVATE) or full()
    try:
        spec = importlib.util.find_spec("onnx")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ImportError("reading ONNX models needs the onnx package: pip install onnx")
    path = next((p for p in (os.path.join(folder, "onnx_ml_pb2.py") for folder in spec.submodule_search_locations or ())
                 if os.path.isfile(p)), None)
    if path is None:  # (an unusual installation: the whole package, then)
        return full()
    spec = importlib.util.spec_from_file_location(_PRIVATE, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[_PRIVATE] = module
    return module


def full():
    """The onnx package itself (imported on first call)."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover
        raise ImportError("reading ONNX models needs the onnx package: pip install onnx") from exc
    return onnx


_pb = _messages()
ModelProto = _pb.ModelProto
GraphProto = _pb.GraphProto
NodeProto = _pb.NodeProto
AttributeProto = _pb.AttributeProto
TensorProto = _pb.TensorProto
TypeProto = _pb.TypeProto
FunctionProto = _pb.FunctionProto
ValueInfoProto = _pb.ValueInfoProto

# element type -> (numpy type, the typed field that holds values not stored as raw bytes); the
# other types (strings, bfloat16, the float8, float4, int4 and int2 families) go through onnx's
# own reader, which needs ml_dtypes for most of them
_PLAIN = {1: (np.float32, "float_data"), 2: (np.uint8, "int32_data"), 3: (np.int8, "int32_data"),
          4: (np.uint16, "int32_data"), 5: (np.int16, "int32_data"), 6: (np.int32, "int32_data"),
          7: (np.int64, "int64_data"), 9: (np.bool_, "int32_data"), 10: (np.float16, "int32_data"),
          11: (np.float64, "double_data"), 12: (np.uint32, "uint64_data"), 13: (np.uint64, "uint64_data")}


def to_array(tensor) -> np.ndarray:
    """A TensorProto's values as numpy holds them, as ``onnx.numpy_helper.to_array`` gives them
    (raw bytes read in place, little-endian; values in typed fields converted)."""
    plain = _PLAIN.get(tensor.data_type)
    if plain is None or tensor.HasField("segment") or tensor.data_location == TensorProto.EXTERNAL:
        return full().numpy_helper.to_array(tensor)
    dtype, field = plain
    dims = tuple(tensor.dims)
    if tensor.HasField("raw_data"):
        return np.frombuffer(tensor.raw_data, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype, copy=False) \
            .reshape(dims)
    values = getattr(tensor, field)
    if tensor.data_type == 10:  # float16: each value's bits in an int32
        return np.array(values, dtype=np.int32).astype(np.uint16).view(np.float16).reshape(dims)
    return np.array(values, dtype=np.int64 if field == "int32_data" else None).astype(dtype).reshape(dims)


_ATTRIBUTE_FIELDS = {1: "f", 2: "i", 3: "s", 4: "t", 5: "g", 11: "sparse_tensor", 13: "tp"}
_LIST_FIELDS = {6: "floats", 7: "ints", 8: "strings", 9: "tensors", 10: "graphs", 12: "sparse_tensors",
                14: "type_protos"}


def attribute_value(attr) -> Any:
    """An AttributeProto's value by its type, as ``onnx.helper.get_attribute_value`` gives it: a
    number, bytes or a message, or a list of them; None for an attribute of no type."""
    if attr.ref_attr_name:
        raise ValueError(f"attribute {attr.name!r} refers to the enclosing function's {attr.ref_attr_name!r}")
    if attr.type in _ATTRIBUTE_FIELDS:
        return getattr(attr, _ATTRIBUTE_FIELDS[attr.type])
    if attr.type in _LIST_FIELDS:
        return list(getattr(attr, _LIST_FIELDS[attr.type]))
    if attr.type == 0:
        return None
    raise ValueError(f"attribute {attr.name!r} has type {attr.type}, which ONNX does not define")


def make_graph(nodes, name: str, inputs=(), outputs=(), initializers=()):
    """A GraphProto of these messages (copied in), as ``onnx.helper.make_graph`` makes it."""
    return GraphProto(node=nodes, name=name, input=inputs, output=outputs, initializer=initializers)


def value_info(name: str, elem_type: int, shape=None):
    """A tensor's ValueInfoProto, as ``onnx.helper.make_tensor_value_info`` makes it: no shape where
    ``shape`` is None; a dimension an int (its size), a str (a symbolic one) or None (unknown)."""
    info = ValueInfoProto(name=name)
    tensor = info.type.tensor_type
    tensor.elem_type = elem_type
    if shape is not None:
        tensor.shape.SetInParent()
        for size in shape:
            dim = tensor.shape.dim.add()
            if isinstance(size, str):
                dim.dim_param = size
            elif size is not None:
                dim.dim_value = int(size)
    return info
