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
state; an initial cell state that is a constant or none); every later step a packed ``lstm_step``
with int8 weights reading the previous step's state through its ``dynamic_quantize`` and the
step's row of one input projection; and whose states nothing else reads but the last ones (those
become slices of the results). A layer with an initial hidden state, peepholes, float weights, or
a state too large for workgroup memory keeps its steps.
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


def _row_of(p: Operand, steps: int) -> tuple[Operand, int] | None:
    """(the projection [steps, batch, 4 hidden], t) where ``p`` is its row t reshaped to
    [batch, 4 hidden] (``recurrent.step_input``)."""
    reshape = made_by(p, "reshape")
    one = made_by(reshape.inputs[0], "slice") if reshape is not None else None
    if one is None:
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
    layer reads; else None."""
    forward = nodes[0].op == "lstm_cell"
    order = nodes if forward else nodes[::-1]
    first, rest = order[0], order[1:]
    if first.op != "lstm_cell" or not rest or any(n.op != "lstm_step" for n in rest):
        return None
    c0 = first.inputs[1]
    row = _row_of(first.inputs[0], steps)
    if ((c0 is not None and not c0.is_constant) or row is None or row[1] != (0 if forward else steps - 1)
            or not readers.only(first.inputs[0], first)):
        return None
    proj, r, attrs = row[0], rest[0].inputs[1], rest[0].attrs
    if not (attrs.get("words") and attrs.get("byte_weights") and attrs.get("quantized")) or not r.is_constant:
        return None
    quantizes, rows = [], [first.inputs[0]]
    for s, (prev, node) in enumerate(zip(order, rest), start=1):
        words, _, bias, p, c_prev, h_scale, h_zero = node.inputs
        q = made_by(words, "dynamic_quantize")
        row = _row_of(p, steps)
        if (node.inputs[1] is not r or bias is not None or c_prev is not prev.outputs[1] or q is None
                or q.inputs[0] is not prev.outputs[0] or list(q.outputs) != [words, h_scale, h_zero]
                or q.attrs.get("rows") != (quantizes[0] if quantizes else q).attrs.get("rows")
                or row is None or row[0] is not proj or row[1] != (s if forward else steps - 1 - s)
                or node.attrs.get("activations") != first.attrs.get("activations") or not _same(node.attrs, attrs)
                or not all(readers.only(x, node) for x in (words, p, h_scale, h_zero, c_prev))):
            return None
        quantizes.append(q)
        rows.append(p)
    return dict(order=order, quantizes=quantizes, rows=rows, proj=proj, r=r, c0=c0, forward=forward,
                whole=not quantizes[0].attrs.get("rows"), scale=attrs.get("scale"))


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
    first = chains[0]["order"][1]
    node = Node("lstm_layer", [x for ch in chains for x in (ch["proj"], ch["r"], ch["c0"])], [y, c_last],
                {"activations": first.attrs["activations"], "forward": tuple(ch["forward"] for ch in chains),
                 "scales": tuple(ch["scale"] for ch in chains), "whole": chains[0]["whole"]}, name=concat.name)
    y.producer = node
    c_last.producer = node
    dead = [concat]
    for ch in chains:
        dead += ch["order"] + ch["quantizes"]
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


def lstm_layers(graph: Graph, use: Callable[[Node], bool]) -> int:
    """Rewrite each layer ``_layer`` finds, where ``use`` (given its first ``lstm_step``) says so."""
    fused = 0
    for concat in [n for n in graph.nodes if n.op == "concat"]:
        readers = Readers(graph)
        layer = _layer(concat, readers, graph)
        if layer is None or not use(layer["chains"][0]["order"][1]):
            continue
        _rewrite(graph, concat, layer, readers)
        fused += 1
    return fused
