"""Run each step of an LSTM layer, its recurrent product and its cell, as one pass.

After ``fuse_lstm_cell`` and ``fuse_residual`` a step of an unrolled LSTM is two dependent
dispatches: the product h_prev @ R^T with the step's input projection added as its residual, then
the ``lstm_cell`` that reads the product's four gate pre-activations. The ``lstm_step`` op computes
both: each hidden unit's four gates are four columns of R^T, so whoever computes a unit's gates can
apply the cell to them at once, and the pre-activations never reach memory. That halves the chain
of launches a recurrent layer waits on (ddddocr's recognizer: 28 steps of two directions, 112 -> 56
dispatches), which on a GPU are most of its time: every step's work is a few hundred values.

A dynamically quantized layer (ONNX Runtime's ``quantize_dynamic``, com.microsoft's
DynamicQuantizeLSTM) writes a step as the state's quantization, an integer product, the product of
the two scales, a multiply-add (sums times that scale, plus the input projection) and the cell: the
product, the scales' product and the multiply-add go into the step too (pre = sums * h_scale *
scale + p; the integer sums stay exact in f32, in any order, within the bound ``_exact_sums`` keeps),
three dispatches fewer a step.

Its state, quantized a step at a time (``dynamic_quantize``), is then written packed: q - 128 as
int8, four values to a word (attr words), which the step reads with the state's zero points (the
product of q - zero is that of q - 128 plus (128 - zero) times the weights' column sums, each
exact). A step then reads a quarter of the words of state it read as floats: on a software
adapter, where every load from a storage buffer is a loop over the SIMD lanes, the state's loads
took about 390 of the speaker embedder's 1014 ms at batch 9 (lavapipe, Mesa 22).

Products with other epilogues (an activation, a PRelu slope, heads) and weights that are not
constant (the kernel reads them interleaved by unit, packed when the model loads) keep their
dispatches.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name
from ..ops.quant import fits_int
from .patterns import Readers, live, made_by


def _product(pre: Operand, reader: Node, cell: Node, readers: Readers, *, exact: bool) -> Node | None:
    """The recurrent product that makes ``pre`` (``cell``'s pre-activations, or a quantized layer's
    sums before their scaling), read by ``reader`` alone, when the step kernel can compute it
    (``exact``: a quantized layer's integer sums, else a float product); else None."""
    mm = pre.producer
    if mm is None or mm.op != "matmul" or not readers.only(pre, reader) or pre.shape != cell.inputs[0].shape:
        return None
    a, r, bias, residual, slope = (mm.inputs + [None] * 5)[:5]
    batch, hidden = cell.outputs[0].shape
    if (slope is not None or bool(mm.attrs.get("exact")) != exact
            or any(mm.attrs.get(k) for k in ("activation", "heads", "requantize", "residual_after", "affine_after"))
            or a.shape != (batch, hidden) or not r.is_constant or r.shape != (hidden, 4 * hidden)
            or (bias is not None and not bias.is_constant)
            or (residual is not None and residual.shape != (batch, 4 * hidden))
            or "float" not in a.dtype or "float" not in r.dtype):
        return None
    return mm


def _dequantized(cell: Node, readers: Readers):
    """(the integer product, the state's scale, the weights' scale or None, the input projection,
    the nodes between) when ``cell``'s pre-activations are a quantized layer's sums * (h_scale *
    scale) + projection, each step read by the next alone; else None."""
    pre = cell.inputs[0]
    dequantize = made_by(pre, "muladd")
    if (dequantize is None or dequantize.attrs.get("activation") is not None or not readers.only(pre, cell)
            or len(dequantize.inputs) != 3):
        return None
    sums, s, proj = dequantize.inputs
    mm = _product(sums, dequantize, cell, readers, exact=True)
    if mm is None or proj.shape != pre.shape or len(mm.inputs) > 2:
        return None
    batch, width = pre.shape

    def state_scale(x: Operand) -> bool:  # the state quantized as a whole (one scale) or by batch rows
        return not x.is_constant and (x.size == 1 or x.shape == (batch, 1))

    dead, scale = [mm, dequantize], dequantize.attrs.get("scale")  # (fuse_muladd's: the weights' scale)
    scales = made_by(s, "binary", "mul") if scale is None else None
    if scales is not None and readers.only(s, dequantize):  # (made_by: a Mul without activation)
        for x, c in (scales.inputs, scales.inputs[::-1]):  # the weights' scale: one, or one per column
            if state_scale(x) and c.is_constant and (c.size == 1 or c.shape == (width,)):
                s, scale = x, c.value
                dead.append(scales)
                break
    if not state_scale(s):
        return None
    return mm, s, scale, proj, dead


def _packed_state(graph: Graph, step: Node, readers: Readers) -> None:
    """Where a quantized ``step``'s state is a ``dynamic_quantize`` of whole rows (its hidden size
    a multiple of 4) that only the step reads: the quantize writes it as words, the step reads
    those and the zero points (attr words)."""
    state, hidden = step.inputs[0], step.outputs[0].shape[1]
    quantize = made_by(state, "dynamic_quantize")
    if (quantize is None or quantize.outputs[0] is not state or not quantize.attrs.get("shifted")
            or hidden % 4 or not readers.only(state, step) or step.inputs[5] is not quantize.outputs[1]):
        return
    words = Operand(fresh_name(state.name + "_words"), state.shape[:-1] + (hidden // 4,), "uint32")
    zero = quantize.outputs[2]
    readers.substitute(graph, [], quantize, Node("dynamic_quantize", list(quantize.inputs),
                                                 [words] + quantize.outputs[1:], dict(quantize.attrs, words=True),
                                                 name=quantize.name))
    packed = Node("lstm_step", [words] + step.inputs[1:] + [zero], list(step.outputs), dict(step.attrs, words=True),
                  name=step.name)
    readers.substitute(graph, [], step, packed)


def fuse_lstm_step(graph: Graph) -> int:
    readers = Readers(graph)
    fused, byte_weights = 0, {}
    for cell in live(graph, "lstm_cell"):
        mm = _product(cell.inputs[0], cell, cell, readers, exact=False)
        if mm is not None:
            a, r, bias, residual = (mm.inputs + [None] * 4)[:4]
            inputs, attrs, dead = [a, r, bias, residual, cell.inputs[1], None], dict(cell.attrs), [mm]
        else:
            found = _dequantized(cell, readers)
            if found is None:
                continue
            mm, s, scale, proj, dead = found
            inputs = [mm.inputs[0], mm.inputs[1], None, proj, cell.inputs[1], s]
            r = mm.inputs[1]
            if id(r) not in byte_weights:  # (every step of a layer reads the same R^T)
                byte_weights[id(r)] = fits_int(r.value, 8)
            # byte_weights: R^T's integers fit int8 (quantize_dynamic's do), read a byte each, and
            # a packed state's dot4 variant can take the products four at a time
            attrs = dict(cell.attrs, scale=None if scale is None else np.asarray(scale, np.float32), quantized=True,
                         byte_weights=byte_weights[id(r)])
        step = Node("lstm_step", inputs, list(cell.outputs), attrs, name=cell.name)
        readers.substitute(graph, dead, cell, step)
        if attrs.get("quantized"):
            _packed_state(graph, step, readers)
        fused += 1
    return fused
