"""Running a batch too large for the adapter as several runs of a smaller one.

WebGPU binds at most ``max-storage-buffer-binding-size`` bytes of a buffer to one kernel (128 MiB
on lavapipe and in browsers by default) and allocates at most ``max-buffer-size`` bytes in one
buffer. A batch of images multiplies every tensor: MobileNet V2 at batch 32 has a 154 MB
intermediate. Where the model treats each sample of its batch alone, the session compiles it for
a part of the batch that fits and runs the parts one after another (``InferenceSession`` does, from
``TooLargeForAdapter``), giving what one run of the whole batch would. ``batch_axes`` decides
whether a model does treat its samples alone, from the graph imported at the whole batch; where it
cannot be sure it says which node stops it, and the session raises the size error with that reason.

A tensor is *batched* when one of its axes holds the samples: the model's inputs whose first
dimension is symbolic and fed at the batch's size (along axis 0), and what is computed from them by
operations that never combine two samples, the axis followed where they move it (convolutions,
pooling, element-wise operations, products whose batched operand keeps its rows or batch
dimension, reshapes and transposes that keep the axis whole, softmax and reductions over other
axes, ...). Anything else that reads a batched tensor (a reduction over the batch axis, a reshape
merging it with another, a slice or concat along it, a constant that differs per sample, an
operation this module does not know) makes the model non-separable. Every output must be batched;
the parts' outputs are joined along its batch axis.
"""

from __future__ import annotations

import numpy as np

from .graph import Graph, Node, Operand

# Operations that compute each position from the same position of their inputs, broadcasting
# (numpy's rules): batched if any input is; an unbatched input must not vary along the batch axis.
POINTWISE = {"binary", "where", "muladd", "logical_not", "activation", "float_class", "cast", "identity",
             "bitcast", "quantize_linear", "dequantize_linear"}
# Operations on NCHW images (input 0 batched, the rest weights): each sample's output from its own
# input, whatever the attributes, except pooling that also outputs indices (flat over the batch).
IMAGE = {"conv2d", "conv_transpose2d", "pool2d", "batch_normalization", "lrn", "resize", "depth_to_space"}
# Operations along one axis (attr ``axis``) that leave the other axes apart (layer_norm: along
# ``axis`` and every axis after it).
ALONG_AXIS = {"softmax", "layer_norm", "cumsum", "top_k", "arg_reduce"}


def _fits(t: Operand, out_rank: int, axis: int) -> bool:
    """Whether an unbatched ``t``, broadcast to ``out_rank`` dimensions (aligned from the right), has
    one value along the output's batch ``axis``."""
    k = axis - (out_rank - t.rank)
    return k < 0 or t.shape[k] == 1


def _prod(dims) -> int:
    return int(np.prod(dims, dtype=np.int64))


