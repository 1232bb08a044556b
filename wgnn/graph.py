"""The IR: operands (tensors), nodes and graphs, with shapes known at build time.

A graph is a list of nodes in topological order. Every operand has a static shape and a dtype;
constant operands carry their numpy value. Shapes are *logical* (ONNX/WebNN order, e.g. NCHW);
the physical layout on the GPU is chosen later, when the graph is planned (see ``wgnn.layout``).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError

DTYPES = ("float32", "float16", "int32", "int64", "bool", "int8", "uint8", "int16", "uint16", "uint32", "uint64",
          "int4", "uint4", "int2", "uint2")
FLOAT_DTYPES = ("float32", "float16")
SUB_BYTE = ("int4", "uint4", "int2", "uint2")  # numpy knows them once ml_dtypes is imported

# How each dtype is stored on the GPU. WGSL has no 64-bit, 8-bit, 16-bit integer or boolean storage:
# int64 and uint64 tensors live as i32 (their values must fit), bools as i32 0 or 1, the small integer types as
# i32 holding their value, and uint32 as i32 holding its bits (kernels read it back as u32).
STORAGE = {"float32": "f32", "float16": "f16", "int32": "i32", "int64": "i32", "bool": "i32",
           "int8": "i32", "uint8": "i32", "int16": "i32", "uint16": "i32", "uint32": "i32", "uint64": "i32",
           "int4": "i32", "uint4": "i32", "int2": "i32", "uint2": "i32"}
STORAGE_NUMPY = {"f32": np.float32, "f16": np.float16, "i32": np.int32}
I32 = np.iinfo(np.int32)
# The small integer types: (bits, signed). Integer arithmetic producing one wraps its i32 result to
# that many bits, as numpy and ONNX Runtime do.
NARROW = {"int8": (8, True), "uint8": (8, False), "int16": (16, True), "uint16": (16, False),
          "int4": (4, True), "uint4": (4, False), "int2": (2, True), "uint2": (2, False)}


def sub_byte_types() -> None:
    """Have numpy know int4, uint4, int2 and uint2, which ONNX uses (ml_dtypes registers them): on
    the first tensor of one, not on importing wgnn, since ml_dtypes 0.7 takes about 0.5 s to import
    on numpy 2 (registering its ufunc loops one by one). ONNX models pay that anyway: the onnx
    package imports it; TFLite models and built graphs do not."""
    import ml_dtypes  # noqa: F401


def is_integer(dtype: str) -> bool:
    """True for the dtypes stored as i32 (every integer type and bool)."""
    return STORAGE[dtype] == "i32"


def is_unsigned32(dtype: str) -> bool:
    """uint32: stored as i32 bits, computed on as u32."""
    return dtype == "uint32"


def storage_numpy(dtype: str) -> type:
    """The numpy type of ``dtype``'s GPU storage."""
    return STORAGE_NUMPY[STORAGE[dtype]]


def stored_nbytes(shape: tuple[int, ...], dtype: str) -> int:
    """Bytes of a tensor in its GPU storage type."""
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(storage_numpy(dtype)).itemsize


def to_storage(array: np.ndarray, dtype: str, what: str) -> np.ndarray:
    """``array`` (of ``dtype``) in its GPU storage type; ValueError when an int64 value does not fit
    in 32 bits. ``what`` names the tensor in that error."""
    if STORAGE[dtype] != "i32":
        return array
    if dtype == "uint32":
        return np.ascontiguousarray(array, np.uint32).view(np.int32)
    if array.dtype in (np.int64, np.uint64) and array.size and (array.min() < I32.min or array.max() > I32.max):
        bad = array[(array < I32.min) | (array > I32.max)].reshape(-1)[0]
        raise InputError(f"{what}: {array.dtype} value {int(bad)} does not fit in 32 bits; the GPU stores "
                         f"{array.dtype} tensors as i32")
    return array.astype(np.int32)


def from_storage(stored: np.ndarray, dtype: str) -> np.ndarray:
    """The host array of a ``dtype`` tensor read back from its GPU storage (a copy)."""
    if dtype == "uint32":
        return stored.view(np.uint32).copy()
    return stored.astype(dtype)


