"""What each op is: shape rules, numpy references, traits, costs (``registry``), by family.

Nothing here imports wgpu, the runtime, the shaders or a backend: backends lower these ops.
"""

from __future__ import annotations

from ..graph import Node
from ..layout import identity
from . import activation, elementwise, indexing, nn, quant, reduce, resize, tensor, winograd  # noqa: F401  (fill REGISTRY)
from .registry import (
    REGISTRY,
    broadcast_shapes,
    cost,
    fail,
    get,
    has_trait,
    normalize_axis,
    register,
    require_nchw,
    static_value,
)

__all__ = ["REGISTRY", "broadcast_shapes", "cost", "fail", "get", "has_trait", "layout_requirements",
           "normalize_axis", "register", "require_nchw", "static_value"]


def layout_requirements(node: Node, perms: dict) -> tuple[list, list]:
    """What physical order each input of ``node`` must have (None: any) and what each output gets
    (``wgnn.layout.assign_layouts`` asks this of every node)."""
    opdef = get(node.op)
    if hasattr(opdef, "layout"):
        req, outs = opdef.layout(node, perms)
        req = [r if r != () else (identity(i.rank) if i is not None else None) for r, i in zip(req, node.inputs)]
        outs = [o if o != () else identity(t.rank) for o, t in zip(outs, node.outputs)]
        return req + [None] * (len(node.inputs) - len(req)), outs
    # Layout-free: follow the first input that has the output's full shape.
    out = node.outputs[0]
    follow = next((i for i in node.inputs if i is not None and i.shape == out.shape), None)
    perm = perms[id(follow)] if follow is not None else identity(out.rank)
    return [None] * len(node.inputs), [perm] * len(node.outputs)
