"""The numpy executor of the IR: the oracle for tests and the CPU column of benchmarks.

It runs each node's ``reference`` (float64 accumulation where it matters) in logical layout, so it
shares nothing with the GPU path but the graph itself.
"""

from __future__ import annotations

import numpy as np

from . import ops
from .errors import GraphError
from .graph import Graph


def run_reference(graph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Execute ``graph`` on the host; returns {output name: array}."""
    values: dict[int, np.ndarray] = {}
    for name, operand in graph.inputs.items():
        if name not in feeds:
            raise GraphError(f"missing input {name!r}")
        values[id(operand)] = np.asarray(feeds[name])
    for node in graph.nodes:
        args = []
        for operand in node.inputs:
            if operand is None:
                args.append(None)
            elif operand.is_constant:
                args.append(operand.value)
            else:
                args.append(values[id(operand)])
        for out, value in zip(node.outputs, ops.get(node.op).reference(node, args)):
            values[id(out)] = np.asarray(value).reshape(out.shape)
    return {name: (op.value if op.is_constant else values[id(op)]) for name, op in graph.outputs.items()}
