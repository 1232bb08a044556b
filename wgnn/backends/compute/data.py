"""Compute lowerings of element-wise ops, data movement, reductions and resize.

Most of them are one dispatch of ``elementwise.wgsl`` (or ``ternary.wgsl``), a strided kernel: every
operand is addressed through per-axis strides, so broadcasting, any physical layout, slices,
concat pieces and transposed reads are the same code. It computes in f32, or in i32 where all
operands are integer or bool tensors (comparisons, logic, integer arithmetic, casts).
"""

from __future__ import annotations

import numpy as np

from ... import shaders
from ...graph import NARROW, Node, Operand, is_integer, is_unsigned32
from ...layout import equivalent, logical_strides
from ...ops.activation import Activation
from ...ops.elementwise import INTEGER_KINDS
from ...ops.quant import quant_range
from ...passes.fuse_elementwise import MAX_CONSTANTS, MAX_INPUTS
from ..common import MAX_RANK, broadcast_strides, merge_dims, pack_dims, reduction_uniforms, resize_uniforms
from .context import LoweringContext, Slice, lowers
from .policy import WORKGROUP_SIZES, row_loops

# Activations that int_ops.wgsl computes on integer tensors (what ops/ allows on them).
INTEGER_ACTIVATIONS = INTEGER_KINDS


ACTIVATED_TERNARY = ("muladd", "dequantize_sum")  # ternary.wgsl's functions that take a fused activation


def strided_dispatch(ctx: LoweringContext, node: Node, op: str, out: Operand, inputs: list[Operand], *,
                     activation: Activation | None = None, in_strides: list[list[int]] | None = None,
                     in_bases: list[int] | None = None, out_shape: tuple[int, ...] | None = None,
                     out_strides: list[int] | None = None, out_base: int = 0, kernel: str = "elementwise",
                     exact: bool = False, bounds: tuple[int, int] | None = None, store: str | None = None,
                     factor: Operand | None = None, bias_scaled: bool = False) -> None:
    """One dispatch of ``elementwise.wgsl`` (or ``ternary.wgsl``, three inputs) over ``out_shape``
    (logical axes, default: out's shape).

    ``in_strides``/``out_strides`` override the strides derived from each operand's layout; the
    iteration runs in the output's physical order so writes stay contiguous. The arithmetic is i32
    when every input is an integer or bool tensor, else f32. ``store``: the WGSL that stores ``v``
    instead of ``store_expression``'s. ``factor``: ternary's muladd, a one-number tensor b is also
    multiplied by; ``bias_scaled``: ternary's dequantize_sum, c a float bias it quantizes.
    """
    bases = list(in_bases or [0] * len(inputs))
    if in_strides is None:
        inputs, in_strides, bases = through_slices(ctx, inputs, out_shape or out.shape, bases)
    merged, sets, lanes, steps, total = index_space(ctx, node, out, inputs, shape=out_shape, in_strides=in_strides,
                                                    out_strides=out_strides)
    names = "abc"[: 3 if kernel == "ternary" else 2]
    params = {"out_step": steps[0], "total": total, "out_base": out_base, "shape": pack_dims(merged, 1),
              "out_strides": pack_dims(sets[0], 0)}
    for k, letter in enumerate(names):
        present = k < len(inputs)
        params[f"{letter}_step"] = steps[k + 1] if present else 0
        params[f"{letter}_base"] = bases[k] if present else 0
        params[f"{letter}_strides"] = pack_dims(sets[k + 1] if present else [], 0)
    # (constants in f32 also where the result is kept in f32 in an fp16 session, for its precision: a
    # quantize's input, a dequantized value; f16 would round a constant scale first)
    exact = exact or (ctx.elem == "f16" and ctx.storage.get(id(ctx.root(out))) == "f32")
    bindings = ([ctx.tensor(t, exact=exact) for t in inputs] + [ctx.dummy()] * (len(names) - len(inputs))
                + [ctx.tensor(out)])
    if kernel == "ternary":
        bindings.append(ctx.dummy() if factor is None else ctx.tensor(factor))
    template = {"rank": len(merged), "lanes": lanes}
    if kernel == "elementwise":
        integer = all(is_integer(t.dtype) for t in inputs)
        if integer and activation is not None:
            raise ctx.unsupported(node, f"a fused {activation.kind} on integer tensors")
        params["alpha"] = activation.alpha if activation else 0.0
        params["beta"] = activation.beta if activation else 0.0
        calc = ("u32" if any(is_unsigned32(t.dtype) for t in inputs) else "i32") if integer else "f32"
        template.update(calc=calc, fn=f"op_{op}_{calc}" if integer else f"op_{op}",
                        act=activation.kind if activation else "none", store=store or store_expression(calc, out.dtype))
    else:  # ternary: ``op`` names its combining function; ``bounds`` what quantizing saturates to, or
        # (muladd) the activation's alpha and beta
        lo, hi = bounds or ((activation.alpha, activation.beta) if activation else (0, 0))
        scale = node.attrs.get("scale")
        params.update(lo=float(lo), hi=float(hi), scale=1.0 if scale is None else float(scale))
        activated = op in ACTIVATED_TERNARY
        template.update(fn="activated" if activated else op, activated=activated, combine=op if activated else "muladd",
                        act=activation.kind if activation else "none", factor=factor is not None,
                        bias_scaled=bias_scaled)
    ctx.dispatch(kernel, node=node, template=template, params=params, bindings=bindings, threads=total)


def through_slices(ctx: LoweringContext, inputs: list[Operand], shape: tuple[int, ...], bases: list[int]):
    """(the tensors to bind, their strides per axis of ``shape`` or None, first elements) for
    ``inputs`` read by a strided kernel over ``shape``: a slice that is a view (``sliced_parts``)
    is read inside the sliced tensor, through the slice's strides; None where no input is one."""
    if not any(id(t) in ctx.slice_views for t in inputs):
        return inputs, None, bases
    bound, strides, bases = list(inputs), [], list(bases)
    for k, t in enumerate(inputs):
        cut = ctx.slice_views.get(id(t))
        if cut is None:
            strides.append(broadcast_strides(t, shape, ctx.perm(t)))
            continue
        own, base = _sliced_strides(cut, ctx)
        strides.append(broadcast_strides(t, shape, None, own))
        bound[k], bases[k] = cut.inputs[0], bases[k] + base
    return bound, strides, bases


