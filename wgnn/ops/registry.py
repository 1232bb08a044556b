"""The op registry: what each op *is*, with no knowledge of GPUs or backends.

An op is a class registered with ``@register("name")`` that defines:

- ``infer(node) -> list[(shape, dtype)]``: the output shapes, raising ``GraphError`` on bad input;
- ``reference(node, inputs) -> list[np.ndarray]``: the numpy oracle (logical layout);
- ``flops(node)`` (optional): its arithmetic, for the profiler;
- ``layout(node, perms)`` (optional): which physical axis order its inputs need and its outputs
  get (see ``wgnn.layout``); without it the op runs in any layout;
- ``traits``: what rewrite rules and the compile core ask about (``"fusable"``: takes a fused
  activation epilogue, ``"residual"``: takes a fused residual add, ``"view"``: output aliases its
  input's storage, ``"layout_free"``: runs in any physical layout, ``"wide_output"``: results may
  exceed f16's range, so they are stored in f32 in fp16 mode, ``"compile_time"``: always folded
  to a constant before a backend sees it).

How an op runs on a GPU is each backend's business (``wgnn.backends``): a backend registers one
lowering per op it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import GraphError
from ..graph import Node

REGISTRY: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        cls.name = name
        cls.traits = frozenset(getattr(cls, "traits", ()))
        REGISTRY[name] = cls
        return cls

    return wrap


def get(op: str) -> Any:
    try:
        return REGISTRY[op]
    except KeyError:
        raise GraphError(f"unknown IR op {op!r}") from None


def has_trait(node: Node, trait: str) -> bool:
    return trait in REGISTRY[node.op].traits


def fail(node: Node, message: str) -> GraphError:
    """An error that names the node and op; raise the result."""
    return GraphError(f"{node.op} node {node.name!r}: {message}")


def require_nchw(node: Node, x) -> None:
    """Raise unless ``x`` (an input of ``node``) is 4-D, as NCHW ops need."""
    if x.rank != 4:
        raise fail(node, f"expected a 4-D NCHW input, got shape {x.shape}")


def broadcast_shapes(node: Node, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise fail(node, f"shapes {', '.join(map(str, shapes))} do not broadcast") from None


def check_window(node: Node, strides, dilations, pads) -> None:
    """Raise unless strides and dilations are at least 1 and pads at least 0 (a convolution's or a
    pooling window's)."""
    if any(int(s) < 1 for s in strides) or any(int(d) < 1 for d in dilations) or any(int(p) < 0 for p in pads):
        raise fail(node, f"strides {list(strides)} and dilations {list(dilations)} must be at least 1, pads "
                         f"{list(pads)} at least 0")


def normalize_axis(node: Node, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise fail(node, f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def cost(node: Node, dispatches: int = 1) -> int:
    """Floating-point operations of one of the ``dispatches`` that run ``node`` (a multiply-add
    counts 2). An op's ``flops(node)`` gives its total; ops without one move data only."""
    opdef = REGISTRY[node.op]
    total = opdef.flops(node) if hasattr(opdef, "flops") else 0
    return total // max(dispatches, 1)



def _known(operand) -> np.ndarray | None:
    return operand.value if operand.value is not None else getattr(operand, "_static", None)


def static_value(operand) -> np.ndarray | None:
    """``operand``'s value if it follows from constants alone (evaluated with the ops' numpy
    references, and remembered on the operand), else None. One walk without recursion: it stops at
    the first graph input it meets (then the answer is None), visits each value once however many
    paths lead to it (a dynamic quantize's min, max and scale around every layer make diamonds
    all the way down), and goes as deep as the graph does."""
    known = _known(operand)
    if known is not None or operand.producer is None:
        return known
    expanded, finished, order = set(), set(), []
    stack = [(operand, False)]
    while stack:
        o, inputs_done = stack.pop()
        if _known(o) is not None:
            continue
        node = o.producer
        if node is None:
            return None  # a graph input
        if inputs_done:
            if id(node) not in finished:
                finished.add(id(node))
                order.append(node)
            continue
        if id(o) in expanded:
            continue
        expanded.add(id(o))
        stack.append((o, True))
        if node.op != "shape":  # a shape needs its input's shape only, known at build time
            stack.extend((i, False) for i in node.inputs if i is not None)
    for node in order:  # each after the producers of its inputs
        if node.op == "shape":
            values = [np.array(node.inputs[0].shape, np.int64)]
        else:
            values = REGISTRY[node.op].reference(node, [None if i is None else _known(i) for i in node.inputs])
        for out, value in zip(node.outputs, values):
            out._static = np.asarray(value)
    return operand._static
