"""Run each step of an unrolled LSTM's cell as one pass.

``wgnn.recurrent.lstm`` (ONNX's LSTM, com.microsoft's DynamicQuantizeLSTM, WebNN's lstm) unrolls a
layer into per-step nodes: after the step's matrix product, four slices of its gates'
pre-activations (i, o, f, c), an activation each, c = f * c_prev + i * g, and h = o * h(c): eleven
to thirteen dispatches a step, each a few hundred values (ddddocr's recognizer: 56 steps of two
directions, 884 dispatches in all). The ``lstm_cell`` op computes a step's h and c in one kernel.
Layers with peepholes, a clip or a coupled forget gate keep their written-out form.
"""

from __future__ import annotations

from ..graph import Graph, Node, Operand
from .patterns import Readers, live, made_by


def _plain(act: Node) -> bool:
    """An activation of one input, none with a per-channel slope (the kernel passes none)."""
    return len(act.inputs) == 1 and act.attrs["activation"].kind != "prelu"


def _gate(operand: Operand | None, readers: Readers, reader: Node):
    """(activation, pre, gate index) when ``operand`` is an activation of a quarter of a 2-D
    tensor's rows (a slice along the last axis), each read by the next node alone; else None."""
    act = operand.producer if operand is not None else None
    if (act is None or act.op != "activation" or not _plain(act) or not readers.only(operand, reader)):
        return None
    part = act.inputs[0]
    piece = part.producer
    if piece is None or piece.op != "slice" or not readers.only(part, act):
        return None
    pre = piece.inputs[0]
    width = part.shape[-1] if part.rank == 2 else 0
    if (pre.rank != 2 or part.shape[0] != pre.shape[0] or pre.shape[1] != 4 * width
            or tuple(piece.attrs["steps"]) != (1, 1) or piece.attrs["starts"][0] != 0
            or piece.attrs["starts"][1] % max(width, 1)):
        return None
    return act, pre, piece.attrs["starts"][1] // width


def _products(operand: Operand, readers: Readers, reader: Node | None):
    """(the product, its two gates by gate index) when ``operand`` is gate * gate (read by
    ``reader`` alone, if given), else None."""
    mul = made_by(operand, "binary", "mul")
    if mul is None or (reader is not None and not readers.only(operand, reader)):
        return None
    gates = [_gate(x, readers, mul) for x in mul.inputs]
    return None if None in gates else (mul, sorted(gates, key=lambda g: g[2]))


def _cell_state(c: Operand, readers: Readers):
    """({gate index: gate} of i, f and g, c_prev, the nodes between) when ``c`` is
    f * c_prev + i * g, or i * g (a first step without an initial cell state); else None."""
    total = made_by(c, "binary", "add")
    if total is None:
        found = _products(c, readers, None)
        if found is None or [g[2] for g in found[1]] != [0, 3]:
            return None
        return {0: found[1][0], 3: found[1][1]}, None, [found[0]]
    for ig_out, fc_out in (total.inputs, total.inputs[::-1]):
        ig, f_mul = _products(ig_out, readers, total), made_by(fc_out, "binary", "mul")
        if ig is None or [g[2] for g in ig[1]] != [0, 3] or f_mul is None or not readers.only(fc_out, total):
            continue
        for f_out, c_prev in (f_mul.inputs, f_mul.inputs[::-1]):
            f = _gate(f_out, readers, f_mul)
            if f is not None and f[2] == 2:
                return {0: ig[1][0], 2: f, 3: ig[1][1]}, c_prev, [total, ig[0], f_mul]
    return None


def fuse_lstm_cell(graph: Graph) -> int:
    readers = Readers(graph)
    fused = 0
    # The node list is rewritten once, at the end (a layer unrolled over hundreds of steps fuses
    # a cell a step, and each removal from the list was a walk of it): the nodes each cell makes
    # dead, and the cell in the place of the first of them.
    gone: set[int] = set()
    cells: dict[int, Node] = {}
    position = {id(n): k for k, n in enumerate(graph.nodes)}
    for node in live(graph, "binary", "mul"):
        if id(node) in gone:
            continue
        for o_out, tail in (node.inputs, node.inputs[::-1]):  # h = o * h(c)
            o, squash = _gate(o_out, readers, node), tail.producer
            if (o is None or o[2] != 1 or squash is None or squash.op != "activation" or not _plain(squash)
                    or not readers.only(tail, node)):
                continue
            state = _cell_state(squash.inputs[0], readers)
            if state is None:
                continue
            gates, c_prev, dead = state
            gates[1] = o
            sigmoids = {(a.kind, a.alpha, a.beta) for a in (gates[k][0].attrs["activation"] for k in gates if k != 3)}
            if len({id(g[1]) for g in gates.values()}) != 1 or len(sigmoids) != 1:
                continue
            break
        else:
            continue
        h, c = node.outputs[0], squash.inputs[0]
        activations = (gates[0][0].attrs["activation"], gates[3][0].attrs["activation"], squash.attrs["activation"])
        cell = Node("lstm_cell", [gates[0][1], c_prev], [h, c], {"activations": activations}, name=node.name)
        dead += [squash, node] + [n for g in gates.values() for n in (g[0], g[0].inputs[0].producer)]
        cells[id(min(dead, key=lambda n: position[id(n)]))] = cell
        for n in dead:
            gone.add(id(n))
            readers.drop(n)
        h.producer = c.producer = cell
        for operand in cell.inputs:
            if operand is not None:
                readers.users.setdefault(id(operand), []).append(cell)
        fused += 1
    if fused:
        graph.nodes = [cells.get(id(n), n) for n in graph.nodes if id(n) not in gone or id(n) in cells]
    return fused
