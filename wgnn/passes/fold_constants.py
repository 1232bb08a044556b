"""Evaluate, once at compile time, every node whose inputs are all known: constants, initializers,
and shapes (every shape is static, so Shape -> Gather -> Concat chains and ConstantOfShape fold)."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Graph, Node, Operand

# A folded value at least this large, of one of these ops (whose references read only their inputs'
# values, the attributes and the output's type), is computed once for all of a session's plans
# (``Graph.derive``): a QDQ model's dequantized weights were folded, and hashed, again for every
# new input shape.
SHARED_BYTES = 1 << 20
SHARED_OPS = ("dequantize_linear", "cast", "binary")


def fold_constants(graph: Graph) -> int:
    folded = 0
    kept = []
    made: dict[int, Operand] = {}  # id(a folded node's output) -> its constant, which its readers read
    for node in graph.nodes:
        graph.substitute(node, made)
        known = node.op == "shape" or all(i is None or i.is_constant for i in node.inputs)
        if not known or node.op == "relayout":
            kept.append(node)
            continue
        for out, const in zip(node.outputs, evaluate(graph, node)):
            made[id(out)] = const
        folded += 1
    graph.substitute_outputs(made)
    graph.nodes = kept
    return folded


def fold(graph: Graph, node) -> list[Operand]:
    """Evaluate ``node``, whose inputs are all known, and make its readers read the constants it
    gives (returned); the caller drops the node from ``graph.nodes``."""
    consts = evaluate(graph, node)
    for out, const in zip(node.outputs, consts):
        graph.replace_uses(out, const)
    return consts


def evaluate(graph: Graph, node) -> list[Operand]:
    """The constants ``node``'s outputs are, its inputs all known."""
    args = [None if i is None else i.value for i in node.inputs]
    if node.op == "shape":
        args = [node.inputs[0]]  # the reference only needs .shape
    values = _shared(graph, node, args)
    consts = []
    for out, value in zip(node.outputs, values if values is not None else ops.get(node.op).reference(node, args)):
        # (as it is where it has the dtype already: a transposed or sliced view of a weight stays a
        # view of it, which the plans of other shapes then recognise, Graph.derive)
        value = value.astype(out.dtype, copy=False)
        if value.shape != out.shape:  # (the array itself where it has the shape: what _shared derived)
            value = value.reshape(out.shape)
        consts.append(Operand(out.name, out.shape, out.dtype, value=value))
    return consts


def _shared(graph: Graph, node, args: list) -> list[np.ndarray] | None:
    """``node``'s value made once for all the plans of a session (``SHARED_OPS``, a value of
    ``SHARED_BYTES`` or more, attributes that are plain values), else None (evaluate it here)."""
    if graph.arrays is None or node.op not in SHARED_OPS or len(node.outputs) != 1:
        return None
    out = node.outputs[0]
    if 4 * out.size < SHARED_BYTES:  # (its value's bytes, four a value: what the plans would hold and hash)
        return None
    key = (node.op, tuple(sorted(node.attrs.items())),
           tuple(None if i is None else (i.shape, i.dtype) for i in node.inputs), (out.shape, out.dtype))
    try:
        hash(key)
    except TypeError:  # (an attribute that is an array or a list)
        return None
    # small inputs (a scale, a zero point: made anew by each import) by their values, the rest as
    # the arrays they are (the session's, the same objects for every plan)
    args = [_Small(a) if isinstance(a, np.ndarray) and a.nbytes < SMALL_BYTES else a for a in args]
    return [graph.derive(_evaluate, key, *args)]


SMALL_BYTES = 4096


class _Small(tuple):
    """A small array as a hashable value: (dtype, shape, bytes)."""

    def __new__(cls, array: np.ndarray):
        return super().__new__(cls, (array.dtype.str, array.shape, np.ascontiguousarray(array).tobytes()))

    def array(self) -> np.ndarray:
        dtype, shape, data = self
        return np.frombuffer(data, dtype).reshape(shape)


def _evaluate(key: tuple, *args) -> np.ndarray:
    """What ``fold`` gives for the node that ``key`` describes (``_shared``), on ``args``."""
    op, attrs, ins, (shape, dtype) = key
    node = Node(op, [None if i is None else Operand("in", *i) for i in ins], [Operand("out", shape, dtype)],
                dict(attrs))
    values = [a.array() if isinstance(a, _Small) else a for a in args]
    return np.asarray(ops.get(op).reference(node, values)[0]).astype(dtype, copy=False).reshape(shape)