@dataclass(eq=False)
class Operand:
    """A tensor in the graph: a graph input, a constant, or the output of a node."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    value: np.ndarray | None = None  # set for constants
    producer: Node | None = None
    is_input: bool = False

    def __post_init__(self):
        if self.dtype in SUB_BYTE:
            sub_byte_types()

    @property
    def is_constant(self) -> bool:
        return self.value is not None

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def __repr__(self) -> str:
        kind = "const" if self.is_constant else ("input" if self.is_input else "value")
        return f"Operand({self.name!r}, {self.shape}, {self.dtype}, {kind})"


@dataclass(eq=False)
class Node:
    """One operation. ``attrs`` hold its attributes; ``inputs`` may contain None for absent optionals."""

    op: str
    inputs: list[Operand | None]
    outputs: list[Operand]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        # Lists of its own: a pass that makes a node of another's outputs (Node(op, shift.outputs, ...))
        # would otherwise see an edit of one node's inputs in place change the other's outputs.
        self.inputs, self.outputs = list(self.inputs), list(self.outputs)

    def __repr__(self) -> str:
        ins = ", ".join(i.name if i is not None else "-" for i in self.inputs)
        return f"Node({self.op} {self.name!r}: [{ins}] -> [{', '.join(o.name for o in self.outputs)}])"


class NodeList(list):
    """A graph's nodes: a list that also counts which nodes it holds, so that ``node in
    graph.nodes`` (which the rules ask of each node as they rewrite around it) is a lookup, not a
    walk of the graph. Every way a list changes keeps the count (a Node compares by identity)."""

    def __init__(self, nodes=()):
        super().__init__(nodes)
        self._held: dict[int, int] = {}
        self._count(self, 1)

    def _count(self, nodes, step: int) -> None:
        held = self._held
        for node in nodes:
            k = id(node)
            n = held.get(k, 0) + step
            if n:
                held[k] = n
            else:
                del held[k]

    def __contains__(self, node) -> bool:
        return id(node) in self._held

    def append(self, node) -> None:
        super().append(node)
        self._count((node,), 1)

    def extend(self, nodes) -> None:
        nodes = list(nodes)
        super().extend(nodes)
        self._count(nodes, 1)

    def __iadd__(self, nodes):
        self.extend(nodes)
        return self

    def insert(self, index, node) -> None:
        super().insert(index, node)
        self._count((node,), 1)

    def remove(self, node) -> None:
        super().remove(node)
        self._count((node,), -1)

    def pop(self, index=-1):
        node = super().pop(index)
        self._count((node,), -1)
        return node

    def clear(self) -> None:
        super().clear()
        self._held.clear()

    def __setitem__(self, index, value) -> None:
        old = self[index] if isinstance(index, slice) else [self[index]]
        new = list(value) if isinstance(index, slice) else [value]
        super().__setitem__(index, new if isinstance(index, slice) else value)
        self._count(old, -1)
        self._count(new, 1)

    def __delitem__(self, index) -> None:
        old = self[index] if isinstance(index, slice) else [self[index]]
        super().__delitem__(index)
        self._count(old, -1)

    def __reduce__(self):  # (a copy or a pickle counts its own nodes, not these ids)
        return NodeList, (list(self),)

    def __imul__(self, n):
        super().__imul__(n)
        self._held.clear()
        self._count(self, 1)
        return self


@dataclass(eq=False)
class Graph:
    """Nodes in topological order, named inputs and named outputs. A model's sequence values
    (ONNX's seq(tensor) inputs and outputs) are tensors named ``name[i]``: ``sequence_inputs`` and
    ``sequence_outputs`` map each sequence's name to its element tensors' names, in order.
    ``symbolic_dims``: for a model's inputs declared with symbolic (or unknown) dimensions, each
    dimension as declared: a size, the symbol's name, or None; the graph itself is built for one
    concrete shape of them."""

    nodes: list[Node]
    inputs: dict[str, Operand]
    outputs: dict[str, Operand]
    sequence_inputs: dict[str, list[str]] = field(default_factory=dict)
    sequence_outputs: dict[str, list[str]] = field(default_factory=dict)
    symbolic_dims: dict[str, tuple[int | str | None, ...]] = field(default_factory=dict)
    # where the graph is one of a session's plans: the arrays its plans share (``SharedArrays``),
    # through which a rewrite computes what it derives from a weight once for all of them (``derive``)
    arrays: SharedArrays | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value) -> None:
        if name == "nodes" and not isinstance(value, NodeList):  # (``node in graph.nodes``: a lookup)
            value = NodeList(value)
        super().__setattr__(name, value)

    def derive(self, fn: Callable[..., np.ndarray], *args) -> np.ndarray:
        """``fn(*args)``, an array computed from constants: computed anew, or the array an earlier
        plan of the session computed from the same arrays and other arguments while that plan's
        graph still holds it (``SharedArrays.derive``)."""
        return self.arrays.derive(fn, *args) if self.arrays is not None else fn(*args)

    def consumers(self) -> dict[int, list[Node]]:
        """Map ``id(operand)`` to the nodes that read it."""
        users: dict[int, list[Node]] = {}
        for node in self.nodes:
            for operand in node.inputs:
                if operand is not None:
                    users.setdefault(id(operand), []).append(node)
        return users

    def output_ids(self) -> set[int]:
        return {id(o) for o in self.outputs.values()}

    def replace_uses(self, old: Operand, new: Operand) -> None:
        """Make every reader of ``old`` (nodes and graph outputs) read ``new`` instead."""
        for node in self.nodes:
            if old in node.inputs:  # (by identity: Operand has no __eq__)
                node.inputs = [new if i is old else i for i in node.inputs]
        for key, value in self.outputs.items():
            if value is old:
                self.outputs[key] = new

    def substitute(self, node: Node, replaced: dict[int, Operand]) -> None:
        """Have ``node`` read ``replaced[id(x)]`` for each input ``x`` there: ``replace_uses`` for
        many operands in one walk of the graph, made in order (a rule that records what replaces
        what as it goes calls this on every node it reaches, then ``substitute_outputs``)."""
        if replaced and any(i is not None and id(i) in replaced for i in node.inputs):
            node.inputs = [_replacement(i, replaced) for i in node.inputs]

    def substitute_outputs(self, replaced: dict[int, Operand]) -> None:
        """The graph's outputs, as ``substitute`` does a node's inputs."""
        for key, value in self.outputs.items():
            if id(value) in replaced:
                self.outputs[key] = _replacement(value, replaced)

    def prune(self) -> None:
        """Drop nodes whose outputs nobody reads."""
        needed = self.output_ids()
        kept: list[Node] = []
        for node in reversed(self.nodes):
            if any(id(o) in needed for o in node.outputs):
                kept.append(node)
                needed.update(id(i) for i in node.inputs if i is not None)
        self.nodes = kept[::-1]

    def intermediates(self) -> list[Operand]:
        """Operands made by nodes that are not graph outputs."""
        outs = self.output_ids()
        return [o for n in self.nodes for o in n.outputs if id(o) not in outs]

    def copy(self) -> Graph:
        """A structural copy (new nodes and operands; constant arrays are shared, never mutated)."""
        mapping: dict[int, Operand] = {}

        def clone(operand: Operand | None) -> Operand | None:
            if operand is None:
                return None
            if id(operand) not in mapping:
                mapping[id(operand)] = Operand(operand.name, operand.shape, operand.dtype, operand.value,
                                               is_input=operand.is_input)
            return mapping[id(operand)]

        inputs = {k: clone(v) for k, v in self.inputs.items()}
        nodes = []
        for node in self.nodes:
            new = Node(node.op, [clone(i) for i in node.inputs], [clone(o) for o in node.outputs],
                       dict(node.attrs), node.name)
            for out in new.outputs:
                out.producer = new
            nodes.append(new)
        return Graph(nodes, inputs, {k: clone(v) for k, v in self.outputs.items()},
                     {k: list(v) for k, v in self.sequence_inputs.items()},
                     {k: list(v) for k, v in self.sequence_outputs.items()}, dict(self.symbolic_dims))

    def summary(self) -> str:
        lines = [f"Graph: {len(self.nodes)} nodes, inputs {list(self.inputs)}, outputs {list(self.outputs)}"]
        lines += [f"  {n!r}" for n in self.nodes]
        return "\n".join(lines)


def _replacement(operand: Operand | None, replaced: dict[int, Operand]) -> Operand | None:
    """What ``operand`` is replaced by, through any chain of replacements."""
    while operand is not None and id(operand) in replaced:
        operand = replaced[id(operand)]
    return operand


_counter = itertools.count()


def viewed(array: np.ndarray) -> np.ndarray:
    """The array whose memory ``array`` views (``array`` itself where it views no other array)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def freeze(array: np.ndarray) -> bool:
    """Make ``array`` and the array whose memory it views read-only, so that what is computed from
    it stays true; False (and nothing changed) where that memory belongs to another object, which
    may still write it."""
    root = viewed(array)
    if root.flags.writeable and not root.flags.owndata:
        return False
    root.setflags(write=False)
    array.setflags(write=False)
    return True


class SharedArrays:
    """The constant arrays of several graphs of one model held once (a session's plans, a graph per
    input shape, each through the passes on its own): ``share(graph)`` gives each constant of at
    least ``MIN_BYTES`` the array an earlier graph holds with the same dtype, shape and bytes (by
    SHA-256) where there is one, so that what the passes derive from the weights (batch norms
    folded in, channels padded, Winograd's transforms) takes the host's memory once, not once a
    plan. An array is held while a graph holds it."""

    MIN_BYTES = 4096

    def __init__(self):
        self._arrays: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._derived: dict[tuple, tuple[tuple[weakref.ref, ...], weakref.ref]] = {}  # key -> (sources, value)
        self._origins: dict[int, tuple[weakref.ref, tuple, tuple[weakref.ref, ...]]] = {}  # id(value) -> its key
        self._purge_at = 64

    def derive(self, fn: Callable[..., np.ndarray], *args) -> np.ndarray:
        """``fn(*args)``, an array computed from the arrays among ``args`` and the other, hashable
        ones alone, kept while a graph holds it: a plan after the first that derives it from the
        same arrays gets the same array, neither computed again nor hashed again when it is packed
        (``backends.compute.context.ConstantPool``). "The same arrays": the same objects, or arrays
        derived here the same way from the same objects (a chain of rewrites, say a batch norm
        folded into a convolution's weights and those padded: a plan's graph holds only the last,
        so the steps before it are computed again, but the last is found). Every array read, and
        the result, are read-only from then on; where one views memory that another object owns,
        nothing is kept."""
        parts, leaves = [], []
        for arg in args:
            if not isinstance(arg, np.ndarray):
                parts.append(arg)
                continue
            described = self._describe(arg)
            if described is None:
                return fn(*args)
            parts.append(described[0])
            leaves += described[1]
        key = (fn, tuple(parts))
        found = self._derived.get(key)
        if found is not None and len(found[0]) == len(leaves) and all(r() is a for r, a in zip(found[0], leaves)):
            kept = found[1]()
            if kept is not None:
                return kept
        value = fn(*args)
        if not freeze(value):
            return value
        if len(self._derived) >= self._purge_at:  # (forget what no graph holds any more)
            self._derived = {k: v for k, v in self._derived.items() if v[1]() is not None}
            self._origins = {k: v for k, v in self._origins.items() if v[0]() is not None}
            self._purge_at = 2 * max(len(self._derived), 32)
        refs = tuple(weakref.ref(a) for a in leaves)
        self._derived[key] = (refs, weakref.ref(value))
        self._origins[id(value)] = (weakref.ref(value), key, refs)
        return value

    def _describe(self, array: np.ndarray) -> tuple[tuple, list[np.ndarray]] | None:
        """What ``derive`` knows ``array`` by: how it was derived here (and the arrays it was derived
        from), else its identity; None where it cannot be frozen."""
        origin = self._origins.get(id(array))
        if origin is not None and origin[0]() is array:
            leaves = [ref() for ref in origin[2]]
            if all(a is not None for a in leaves):
                return ("derived", origin[1]), leaves
        if not freeze(array):
            return None
        root = viewed(array)
        if root is not array:  # a view (each plan folds its own view of the same weights): by what it views
            described = self._describe(root)
            if described is None:
                return None
            start = array.__array_interface__["data"][0] - root.__array_interface__["data"][0]
            return ("view", described[0], start, array.shape, array.strides, array.dtype.str), described[1]
        return ("array", id(array)), [array]

    def share(self, graph: Graph, held: set[int] = frozenset()) -> None:
        """``held``: ids of arrays to leave as they are (those every import shares already)."""
        known = {id(a) for a in self._arrays.values()} | held
        for operand in {id(o): o for n in graph.nodes for o in n.inputs if o is not None and o.is_constant}.values():
            value = operand.value
            if value.nbytes < self.MIN_BYTES or id(value) in known:
                continue
            key = (value.dtype.str, value.shape, hashlib.sha256(np.ascontiguousarray(value)).digest())
            kept = self._arrays.get(key)
            if kept is None:
                self._arrays[key] = value
                known.add(id(value))
            else:
                operand.value = kept
                origin = self._origins.get(id(value))
                if origin is not None and origin[0]() is value and id(kept) not in self._origins:
                    # (derived here: what derives it again is given the array the graphs hold)
                    self._derived[origin[1]] = (origin[2], weakref.ref(kept))
                    self._origins[id(kept)] = (weakref.ref(kept), origin[1], origin[2])


def fresh_name(prefix: str) -> str:
    return f"{prefix}_{next(_counter)}"
