"""A concat of neighbouring slices of one tensor reads that tensor (or one slice of it) instead.

YOLOv8's C2f blocks split a convolution's output in two along the channels and concatenate both
halves again, after the bottlenecks that read the second: Concat(Split(y)[0], Split(y)[1], m1, ...)
is Concat(y, m1, ...). Each half was a copy into its slice, and another into the concat; now the
first half is never made and y goes into the concat once (YOLOv8n: two dispatches fewer a block).
"""

from __future__ import annotations

from ..graph import Graph, Operand, fresh_name
from .patterns import sliced


def _part(operand: Operand, axis: int) -> tuple[Operand, int, int] | None:
    """(source, start, stop) when ``operand`` is a slice of a tensor along ``axis`` alone (step 1),
    else None."""
    node = operand.producer
    if node is None or node.op != "slice":
        return None
    source = node.inputs[0]
    starts, steps, shape = node.attrs["starts"], node.attrs["steps"], node.attrs["shape"]
    if any(st != 1 for st in steps) or any(k != axis and (starts[k] != 0 or shape[k] != source.shape[k])
                                          for k in range(source.rank)):
        return None
    return source, starts[axis], starts[axis] + shape[axis]


def merge_concat_slices(graph: Graph) -> int:
    merged = 0
    for concat in list(graph.nodes):
        if concat.op != "concat" or len(concat.inputs) < 2:
            continue
        axis = concat.attrs["axis"] % concat.inputs[0].rank
        inputs: list[Operand] = []
        k = 0
        while k < len(concat.inputs):
            first = _part(concat.inputs[k], axis)
            j = k + 1
            while first is not None and j < len(concat.inputs):
                nxt = _part(concat.inputs[j], axis)
                if nxt is None or nxt[0] is not first[0] or nxt[1] != first[2]:
                    break
                first = (first[0], first[1], nxt[2])
                j += 1
            if j - k < 2:
                inputs.append(concat.inputs[k])
                k += 1
                continue
            source, start, stop = first
            if (start, stop) == (0, source.shape[axis]):
                inputs.append(source)
            else:
                shape = list(source.shape)
                shape[axis] = stop - start
                part = Operand(fresh_name(source.name + "_parts"), tuple(shape), source.dtype)
                starts = [0] * source.rank
                starts[axis] = start
                graph.nodes.insert(graph.nodes.index(concat), sliced(source, part, starts, part.name))
                inputs.append(part)
            merged += 1
            k = j
        concat.inputs = inputs
        if len(inputs) == 1:  # the whole tensor again: remove_identity takes it from here
            concat.op, concat.attrs = "identity", {}
    if merged:
        graph.prune()
    return merged


def compose_slices(graph: Graph) -> int:
    """A slice of a slice is one slice of the first one's input: starts and steps composed (YOLOX's
    Focus takes every other row, then every other column of those, four times over; PP-PicoDet's
    heads split the channels that ``pad_conv_channels`` slices back from a padded convolution). The
    inner slice goes where nothing else reads it. The compute backend's: its slices take any steps."""
    composed = 0
    for node in list(graph.nodes):
        inner = node.inputs[0].producer if node.op == "slice" else None
        if (inner is None or inner.op != "slice" or set(inner.attrs) - {"zero_tail"} != {"starts", "steps", "shape"}
                or node.attrs.get("zero_tail")):
            continue  # (a zero_tail slice keeps its mark, an exact one the types it gives its result)
        steps = tuple(a * b for a, b in zip(inner.attrs["steps"], node.attrs["steps"]))
        starts = tuple(s0 + s1 * st0 for s0, s1, st0 in zip(inner.attrs["starts"], node.attrs["starts"],
                                                            inner.attrs["steps"]))
        node.inputs = [inner.inputs[0]]
        node.attrs = dict(node.attrs, starts=starts, steps=steps)
        composed += 1
    if composed:
        graph.prune()
    return composed
