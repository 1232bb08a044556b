"""Run a convolution over a single column as one over a single row.

A 1-D convolution exported as a 2-D one often puts its length on H and gives W a size of 1 (Keras'
and JAX's Conv1D through tf2onnx: a (k, 1) filter on an (L, 1) image). The compute path's
convolution kernels tile the output along W (8 or 16 pixels of a row per invocation, their input
loads shared across them), so on such a column all but one pixel of every tile is waste: Magika's
5x1 convolution of 256 -> 512 channels over 512 bytes ran at 1.3 GFLOP/s on lavapipe, a tenth of
what its row kernels do elsewhere.

Stored channels-last, an (N, C, L, 1) tensor and its (N, C, 1, L) transpose are the same bytes, and
a transpose is a view (it changes only the layout record): so the convolution reads its input
transposed, runs with H and W (filter, strides, dilations, padding) swapped, and its output is
transposed back, with no copy anywhere.
"""

from __future__ import annotations

from ..graph import Graph, Node, Operand, fresh_name

_SWAP = (0, 1, 3, 2)


def _transposed(x: Operand, name: str) -> tuple[Node, Operand]:
    n, c, h, w = x.shape
    out = Operand(fresh_name(name), (n, c, w, h), x.dtype)
    node = Node("transpose", [x], [out], {"perm": _SWAP}, name=out.name)
    out.producer = node
    return node, out


def columns_as_rows(graph: Graph) -> int:
    turned = 0
    for conv in list(graph.nodes):
        if conv.op != "conv2d":
            continue
        x, w, out = conv.inputs[0], conv.inputs[1], conv.outputs[0]
        if x.rank != 4 or x.shape[3] != 1 or x.shape[2] == 1 or w is None or not w.is_constant or w.shape[3] != 1:
            continue
        (sh, sw), (dh, dw), (pt, pl, pb, pr) = conv.attrs["strides"], conv.attrs["dilations"], conv.attrs["pads"]
        if pl or pr:
            continue  # an output wider than its one input column: leave it
        before, xt = _transposed(x, x.name + "_rows")
        inputs = [xt, Operand(fresh_name(w.name + "_rows"), w.shape[:2] + (1, w.shape[2]), w.dtype,
                              value=w.value.transpose(_SWAP))] + conv.inputs[2:]
        extra = []
        if len(inputs) > 3 and inputs[3] is not None and inputs[3].rank == 4:  # a fused residual
            r_node, inputs[3] = _transposed(inputs[3], inputs[3].name + "_rows")
            extra.append(r_node)
        n, o, oh, ow = out.shape
        yt = Operand(fresh_name(out.name + "_rows"), (n, o, ow, oh), out.dtype)
        after = Node("transpose", [yt], [out], {"perm": _SWAP}, name=out.name + "_columns")
        out.producer, yt.producer = after, conv
        conv.inputs, conv.outputs = inputs, [yt]
        conv.attrs = dict(conv.attrs, strides=(sw, sh), dilations=(dw, dh), pads=(pl, pt, pr, pb))
        at = graph.nodes.index(conv)
        graph.nodes[at:at + 1] = [before, *extra, conv, after]
        turned += 1
    return turned
