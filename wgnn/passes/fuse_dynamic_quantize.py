"""DynamicQuantizeLinear of a small tensor in one dispatch (compute backend).

The builder writes DynamicQuantizeLinear over a whole tensor as ``dynamic_range`` (one workgroup
finds the scale and zero point) and ``quantize_linear`` (a pass over the tensor). Where the tensor
is small (an LSTM's hidden state, quantized at every step of a dynamically quantized recurrent
layer), the two become one ``dynamic_quantize`` node: the same workgroup quantizes what it
has just measured, with the quantize kernel's arithmetic, so the integers are the same. A range
per row (the state of a batch of sequences, quantized a row at a time) fuses where each row is
small, a workgroup a row.
"""

from __future__ import annotations

from ..graph import Graph, Node
from .patterns import Readers, made_by

# Elements one workgroup quantizes after finding their range, at most (64 per invocation at a
# workgroup of 64; a larger tensor keeps the quantize pass and its many workgroups). Chosen, not
# measured: on lavapipe the fusion is level either way (bench/results/
# 2026-12-03-lavapipe-dynamic-quantize-one-pass-ab.txt), its point a dependent dispatch fewer.
ONE_PASS = 4096


def fuse_dynamic_quantize(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for quantize in list(graph.nodes):
        if quantize.op != "quantize_linear" or quantize.attrs.get("range") is not None:
            continue
        x, scale, zero = quantize.inputs
        ranged = made_by(scale, "dynamic_range")
        # (a range two quantizes read is fused into the first: the second then finds no dynamic_range)
        rows = bool(ranged.attrs.get("rows")) if ranged is not None else False  # (a range a row)
        if (ranged is None or ranged.inputs[0] is not x or ranged.outputs[1] is not zero
                or x.size // (x.shape[0] if rows else 1) > ONE_PASS):
            continue
        node = Node("dynamic_quantize", [x], [quantize.outputs[0], scale, zero],
                    {"shifted": bool(quantize.attrs.get("shifted")), "rows": rows}, name=ranged.name)
        readers.substitute(graph, [quantize], ranged, node)
        fused += 1
    return fused
