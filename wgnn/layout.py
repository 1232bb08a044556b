"""Physical layouts: which order each tensor's axes take in GPU memory.

Shapes in the IR are logical (ONNX/WebNN order). Each tensor on the GPU also has a *perm*: physical
axis ``k`` holds logical axis ``perm[k]``. Convolution, pooling and LRN want 4-D tensors channels-last
(``NHWC = (0, 2, 3, 1)`` over logical NCHW) so kernels can load four channels as one ``vec4``;
element-wise ops, concat, slice, pad and softmax run in whatever layout their input has; transpose
is free (it only changes the perm); reshape wants the logical order. ``assign_layouts`` walks the
graph once, gives every tensor a perm, and inserts a ``relayout`` copy only where a consumer needs
another order: in CNNs that is the graph input (NCHW -> NHWC) and, where it is not already
equivalent, the graph output.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .graph import Graph, Node, Operand, fresh_name

NHWC = (0, 2, 3, 1)
Perm = tuple[int, ...]


def identity(rank: int) -> Perm:
    return tuple(range(rank))


def physical_shape(shape: tuple[int, ...], perm: Perm) -> tuple[int, ...]:
    return tuple(shape[a] for a in perm)


def logical_strides(shape: tuple[int, ...], perm: Perm) -> list[int]:
    """Element stride of each logical axis when the tensor is stored contiguously in ``perm`` order."""
    strides = [0] * len(shape)
    step = 1
    for axis in reversed(perm):
        strides[axis] = step
        step *= shape[axis]
    return strides


def equivalent(shape: tuple[int, ...], p: Perm, q: Perm) -> bool:
    """True when both orders put the same bytes in the same places (axes of size 1 don't count)."""
    keep = [a for a in p if shape[a] != 1]
    return keep == [a for a in q if shape[a] != 1]


Requirements = Callable[[Node, dict[int, Perm]], tuple[list[Perm | None], list[Perm]]]


def assign_layouts(graph: Graph, requirements: Requirements,
                   same: Callable[[tuple[int, ...], Perm, Perm], bool] = equivalent) -> dict[int, Perm]:
    """Give every operand a perm, inserting ``relayout`` nodes where a consumer needs another one.

    ``requirements(node, perms)`` says what order each input needs (None: any) and what each output
    gets; the compile core passes ``ops.layout_requirements``. ``same(shape, p, q)``: whether a
    tensor stored in order p serves an input that needs order q (the backend's ``same_layout``:
    ``equivalent`` for buffers; the texture path, whose texels pad the last stored axis, also asks
    that axis to agree). A graph output is read back through its own order by either backend."""
    perms: dict[int, Perm] = {}
    for operand in graph.inputs.values():
        perms[id(operand)] = identity(operand.rank)
    converted: dict[tuple[int, Perm], Operand] = {}

    def convert(src: Operand, perm: Perm, out: Operand | None = None) -> tuple[Operand, Node]:
        dst = out or Operand(fresh_name(src.name + "_relayout"), src.shape, src.dtype)
        node = Node("relayout", [src], [dst], {"perm": perm}, name=dst.name)
        dst.producer = node
        perms[id(dst)] = perm
        return dst, node

    new_nodes: list[Node] = []
    for node in graph.nodes:
        for operand in node.inputs:
            if operand is not None and id(operand) not in perms:
                perms[id(operand)] = identity(operand.rank)  # constants
        required, out_perms = requirements(node, perms)
        for k, (operand, need) in enumerate(zip(node.inputs, required)):
            if operand is None or need is None or operand.is_constant:
                continue
            if not same(operand.shape, perms[id(operand)], need):
                key = (id(operand), need)
                if key not in converted:
                    converted[key], conv_node = convert(operand, need)
                    new_nodes.append(conv_node)
                node.inputs[k] = converted[key]
        new_nodes.append(node)
        for out, perm in zip(node.outputs, out_perms):
            perms[id(out)] = perm
    graph.nodes = new_nodes

    # Graph outputs are returned in logical order.
    for name, operand in list(graph.outputs.items()):
        if id(operand) not in perms:
            perms[id(operand)] = identity(operand.rank)
        if not equivalent(operand.shape, perms[id(operand)], identity(operand.rank)):
            internal = Operand(fresh_name(operand.name + "_nhwc"), operand.shape, operand.dtype,
                               producer=operand.producer)
            perms[id(internal)] = perms[id(operand)]
            _rename_output(graph.nodes, operand, internal)
            graph.replace_uses(operand, internal)
            _, conv_node = convert(internal, identity(operand.rank), out=operand)
            graph.nodes.append(conv_node)
            graph.outputs[name] = operand
    return perms


# Ops whose compute kernels write their result in any physical order (their output's strides), so
# that one read only by a relayout can write the relayout's order itself (``Backend.writes_any_order``:
# the texture path's pad only).
WRITE_ANY_ORDER = ("pad", "slice", "relayout", "binary", "activation", "muladd", "fused_elementwise")


def _view_input_perm(view: Node, out_perm: Perm) -> Perm | None:
    """The order ``view``'s input needs for its output to lie in ``out_perm`` (None: none can)."""
    x, out = view.inputs[0], view.outputs[0]
    if view.op == "transpose":
        return tuple(int(view.attrs["perm"][a]) for a in out_perm)
    return reshaped_perm(out.shape, out_perm, x.shape)


def _writes_any_order(node: Node, ops: tuple[str, ...]) -> bool:
    """Whether ``node``'s kernels can write its result in any order: one of ``ops``, or a concat of
    slices where slices are (each part's copy reads its slice through strides anyway, and can write
    it anywhere: YOLOX's Focus, four strided slices of the image, then NCHW -> NHWC)."""
    return node.op in ops or (node.op == "concat" and "slice" in ops and all(
        t.producer is not None and t.producer.op == "slice" for t in node.inputs))


def fold_relayouts(graph: Graph, perms: dict[int, Perm], ops: tuple[str, ...] = WRITE_ANY_ORDER) -> int:
    """A pad, slice, relayout or element-wise op read only by a relayout, directly or through views
    (reshapes and transposes) read only by the next, writes its result in the order that puts the
    relayout's order at the end of the views (its kernel addresses its output through strides): one
    pass over the data instead of two. In CNNs this is the graph input's channel padding (3 -> 4
    channels) followed by NCHW -> NHWC; in attention, a head's slice of a transposed projection,
    split into heads by views, that the product wants in logical order; a channel shuffle between
    convolutions (the relayout its first reshape needs writes what its second turns into
    channels-last: ShuffleNet 96 -> 80 dispatches); a detector's last sigmoid before its output's
    relayout. ``ops``: the ops whose kernels write any order. Updates ``perms``; returns how many
    were folded."""
    users, outputs = graph.consumers(), graph.output_ids()

    def one_reader(t: Operand) -> bool:  # read by one node, once, and no graph output
        return len(users.get(id(t), [])) == 1 and id(t) not in outputs

    folded = 0
    for node in list(graph.nodes):
        if node.op != "relayout":
            continue
        src, dst = node.inputs[0], node.outputs[0]
        views, want = [], perms[id(dst)]  # (a view's result, the order it gets); what src must lie in
        while src.producer is not None and src.producer.op in ("reshape", "transpose"):
            view = src.producer
            need = _view_input_perm(view, want)
            if need is None or not one_reader(src) or view.inputs[0].is_constant:
                break
            views.append((src, want))
            src, want = view.inputs[0], need
        else:
            producer = src.producer
            if (producer is None or not _writes_any_order(producer, ops) or not one_reader(src)
                    or len(producer.outputs) != 1 or (views and id(dst) in outputs)):
                continue
            if not views:  # the producer writes the relayout's result itself
                producer.outputs = [dst]
                dst.producer = producer
            else:  # the producer writes its result in the order the views turn into the relayout's
                perms[id(src)] = want
                for out, perm in views:
                    perms[id(out)] = perm
                graph.replace_uses(dst, node.inputs[0])
            graph.nodes.remove(node)
            folded += 1
    return folded


def _rename_output(nodes: list[Node], old: Operand, new: Operand) -> None:
    for node in nodes:
        node.outputs = [new if o is old else o for o in node.outputs]


def reshaped_perm(shape: tuple[int, ...], perm: Perm, out_shape: tuple[int, ...]) -> Perm | None:
    """The order in which ``reshape(x, out_shape)`` can keep ``x``'s bytes (``x`` of ``shape``
    stored in ``perm`` order) as they lie, or None where it cannot.

    A reshape splits and merges runs of axes: matched by their sizes (axes of size 1 left out), each
    run of ``x``'s axes becomes a run of the result's. Where every run of ``x``'s axes lies in
    memory side by side and in logical order, the result's runs lie the same way in the same bytes:
    a squeeze or unsqueeze of a channels-last tensor, or (N, C, 1, W) -> (N, C, W), is then a view
    with no copy (the axes of size 1 go first; they hold no bytes)."""
    ins = [a for a in range(len(shape)) if shape[a] != 1]
    outs = [b for b in range(len(out_shape)) if out_shape[b] != 1]
    runs: list[tuple[list[int], list[int]]] = []  # (x's axes, the result's axes) of equal sizes
    i = j = 0
    while i < len(ins) or j < len(outs):
        run_in, run_out, size_in, size_out = [], [], 1, 1
        while True:
            if size_in <= size_out and i < len(ins):
                size_in *= shape[ins[i]]
                run_in.append(ins[i])
                i += 1
            elif j < len(outs):
                size_out *= out_shape[outs[j]]
                run_out.append(outs[j])
                j += 1
            else:
                return None
            if size_in == size_out and run_out:
                break
        if not run_in:
            return None
        runs.append((run_in, run_out))
    stored = [a for a in perm if shape[a] != 1]
    order: list[int] = []
    for run_in, _ in runs:
        at = stored.index(run_in[0])
        if stored[at:at + len(run_in)] != run_in:  # not side by side in logical order
            return None
    for a in stored:
        order += next((run_out for run_in, run_out in runs if run_in[0] == a), [])
    return tuple(b for b in range(len(out_shape)) if out_shape[b] == 1) + tuple(order)


def view_is_free(shape: tuple[int, ...], perm: Perm) -> bool:
    """Reshape-like views need the data in logical order."""
    return equivalent(shape, perm, identity(len(shape)))


def transposed_perm(in_perm: Perm, transpose: tuple[int, ...]) -> Perm:
    """Perm of ``transpose(x, transpose)`` stored in x's bytes unchanged."""
    inverse = np.argsort(transpose)
    return tuple(int(inverse[a]) for a in in_perm)