def _out_axis(node: Node, axes: dict[int, int], n: int) -> tuple[int | None, str | None]:
    """(the batch axis of ``node``'s outputs, None) when it keeps its samples apart, given the batch
    axis of each batched input (``axes``); else (None, why not). Only called for nodes with a
    batched input."""
    ins = [t for t in node.inputs if t is not None]
    b = [t for t in ins if id(t) in axes]
    u = [t for t in ins if id(t) not in axes]
    out = node.outputs[0]
    op, a = node.op, node.attrs
    first = axes[id(b[0])]
    if op in POINTWISE:
        at = {axes[id(t)] + out.rank - t.rank for t in b}
        if len(at) != 1:
            return None, "combines tensors batched along different axes"
        axis = at.pop()
        return (axis, None) if all(_fits(t, out.rank, axis) for t in u) else \
            (None, "combines each sample with a different constant")
    if op in IMAGE:
        if b != [node.inputs[0]] or first != 0 or len(node.outputs) != 1:
            return None, "reads a batched tensor other than its image, or outputs indices over the whole batch"
        return 0, None
    if op in ALONG_AXIS:
        along = a["axis"] % b[0].rank
        if along == first or (op == "layer_norm" and along < first):
            return None, "works along the batch axis"
        dropped = op == "arg_reduce" and not a.get("keepdims", True) and along < first
        return first - dropped, None
    if op == "reduce":
        if first in a["axes"]:
            return None, "reduces over the batch axis"
        return (first if a.get("keepdims", True) else first - sum(ax < first for ax in a["axes"])), None
    if op == "reshape":
        x = node.inputs[0]
        before = _prod(x.shape[:first])
        for k, d in enumerate(out.shape):
            if d == n and _prod(out.shape[:k]) == before:
                return k, None
        return None, "merges the batch axis with another"
    if op in ("transpose", "relayout"):
        return tuple(a["perm"]).index(first), None
    if op == "concat":
        if u or len({axes[id(t)] for t in b}) != 1 or a["axis"] % out.rank == first:
            return None, "concatenates along the batch axis, or with an unbatched tensor"
        return first, None
    if op == "slice":
        ok = (a["starts"][first], a["steps"][first], a["shape"][first]) == (0, 1, n)
        return (first, None) if ok else (None, "slices the batch axis")
    if op == "pad":
        pads = a["pads"]
        ok = pads[first] == 0 and pads[len(pads) // 2 + first] == 0
        return (first, None) if ok else (None, "pads the batch axis")
    if op == "gather":
        data, indices = node.inputs[:2]
        g = a["axis"] % data.rank
        if id(data) in axes and id(indices) not in axes and g != first:
            return (first if first < g else first + indices.rank - 1), None
        if id(data) not in axes and id(indices) in axes:
            return g + axes[id(indices)], None  # a table looked up per sample (embeddings)
        return None, "gathers along the batch axis"
    if op == "gather_elements":
        ok = not u and len({axes[id(t)] for t in b}) == 1 and a["axis"] % out.rank != first
        return (first, None) if ok else (None, "gathers along the batch axis")
    if op == "matmul":
        x, w = node.inputs[:2]
        extra = [t for t in node.inputs[2:] if t is not None and id(t) not in axes]  # a bias, say
        at = set()
        for t, rows in ((x, True), (w, False)):
            if id(t) not in axes:
                continue
            p = axes[id(t)]
            if p < t.rank - 2:  # a batch dimension of the product
                at.add(p + out.rank - t.rank)
            elif rows and p == t.rank - 2 and id(w) not in axes:
                at.add(out.rank - 2)
            elif not rows and p == t.rank - 1 and id(x) not in axes:
                at.add(out.rank - 1)
            else:
                return None, "contracts over the batch axis"
        if len(at) != 1:
            return None, "multiplies tensors batched along different axes"
        axis = at.pop()
        if axis < out.rank - 2 and not all(_fits(t, out.rank, axis) for t in u):
            return None, "multiplies each sample by a different constant matrix"
        if not all(_fits(t, out.rank, axis) for t in extra):
            return None, "adds a different constant to each sample"
        return axis, None
    if op == "det":
        return (first, None) if first < b[0].rank - 2 else (None, "works across the batch axis")
    return None, f"is a {op} node, which may combine samples"


def _sized_positions(node: Node, sized: dict[int, set[int] | None]) -> set[int] | None:
    """Which elements of ``node``'s output (a vector of sizes) hold the batch's size, given its
    inputs' (``sized``: positions, or None for every element): followed through the gathers,
    slices, concats, reshapes and casts that build a shape; any other op gives None."""
    x = node.inputs[0]
    pos = sized.get(id(x), set())
    if node.op in ("cast", "identity", "reshape") and all(id(t) not in sized for t in node.inputs[1:]):
        return pos
    if node.op == "gather" and x.rank == 1 and node.inputs[1].is_constant and id(node.inputs[1]) not in sized:
        if pos is None:
            return None
        idx = np.asarray(node.inputs[1].value).reshape(-1) % max(x.shape[0], 1)
        return {k for k, i in enumerate(idx) if int(i) in pos}
    if node.op == "slice" and x.rank == 1 and pos is not None:
        a = node.attrs
        return {k for k in range(a["shape"][0]) if a["starts"][0] + k * a["steps"][0] in pos}
    if node.op == "concat" and node.outputs[0].rank == 1:
        out, offset = set(), 0
        for t in node.inputs:
            p = sized.get(id(t), set())
            if p is None:
                return None
            out |= {offset + k for k in p}
            offset += t.shape[0]
        return out
    return None


def batch_axes(graph: Graph, batched_inputs: set[str], n: int) -> tuple[dict[str, int] | None, str | None]:
    """({output: the axis its samples lie along}, None) when ``graph`` (imported at batch ``n`` >= 2)
    computes each of the ``n`` samples of ``batched_inputs`` (along their axis 0) alone and every
    output holds the samples along one axis; else (None, the reason, naming the node).

    The shape of a batched tensor (a ``shape`` node) holds the batch's size: the elements computed
    from that one may only give a reshape its shape (imported at a part's batch, the reshape then
    treats each part as it treats the whole batch), never meet the data, where the batch's size
    would change what a sample computes (a mean over the batch written out, say)."""
    axes = {id(graph.inputs[name]): 0 for name in batched_inputs}
    sized: dict[int, set[int] | None] = {}  # vectors of sizes: which of their elements are the batch's
    for node in graph.nodes:
        ins = [t for t in node.inputs if t is not None]
        if any(sized.get(id(t), set()) != set() for t in ins):
            if node.op == "reshape" and all(sized.get(id(t), set()) == set() for t in node.inputs[:1]):
                pass  # the shape given to a reshape: its batched input is checked below
            elif any(id(t) in axes for t in ins):
                return None, f"{node.op} node {node.name!r} computes on the batch's size"
            else:
                for o in node.outputs:
                    sized[id(o)] = _sized_positions(node, sized)
                continue
        if not any(id(t) in axes for t in ins):
            continue  # constants, and what follows from them alone or from shapes of other axes
        if node.op == "shape":
            sized[id(node.outputs[0])] = {axes[id(node.inputs[0])]}
            continue
        axis, why = _out_axis(node, axes, n)
        if why is not None:
            return None, f"{node.op} node {node.name!r} {why}"
        axes.update((id(o), axis) for o in node.outputs if o.rank > axis and o.shape[axis] == n)
        if not all(id(o) in axes for o in node.outputs):
            return None, f"{node.op} node {node.name!r} gives an output without the batch axis"
    result = {}
    for name, out in graph.outputs.items():
        if id(out) not in axes:
            return None, f"output {name!r} is not computed per sample"
        result[name] = axes[id(out)]
    return result, None


def part_size(n: int, size: int, limit: int) -> int:
    """The batch of each part when a tensor of ``size`` bytes at batch ``n`` must fit in ``limit``
    (sizes grow with the batch): as few parts as fit, of sizes as even as can be (the last part is
    padded to the same size, so that one plan serves all)."""
    most = max(1, min(n - 1, n * limit // max(size, 1)))
    runs = -(-n // most)
    return -(-n // runs)
