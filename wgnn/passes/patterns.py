"""What the fusing rules ask of a graph: who makes an operand, who reads it, and whether a
constant is one number."""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand


class Readers:
    """Who reads each operand of ``graph`` (built once per rule call; rules that remove nodes call
    ``drop``). Built when first asked, which a rule does before it changes the graph: most rules
    find nothing to match in most graphs, and a walk of every node's inputs for each of them was
    most of what the passes cost a new shape."""

    def __init__(self, graph: Graph):
        self._graph = graph
        self._users: dict[int, list[Node]] | None = None
        self._outputs: set[int] | None = None

    def _build(self) -> None:
        self._users = self._graph.consumers()
        self._outputs = self._graph.output_ids()

    @property
    def users(self) -> dict[int, list[Node]]:
        if self._users is None:
            self._build()
        return self._users

    @property
    def outputs(self) -> set[int]:
        if self._outputs is None:
            self._build()
        return self._outputs

    def sole(self, operand: Operand) -> Node | None:
        """The one node that reads ``operand`` (once), where it is no graph output; else None."""
        users = self.users.get(id(operand), [])
        return users[0] if len(users) == 1 and id(operand) not in self.outputs else None

    def only(self, operand: Operand, reader: Node) -> bool:
        """Whether ``reader`` is the one reader of ``operand`` and it is no graph output."""
        users = self.users.get(id(operand), [])
        return id(operand) not in self.outputs and all(u is reader for u in users) and bool(users)

    def drop(self, node: Node) -> None:
        for operand in node.inputs:
            if operand is not None:
                users = self.users.get(id(operand), [])
                if node in users:
                    users.remove(node)

    def take_over(self, graph: Graph, dead: list[Node], result: Operand, kept: Operand) -> None:
        """Remove the ``dead`` nodes, whose last one made ``result``, and let ``kept`` stand for it:
        its readers and its place among the graph's outputs, and its user-visible name (a step a
        product took into itself: ``kept`` is the product's own result)."""
        users = self.users  # (who read what before this change: built now, if not yet)
        for gone in dead:
            graph.nodes.remove(gone)
            self.drop(gone)
        graph.replace_uses(result, kept)
        for node in users.pop(id(result), []):
            users.setdefault(id(kept), []).append(node)
        if id(result) in self.outputs:
            self.outputs.add(id(kept))
        kept.name, result.name = result.name, kept.name

    def bypass(self, graph: Graph, gone: Node, reader: Node, now_read: list[Operand]) -> None:
        """Remove ``gone``, whose result ``reader`` read and now reads ``now_read`` (its inputs) in
        place of, keeping who-reads-what current."""
        users = self.users  # (who read what before this change: built now, if not yet)
        graph.nodes.remove(gone)
        self.drop(gone)
        for operand in now_read:
            users.setdefault(id(operand), []).append(reader)

    def substitute(self, graph: Graph, dead: list[Node], old: Node, new: Node) -> None:
        """Remove the ``dead`` nodes of a matched pattern and put ``new`` in ``old``'s place in the
        schedule (``new`` makes ``old``'s outputs), keeping who-reads-what current."""
        users = self.users  # (who read what before this change: built now, if not yet)
        for gone in dead:
            graph.nodes.remove(gone)
            self.drop(gone)
        for out in new.outputs:
            out.producer = new
        graph.nodes[graph.nodes.index(old)] = new
        self.drop(old)
        for operand in new.inputs:
            if operand is not None:
                users.setdefault(id(operand), []).append(new)


def run_time_times_constant(t: Operand, reader: Node, readers: Readers) -> tuple[Operand, float, Node] | None:
    """(y, k, the Mul) where ``t`` is one float32 number computed at run time, y, times one constant
    number, k (dynamic quantization's x_scale * w_scale), read by ``reader`` alone; else None."""
    mul = made_by(t, "binary", "mul")
    if mul is None or not readers.only(t, reader):
        return None
    for y, k in (mul.inputs, mul.inputs[::-1]):
        if k.is_constant and k.size == 1 and not y.is_constant and y.size == 1 and y.dtype == k.dtype == "float32":
            return y, float(np.asarray(k.value, np.float32).reshape(())), mul
    return None


def constant_scale(graph: Graph, node: Node, at: int, readers: Readers) -> bool:
    """Where ``node``'s input ``at`` is one number computed at run time times one constant number
    (``run_time_times_constant``) and ``node`` has no attr ``scale`` yet: the run-time number
    becomes that input and the constant its ``scale`` (the muladd's factor, the dequantize_sum's
    scale: kernels that multiply the two, the same rounding)."""
    found = None if node.attrs.get("scale") is not None else run_time_times_constant(node.inputs[at], node, readers)
    if found is None:
        return False
    y, k, mul = found
    node.inputs[at] = y
    node.attrs = dict(node.attrs, scale=k)
    readers.bypass(graph, mul, node, [y])
    return True