def index_space(ctx: LoweringContext, node: Node, out: Operand, inputs: list[Operand], *,
                shape: tuple[int, ...] | None = None, in_strides: list[list[int]] | None = None,
                out_strides: list[int] | None = None):
    """The strided kernels' iteration over ``shape`` (default: out's) in the output's physical
    order: (the merged extents, per operand (output first) their strides, lanes (4 where an
    invocation takes four neighbours along the innermost axis, which then divides by 4), each
    operand's step between those neighbours, invocations)."""
    shape = shape or out.shape
    out_perm = ctx.perm(out)
    if in_strides is None:
        in_strides = [broadcast_strides(t, shape, ctx.perm(t)) for t in inputs]
    if out_strides is None:
        out_strides = logical_strides(shape, out_perm)
    order = list(out_perm) if len(out_perm) == len(shape) else list(range(len(shape)))
    sets = [[s[a] for a in order] for s in [out_strides] + in_strides]
    merged, sets = merge_dims([shape[a] for a in order], sets)
    if len(merged) > MAX_RANK:
        raise ctx.error(node, f"tensors of more than {MAX_RANK} non-trivial dimensions are not supported")
    lanes = 4 if merged[-1] % 4 == 0 else 1
    steps = [s[-1] for s in sets]
    if lanes == 4:
        merged = merged[:-1] + [merged[-1] // 4]
        sets = [s[:-1] + [s[-1] * 4] for s in sets]
    return merged, sets, lanes, steps, int(np.prod(merged))


# binary kinds that WGSL's vec4 operators compute as binary_ops.wgsl does lane by lane
_VEC4_OPERATORS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


@lowers("fused_elementwise")
def lower_fused_elementwise(node, ctx: LoweringContext) -> None:
    """One dispatch of ``fused.wgsl``: the chain's steps written out as WGSL over vec4s, its inputs
    addressed as ``strided_dispatch`` addresses its operands, its numbers in the uniform."""
    out, inputs = node.outputs[0], list(node.inputs)
    steps, constants = node.attrs["steps"], node.attrs["constants"]
    if len(inputs) > MAX_INPUTS or len(constants) > MAX_CONSTANTS:
        raise ctx.error(node, f"a fused chain takes at most {MAX_INPUTS} tensors and {MAX_CONSTANTS} numbers")
    inputs, in_strides, bases = through_slices(ctx, inputs, out.shape, [0] * len(inputs))
    merged, sets, lanes, lane_steps, total = index_space(ctx, node, out, inputs, in_strides=in_strides)

    def operand(arg) -> str:
        if isinstance(arg, tuple):
            return f"number({arg[1]}u)"
        return f"x{arg}v" if arg >= 0 else f"s{-arg - 1}"

    lines, kinds = [], []
    for j, (kind, args, act) in enumerate(steps):
        a = [operand(x) for x in args]
        if kind == "activation":
            value = a[0]
        elif kind == "muladd":
            value = f"{a[0]} * {a[1]} + {a[2]}"
        elif kind in _VEC4_OPERATORS:
            value = f"{a[0]} {_VEC4_OPERATORS[kind]} {a[1]}"
        else:
            value = f"v_{kind}({a[0]}, {a[1]})"
            kinds.append(kind)
        if act is not None:
            value = f"act_{act[0]}({value}, {operand(act[1])}.x, {operand(act[2])}.x, vec4<f32>(0.0))"
        lines.append(f"let s{j} = {value};")
    functions = "\n".join(
        f"fn v_{k}(x: vec4<f32>, z: vec4<f32>) -> vec4<f32> {{\n    return vec4<f32>(op_{k}(x.x, z.x), "
        f"op_{k}(x.y, z.y), op_{k}(x.z, z.z), op_{k}(x.w, z.w));\n}}" for k in sorted(set(kinds)))
    n = len(inputs)
    template = dict(
        rank=len(merged), lanes=lanes, act="none", last=n - 1, out_binding=n + 1, functions=functions,
        result=f"s{len(steps) - 1}",
        inputs="\n".join(f"@group(0) @binding({k + 1}) var<storage, read_write> x{k}: array<x{k}_elem>;"
                         for k in range(n)),
        offsets_init=" ".join(f"var o{k} = p.bases[{k // 4}][{k % 4}];" for k in range(n)),
        offsets="\n        ".join(f"o{k} += idx * p.strides[{2 * k} + q][r];" for k in range(n)),
        loads="\n    ".join(f"var x{k}v = vec4<f32>(); for (var l = 0; l < LANES; l++) "
                            f"{{ x{k}v[l] = f32(x{k}[o{k} + l * p.steps[{k // 4}][{k % 4}]]); }}" for k in range(n)),
        program="\n    ".join(lines))
    numbers = list(constants) + [0.0] * (MAX_CONSTANTS - len(constants))
    params = {"total": total, "out_step": lane_steps[0], "shape": pack_dims(merged, 1),
              "out_strides": pack_dims(sets[0], 0), "steps": pack_dims(lane_steps[1:], 0), "bases": pack_dims(bases, 0),
              "strides": [row for s in sets[1:] for row in pack_dims(s, 0)] + [[0] * 4] * (2 * (MAX_INPUTS - n)),
              "k": [numbers[r:r + 4] for r in range(0, MAX_CONSTANTS, 4)]}
    ctx.dispatch("fused", node=node, template=template, params=params,
                 bindings=[ctx.tensor(t) for t in inputs] + [ctx.tensor(out)], threads=total)


def store_expression(calc: str, dtype: str) -> str:
    """WGSL turning ``v`` (of type ``calc``) into what a ``dtype`` tensor stores: small integer types
    wrap to their width (a float out of a 4- or 2-bit type's range gives 0), uint32 keeps its bits."""
    if dtype in NARROW:
        bits, signed = NARROW[dtype]
        if calc == "f32" and bits <= 4:
            lo, hi = quant_range(dtype)
            return f"y_elem(float_to_small(v, {lo:.1f}, {hi:.1f}))"
        return f"y_elem(wrap_{'signed' if signed else 'unsigned'}(i32(v), {32 - bits}u))"
    if is_unsigned32(dtype) and calc == "f32":
        return "y_elem(u32(v))"
    return "y_elem(v)"


@lowers("binary")
def lower_binary(node, ctx: LoweringContext) -> None:
    strided_dispatch(ctx, node, node.attrs["kind"], node.outputs[0], [node.inputs[0], node.inputs[1]],
                     activation=node.attrs.get("activation"))


@lowers("where")
def lower_where(node, ctx: LoweringContext) -> None:
    strided_dispatch(ctx, node, "where_select", node.outputs[0], list(node.inputs), kernel="ternary")


@lowers("muladd")
def lower_muladd(node, ctx: LoweringContext) -> None:
    strided_dispatch(ctx, node, "muladd", node.outputs[0], list(node.inputs[:3]), kernel="ternary",
                     activation=node.attrs.get("activation"), factor=(node.inputs[3:] or [None])[0])


@lowers("dequantize_sum")
def lower_dequantize_sum(node, ctx: LoweringContext) -> None:
    strided_dispatch(ctx, node, "dequantize_sum", node.outputs[0], list(node.inputs), kernel="ternary", exact=True,
                     activation=node.attrs.get("activation"), bias_scaled=bool(node.attrs.get("bias_scaled")))


@lowers("quantize_linear", "dequantize_linear", "requantize")
def lower_quantize(node, ctx: LoweringContext) -> None:
    op = {"quantize_linear": "quantize", "dequantize_linear": "dequantize", "requantize": "requantize"}[node.op]
    if node.attrs.get("shifted"):
        op = "quantize_shifted" if node.op == "quantize_linear" else "requantize_shifted"
    elif node.op == "requantize" and node.attrs.get("scale") is not None:
        op = "requantize_dequantize"
    bounds = None if op == "dequantize" else node.attrs.get("range") or quant_range(node.inputs[2].dtype)
    # Scales and multipliers stay f32 in fp16 sessions: f16 would move quantized results at ties.
    strided_dispatch(ctx, node, op, node.outputs[0], list(node.inputs), kernel="ternary", exact=True, bounds=bounds)


# A dynamic range the policy runs as parts (range_parts.wgsl; from policy.RANGE_SPLIT values): each
# part at least RANGE_PART values, at most RANGE_PARTS of them.
RANGE_PART, RANGE_PARTS = 1024, 256


@lowers("dynamic_range", "dynamic_quantize")
def lower_dynamic_range(node, ctx: LoweringContext) -> None:
    """One workgroup over x: its range (scale and zero point), and for ``dynamic_quantize`` then its
    quantized values. Where the policy says ``parts`` (a large x; ``dynamic_quantize`` is for small
    ones), x is first reduced to the minimum and maximum of each of up to 256 parts, in as many
    workgroups. With attr ``rows``, a workgroup for each row (x's first axis)."""
    x = node.inputs[0]
    fused = node.op == "dynamic_quantize"
    y, ranges = (node.outputs[0], node.outputs[1:]) if fused else (None, node.outputs)
    template = {"quantize": fused, "shifted": bool(node.attrs.get("shifted")), "parts": False,
                "words": bool(node.attrs.get("words"))}
    rows = x.shape[0] if node.attrs.get("rows") else 1  # (a workgroup a row)
    source, total = ctx.tensor(x), x.size // max(rows, 1)
    parts = min(RANGE_PARTS, x.size // RANGE_PART)
    choice = None
    if not fused:  # (an invocation's loop iterations: its workgroup's share of a row, or of a part)
        loops = {"single": row_loops(total, min(WORKGROUP_SIZES)),
                 "parts": row_loops(-(-x.size // max(parts, 1)), min(WORKGROUP_SIZES))}
        choice = ctx.policy.choose("dynamic_range", node, ctx.variants("dynamic_range", node), loops=loops)
    if choice is not None and choice.variant == "parts":
        total = parts
        source = ctx.temporary(node, (2 * total,), "parts")
        ctx.dispatch("range_parts", node=node, template={}, params={"total": x.size},
                     bindings=[ctx.tensor(x), source], workgroups=total, choice=choice,
                     loops=row_loops(-(-x.size // total), choice.workgroup))
        template["parts"] = True
    wg = choice.workgroup if choice is not None else shaders.WORKGROUP_SIZE
    ctx.dispatch("dynamic_range", node=node, template=template, params={"total": total},
                 bindings=[source] + [ctx.tensor(out) for out in ranges]
                 + [ctx.tensor(y) if fused else ctx.dummy()], workgroups=rows, choice=choice,
                 loops=row_loops(total * (2 if fused else 1), wg))  # (twice over the row where it quantizes)


@lowers("float_class")
def lower_float_class(node, ctx: LoweringContext) -> None:
    strided_dispatch(ctx, node, f"is_{node.attrs['kind']}", node.outputs[0], [node.inputs[0]])


@lowers("logical_not")
def lower_not(node, ctx: LoweringContext) -> None:
    strided_dispatch(ctx, node, "not", node.outputs[0], [node.inputs[0]])


@lowers("activation")
def lower_activation(node, ctx: LoweringContext) -> None:
    act: Activation = node.attrs["activation"]
    if is_integer(node.inputs[0].dtype):
        if act.kind not in INTEGER_ACTIVATIONS:
            raise ctx.unsupported(node, f"{act.kind} of a {node.inputs[0].dtype} tensor on the GPU "
                                        f"(integer tensors take {sorted(INTEGER_ACTIVATIONS)})")
        strided_dispatch(ctx, node, act.kind, node.outputs[0], [node.inputs[0]])
        return
    if act.kind == "prelu":
        strided_dispatch(ctx, node, "prelu", node.outputs[0], [node.inputs[0], node.inputs[1]])
    else:
        strided_dispatch(ctx, node, "first", node.outputs[0], [node.inputs[0]], activation=act)


@lowers("identity", "relayout")
def lower_copy(node, ctx: LoweringContext) -> None:
    strided_dispatch(ctx, node, "first", node.outputs[0], [node.inputs[0]])


@lowers("bitcast")
def lower_bitcast(node, ctx: LoweringContext) -> None:
    """Integer to integer (or bool): the wrapping cast. With a float side, the bits themselves:
    f32 through WGSL's bitcast, f16 through its packing (an f16 value is exact in f32)."""
    src, to = node.inputs[0].dtype, node.attrs["to"]
    if "float" not in src and "float" not in to:
        strided_dispatch(ctx, node, "first", node.outputs[0], [node.inputs[0]])
        return
    signed = to in ("int16", "int32")
    store = {"float32": "y_elem(bitcast<f32>(v))",
             "float16": "y_elem(unpack2x16float(u32(v) & 0xffffu).x)",
             "int32": "y_elem(bitcast<i32>(v))", "uint32": "y_elem(bitcast<u32>(v))",
             }.get(to, f"y_elem(wrap_{'signed' if signed else 'unsigned'}(i32(pack2x16float(vec2<f32>(v, 0.0))), 16u))")
    strided_dispatch(ctx, node, "first", node.outputs[0], [node.inputs[0]], store=store)


@lowers("cast")
def lower_cast(node, ctx: LoweringContext) -> None:
    """A copy that converts as it stores: float to integer truncates toward zero, anything to bool
    is a test against zero."""
    to_bool = node.attrs["to"] == "bool" and node.inputs[0].dtype != "bool"
    strided_dispatch(ctx, node, "nonzero" if to_bool else "first", node.outputs[0], [node.inputs[0]])


NHWC = (0, 2, 3, 1)


def pool_rows(node: Node) -> bool:
    """Whether a pool2d node runs on the row-tiled kernel (``pool_rows.wgsl``: four channels a vec4,
    windows at most 3 wide, column stride at most 2, no column dilation), not ``pool.wgsl``."""
    a = node.attrs
    (_, kw), (_, sw), (_, dw) = a["kernel"], a["strides"], a["dilations"]
    return (a["mode"] != "argmax" and node.inputs[0].shape[1] % 4 == 0 and kw <= 3 and sw <= 2 and dw == 1
            and node.outputs[0].shape[3] >= 2)


def _reads_windows(node: Node, t: Operand, state) -> bool:
    """Whether ``node`` reads ``t`` in place through a channel window (``channel_windows``): as the
    input of Winograd's input transform, of a max or average pool on ``pool.wgsl`` or of a resize
    (four channels a vec4, ``lower_resize``'s ``lanes``), or as a float convolution's residual (the
    epilogue's R_WINDOW, or a padded copy for the scalar kernel)."""
    if node.op == "winograd_input":
        return node.inputs[0] is t
    if node.op == "resize":
        out = node.outputs[0]
        return (node.inputs[0] is t and t.shape[1] % 4 == 0 and state.perms.get(id(out)) == NHWC
                and state.storage.get(id(state.root(out))) in ("f32", "f16")
                and all(u is not t for u in node.inputs[1:]))
    if node.op == "pool2d":
        return (node.inputs[0] is t and node.attrs["mode"] in ("max", "avg") and t.shape[1] % 4 == 0
                and not pool_rows(node))
    if node.op in ("conv2d", "winograd_output"):
        return (len(node.inputs) > 3 and node.inputs[3] is t and all(u is not t for u in node.inputs[:3])
                and all(node.attrs.get(q) is None for q in ("requantize", "x_zero", "int8_offset")))
    return False


def _read_slices(state):
    """(slice node, its readers) for each slice whose result some node reads and no graph output is."""
    users, outputs = state.graph.consumers(), state.graph.output_ids()
    for node in list(state.graph.nodes):
        out = node.outputs[0]
        if node.op == "slice" and id(out) not in outputs and users.get(id(out)):
            yield node, users[id(out)]


def channel_windows(state, windows: dict[int, tuple[int, int]]) -> None:
    """Slices along the channels of a channels-last tensor that read nothing but readers of windows
    (``_reads_windows``) become views: no copy, the readers address the slice's vec4s inside the
    sliced tensor (YOLOv8's C2f blocks split a convolution's result in two and run a bottleneck on
    the second half). Records the window, in vec4s, in ``windows`` and the owner of the bytes in
    ``state.roots``."""
    for node, readers in _read_slices(state):
        x, out = node.inputs[0], node.outputs[0]
        kind = state.storage.get(id(state.root(x)))
        if (x.rank != 4 or state.perms[id(x)] != NHWC or state.perms[id(out)] != NHWC or kind not in ("f32", "f16")
                or state.storage.get(id(out)) != kind or (state.root(x) is not x and id(x) not in windows)
                or any(st != 1 for st in node.attrs["steps"]) or out.shape[::2] != x.shape[::2]
                or out.shape[3] != x.shape[3] or any(node.attrs["starts"][a] for a in (0, 2, 3))
                or x.shape[1] % 4 or out.shape[1] % 4 or node.attrs["starts"][1] % 4
                or not all(_reads_windows(u, out, state) for u in readers)):
            continue
        pitch, offset = windows.get(id(x), (x.shape[1] // 4, 0))
        windows[id(out)] = (pitch, offset + node.attrs["starts"][1] // 4)
        state.roots[id(out)] = state.root(x)


def leading_columns(state, row_pitch: dict[int, int]) -> None:
    """A slice of the leading columns of a tensor in logical order (``pad_matmul_columns``'s slice of
    a padded product's real columns) that only softmaxes over its last axis read is a view: they read
    its rows inside the wider tensor (``row_pitch``: that tensor's row length). PP-OCR's and
    ddddocr's classifiers over thousands of characters: a copy of the whole result saved."""
    for node, readers in _read_slices(state):
        x, out = node.inputs[0], node.outputs[0]
        identity = tuple(range(x.rank))
        if (state.perms[id(x)] != identity or state.perms[id(out)] != identity or state.root(x) is not x
                or state.storage.get(id(x)) != state.storage.get(id(out))
                or any(node.attrs["starts"]) or any(st != 1 for st in node.attrs["steps"])
                or out.shape[:-1] != x.shape[:-1]
                or not all(u.op == "softmax" and u.inputs[0] is out and all(t is not out for t in u.inputs[1:])
                           and u.attrs["axis"] % out.rank == out.rank - 1 for u in readers)):
            continue
        row_pitch[id(out)] = x.shape[-1]
        state.roots[id(out)] = x


# The ops whose lowering reads every input through strided_dispatch's own strides (the first
# ``n`` inputs, None: all), so that it can read a slice inside the sliced tensor instead.
STRIDED_READERS = {"binary": None, "fused_elementwise": None, "where": None, "muladd": 3, "dequantize_sum": None,
                   "quantize_linear": None, "dequantize_linear": None, "requantize": None, "float_class": None,
                   "logical_not": None, "activation": None, "identity": None, "relayout": None, "bitcast": None,
                   "cast": None}


def _reads_strided(node: Node, t: Operand) -> bool:
    """Whether ``node`` reads ``t`` only through the strided element-wise kernels' addressing."""
    if node.op not in STRIDED_READERS:
        return False
    n = STRIDED_READERS[node.op]
    return n is None or all(u is not t for u in node.inputs[n:])


def sliced_parts(state, slice_views: dict[int, Node]) -> None:
    """Slices that only concats and strided element-wise kernels read are views: each concat's copy
    of the part, each element-wise op, reads the sliced tensor through the slice's strides instead
    (YOLOX's Focus: four strided slices of the image, concatenated along the channels: four copies
    instead of eight; PP-PicoDet's heads: the sigmoid of a convolution's first ten channels, one
    dispatch instead of two). Records the slice node in ``slice_views`` and the owner of the bytes
    in ``state.roots``."""
    for node, readers in _read_slices(state):
        out, x = node.outputs[0], node.inputs[0]
        if id(out) in state.roots or out.size == 0:
            continue
        if not all(u.op == "concat" for u in readers):  # element-wise readers: x its own bytes, stored alike
            if (state.root(x) is not x or state.storage.get(id(out)) != state.storage.get(id(x))
                    or not all(u.op == "concat" or _reads_strided(u, out) for u in readers)):
                continue
        slice_views[id(out)] = node
        state.roots[id(out)] = state.root(node.inputs[0])


ELEMENT_BYTES = {"f32": 4, "f16": 2, "i32": 4}


def contiguous_block(shape: tuple[int, ...], perm: tuple[int, ...], part: tuple[int, ...],
                     starts: tuple[int, ...]) -> int | None:
    """The element offset of the block of shape ``part`` at ``starts`` inside a tensor of ``shape``
    stored in ``perm`` order, where the block is one run of neighbouring elements (every stored axis
    outward of the innermost it cuts a single index); else None."""
    dims, sizes, at = ([v[a] for a in perm] for v in (shape, part, starts))
    cut = max((k for k in range(len(dims)) if sizes[k] != dims[k]), default=0)
    if any(sizes[k] != 1 for k in range(cut)):
        return None
    stride, offset = 1, 0
    for k in reversed(range(len(dims))):
        offset += at[k] * stride
        stride *= dims[k]
    return offset


def _place(state, owner: Operand, whole: Operand, offset: int) -> None:
    """Let ``owner``, and the views of it, live inside ``whole`` from byte ``offset`` on
    (``state.placed``)."""
    root, base = state.root(whole), state.placed.get(id(whole), 0) + offset
    for key, view_root in list(state.roots.items()):
        if view_root is owner:
            state.roots[key] = root
            state.placed[key] = base + state.placed.get(key, 0)
    state.roots[id(owner)] = root
    state.placed[id(owner)] = base


def _read_whole(ctx: LoweringContext) -> set[int]:
    """The tensors some kernel reads by binding their root whole and addressing them inside it: a
    channel window, wider rows, a strided slice, a concat part written through the epilogue."""
    return set(ctx.windows) | set(ctx.row_pitch) | set(ctx.slice_views) | set(ctx.slices)


def _plain(state, operand: Operand, read_whole: set[int]) -> bool:
    """Whether ``operand``, and every view of it, is read from its first byte on as its own shape
    (none of them in ``read_whole``)."""
    return id(operand) not in read_whole and not any(
        key in read_whole for key, root in state.roots.items() if root is operand)


def _place_run(state, owner: Operand, whole: Operand, perm: tuple[int, ...], part: tuple[int, ...],
               starts: tuple[int, ...], kind: str) -> bool:
    """Place ``owner`` (the block of shape ``part`` at ``starts``) inside ``whole`` (stored in
    ``perm`` order, elements of ``kind``) where it is one run of ``whole``'s elements starting at a
    byte offset the adapter binds storage at; whether it was."""
    start = contiguous_block(whole.shape, perm, part, starts)
    if start is None or (state.placed.get(id(whole), 0) + start * ELEMENT_BYTES[kind]) % state.device.storage_alignment:
        return False
    _place(state, owner, whole, start * ELEMENT_BYTES[kind])
    return True


def contiguous_slices(state, ctx: LoweringContext) -> None:
    """A slice that is one run of neighbouring elements of the sliced tensor, starting at a byte
    offset the adapter can bind storage at, is a view: its readers bind the sliced tensor's bytes
    from there (an LSTM's input projection, one time step's row at a time). Records the offset in
    ``state.placed``. A slice a graph output is a view of keeps its own bytes (an output owns its
    buffer)."""
    outputs, read_whole = set(state.output_roots), _read_whole(ctx)
    for node, _ in _read_slices(state):
        x, out = node.inputs[0], node.outputs[0]
        kind = state.storage.get(id(state.root(x)))
        if (x.is_constant or id(out) in state.roots or id(out) in outputs or kind not in ELEMENT_BYTES
                or state.storage.get(id(out)) != kind or any(st != 1 for st in node.attrs["steps"])
                or not equivalent(out.shape, state.perms[id(x)], state.perms[id(out)])
                or not _plain(state, x, read_whole) or not _plain(state, out, read_whole)):
            continue
        _place_run(state, out, x, state.perms[id(x)], out.shape, node.attrs["starts"], kind)


def contiguous_parts(state, ctx: LoweringContext) -> None:
    """A concat's part that is one run of neighbouring elements of the result, starting at a byte
    offset the adapter can bind storage at, is written there by whatever kernel makes it (its output
    binding starts there) and read there by its other readers, so the concat copies nothing of it
    (an LSTM's hidden state, step by step into its output sequence, while the next step reads it).
    The part must own its bytes (or be a plain view of a tensor that does) and be no graph output; a
    part of two concats lies in the first (an LSTM's last hidden state: in its output sequence,
    copied into Y_h). Records the offset in ``state.placed`` and the part in ``state.written``."""
    outputs, read_whole = set(state.output_roots), _read_whole(ctx)
    for node in state.graph.nodes:
        whole = node.outputs[0]
        kind = state.storage.get(id(state.root(whole)))
        if node.op != "concat" or kind not in ELEMENT_BYTES or not _plain(state, whole, read_whole):
            continue
        perm, axis, at = state.perms[id(whole)], node.attrs["axis"] % whole.rank, 0
        for t in node.inputs:
            owner = state.root(t)
            starts = tuple(at if a == axis else 0 for a in range(whole.rank))
            at += t.shape[axis]
            if (owner.producer is None or owner.is_constant or id(owner) in outputs or node.inputs.count(t) != 1
                    or id(owner) in state.placed or id(t) in state.placed or owner.size != t.size
                    or owner is state.root(whole) or state.storage.get(id(owner)) != kind
                    or not equivalent(t.shape, state.perms[id(t)], perm) or not _plain(state, owner, read_whole)):
                continue
            if _place_run(state, owner, whole, perm, t.shape, starts, kind):
                state.written.add(id(owner))


def concat_slices(state, windows: dict[int, tuple[int, int]]) -> dict[int, Slice]:
    """The concat parts that can be written straight into the concat's result, where it lies.

    A part qualifies when the concat is its only reader, it is no graph input or output and owns
    its bytes, it is stored in the same type and physical order as the result, and its rows (the
    part's elements from the concat axis inward, in physical order) and their place in the result
    are whole vec4s. A part of a channels-last concat along the channels may have other readers
    if each reads it through a channel window (``_reads_windows``), or is a slice made a window of
    it (``channel_windows``): then they read it inside the result (YOLOv8's C2f: the first
    convolution's result and each bottleneck's are both concatenated and read by the next step).
    Whether it is written in place is up to its producer's lowering: the vec4 kernels' epilogue
    takes the slice (``LoweringContext.write_slice``); any other kernel writes the part on its own,
    its readers read it there, and the concat copies it."""
    graph = state.graph
    readers = graph.consumers()  # (a node reading a tensor twice is listed twice)
    outputs = {id(state.root(o)) for o in graph.outputs.values()}
    slices: dict[int, Slice] = {}
    for node in graph.nodes:
        out = node.outputs[0]
        kind = state.storage.get(id(out))
        if node.op != "concat" or state.root(out) is not out or kind not in ("f32", "f16", "i32"):
            continue
        perm = state.perms[id(out)]
        axis = node.attrs["axis"] % out.rank
        inner = int(np.prod([out.shape[a] for a in perm[perm.index(axis) + 1:]], dtype=np.int64))
        pitch, offset = out.shape[axis] * inner, 0
        channels = perm == NHWC and axis == 1
        for t in node.inputs:
            row = t.shape[axis] * inner
            others = [r for r in readers.get(id(t), []) if r is not node]
            views = tuple(r.outputs[0] for r in others if r.op == "slice" and id(r.outputs[0]) in windows
                          and state.root(r.outputs[0]) is t)
            shared = (channels and node.inputs.count(t) == 1 and id(t) not in windows
                      and all(_reads_windows(r, t, state) or any(v is r.outputs[0] for v in views) for r in others))
            uses = len(readers.get(id(t), []))
            if (t.producer is not None and (uses == 1 or shared) and id(t) not in outputs
                    and state.root(t) is t and state.storage.get(id(t)) == kind
                    and equivalent(t.shape, state.perms[id(t)], perm) and row % 4 == 0 and pitch % 4 == 0
                    and offset % 4 == 0):
                slices[id(t)] = Slice(out, row, pitch, offset, windowed=uses > 1, views=views)
            offset += row
    return slices


def _in_place(ctx: LoweringContext, t: Operand, out: Operand, starts: tuple[int, ...]) -> bool:
    """Whether the concat part ``t`` already lies where the concat ``out`` has it from ``starts``
    on: written there through its producer's epilogue (``concat_slices``), or placed there as a run
    of the result's elements (``contiguous_parts``). Inside the same root is not enough: a part of
    two concats lies in the first, and where that concat is itself a part of the second (concat(
    concat(x, t), t)), t lies in the second's result once, inside the first's place."""
    if ctx.root(t) is not ctx.root(out) or id(t) in ctx.slice_views:  # (a slice view: read inside the
        return False  # sliced tensor)
    written = ctx.slices.get(id(t))
    if written is not None and written.whole is out and ctx.root(t) is out:
        return True
    start = contiguous_block(out.shape, ctx.perm(out), t.shape, starts)
    size = ELEMENT_BYTES.get(ctx.storage.get(id(ctx.root(out))))
    return (start is not None and size is not None
            and ctx.placed.get(id(t), 0) == ctx.placed.get(id(out), 0) + start * size)


@lowers("concat")
def lower_concat(node, ctx: LoweringContext) -> None:
    """A copy of each part into its place, except the parts already there (``_in_place``)."""
    out = node.outputs[0]
    axis = node.attrs["axis"] % out.rank
    out_strides = logical_strides(out.shape, ctx.perm(out))
    offset = 0
    for t in node.inputs:
        if not _in_place(ctx, t, out, tuple(offset if a == axis else 0 for a in range(out.rank))):
            strided_dispatch(ctx, node, "first", out, [t], out_shape=t.shape, out_strides=out_strides,
                             out_base=offset * out_strides[axis])
        offset += t.shape[axis]


@lowers("depth_to_space")
def lower_depth_to_space(node, ctx: LoweringContext) -> None:
    """One strided copy over the output's pixels and channels in its physical order: (N, H, KH, W,
    KW, C) for channels-last, each position reading its input channel group."""
    x, out = node.inputs[0], node.outputs[0]
    kh, kw = node.attrs["block"]
    n, c, h, w = out.shape[0], out.shape[1], x.shape[2], x.shape[3]
    sn, sc, sh, sw = logical_strides(x.shape, ctx.perm(x))
    on, oc, oh, ow = logical_strides(out.shape, ctx.perm(out))
    if ctx.perm(out) == NHWC:
        shape, so, si = ((n, h, kh, w, kw, c), [on, kh * oh, oh, kw * ow, ow, oc],
                         [sn, sh, kw * c * sc, sw, c * sc, sc])
    else:
        shape, so, si = ((n, c, h, kh, w, kw), [on, oc, kh * oh, oh, kw * ow, ow],
                         [sn, sc, sh, kw * c * sc, sw, c * sc])
    strided_dispatch(ctx, node, "first", out, [x], in_strides=[si], out_shape=shape, out_strides=so)


@lowers("slice")
def lower_slice(node, ctx: LoweringContext) -> None:
    strides, base = _sliced_strides(node, ctx)
    strided_dispatch(ctx, node, "first", node.outputs[0], [node.inputs[0]], in_strides=[strides], in_bases=[base])


def _sliced_strides(node, ctx: LoweringContext) -> tuple[list[int], int]:
    """A slice node's elements as (strides per axis, first element) in its input's storage."""
    own = logical_strides(node.inputs[0].shape, ctx.perm(node.inputs[0]))
    return ([s * st for s, st in zip(own, node.attrs["steps"])],
            sum(s * st for s, st in zip(own, node.attrs["starts"])))


# pad_channels.wgsl's Params where it does not quantize (a quantizing pad's: scale, zero point, bounds)
NOT_QUANTIZED = {"q_scale": 1.0, "q_zero": 0.0, "q_lo": 0.0, "q_hi": 0.0}


@lowers("pad")
def lower_pad(node, ctx: LoweringContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    perm = ctx.perm(out)
    r = x.rank
    if r > MAX_RANK:
        raise ctx.error(node, f"pad supports up to {MAX_RANK} dimensions")
    pads = node.attrs["pads"]
    bounds = node.attrs.get("quantize")  # (quantized as it is copied: passes.quantize_in_channel_pad)
    if (r == 4 and node.attrs["mode"] == "constant" and ctx.perm(x) in ((0, 1, 2, 3), (0, 2, 3, 1))
            and perm == (0, 2, 3, 1) and out.shape[1] % 4 == 0 and min(pads) >= 0
            and not any(pads[k] for k in (0, 2, 3, 4, 6, 7)) and ctx.tensor(x).dtype in ("f32", "f16")):
        # channels padded, into NHWC: a network's first layer (from NCHW), a block's residual (pad_channels.wgsl)
        n, c, h, w = x.shape
        nhwc = ctx.perm(x) == (0, 2, 3, 1)
        params = {"total": out.size // 4, "pixels": h * w, "c_in": c, "c4": out.shape[1] // 4, "c_begin": pads[1],
                  "c_stride": 1 if nhwc else h * w, "p_stride": c if nhwc else 1, "n_stride": c * h * w,
                  "x_base": 0, "value": float(node.attrs["value"]), **NOT_QUANTIZED}
        if bounds:  # (scale and zero point as quantize_linear's kernel reads them: f32, the zero point's integer)
            params.update(q_scale=float(np.float32(node.inputs[1].value.reshape(-1)[0])),
                          q_zero=float(node.inputs[2].value.reshape(-1)[0]), q_lo=float(bounds[0]),
                          q_hi=float(bounds[1]))
        ctx.dispatch("pad_channels", node=node, template={"quantize": bool(bounds)}, params=params,
                     bindings=[ctx.tensor(x), ctx.tensor(out)], threads=out.size // 4)
        return
    if bounds:
        raise ctx.error(node, f"a quantizing pad runs only as a channel padding into NHWC (pad_channels); this one "
                              f"pads {pads} from axis order {ctx.perm(x)} to {perm}")
    if node.attrs["mode"] == "constant" and min(pads) >= 0:
        _pad_by_copies(node, ctx, x, out, pads)
        return
    begins = [pads[a] for a in perm]
    params = {
        "total": out.size,
        "value": float(node.attrs["value"]),
        "out_shape": pack_dims([out.shape[a] for a in perm], 1),
        "in_shape": pack_dims([x.shape[a] for a in perm], 1),
        "in_strides": pack_dims([logical_strides(x.shape, ctx.perm(x))[a] for a in perm], 0),
        "begins": pack_dims(begins, 0),
    }
    ctx.dispatch("pad", node=node, template={"rank": max(r, 1), "mode": node.attrs["mode"]},
                 params=params, bindings=[ctx.tensor(x), ctx.tensor(out)], threads=out.size)


def _pad_by_copies(node, ctx: LoweringContext, x: Operand, out: Operand, pads) -> None:
    """Constant padding as strided copies: the padding value into the border slabs of each padded
    axis, then x into the interior (four elements an invocation where rows allow), instead of the
    per-element index arithmetic of ``pad.wgsl``: a network's channel padding on lavapipe runs at
    several times the speed."""
    r = x.rank
    strides = logical_strides(out.shape, ctx.perm(out))
    fill = Operand(f"{node.name}/value", (), x.dtype, value=np.array(node.attrs["value"]).astype(x.dtype))
    for a in range(r):
        begin, end = pads[a], pads[a + r]
        for size, base in ((begin, 0), (end, (begin + x.shape[a]) * strides[a])):
            if size:
                shape = out.shape[:a] + (size,) + out.shape[a + 1:]
                strided_dispatch(ctx, node, "first", out, [fill], in_strides=[[0] * r], out_shape=shape,
                                 out_strides=strides, out_base=base)
    base = sum(pads[a] * strides[a] for a in range(r))
    strided_dispatch(ctx, node, "first", out, [x], out_shape=x.shape, out_strides=strides, out_base=base)


@lowers("gather")
def lower_gather(node, ctx: LoweringContext) -> None:
    data, idx = node.inputs
    out = node.outputs[0]
    axis = node.attrs["axis"] % data.rank
    d = data.shape[axis]
    outside_zero = node.attrs.get("outside") == "zero"
    if idx.is_constant and not outside_zero:
        values = idx.value.astype(np.int64).reshape(-1)
        if values.size and (values.min() < -d or values.max() >= d):
            raise ctx.error(node, f"indices {values.tolist()} are out of range for axis {axis} of size {d}")
    elif not is_integer(idx.dtype):
        raise ctx.error(node, f"indices must be an integer tensor, got {idx.dtype}")
    inner = int(np.prod(data.shape[axis + 1:], dtype=np.int64))
    params = {"total": out.size, "inner": inner, "count": max(idx.size, 1), "axis_size": d,
              "outside_zero": int(outside_zero)}
    ctx.dispatch("gather", node=node, template={}, params=params,
                 bindings=[ctx.tensor(data), ctx.tensor(idx), ctx.tensor(out)], threads=out.size)


@lowers("reduce")
def lower_reduce(node, ctx: LoweringContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    axes = set(node.attrs["axes"])
    in_perm = ctx.perm(x)
    strides = logical_strides(x.shape, in_perm)
    # Kept axes in the output's physical order (so writes are contiguous); reduced axes in the input's.
    kept_logical = [k for k in range(x.rank) if k not in axes]
    out_perm = ctx.perm(out)
    if node.attrs["keepdims"]:
        kept_order = [a for a in out_perm if a not in axes]
    else:
        kept_order = [kept_logical[a] for a in out_perm]
    red_order = [a for a in in_perm if a in axes]
    out_shape, (out_strides,) = merge_dims([x.shape[a] for a in kept_order] or [1],
                                           [[strides[a] for a in kept_order] or [0]])
    red_shape, (red_strides,) = merge_dims([x.shape[a] for a in red_order] or [1],
                                           [[strides[a] for a in red_order] or [0]])
    if len(out_shape) > MAX_RANK or len(red_shape) > MAX_RANK:
        raise ctx.error(node, f"more than {MAX_RANK} non-trivial dimensions")
    params, template = reduction_uniforms(node, red_shape, red_strides)
    params.update(outputs=out.size, out_shape=pack_dims(out_shape, 1), out_strides=pack_dims(out_strides, 0))
    template["out_rank"] = len(out_shape)
    shape, size = ctx.rows(node, out.size, params["reduce_size"] * (2 if template["needs_max"] else 1))
    ctx.dispatch("reduce", node=node, template=dict(template, **shape),
                 params=params, bindings=[ctx.tensor(x), ctx.tensor(out)], **size)


@lowers("arg_reduce")
def lower_arg_reduce(node, ctx: LoweringContext) -> None:
    x, out, a = node.inputs[0], node.outputs[0], node.attrs
    axis = a["axis"] % max(x.rank, 1)
    size = x.shape[axis] if x.rank else 1
    inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    params = {"total": out.size, "axis_size": size, "inner": inner}
    template, shape = ctx.rows(node, out.size, size)
    template.update(better=">" if a["kind"] == "max" else "<", or_equal="=" if a["select_last_index"] else "",
                    last=bool(a["select_last_index"]), nan="false" if is_integer(x.dtype) else "is_nan(f32(v))")
    ctx.dispatch("arg_reduce", node=node, template=template, params=params,
                 bindings=[ctx.tensor(x), ctx.tensor(out)], **shape)


@lowers("resize")
def lower_resize(node, ctx: LoweringContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    table, params, template = resize_uniforms(node)
    params["batch"] = x.shape[0]
    x_ref, y_ref = ctx.tensor(x), ctx.tensor(out)
    lanes = 4 if (ctx.perm(x) == NHWC and ctx.perm(out) == NHWC and x.shape[1] % 4 == 0
                  and x_ref.dtype in ("f32", "f16") and y_ref.dtype in ("f32", "f16")) else 1
    window4 = ctx.windows.get(id(x))  # x a channel slice of a wider tensor, read in place (_reads_windows)
    if window4 is not None and lanes != 4:
        raise ctx.error(node, "a resize reading a channel window needs whole vec4s of channels in NHWC")
    pitch4, offset4 = window4 or (x.shape[1] // 4, 0)
    params.update(x_pitch4=pitch4, x_offset4=offset4)
    template["x_window"] = window4 is not None
    if (template["mode"] == "filtered" and template["filter"] == "linear" and not params["exclude_outside"]
            and params["start_h"] == params["start_w"] == 0 and params["taps_h"] == params["taps_w"] == 2
            and params["support_h"] == params["support_w"] == 1.0):
        template["mode"] = "bilinear"  # (the two neighbours, no antialiasing: no tap loops, no normalization)
    if lanes == 4:  # a vec4 of channels per invocation: one source position and its weights for four,
        # the result written into a concat's where planned (data.concat_slices: whole vec4s of channels)
        params["c"] = x.shape[1] // 4
        template.update(value="vec4<f32>", x_type="vec4<x_elem>", y_type="vec4<y_elem>")
        slice_template, slice_params = ctx.write_slice(out)
        y_ref = ctx.tensor(out)
    else:
        template.update(x_type="x_elem", y_type="y_elem")
        slice_template, slice_params = {"y_slice": False, "y_swap": False, "y_scatter": False}, {}
    params.update({"y_row4": 0, "y_pitch4": 0, "y_offset4": 0, **slice_params})
    ctx.dispatch("resize", node=node, template=dict(template, **slice_template), params=params,
                 bindings=[x_ref, ctx.constants.add(table, "f32"), y_ref], threads=out.size // lanes)
