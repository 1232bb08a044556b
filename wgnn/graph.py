"""The IR: operands (tensors), nodes and graphs, with shapes known at build time.

A graph is a list of nodes in topological order. Every operand has a static shape and a dtype;
constant operands carry their numpy value. Shapes are *logical* (ONNX/WebNN order, e.g. NCHW);
the physical layout on the GPU is chosen later, when the graph is planned (see ``wgnn.layout``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPES = ("float32", "float16", "int32", "int64", "bool")


@dataclass(eq=False)
class Operand:
    """A tensor in the graph: a graph input, a constant, or the output of a node."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    value: np.ndarray | None = None  # set for constants
    producer: Node | None = None
    is_input: bool = False

    @property
    def is_constant(self) -> bool:
        return self.value is not None

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

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

    def __repr__(self) -> str:
        ins = ", ".join(i.name if i is not None else "-" for i in self.inputs)
        return f"Node({self.op} {self.name!r}: [{ins}] -> [{', '.join(o.name for o in self.outputs)}])"


@dataclass(eq=False)
class Graph:
    """Nodes in topological order, named inputs and named outputs."""

    nodes: list[Node]
    inputs: dict[str, Operand]
    outputs: dict[str, Operand]

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
            node.inputs = [new if i is old else i for i in node.inputs]
        for key, value in self.outputs.items():
            if value is old:
                self.outputs[key] = new

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
        return Graph(nodes, inputs, {k: clone(v) for k, v in self.outputs.items()})

    def summary(self) -> str:
        lines = [f"Graph: {len(self.nodes)} nodes, inputs {list(self.inputs)}, outputs {list(self.outputs)}"]
        lines += [f"  {n!r}" for n in self.nodes]
        return "\n".join(lines)


_counter = itertools.count()


def fresh_name(prefix: str) -> str:
    return f"{prefix}_{next(_counter)}"