def live(graph: Graph, op: str, kind: str | None = None):
    """The nodes of ``graph`` that are an ``op`` (of ``kind``, as ``made_by`` asks), in schedule
    order, leaving out those that a rewrite made meanwhile removed."""
    for node in list(graph.nodes):  # (the cheap test first: the list's is a walk of the whole graph)
        if made_by(node.outputs[0], op, kind) is node and node in graph.nodes:
            yield node


def sliced(source: Operand, out: Operand, starts: tuple[int, ...], name: str, **attrs) -> Node:
    """The slice node that makes ``out`` (its shape) from ``source`` at ``starts``, in steps of 1
    (``attrs``: marks the slice kernel ignores, read by later rules and the compile core)."""
    node = Node("slice", [source], [out], {"starts": tuple(starts), "steps": (1,) * source.rank,
                                           "shape": tuple(out.shape), **attrs}, name=name)
    out.producer = node
    return node


def per_channel(value: Operand, out: Operand, dtypes: tuple[str, ...] = ("float32",)) -> np.ndarray | None:
    """``value`` (a constant of one of ``dtypes``) as one float64 per output channel of the NCHW
    ``out``, if that is all it holds (one number: the same for every channel)."""
    if not value.is_constant or value.dtype not in dtypes or value.rank > out.rank:
        return None
    channels = out.shape[1]
    shape = (1,) * (out.rank - value.rank) + tuple(value.shape)
    if value.size == 1:
        return np.full(channels, float(value.value.reshape(-1)[0]))
    if shape[1] == channels and all(d == 1 for k, d in enumerate(shape) if k != 1):
        return value.value.reshape(-1).astype(np.float64)
    return None


def made_by(operand: Operand | None, op: str, kind: str | None = None) -> Node | None:
    """The node that makes ``operand`` if it is an ``op`` (of ``kind`` for binary ops and
    activations), else None."""
    node = operand.producer if operand is not None else None
    if node is None or node.op != op:
        return None
    if kind is not None:
        found = node.attrs["activation"].kind if op == "activation" else node.attrs.get("kind")
        if found != kind or (op == "binary" and node.attrs.get("activation") is not None):
            return None
    return node


def scalar(operand: Operand | None) -> float | None:
    """The value of a float constant that holds one number (any shape of size 1), else None."""
    if operand is None or not operand.is_constant or operand.size != 1 or operand.dtype not in ("float32", "float16"):
        return None
    return float(np.asarray(operand.value).reshape(-1)[0])


def near(value: float | None, want: float) -> bool:
    """Whether a constant (``scalar``'s value) is ``want`` within 5e-4, relative: an exporter's
    0.5, sqrt(2) or 1/6 as float32 or float16 stored it (f16 rounds by up to 2^-11, 4.9e-4: its
    sqrt(2) is 1.4140625, 1.5e-4 off)."""
    return value is not None and abs(value - want) <= 5e-4 * abs(want)


def channel_tail_pad(node: Node | None) -> int | None:
    """The channels a pad node adds at the end of axis 1 (negative: removes) where that is all it
    does, with zeros; else None (another mode or value, padding on another axis or side, or a pad
    that also quantizes: ``shift_quantized.quantize_in_channel_pad``)."""
    if (node is None or node.op != "pad" or node.attrs["mode"] != "constant" or float(node.attrs["value"]) != 0.0
            or node.attrs.get("quantize")):
        return None
    r, pads = node.inputs[0].rank, node.attrs["pads"]
    return None if any(p for k, p in enumerate(pads) if k != r + 1) else pads[r + 1]


def other(node: Node, operand: Operand) -> Operand:
    """The other input of a two-input node."""
    return node.inputs[1] if node.inputs[0] is operand else node.inputs[0]


def row_product(node: Node) -> bool:
    """Whether a convolution is matrix products over its NHWC input as it lies (``pointwise``, and
    ``subgroup`` on matmul_shared): one filter row (a 1x1 filter, or 1 x KW over neighbouring
    pixels), no padding, so that each output pixel's inputs are KW * C neighbouring values, its row's
    pixels stride_w * C apart; and each output row's first input evenly spaced (one image, or
    H = OH * stride_h). A 1x1 stride-1 one is one product over all pixels."""
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    (sh, _), (_, dw) = node.attrs["strides"], node.attrs["dilations"]
    return (w.shape[2] == 1 and (dw == 1 or w.shape[3] == 1) and not any(node.attrs["pads"])
            and (x.shape[0] == 1 or x.shape[2] == out.shape[2] * sh))


def rows_in_fours(node: Node) -> bool:
    """A one-group convolution with channels not in fours that ``row_product`` runs all the same:
    each output pixel's KW * C input values, and the pixels stride_w * C apart, fall on whole vec4s
    (an audio model's short-time Fourier transform, a 512-wide filter every 160 samples of one
    channel), so that no channel padding multiplies its products by four."""
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    n, c, _, wd = x.shape
    (sh, sw), kw = node.attrs["strides"], w.shape[3]
    return (node.op == "conv2d" and node.attrs["groups"] == 1 and c % 4 != 0 and row_product(node)
            and kw * c % 4 == 0 and (out.shape[3] == 1 or sw * c % 4 == 0)
            and (n * out.shape[2] == 1 or sh * wd * c % 4 == 0))
