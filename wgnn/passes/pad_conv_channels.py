"""Pad a convolution's channels to multiples of 4, so that the tiled kernels, which read and write
four channels as a vec4, run it instead of the scalar ``conv2d_generic``:

- input channels: the input padded with zeros (and the filter with zero input channels). A
  network's first layer (3 colour channels) is the case this is for; the pad is one cheap copy of
  the input image. Not where the matrix kernels read the input as it lies (``rows_in_fours``: one
  filter row whose KW x C values fall on vec4s): there the padding would only multiply the products
  (openWakeWord's spectrogram, a 1 x 512 filter over one channel of audio: 4x its multiply-adds).
- output channels: the filter, bias and PRelu slope padded with zero channels, the result sliced
  back to the channels the graph has (a fused residual padded to match: where it is itself a
  channel padding, as BlazeFace's blocks make theirs, that padding just grows). On lavapipe a 1x1
  convolution of 36 -> 42 channels goes from 5.4 ms on the scalar kernel to a fraction of that.
- a depthwise convolution's channels: its input padded, its filters too, the result sliced back.
- (``skip_zero_tail_slices``) a zero padding of such a slice, whose dropped channels hold zeros,
  reads the wide tensor instead.

``pad_matmul_columns`` does the same for a matrix product with constant B whose columns are not a
multiple of 4 (a classifier of 8210 characters, ddddocr's: 305 ms of its 410 on the scalar kernel,
lavapipe): B and the bias get zero columns, the vec4 kernels run it, and a slice drops the columns
again (a copy of the result, a fraction of the product). Only for results of ``MIN_PADDED``
values or more: a small one (MediaPipe's hand landmarks, 1 x 63) costs the scalar kernel less than
a dispatch more. Weights kept packed (``ops.quant.BlockWeights``) get zero columns of words too, so
the padded product still reads them packed.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name
from .patterns import channel_tail_pad, rows_in_fours, sliced

MIN_PADDED = 4096  # values of a product's result, at least, for pad_matmul_columns


def _channel_pad(x: Operand, extra: int, name: str) -> tuple[Node, Operand]:
    """A pad node giving ``x`` (N, C, ...) ``extra`` more channels of zeros at the end."""
    shape = (x.shape[0], x.shape[1] + extra) + x.shape[2:]
    wide = Operand(fresh_name(name), shape, x.dtype)
    pads = [0] * (2 * x.rank)
    pads[x.rank + 1] = extra  # the end of axis 1
    pad = Node("pad", [x], [wide], {"pads": tuple(pads), "mode": "constant", "value": 0.0}, name=wide.name)
    wide.producer = pad
    return pad, wide


def _zero_padded(graph: Graph, operand: Operand | None, extra: int, axis: int, tag: str) -> Operand | None:
    if operand is None:
        return None
    widths = [(0, 0)] * operand.rank
    widths[axis] = (0, extra)
    value = graph.derive(np.pad, operand.value, tuple(widths))
    return Operand(fresh_name(f"{operand.name}_{tag}"), value.shape, operand.dtype, value=value)


def _grown_channel_pad(residual: Operand, extra: int, read_once: set[int]) -> Operand | None:
    """``residual`` with ``extra`` more zero channels by growing the channel padding that makes it
    (a constant zero pad at the end of axis 1 only, read by nothing else), or None."""
    pad = residual.producer
    if channel_tail_pad(pad) is None or id(residual) not in read_once:
        return None
    r = residual.rank
    pads = list(pad.attrs["pads"])
    pads[r + 1] += extra
    shape = (residual.shape[0], residual.shape[1] + extra) + residual.shape[2:]
    wide = Operand(fresh_name(residual.name + "_o4"), shape, residual.dtype)
    pad.attrs = dict(pad.attrs, pads=tuple(pads))
    pad.outputs = [wide]
    wide.producer = pad
    return wide


def pad_conv_channels(graph: Graph) -> int:
    padded = 0
    users, outputs = graph.consumers(), graph.output_ids()
    read_once = {key for key, readers in users.items() if len(readers) == 1 and key not in outputs}
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.op == "conv2d" and node.attrs["groups"] == 1 and node.inputs[1].is_constant:
            x, w = node.inputs[0], node.inputs[1]
            extra = -x.shape[1] % 4
            # (input channels alone where the output's are in fours, as before; else where the
            # output channels get padded next, which float convolutions do)
            unpadded = _float_conv(node) and rows_in_fours(node)  # (its products read x as it lies)
            if extra and not unpadded and (w.shape[0] % 4 == 0 or _float_conv(node)):
                pad, wide = _channel_pad(x, extra, x.name + "_c4")
                weights = graph.derive(np.pad, w.value, ((0, 0), (0, extra), (0, 0), (0, 0)))
                node.inputs = [wide, Operand(w.name + "_c4", weights.shape, w.dtype, value=weights)] + node.inputs[2:]
                nodes.append(pad)
                padded += 1
            elif _pads_outputs(node):
                nodes += _pad_outputs(graph, node, read_once)
                padded += 1
                continue
        elif _depthwise_to_pad(node):
            nodes += _pad_depthwise(graph, node)
            padded += 1
            continue
        nodes.append(node)
    graph.nodes = nodes
    return padded


def _float_conv(node: Node) -> bool:
    """Not a quantized convolution (whose integer paths have their own rules), and with constant
    per-channel operands (bias, PRelu slope)."""
    ins = node.inputs + [None] * (5 - len(node.inputs))
    return (node.attrs.get("x_zero") is None and node.attrs.get("int8_offset") is None
            and node.attrs.get("requantize") is None and not node.attrs.get("exact")
            and all(t is None or t.is_constant for t in (ins[2], ins[4])))


def _pads_outputs(node: Node) -> bool:
    """A float convolution whose output channels are not a multiple of 4, with input channels that
    are (else the input is padded first) or that its products read unpadded (``rows_in_fours``)."""
    return (node.inputs[1].shape[0] % 4 != 0 and (node.inputs[0].shape[1] % 4 == 0 or rows_in_fours(node))
            and _float_conv(node))


def _pad_outputs(graph: Graph, node: Node, read_once: set[int]) -> list[Node]:
    """The nodes replacing ``node``: [a pad of its residual,] the convolution with zero output
    channels added, and a slice back to the channels it had."""
    x, w, bias, residual, slope = node.inputs + [None] * (5 - len(node.inputs))
    out = node.outputs[0]
    extra = -w.shape[0] % 4
    before: list[Node] = []
    if residual is not None:
        grown = _grown_channel_pad(residual, extra, read_once)
        if grown is None:
            pad, grown = _channel_pad(residual, extra, residual.name + "_o4")
            before.append(pad)
        residual = grown
    ins = [x, _zero_padded(graph, w, extra, 0, "o4"), _zero_padded(graph, bias, extra, 0, "o4"), residual,
           _zero_padded(graph, slope, extra, 0, "o4")]
    while ins[-1] is None:
        ins.pop()
    wide = Operand(fresh_name(out.name + "_o4"), (out.shape[0], out.shape[1] + extra) + out.shape[2:], out.dtype)
    conv = Node("conv2d", ins, [wide], dict(node.attrs), name=node.name)
    wide.producer = conv
    return before + [conv, _channels_back(wide, out, node)]


def _channels_back(wide: Operand, out: Operand, conv: Node) -> Node:
    """The slice of ``wide``'s first channels into ``out``, marked ``zero_tail`` where the channels it
    drops hold zeros (zero filters, bias and residual, and an activation that keeps 0 at 0), so that
    a later padding of ``out`` with zeros can read ``wide`` instead."""
    act = conv.attrs.get("activation")
    keeps_zero = ((act is None or float(act.apply(np.zeros(1, np.float32), np.zeros(1, np.float32))[0]) == 0.0)
                  and (conv.attrs.get("affine_after") or (1.0, 0.0))[1] == 0.0)
    return sliced(wide, out, (0,) * out.rank, out.name + "/channels", zero_tail=keeps_zero)


def _depthwise_to_pad(node: Node) -> bool:
    """A float depthwise convolution (one channel a group, constant weights) of a channel count
    that is not a multiple of 4, without a fused residual."""
    if node.op != "conv2d" or not node.inputs[1].is_constant:
        return False
    x, w = node.inputs[0], node.inputs[1]
    ins = node.inputs + [None] * (5 - len(node.inputs))
    c = x.shape[1]
    return node.attrs["groups"] == c == w.shape[0] and w.shape[1] == 1 and c % 4 != 0 and ins[3] is None \
        and _float_conv(node)


def _pad_depthwise(graph: Graph, node: Node) -> list[Node]:
    """The input padded with zero channels, the depthwise convolution over them (zero filters), and a
    slice back to the channels the graph has."""
    x, w, bias, _, slope = node.inputs + [None] * (5 - len(node.inputs))
    out = node.outputs[0]
    extra = -x.shape[1] % 4
    pad, wide_x = _channel_pad(x, extra, x.name + "_c4")
    ins = [wide_x, _zero_padded(graph, w, extra, 0, "c4"), _zero_padded(graph, bias, extra, 0, "c4"), None,
           _zero_padded(graph, slope, extra, 0, "c4")]
    while ins[-1] is None:
        ins.pop()
    wide = Operand(fresh_name(out.name + "_c4"), (out.shape[0], out.shape[1] + extra) + out.shape[2:], out.dtype)
    conv = Node("conv2d", ins, [wide], dict(node.attrs, groups=x.shape[1] + extra), name=node.name)
    wide.producer = conv
    return [pad, conv, _channels_back(wide, out, node)]


def skip_zero_tail_slices(graph: Graph) -> int:
    """A zero padding of channels that reads a ``zero_tail`` slice (``_channels_back``) reads the
    wider tensor instead, padding only what it lacks, or nothing: the slice and the pad cancel
    (BlazeFace's blocks slice 44 -> 42 channels after one convolution and pad back for the next)."""
    skipped = 0
    for node in graph.nodes:
        x = node.inputs[0] if node.op == "pad" and node.inputs else None
        back = x.producer if x is not None else None
        if back is None or back.op != "slice" or not back.attrs.get("zero_tail"):
            continue
        wide, r = back.inputs[0], x.rank
        pads = list(node.attrs["pads"])
        extra, dropped = channel_tail_pad(node), wide.shape[1] - x.shape[1]
        out = node.outputs[0]
        if extra is None or extra < dropped or (extra == dropped and any(o is out for o in graph.outputs.values())):
            continue
        if extra == dropped:
            graph.replace_uses(out, wide)
        else:
            pads[r + 1] = extra - dropped
            node.inputs = [wide]
            node.attrs = dict(node.attrs, pads=tuple(pads))
        skipped += 1
    if skipped:
        graph.prune()
    return skipped


def pad_matmul_columns(graph: Graph) -> int:
    padded = 0
    nodes: list[Node] = []
    for node in graph.nodes:
        ins = node.inputs + [None] * (3 - len(node.inputs))
        a, b, bias = ins[:3]
        if (node.op != "matmul" or b is None or not b.is_constant or b.rank != 2 or b.shape[1] % 4 == 0
                or a.rank < 2 or node.outputs[0].size < MIN_PADDED
                or any(t is not None for t in node.inputs[3:])  # (a residual, slope or factor: left as is)
                or (bias is not None and not bias.is_constant)
                or any(node.attrs.get(k) for k in ("heads", "requantize"))):
            nodes.append(node)
            continue
        out = node.outputs[0]
        extra = -b.shape[1] % 4
        wide = Operand(fresh_name(out.name + "_n4"), out.shape[:-1] + (out.shape[-1] + extra,), out.dtype)
        columns = [_zero_padded(graph, b, extra, 1, "n4")] + ([_zero_padded(graph, bias, extra, 0, "n4")]
                                                              if bias is not None else [])
        product = Node("matmul", [a] + columns, [wide], dict(node.attrs), name=node.name)
        wide.producer = product
        packed = node.attrs.get("nbits")
        if packed is not None and packed.describes(node):  # (weights kept packed: padded alike)
            product.attrs["nbits"] = packed.widened(columns[0].value)
        # (an integer product's exact sums: the slice keeps them in f32 too, scheduler._keeps_f32)
        back = sliced(wide, out, (0,) * out.rank, out.name + "/columns", exact=bool(node.attrs.get("exact")))
        nodes += [product, back]
        padded += 1
    graph.nodes = nodes
    return padded
