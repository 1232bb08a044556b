"""LSTM, GRU and the simple RNN, built from graph ops (``OpBuilder.lstm`` / ``.gru`` / ``.rnn``;
LSTM and GRU as WebNN defines them, the RNN as ONNX does).

A recurrent layer becomes, per direction: one matmul that projects every time step's input at
once (plus both biases), then per step a matmul of the previous hidden state with the recurrent
weights, the gate slices, their activations and the element-wise state update. The loop is
unrolled at build time (the step count is static), so the compiler sees ordinary nodes: weights
that are constants fold their slices and transposes away, and the planner reuses the per-step
buffers. Gate order follows ONNX: LSTM ``i, o, f, c`` (WebNN's "iofg"), GRU ``z, r, h`` ("zrn"); the
RNN has one, ``H = f(X W^T + H R^T + biases)``.

Shapes (WebNN's, which are ONNX's with ``layout=0``): input [steps, batch, input_size]; weight
[directions, gates * hidden, input_size]; recurrent weight [directions, gates * hidden, hidden];
bias and recurrent bias [directions, gates * hidden]; peepholes [directions, 3 * hidden] (i, o, f);
initial states [directions, batch, hidden]. Each returns (sequence [steps, directions, batch,
hidden], last hidden state [directions, batch, hidden][, last cell state for LSTM]).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import GraphError
from .graph import Operand
from .ops.activation import Activation, make

DIRECTIONS = ("forward", "backward", "both")


class _Layer:
    """What the LSTM and GRU unrollings share: checks, per-direction weights, gate slicing."""

    def __init__(self, b, what: str, x: Operand, weight: Operand, recurrent: Operand, gates: int,
                 hidden_size: int, direction: str, activations: Sequence[Activation | str] | None,
                 default_activations: tuple[str, ...], clip: float | None, name: str, product=None):
        self.b, self.what, self.name, self.gates, self.hidden = b, what, name or what, gates, int(hidden_size)
        self.product = product
        if direction not in DIRECTIONS:
            raise GraphError(f"{what} node {self.name!r}: direction {direction!r} is not one of {DIRECTIONS}")
        self.dirs = 2 if direction == "both" else 1
        self.direction = direction
        if x.rank != 3:
            raise GraphError(f"{what} node {self.name!r}: input must be [steps, batch, input_size], got {x.shape}")
        self.steps, self.batch, size = x.shape
        expect = {"weight": (weight, (self.dirs, gates * self.hidden, size)),
                  "recurrent weight": (recurrent, (self.dirs, gates * self.hidden, self.hidden))}
        for label, (operand, shape) in expect.items():
            if operand.shape != shape:
                raise GraphError(f"{what} node {self.name!r}: {label} must have shape {shape}, got {operand.shape}")
        acts = list(activations) if activations else list(default_activations) * self.dirs
        if len(acts) == len(default_activations) and self.dirs == 2:
            acts = acts * 2
        if len(acts) != len(default_activations) * self.dirs:
            raise GraphError(f"{what} node {self.name!r}: expected {len(default_activations)} activations per "
                             f"direction, got {len(acts)}")
        self.acts = [a if isinstance(a, Activation) else make(a) for a in acts]
        self.per_dir = len(default_activations)
        self.clip = clip
        self.x = x
        self.weight, self.recurrent = weight, recurrent

    def check(self, what: str, operand: Operand | None, shape: tuple[int, ...]) -> None:
        if operand is not None and operand.shape != shape:
            raise GraphError(f"{self.what} node {self.name!r}: {what} must have shape {shape}, got {operand.shape}")

    def part(self, operand: Operand, d: int, tag: str) -> Operand:
        """Direction ``d`` of a [directions, ...] operand, without that axis."""
        b = self.b
        one = b.slice(operand, [d], [d + 1], axes=[0], name=f"{self.name}/{tag}{d}") if self.dirs > 1 else operand
        return b.squeeze(one, [0], name=f"{self.name}/{tag}{d}s")

    def projections(self, d: int, bias: Operand | None, recurrent_bias: Operand | None) -> tuple[Operand, Operand]:
        """(every step's input projection [steps, batch, gates*hidden], recurrent weights [hidden, gates*hidden])."""
        b, n = self.b, self.name
        width = self.gates * self.hidden
        w_t = b.transpose(self.part(self.weight, d, "w"), [1, 0], name=f"{n}/wt{d}")
        r_t = b.transpose(self.part(self.recurrent, d, "r"), [1, 0], name=f"{n}/rt{d}")
        flat = b.reshape(self.x, [self.steps * self.batch, self.x.shape[2]], name=f"{n}/x{d}")
        proj = self.matmul(flat, w_t, "input", d, f"{n}/xw{d}")
        for tag, bias_operand in (("wb", bias), ("rb", recurrent_bias)):
            if bias_operand is not None:
                proj = b.add(proj, self.part(bias_operand, d, tag), name=f"{n}/{tag}add{d}")
        return b.reshape(proj, [self.steps, self.batch, width], name=f"{n}/proj{d}"), r_t

    def matmul(self, a: Operand, w_t: Operand, which: str, d: int, name: str) -> Operand:
        """``a @ w_t``, the "input" or "recurrent" weights of direction ``d``: a matmul, or what the
        layer's ``product`` makes of it (a quantized LSTM quantizes ``a`` first)."""
        if self.product is not None:
            return self.product(a, w_t, which, d, name)
        return self.b.matmul(a, w_t, name=name)

    def order(self, d: int) -> list[int]:
        backward = self.direction == "backward" or d == 1
        return list(range(self.steps))[::-1] if backward else list(range(self.steps))

    def step_input(self, proj: Operand, t: int, d: int) -> Operand:
        b, n = self.b, self.name
        one = b.slice(proj, [t], [t + 1], axes=[0], name=f"{n}/p{d}_{t}")
        return b.reshape(one, [self.batch, self.gates * self.hidden], name=f"{n}/p{d}_{t}r")

    def gate(self, pre: Operand, k: int, tag: str) -> Operand:
        return self.b.slice(pre, [k * self.hidden], [(k + 1) * self.hidden], axes=[1], name=f"{self.name}/{tag}")

    def activate(self, x: Operand, d: int, which: int, tag: str, clipped: bool = True) -> Operand:
        """Activation ``which`` of direction ``d``, after clipping its input when ``clip`` is set and
        ``clipped`` (a gate's input: an LSTM's cell state goes into h unclipped, as ONNX Runtime does)."""
        b = self.b
        if self.clip is not None and clipped:
            x = b.clamp(x, min_value=-self.clip, max_value=self.clip, name=f"{self.name}/{tag}clip")
        act = self.acts[d * self.per_dir + which]
        return b.activation(x, act.kind, alpha=act.alpha, beta=act.beta, name=f"{self.name}/{tag}")

    def finish(self, outs: list[list[Operand]], lasts: list[list[Operand]]) -> list[Operand]:
        """The sequence [steps, directions, batch, hidden] and the last states [directions, batch, hidden]."""
        b, n = self.b, self.name
        if self.dirs == 1:
            hs = outs[0]
            y = (b.concat([b.unsqueeze(h, [0], name=f"{n}/y0_{t}") for t, h in enumerate(hs)], axis=0, name=f"{n}/y0")
                 if self.steps > 1 else b.unsqueeze(hs[0], [0], name=f"{n}/y0"))
            sequence = b.unsqueeze(y, [1], name=f"{n}/yd0")
        else:  # both directions' states, step by step: each one run of the sequence (written there in place)
            parts = [b.unsqueeze(outs[d][t], [0], name=f"{n}/y{d}_{t}") for t in range(self.steps) for d in (0, 1)]
            sequence = b.reshape(b.concat(parts, axis=0, name=f"{n}/y"), [self.steps, 2, self.batch, self.hidden],
                                 name=f"{n}/y_steps")
        results = [sequence]
        for k, states in enumerate(zip(*lasts)):
            parts = [b.unsqueeze(s, [0], name=f"{n}/last{k}_{d}") for d, s in enumerate(states)]
            results.append(parts[0] if self.dirs == 1 else b.concat(parts, axis=0, name=f"{n}/last{k}"))
        return results


def lstm(b, x: Operand, weight: Operand, recurrent_weight: Operand, *, hidden_size: int,
         bias: Operand | None = None, recurrent_bias: Operand | None = None, peephole_weight: Operand | None = None,
         initial_hidden_state: Operand | None = None, initial_cell_state: Operand | None = None,
         direction: str = "forward", activations: Sequence[Activation | str] | None = None,
         clip: float | None = None, couple_input_forget: bool = False, name: str = "", product=None) -> list[Operand]:
    """[sequence, last hidden state, last cell state]; ``activations`` are (f, g, h) per direction
    (default sigmoid, tanh, tanh); ``clip`` bounds the gates' inputs (not the cell state going into
    h, as ONNX Runtime reads ONNX's clip); ``couple_input_forget`` uses 1 - i as the forget gate.
    ``product(a, w_t, which, d, name)``, where given, makes each of the layer's matrix products
    (``a @ w_t`` with the "input" or "recurrent" weights of direction ``d``, transposed)."""
    layer = _Layer(b, "lstm", x, weight, recurrent_weight, 4, hidden_size, direction, activations,
                   ("sigmoid", "tanh", "tanh"), clip, name, product)
    n, H, dirs = layer.name, layer.hidden, layer.dirs
    for what, operand, shape in (("bias", bias, (dirs, 4 * H)), ("recurrent bias", recurrent_bias, (dirs, 4 * H)),
                                 ("peephole weight", peephole_weight, (dirs, 3 * H)),
                                 ("initial hidden state", initial_hidden_state, (dirs, layer.batch, H)),
                                 ("initial cell state", initial_cell_state, (dirs, layer.batch, H))):
        layer.check(what, operand, shape)
    outs, lasts = [], []
    for d in range(dirs):
        proj, r_t = layer.projections(d, bias, recurrent_bias)
        h = layer.part(initial_hidden_state, d, "h0") if initial_hidden_state is not None else None
        c = layer.part(initial_cell_state, d, "c0") if initial_cell_state is not None else None
        peep = [None, None, None]
        if peephole_weight is not None:
            p = layer.part(peephole_weight, d, "p")
            peep = [b.slice(p, [k * H], [(k + 1) * H], axes=[0], name=f"{n}/peep{d}_{k}") for k in range(3)]
        hs: list[Operand | None] = [None] * layer.steps
        for t in layer.order(d):
            tag = f"{d}_{t}"
            pre = layer.step_input(proj, t, d)
            if h is not None:
                pre = b.add(pre, layer.matmul(h, r_t, "recurrent", d, f"{n}/hr{tag}"), name=f"{n}/pre{tag}")
            gi, go, gf, gc = (layer.gate(pre, k, f"{g}{tag}") for k, g in enumerate("iofc"))
            if c is not None and peep[0] is not None:
                gi = b.add(gi, b.mul(c, peep[0], name=f"{n}/pi{tag}"), name=f"{n}/ip{tag}")
                gf = b.add(gf, b.mul(c, peep[2], name=f"{n}/pf{tag}"), name=f"{n}/fp{tag}")
            i = layer.activate(gi, d, 0, f"i_{tag}")
            if couple_input_forget:
                f = b.sub(b.constant(np.ones((), np.float32)), i, name=f"{n}/f_{tag}")
            else:
                f = layer.activate(gf, d, 0, f"f_{tag}")
            cand = layer.activate(gc, d, 1, f"c_{tag}")
            new_c = b.mul(i, cand, name=f"{n}/ic{tag}")
            if c is not None:
                new_c = b.add(b.mul(f, c, name=f"{n}/fc{tag}"), new_c, name=f"{n}/C{tag}")
            c = new_c
            if peep[1] is not None:
                go = b.add(go, b.mul(c, peep[1], name=f"{n}/po{tag}"), name=f"{n}/op{tag}")
            o = layer.activate(go, d, 0, f"o_{tag}")
            h = b.mul(o, layer.activate(c, d, 2, f"h_{tag}", clipped=False), name=f"{n}/H{tag}")
            hs[t] = h
        outs.append(hs)
        lasts.append([h, c])
    return layer.finish(outs, lasts)


def gru(b, x: Operand, weight: Operand, recurrent_weight: Operand, *, hidden_size: int,
        bias: Operand | None = None, recurrent_bias: Operand | None = None,
        initial_hidden_state: Operand | None = None, reset_after: bool = True, direction: str = "forward",
        activations: Sequence[Activation | str] | None = None, clip: float | None = None,
        name: str = "") -> list[Operand]:
    """[sequence, last hidden state]; ``activations`` are (f, g) per direction (default sigmoid,
    tanh). ``reset_after`` (WebNN's default; ONNX's ``linear_before_reset=1``) applies the reset
    gate after the recurrent matmul of the candidate; otherwise before it."""
    layer = _Layer(b, "gru", x, weight, recurrent_weight, 3, hidden_size, direction, activations,
                   ("sigmoid", "tanh"), clip, name)
    n, H, dirs = layer.name, layer.hidden, layer.dirs
    for what, operand, shape in (("bias", bias, (dirs, 3 * H)), ("recurrent bias", recurrent_bias, (dirs, 3 * H)),
                                 ("initial hidden state", initial_hidden_state, (dirs, layer.batch, H))):
        layer.check(what, operand, shape)
    outs, lasts = [], []
    for d in range(dirs):
        # The candidate's recurrent bias sits inside the reset product when reset_after: keep it out
        # of the input projection and add it to the recurrent term instead.
        proj, r_t = layer.projections(d, bias, None)
        rb = layer.part(recurrent_bias, d, "rb") if recurrent_bias is not None else None
        rb_zr = b.slice(rb, [0], [2 * H], axes=[0], name=f"{n}/rbzr{d}") if rb is not None else None
        rb_h = b.slice(rb, [2 * H], [3 * H], axes=[0], name=f"{n}/rbh{d}") if rb is not None else None
        r_zr = b.slice(r_t, [0], [2 * H], axes=[1], name=f"{n}/rzr{d}")
        r_h = b.slice(r_t, [2 * H], [3 * H], axes=[1], name=f"{n}/rh{d}")
        h = layer.part(initial_hidden_state, d, "h0") if initial_hidden_state is not None else None
        hs: list[Operand | None] = [None] * layer.steps
        for t in layer.order(d):
            tag = f"{d}_{t}"
            pre = layer.step_input(proj, t, d)
            gz, gr, gh = (layer.gate(pre, k, f"{g}{tag}") for k, g in enumerate("zrh"))
            if h is not None:
                hzr = b.matmul(h, r_zr, name=f"{n}/hzr{tag}")
                gz = b.add(gz, layer.gate(hzr, 0, f"hz{tag}"), name=f"{n}/gz{tag}")
                gr = b.add(gr, layer.gate(hzr, 1, f"hr{tag}"), name=f"{n}/gr{tag}")
            if rb_zr is not None:
                gz = b.add(gz, b.slice(rb_zr, [0], [H], axes=[0], name=f"{n}/rbz{tag}"), name=f"{n}/bz{tag}")
                gr = b.add(gr, b.slice(rb_zr, [H], [2 * H], axes=[0], name=f"{n}/rbr{tag}"), name=f"{n}/br{tag}")
            z = layer.activate(gz, d, 0, f"z_{tag}")
            r = layer.activate(gr, d, 0, f"r_{tag}")
            if h is not None:
                if reset_after:
                    rec = b.matmul(h, r_h, name=f"{n}/hh{tag}")
                    if rb_h is not None:
                        rec = b.add(rec, rb_h, name=f"{n}/hhb{tag}")
                    rec = b.mul(r, rec, name=f"{n}/rhh{tag}")
                else:
                    rec = b.matmul(b.mul(r, h, name=f"{n}/rh{tag}"), r_h, name=f"{n}/hh{tag}")
                    if rb_h is not None:
                        rec = b.add(rec, rb_h, name=f"{n}/hhb{tag}")
                gh = b.add(gh, rec, name=f"{n}/gh{tag}")
            elif rb_h is not None:
                gh = b.add(gh, rb_h if not reset_after else b.mul(r, rb_h, name=f"{n}/rrb{tag}"), name=f"{n}/gh{tag}")
            cand = layer.activate(gh, d, 1, f"hc_{tag}")
            # H = (1 - z) * cand + z * h = cand + z * (h - cand)
            if h is not None:
                h = b.add(cand, b.mul(z, b.sub(h, cand, name=f"{n}/d{tag}"), name=f"{n}/zd{tag}"), name=f"{n}/H{tag}")
            else:
                h = b.sub(cand, b.mul(z, cand, name=f"{n}/zc{tag}"), name=f"{n}/H{tag}")
            hs[t] = h
        outs.append(hs)
        lasts.append([h])
    return layer.finish(outs, lasts)


def rnn(b, x: Operand, weight: Operand, recurrent_weight: Operand, *, hidden_size: int,
        bias: Operand | None = None, recurrent_bias: Operand | None = None,
        initial_hidden_state: Operand | None = None, direction: str = "forward",
        activations: Sequence[Activation | str] | None = None, clip: float | None = None,
        name: str = "") -> list[Operand]:
    """ONNX's RNN: ``H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)``, ``activations`` (f) per direction
    (default tanh); returns [sequence, last hidden state]."""
    layer = _Layer(b, "rnn", x, weight, recurrent_weight, 1, hidden_size, direction, activations, ("tanh",), clip,
                   name)
    n, H, dirs = layer.name, layer.hidden, layer.dirs
    for what, operand, shape in (("bias", bias, (dirs, H)), ("recurrent bias", recurrent_bias, (dirs, H)),
                                 ("initial hidden state", initial_hidden_state, (dirs, layer.batch, H))):
        layer.check(what, operand, shape)
    outs, lasts = [], []
    for d in range(dirs):
        proj, r_t = layer.projections(d, bias, recurrent_bias)
        h = layer.part(initial_hidden_state, d, "h0") if initial_hidden_state is not None else None
        hs: list[Operand | None] = [None] * layer.steps
        for t in layer.order(d):
            tag = f"{d}_{t}"
            pre = layer.step_input(proj, t, d)
            if h is not None:
                pre = b.add(pre, layer.matmul(h, r_t, "recurrent", d, f"{n}/hr{tag}"), name=f"{n}/pre{tag}")
            h = layer.activate(pre, d, 0, f"h_{tag}")
            hs[t] = h
        outs.append(hs)
        lasts.append([h])
    return layer.finish(outs, lasts)
