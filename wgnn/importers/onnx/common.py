"""What the ONNX converters share: the registry (``converts``), ONNX's element types, and the
readers of attributes, padding and windows."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...builder import OpBuilder
from ...errors import GraphError, UnsupportedOperatorError
from ...graph import Operand
from .proto import to_array

Inputs = list[Operand | None]


Converter = Callable[[OpBuilder, Any, Inputs, dict], list[Operand] | Operand]


CONVERTERS: dict[str, Converter] = {}


# Ops whose converters take sequence values (a Python list of element operands, see _graph_input).
SEQUENCE_OPS = frozenset({"Identity", "Loop", "SequenceMap", "SequenceAt", "SequenceLength", "SequenceInsert",
                          "SequenceErase", "ConcatFromSequence", "Optional", "OptionalHasElement",
                          "OptionalGetElement"})


ONNX_DTYPES = {1: "float32", 10: "float16", 6: "int32", 7: "int64", 9: "bool", 11: "float64", 2: "uint8", 3: "int8",
               4: "uint16", 5: "int16", 12: "uint32", 13: "uint64", 21: "uint4", 22: "int4", 25: "uint2", 26: "int2"}


def converts(*op_types: str) -> Callable[[Converter], Converter]:
    def wrap(fn: Converter) -> Converter:
        for op in op_types:
            CONVERTERS[op] = fn
        return fn

    return wrap


def host_dtype(value: np.ndarray) -> np.ndarray:
    if value.dtype == np.float64:
        return value.astype(np.float32)
    return value


SHARED_TENSOR = "wgnn shared array "  # (a tensor whose bytes a ModelSource dropped: the digest follows)


def tensor_key(tensor) -> tuple:
    """What a TensorProto stored as raw bytes is shared by: its type, dims and the SHA-256 of its bytes."""
    marked = tensor.doc_string[len(SHARED_TENSOR):] if tensor.doc_string.startswith(SHARED_TENSOR) else ""
    if len(marked) == 64 and not tensor.raw_data and not marked.strip("0123456789abcdef"):
        return tensor.data_type, tuple(tensor.dims), bytes.fromhex(marked)
    return tensor.data_type, tuple(tensor.dims), hashlib.sha256(tensor.raw_data).digest()


def tensor_value(b: OpBuilder, tensor) -> np.ndarray:
    """A TensorProto's value, as the host keeps it. Where the import shares arrays with earlier
    imports of the model (``b.shared_arrays``, a session's ``ModelSource``), a tensor stored as raw
    bytes is found there by ``tensor_key``, so that every import holds the same read-only array
    (models that keep their weights in Constant nodes); the source's own copy of the model keeps
    only that key of such a tensor, once read."""
    shared = getattr(b, "shared_arrays", None)
    if shared is None or not (tensor.HasField("raw_data") or tensor.doc_string.startswith(SHARED_TENSOR)):
        return host_dtype(to_array(tensor))
    key = tensor_key(tensor)
    value = shared.get(key)
    if value is None:
        value = shared[key] = host_dtype(to_array(tensor))
        value.setflags(write=False)
    return value


class NodeInfo:
    def __init__(self, name: str, op_type: str, opset: int, outputs: int = 1):
        self.name, self.op_type, self.opset, self.outputs = name, op_type, opset, outputs

    def unsupported(self, detail: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(self.op_type, self.name, self.opset, detail)


def static(b: OpBuilder, node: NodeInfo, operand: Operand | None, what: str) -> np.ndarray | None:
    if operand is None:
        return None
    return b.require_static(operand, f"{node.op_type}'s {what}", node.name)


def static_scalar(b: OpBuilder, node: NodeInfo, operand: Operand | None, what: str, default=None):
    """The first value of an input known at compile time (a count, an axis, a length), or
    ``default`` where the input is absent or empty."""
    value = static(b, node, operand, what)
    return default if value is None or value.size == 0 else value.reshape(-1)[0]


def text(attrs: dict, key: str, default: str) -> str:
    """A string attribute (the onnx package gives bytes) or its default."""
    value = attrs.get(key, default)
    return value.decode() if isinstance(value, bytes) else value


def axis_pads(node: NodeInfo, attrs: dict, sizes, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(begin, end) padding of each spatial axis from ONNX pads / auto_pad."""
    auto = text(attrs, "auto_pad", "NOTSET")
    rank = len(sizes)
    if auto in ("NOTSET", ""):
        pads = list(attrs.get("pads", [0] * 2 * rank))
        if len(pads) != 2 * rank:
            raise node.unsupported(f"pads {pads} for {rank} spatial axes")
        return [(pads[k], pads[k + rank]) for k in range(rank)]
    if auto == "VALID":
        return [(0, 0)] * rank
    out = []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        out.append((small, large) if auto == "SAME_UPPER" else (large, small))
    return out


def spatial_pads(node: NodeInfo, attrs: dict, in_hw, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """WebNN-order padding (top, bottom, left, right) of a 2-D window."""
    (top, bottom), (left, right) = axis_pads(node, attrs, in_hw, kernel, strides, dilations)
    return top, bottom, left, right


def window(node: NodeInfo, x: Operand, attrs: dict, what: str, default_kernel) -> tuple[tuple, tuple, tuple]:
    """Kernel shape, strides and dilations of a 2-D convolution or pooling (4-D NCHW input only);
    ``default_kernel`` where the attribute may be left out (a convolution's filter shape)."""
    if x.rank != 4:
        raise node.unsupported(f"input of rank {x.rank}: only 2-D {what} (4-D NCHW tensors)")
    kernel = tuple(attrs["kernel_shape"] if default_kernel is None else attrs.get("kernel_shape", default_kernel))
    strides, dilations = tuple(attrs.get("strides", (1, 1))), tuple(attrs.get("dilations", (1, 1)))
    if default_kernel is not None and kernel != tuple(default_kernel):
        raise GraphError(f"{node.op_type} node {node.name!r}: kernel_shape {list(kernel)} differs from the weights' "
                         f"{list(default_kernel)}")
    for label, values, least in (("kernel_shape", kernel, 1), ("strides", strides, 1), ("dilations", dilations, 1),
                                 ("pads", tuple(attrs.get("pads", (0, 0, 0, 0))), 0)):
        if len(values) != (4 if label == "pads" else 2) or any(not isinstance(v, int) or v < least for v in values):
            raise GraphError(f"{node.op_type} node {node.name!r}: {label} {list(values)}: expected "
                             f"{4 if label == 'pads' else 2} integers of at least {least}")
    return kernel, strides, dilations


def lifts_1d(fn: Converter) -> Converter:
    """Run a 2-D convolution or pooling converter on a 3-D (N, C, L) input as (N, C, 1, L): 1-D ops
    become 2-D ones over a height of 1 (their weights too), and the result loses that axis again."""

    def wrapper(b, node, ins, attrs):
        x = ins[0]
        if x is None or x.rank != 3:
            return fn(b, node, ins, attrs)
        lifted = dict(attrs)
        for key in ("kernel_shape", "strides", "dilations", "output_padding", "output_shape"):
            if key in attrs:
                lifted[key] = [0 if key == "output_padding" else 1] + list(attrs[key])
        if "pads" in attrs:
            begin, end = attrs["pads"]
            lifted["pads"] = [0, begin, 0, end]
        ins = [b.unsqueeze(x, [2], name=node.name + "/2d")] + [
            b.unsqueeze(t, [2], name=f"{node.name}/w2d") if k == 1 and t is not None and t.rank == 3 else t
            for k, t in enumerate(ins[1:], start=1)]
        out = fn(b, node, ins, lifted)
        outs = out if isinstance(out, list) else [out]
        back = [b.squeeze(o, [2], name=f"{node.name}/1d{i}") for i, o in enumerate(outs)]
        return back if isinstance(out, list) else back[0]

    return wrapper


def transpose_pads(attrs: dict, sizes, kernel, strides, dil, out_pad) -> tuple[list[tuple[int, int]], list | None]:
    """((begin, end) cropping of each spatial axis, the output_shape asked for or None) of ONNX's
    ConvTranspose: from output_shape or auto_pad (the padding that gives that size) or pads."""
    rank = len(sizes)
    auto = text(attrs, "auto_pad", "NOTSET")
    target = attrs.get("output_shape")
    if target is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        target = [size * s for size, s in zip(sizes, strides)]
    if target is not None:
        target = list(target)[-rank:]
        pads = []
        for size, k, s, d, op, want in zip(sizes, kernel, strides, dil, out_pad, target):
            total = s * (size - 1) + op + (k - 1) * d + 1 - want
            pads.append((total // 2, total - total // 2) if auto == "SAME_UPPER" else (total - total // 2, total // 2))
        return pads, target
    if auto == "VALID":
        return [(0, 0)] * rank, None
    p = list(attrs.get("pads", [0] * 2 * rank))
    return [(p[k], p[k + rank]) for k in range(rank)], None


def legacy_nearest(scales) -> tuple[str, str]:
    """The nearest source pixel of Upsample and of Resize before opset 11 (which name no rounding),
    per spatial axis as ONNX Runtime picks it: rounded down where the axis grows, up where it
    shrinks."""
    return tuple("floor" if s >= 1 else "ceil" for s in scales)


def broadcast_to(b, x: Operand, shape, name: str) -> Operand:
    """``x`` broadcast with ``shape``, as x + 0 with zeros only as large as the broadcast dimensions
    (the element-wise kernel broadcasts)."""
    out = np.broadcast_shapes(x.shape, tuple(shape))
    lead = len(out) - x.rank
    zeros = [d if (k < lead or x.shape[k - lead] == 1) else 1 for k, d in enumerate(out)]
    return b.add(x, b.constant(np.zeros(zeros, x.dtype)), name=name)
