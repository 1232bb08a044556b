"""Run a whole dynamically quantized LSTM layer, every step of both its directions, as one dispatch.

After ``fuse_lstm_step`` a quantized layer's step is two dispatches, the state's quantization
(``dynamic_quantize``, packed) and the ``lstm_step``: 2 x steps x directions dispatches that wait
on each other, each over a few hundred values (text2tashkeel's rawi-v2 on a sentence of 58
characters: 464 of its 478). Their launches, not their arithmetic, are most of the time: about
60 microseconds each on a software adapter, a few on a GPU plus the host's encoding of each.

The ``lstm_layer`` op (lstm_layer.wgsl) keeps a direction in one workgroup for the whole sequence:
the state, its quantization and the cell states stay in workgroup memory, and the steps follow one
another behind barriers, with the two directions in two workgroups at once. The arithmetic is the
step kernel's, the same f32 operations in the same order (integer sums are exact in any order), so
its outputs are bitwise those of the steps it replaces in fp32. (In fp16 a step kept its state in
the sequence's type, f16 or f32, as the layer does, but the first step's in f16: the layer's
results differ there by that rounding.)

The rewrite takes a layer whose sequence (``recurrent.finish``'s concat of every step's state,
steps by directions) is read as a whole; whose first step is an ``lstm_cell`` (no initial hidden
state; an initial cell state that is a constant or none) or, in a layer of one direction, a
packed step on its initial hidden state; every later step a packed ``lstm_step`` with int8
weights reading the previous step's state through its ``dynamic_quantize`` and the step's row of
one input projection; and whose states nothing else reads but the last ones (those become slices
of the results). A layer with peepholes, float weights, initial hidden states in both directions,
or a state too large for workgroup memory keeps its steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name
from .patterns import Readers, made_by, sliced

# Workgroup memory a layer's direction holds: its state as f32 and as packed words, and its cell
# state, 9 bytes a value of batch x hidden, within the 16 KB every adapter offers (with the range's
# reduction tree).
MAX_STATE = 1536
# Batch rows whose states are quantized each over its own range (the scales the kernel keeps)
MAX_ROWS = 16


def _row_of(p: Operand, steps: int, readers: Readers) -> tuple[Operand, int] | None:
    """(the projection [steps, batch, 4 hidden], t) where ``p`` is its row t reshaped to
    [batch, 4 hidden] (``recurrent.step_input``), the row read by that reshape alone."""
    reshape = made_by(p, "reshape")
    one = made_by(reshape.inputs[0], "slice") if reshape is not None else None
    if one is None or not readers.only(one.outputs[0], reshape):
        return None
    proj, starts = one.inputs[0], one.attrs["starts"]
    if (proj.rank != 3 or proj.shape[0] != steps or any(s != 1 for s in one.attrs["steps"])
            or tuple(starts[1:]) != (0, 0) or one.outputs[0].shape != (1,) + proj.shape[1:]):
        return None
    return proj, starts[0]


def _same(a: dict, b: dict) -> bool:
    """Whether two steps' attrs agree (arrays, such as the weights' scale, by value)."""
    for k in set(a) | set(b):
        x, y = a.get(k), b.get(k)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if x is None or y is None or not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


def _chain(nodes: list[Node], steps: int, readers: Readers) -> dict | None:
    """A direction's chain, from ``nodes`` (its steps in time order), where the kernel can run it:
    its nodes in the order they run, their quantizations and rows of the projection, and what the
    layer reads (the initial states: a constant c0 where the first step is an ``lstm_cell``, else
    h0 through its quantization and c0, whatever makes them); else None."""
    second = nodes[1]
    forward = second.op == "lstm_step" and second.inputs[4] is nodes[0].outputs[1]
    order = nodes if forward else nodes[::-1]
    first, rest = order[0], order[1:]
    if first.op not in ("lstm_cell", "lstm_step") or any(n.op != "lstm_step" for n in rest):
        return None
    r, attrs = rest[0].inputs[1], rest[0].attrs
    if not (attrs.get("words") and attrs.get("byte_weights") and attrs.get("quantized")) or not r.is_constant:
        return None
    h0 = first_quantize = None
    if first.op == "lstm_cell":  # (no initial hidden state)
        c0, p = first.inputs[1], first.inputs[0]
        if c0 is not None and not c0.is_constant:
            return None
    else:  # the initial hidden state quantized as every later one is
        first_quantize, c0, p = made_by(first.inputs[0], "dynamic_quantize"), first.inputs[4], first.inputs[3]
        if first_quantize is None or not _step_of(first, first_quantize, r, attrs, readers, c0, own_c=False):
            return None
        h0 = first_quantize.inputs[0]
    row = _row_of(p, steps, readers)
    if row is None or row[1] != (0 if forward else steps - 1) or not readers.only(p, first):
        return None
    proj = row[0]
    quantizes, rows = [], [p]
    for s, (prev, node) in enumerate(zip(order, rest), start=1):
        q = made_by(node.inputs[0], "dynamic_quantize")
        row = _row_of(node.inputs[3], steps, readers)
        if (q is None or q.inputs[0] is not prev.outputs[0] or not _step_of(node, q, r, attrs, readers, prev.outputs[1])
                or row is None or row[0] is not proj or row[1] != (s if forward else steps - 1 - s)
                or node.attrs.get("activations") != first.attrs.get("activations")):
            return None
        quantizes.append(q)
        rows.append(node.inputs[3])
    if len({bool(q.attrs.get("rows")) for q in quantizes + [first_quantize] if q is not None}) > 1:
        return None
    return dict(order=order, quantizes=quantizes, rows=rows, proj=proj, r=r, c0=c0, h0=h0,
                first_quantize=first_quantize, forward=forward, whole=not quantizes[0].attrs.get("rows"),
                scale=attrs.get("scale"))


def _step_of(node: Node, q: Node, r: Operand, attrs: dict, readers: Readers, c_prev: Operand | None, *,
             own_c: bool = True) -> bool:
    """Whether ``node`` is a packed step of the layer: reading R^T ``r``, ``c_prev`` (alone where
    ``own_c``: a step's, not the initial one), its row of the projection and what its state's
    quantization ``q`` makes, each alone, with the first step's ``attrs``."""
    words, _, bias, p, c, h_scale, h_zero = node.inputs
    alone = (words, p, h_scale, h_zero) + ((c,) if own_c else ())
    return (node.inputs[1] is r and bias is None and c is c_prev and list(q.outputs) == [words, h_scale, h_zero]
            and _same(node.attrs, attrs) and all(readers.only(x, node) for x in alone))


def _layer(concat: Node, readers: Readers, graph: Graph) -> dict | None:
    """The layer whose sequence ``concat`` makes, where the kernel can run it; else None."""
    if concat.attrs.get("axis") != 0 or len(concat.inputs) < 2:
        return None
    states = []
    for part in concat.inputs:
        reshape = made_by(part, "reshape")
        h = reshape.inputs[0] if reshape is not None else None
        if (h is None or h.rank != 2 or part.shape != (1,) + h.shape or h.producer is None
                or h.producer.op not in ("lstm_cell", "lstm_step") or h.producer.outputs[0] is not h):
            return None
        states.append(h)
    batch, hidden = states[0].shape
    if batch * hidden > MAX_STATE or hidden % 4:
        return None
    for dirs in (1, 2):
        steps = len(states) // dirs
        if steps * dirs != len(states) or steps < 2:
            continue
        chains = [_chain([states[t * dirs + d].producer for t in range(steps)], steps, readers) for d in range(dirs)]
        if all(c is not None for c in chains) and len({id(c["order"][0]) for c in chains}) == dirs:
            break
    else:
        return None
    if len({c["whole"] for c in chains}) > 1 or (not chains[0]["whole"] and batch > MAX_ROWS):
        return None
    if dirs > 1 and any(c["h0"] is not None for c in chains):  # (the kernel binds one direction's initial states)
        return None
    at = {id(n): i for i, n in enumerate(graph.nodes)}
    here = at[id(concat)]
    parts = {id(part.producer) for part in concat.inputs}
    # (a part read elsewhere too, such as the last states' concat, where a common subexpression
    # merged their unsqueezes: a slice of the sequence then, read after it is complete)
    if any(at[id(u)] < here for part in concat.inputs for u in readers.users.get(id(part), [])):
        return None
    for chain in chains:
        order = chain["order"]
        for s, node in enumerate(order):
            h, c = node.outputs
            others = [u for u in readers.users.get(id(h), []) if id(u) not in parts]
            if s + 1 < len(order):  # (its c: the next step's alone, ``_chain`` found)
                if others != [chain["quantizes"][s]] or id(h) in readers.outputs:
                    return None
            elif any(at[id(u)] < here for u in others + readers.users.get(id(c), [])):
                return None  # (a reader of the last states before the sequence is complete)
    return dict(chains=chains, dirs=dirs, steps=steps, batch=batch, hidden=hidden)


def _rewrite(graph: Graph, concat: Node, layer: dict, readers: Readers) -> None:
    dirs, batch, hidden, steps = layer["dirs"], layer["batch"], layer["hidden"], layer["steps"]
    chains = layer["chains"]
    y = concat.outputs[0]
    c_last = Operand(fresh_name(concat.name + "_c"), (dirs, batch, hidden), "float32")
    first = chains[0]["order"][-1]  # (a step's attrs: every step's)
    node = Node("lstm_layer", [x for ch in chains for x in (ch["proj"], ch["r"], ch["c0"], ch["h0"])], [y, c_last],
                {"activations": first.attrs["activations"], "forward": tuple(ch["forward"] for ch in chains),
                 "scales": tuple(ch["scale"] for ch in chains), "whole": chains[0]["whole"]}, name=concat.name)
    y.producer = node
    c_last.producer = node
    dead = [concat]
    for ch in chains:
        dead += ch["order"] + ch["quantizes"] + ([ch["first_quantize"]] if ch["first_quantize"] is not None else [])
        for p in ch["rows"]:
            dead += [p.producer, p.producer.inputs[0].producer]
    # The parts read elsewhere too, and the last states (ONNX's Y_h and Y_c) where read: slices of
    # the results
    after = []
    for index, part in enumerate(concat.inputs):
        dead.append(part.producer)
        if [u for u in readers.users.get(id(part), []) if u is not concat] or id(part) in readers.outputs:
            after.append(sliced(y, part, (index, 0, 0), part.name))
    for d, ch in enumerate(chains):
        last = ch["order"][-1]
        t = steps - 1 if ch["forward"] else 0
        for source, out, index in ((y, last.outputs[0], t * dirs + d), (c_last, last.outputs[1], d)):
            users = [u for u in readers.users.get(id(out), []) if u.outputs[0] not in concat.inputs]
            if not users and id(out) not in readers.outputs:
                continue
            row = Operand(fresh_name(out.name + "_row"), (1, batch, hidden), out.dtype)
            after.append(sliced(source, row, (index, 0, 0), row.name))
            after.append(Node("reshape", [row], [out], {"shape": (batch, hidden)}, name=out.name))
            out.producer = after[-1]
    index = graph.nodes.index(concat)
    graph.nodes[index] = node
    for k, extra in enumerate(after, start=1):
        graph.nodes.insert(index + k, extra)
    for gone in dead:
        if gone is not concat and gone in graph.nodes:
            graph.nodes.remove(gone)


def lstm_layers(graph: Graph, use: Callable[[Node, int, int], bool]) -> int:
    """Rewrite each layer ``_layer`` finds, where ``use`` (given its first ``lstm_step``, its
    number of directions and of steps) says so."""
    fused, readers = 0, Readers(graph)  # (who reads what: built when first asked, again after each rewrite)
    for concat in [n for n in graph.nodes if n.op == "concat"]:
        layer = _layer(concat, readers, graph)
        if layer is None or not use(next(n for n in layer["chains"][0]["order"] if n.op == "lstm_step"), layer["dirs"],
                                    layer["steps"]):
            continue
        _rewrite(graph, concat, layer, readers)
        readers = Readers(graph)
        fused += 1
    return fused
