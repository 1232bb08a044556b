"""Run each step of an LSTM layer, its recurrent product and its cell, as one pass.

After ``fuse_lstm_cell`` and ``fuse_residual`` a step of an unrolled LSTM is two dependent
dispatches: the product h_prev @ R^T with the step's input projection added as its residual, then
the ``lstm_cell`` that reads the product's four gate pre-activations. The ``lstm_step`` op computes
both: each hidden unit's four gates are four columns of R^T, so whoever computes a unit's gates can
apply the cell to them at once, and the pre-activations never reach memory. That halves the chain
of launches a recurrent layer waits on (ddddocr's recognizer: 28 steps of two directions, 112 -> 56
dispatches), which on a GPU are most of its time: every step's work is a few hundred values.

Products with other epilogues (an activation, a PRelu slope, heads), weights that are not constant
(the kernel reads them interleaved by unit, packed when the model loads) and quantized products
(``exact``: integer sums) keep their two dispatches.
"""

from __future__ import annotations

from ..graph import Graph, Node
from .patterns import Readers, live


def _product(cell: Node, readers: Readers) -> Node | None:
    """The recurrent product whose result is ``cell``'s pre-activations, read by the cell alone, when
    the step kernel can compute it; else None."""
    pre = cell.inputs[0]
    mm = pre.producer
    if mm is None or mm.op != "matmul" or not readers.only(pre, cell):
        return None
    a, r, bias, residual, slope = (mm.inputs + [None] * 5)[:5]
    batch, hidden = cell.outputs[0].shape
    if (slope is not None or any(mm.attrs.get(k) for k in ("activation", "heads", "exact", "requantize",
                                                          "residual_after", "affine_after"))
            or a.shape != (batch, hidden) or not r.is_constant or r.shape != (hidden, 4 * hidden)
            or (bias is not None and not bias.is_constant)
            or (residual is not None and residual.shape != (batch, 4 * hidden))
            or "float" not in a.dtype or "float" not in r.dtype):
        return None
    return mm


def fuse_lstm_step(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    for cell in live(graph, "lstm_cell"):
        mm = _product(cell, readers)
        if mm is None:
            continue
        a, r, bias, residual = (mm.inputs + [None] * 4)[:4]
        step = Node("lstm_step", [a, r, bias, residual, cell.inputs[1]], list(cell.outputs),
                    dict(cell.attrs), name=cell.name)
        readers.substitute(graph, [mm], cell, step)
        fused += 1
    return fused
