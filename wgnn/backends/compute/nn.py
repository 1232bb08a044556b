"""Compute lowerings of convolution, matrix multiply, pooling, softmax, LRN and Winograd's transforms.

Weights are packed here, once, into the layout their kernel reads. Which kernel runs a convolution
or a matrix product is the kernel policy's answer (``policy.py``); this module only knows how to
emit each variant.
"""

from __future__ import annotations

import numpy as np

from ...ops.quant import BlockWeights, block_weights, fits_int
from ...ops.winograd import TRANSFORMS
from ..common import (
    FACTOR_TEMPLATE,
    MAX_RANK,
    broadcast_strides,
    factor_of,
    fits_f16,
    fused_epilogue,
    merge_dims,
    pack_dims,
)
from .context import LoweringContext, Ref, lowers
from .data import NOT_QUANTIZED, pool_rows
from .policy import (
    GEMMS,
    HALF_GEMMS,
    INTEGER_WEIGHTS,
    LSTM_LAYER_WORKGROUP,
    NBITS_VARIANTS,
    WINOGRAD_TILES,
    WORKGROUP_STORAGE,
    X_SCALE_VARIANTS,
    Choice,
    Problem,
    columns_conv,
    depthwise_slots,
    depthwise_strip,
    gemm_block,
    gemm_layout,
    global_pool,
    lstm_layer_chunk,
    lstm_layer_loops,
    lstm_layer_workgroup,
    problem_of,
)


def _epilogue(node, ctx: LoweringContext, channels: int, vec4: bool):
    """Bias, residual and PRelu-slope bindings plus template/params for the compute kernels. A vec4
    kernel (epilogue.wgsl) writes its output in place where the compile planned it inside a concat's
    result (``ctx.write_slice``)."""
    e = fused_epilogue(node, ctx, channels)
    pad = (-channels % 4) if vec4 else 0
    template, params = ctx.write_slice(node.outputs[0], node.attrs.get("heads")) if vec4 else ({}, {})
    template.update(e.template)
    params.update(e.params)
    requantize = node.attrs.get("requantize")
    window = _residual_window(node, ctx, e.residual)
    if vec4:
        template["r_window"] = window is not None and requantize is None
        params.update(zip(("r_out4", "r_row4", "r_pitch4", "r_offset4"), window or (0, 0, 0, 0)))
    residual = ctx.dummy() if e.residual is None else \
        _widened(node, ctx, e.residual, window) if window and not template.get("r_window") else ctx.tensor(e.residual)
    if requantize is not None:  # a quantized convolution's epilogue (epilogue.wgsl, QUANT)
        mode, table = _requantize_table(requantize, channels + pad)
        # (the table in f32 whatever its values: the epilogue finds its end by its length)
        refs = [ctx.const(np.pad(e.bias, (0, pad)), exact=True), residual, ctx.const(table, f32=True)]
        return (refs, dict(template, residual=e.residual is not None, quant=mode, **_y_store(ctx, node.outputs[0])),
                params)
    refs = [ctx.const(np.pad(e.bias, (0, pad)), exact=bool(node.attrs.get("exact"))), residual,
            ctx.const(np.pad(e.slope, (0, pad))) if e.slope is not None else ctx.dummy()]
    store = SCATTER_STORE if template.get("y_scatter") else VEC4_STORE
    return refs, dict(template, quant=0, **store), params


def x_scale_of(node):
    """A convolution's per-channel input scale (its sixth input), or None."""
    return node.inputs[5] if node.op == "conv2d" and len(node.inputs) > 5 else None


def _x_scale_template(scaled: bool) -> dict:
    """x_scale.wgsl's template: binding 7 and x_scale4() where the input is scaled."""
    if not scaled:
        return {"x_scaled": False, "x_scale4": "vec4<f32>(1.0)", "x_scale_binding": ""}
    return {"x_scaled": True, "x_scale4": "vec4<f32>(x_scale[k4])",
            "x_scale_binding": "@group(0) @binding(7) var<storage, read_write> x_scale: array<vec4<x_scale_elem>>;"}


def _scalar_a_template(scalar: bool) -> dict:
    """The register-tiled kernels' A (matmul.wgsl, matmul_shared.wgsl): vec4 words, or where K is
    not a multiple of 4 scalars, four of K read one at a time (``a_four``) and the last K % 4 by
    ``a_one``."""
    if not scalar:
        return {"a_step": 1, "a_word": "vec4<a_elem>", "a_four": "vec4<f32>(a[i])", "a_one": "f32(a[i / 4u][i % 4u])"}
    return {"a_step": 4, "a_word": "a_elem", "a_one": "f32(a[i])",
            "a_four": "vec4<f32>(f32(a[i]), f32(a[i + 1u]), f32(a[i + 2u]), f32(a[i + 3u]))"}


def _residual_window(node, ctx: LoweringContext, residual) -> tuple[int, int, int, int] | None:
    """How the epilogue reads a convolution's residual that is not the output's own shape and
    order (``R_WINDOW`` in epilogue.wgsl): (output vec4s per pixel, the residual's, their pitch,
    offset), for a residual of fewer channels than the output
    (``passes.fuse_residual.narrow_padded_residuals``) or one stored inside a wider tensor
    (``ctx.windows``); None for an ordinary one."""
    if residual is None:
        return None
    pitch, offset = ctx.windows.get(id(residual), (None, 0))
    if pitch is None and residual.shape == node.outputs[0].shape:
        return None
    row = residual.shape[1] // 4
    return node.outputs[0].shape[1] // 4, row, pitch or row, offset


def _widened(node, ctx: LoweringContext, residual, window: tuple[int, int, int, int]) -> Ref:
    """A convolution's residual read through a window (``_residual_window``), copied into a
    temporary of the output's shape (zeros beyond its channels) for the kernels whose epilogue
    reads the residual at the output's own index: the scalar ones, a quantized convolution's
    requantizing one."""
    n, c, h, w = residual.shape
    o = node.outputs[0].shape[1]
    if o % 4:
        raise ctx.error(node, f"a residual of {c} channels for {o} output channels: needs a multiple of 4")
    _, _, pitch4, offset4 = window
    wide = ctx.temporary(node, (n, o, h, w), "residual", "f32")
    params = {"total": n * h * w * o // 4, "pixels": h * w, "c_in": c, "c4": o // 4, "c_begin": 0,
              "c_stride": 1, "p_stride": pitch4 * 4, "n_stride": pitch4 * 4 * h * w, "x_base": offset4 * 4,
              "value": 0.0, **NOT_QUANTIZED}
    ctx.dispatch("pad_channels", node=node, template={"quantize": False}, params=params,
                 bindings=[ctx.tensor(residual), wide],
                 threads=params["total"])
    return wide


VEC4_STORE = {"y_type": "vec4<y_elem>", "y_store": "vec4<y_elem>"}
SCATTER_STORE = {"y_type": "y_elem", "y_store": "scattered_lane"}  # y as scalars (y_slice.wgsl's Y_SCATTER)
# How the subgroup variant's octets share loads (matmul_shared.wgsl's PATH): 0 as the subgroup size
# allows. Tests set 1 (shuffles) or 2 (every lane loads its own) to check those paths on any adapter.
SUBGROUP_PATH = 0
# Output rows per invocation of the depthwise kernel: None as the policy says (depthwise_strip).
# Tests set it to check strips of every height on any adapter.
DEPTHWISE_STRIP: int | None = None


def _words(**operands: Ref) -> dict:
    """The subgroup and depthwise kernels' ``NAME_word`` (what one vec4 of the operand is stored as) and
    ``NAME_read`` (how it becomes a vec4<f32>): f16 operands are read as two u32 words
    (``halves``), which halves a software adapter's per-lane loads; quantized integers stored
    packed (storage i8x4) as one u32 word (``unpack_u8``/``unpack_i8``)."""
    out = {}
    for name, ref in operands.items():
        if ref.dtype == "i8x4":
            signed = "u8" if ref.operand.dtype == "uint8" else "i8"
            out[f"{name}_word"], out[f"{name}_read"] = "u32", f"unpack_{signed}"
            continue
        half = ref.dtype == "f16"
        out[f"{name}_word"] = "vec2<u32>" if half else f"vec4<{name}_elem>"
        out[f"{name}_read"] = "halves" if half else "vec4<f32>"
    return out


def _factor(node, ctx: LoweringContext) -> list[Ref]:
    """The binding of a product's run-time factor (binding 7: ``common.factor_of``), if it has one."""
    factor = factor_of(node)
    return [ctx.tensor(factor)] if factor is not None else []


def _int8_weights(exact: bool, array: np.ndarray) -> np.ndarray | None:
    """An exact (quantized) product's integer weights, w_q - w_zero, a byte each and four
    neighbouring values of the last axis to a u32 (read as ``unpack_i8``), where all are integers
    that fit in int8 (not so an exact Winograd product's transformed filter: quarters); else None.
    A software adapter then loads a word per four weights instead of four floats, and its per-lane
    loads are what bound these kernels there (INT8 ResNet50 on lavapipe: 364-446 -> 239 ms,
    docs/precision.md)."""
    if not exact or array.shape[-1] % 4 or not fits_int(array, 8):
        return None
    return np.ascontiguousarray(array.astype(np.int8)).view(np.uint32)


INT8_WORDS = {"word": "u32", "read": "unpack_i8"}


def _int16_weights(exact: bool, array: np.ndarray) -> np.ndarray | None:
    """Where ``_int8_weights`` cannot (integers past int8's range: a uint8 weight minus its zero
    point spans -128..255), an exact product's integer weights two bytes each, two neighbouring
    values of the last axis to a u32 (a vec4 of them two words, read as ``unpack_i16``); else None.
    Half the loads of f32 (ddddocr's older recognizer's classifier, weights -119..136)."""
    if not exact or array.shape[-1] % 4 or not fits_int(array, 16):
        return None
    return np.ascontiguousarray(array.astype(np.int16)).view(np.uint32)


INT16_WORDS = {"word": "vec2<u32>", "read": "unpack_i16"}


def _panels(array: np.ndarray, k: int) -> np.ndarray:
    """The register-tiled kernels' constant B (..., K, N), N a multiple of 4, in panels: eight
    neighbouring vec4 columns (an octet's, or a subgroup of 8 lanes'), all K rows of them, stored
    together ([products][N / 32][K][32], N padded with zero columns, which no lane reads: lanes past
    N read the last column). Row-major, an octet's K step takes 128 bytes from each of four rows N
    words apart, and on a software adapter, where an octet runs its K loop alone, the weights then
    stream from memory in pieces of 128 bytes; in panels the K loop reads them in order. On
    lavapipe weights read once (ResNet50's 7 x 7 and Winograd products, a classifier) take 0.4-0.7x
    their time; the padding adds 0-10% to the models' weights
    (bench/results/2026-12-06-lavapipe-weight-panels.txt). Rows stay 8 words apart in every
    panel, a constant in the kernels' K loops (as a uniform, 1.06-1.09x the time in fp16)."""
    cols = array.shape[-1]
    rows = array.reshape(-1, k, cols)
    rows = np.pad(rows, [(0, 0), (0, 0), (0, -cols % 32)])
    return np.ascontiguousarray(rows.reshape(rows.shape[0], k, -1, 32).transpose(0, 2, 1, 3))


def _weight_words(ctx: LoweringContext, node, name: str, array: np.ndarray) -> tuple[Ref, dict]:
    """The binding of a subgroup or depthwise kernel's constant operand ``name`` and its
    ``_words`` template: int8 words where ``_int8_weights`` packs them, else int16 pairs where
    ``_int16_weights`` does."""
    exact = bool(node.attrs.get("exact"))
    for pack, words in ((_int8_weights, INT8_WORDS), (_int16_weights, INT16_WORDS)):
        packed = ctx.packed(pack, exact, array)
        if packed is not None:
            return ctx.const(packed), {f"{name}_{k}": v for k, v in words.items()}
    ref = ctx.const(array, exact=exact)
    return ref, _words(**{name: ref})


def _packed(ctx: LoweringContext, operand) -> str | None:
    """"u8" or "i8" where ``operand`` is stored four bytes to a word (storage i8x4), else None."""
    if ctx.storage.get(id(ctx.root(operand))) != "i8x4":
        return None
    return "u8" if operand.dtype == "uint8" else "i8"


def _y_store(ctx: LoweringContext, out) -> dict:
    """The epilogue's ``y_type`` and ``y_store`` for the output ``out``: vec4s, or packed words."""
    packed = _packed(ctx, out)
    return {"y_type": "u32", "y_store": f"pack_{packed}"} if packed else dict(VEC4_STORE)


def _depthwise_code(tile: int, kernel: tuple[int, int], strides: tuple[int, int], dilations: tuple[int, int],
                    w_read: str, single: bool) -> dict:
    """depthwise.wgsl's written-out code for a filter: ``weights`` (a register per tap), ``slots``
    (TILE_X accumulators for each output row open at once), ``steps`` (one step's STRIDE_H input
    rows: their columns loaded, each added to the open rows it is a filter row of) and ``finish``
    (the oldest open row stored, the others moved up a slot). Each output row t of the strip is
    slot i at step t + i; at the phase-th input row of that step it takes filter row
    (phase + i * STRIDE_H) / DIL_H where that divides. ``single``: strips of one row, whose one
    open row every slot names (one set of accumulators, stored after the last step, none moved)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    slots = depthwise_slots(kh, sh, dh)
    weights = "\n".join(f"    let w{r}_{k} = {w_read}(w[{r * kw + k}u * p.c4 + c4]);"
                        for r in range(kh) for k in range(kw))
    acc = "\n".join(f"    var a{i}_{u} = vec4<f32>(0.0);" for i in range(1 if single else slots) for u in range(tile))
    steps = []
    for phase in range(sh):
        taps = [(i, (phase + i * sh) // dh) for i in range(slots)
                if (phase + i * sh) % dh == 0 and (phase + i * sh) // dh < kh]
        if not taps:
            continue
        cols = sorted({u * sw + k * dw for u in range(tile) for k in range(kw)})
        lines = [f"        let iy_{phase} = iy0 + i32(g * STRIDE_H + {phase}u);",
                 f"        if (iy_{phase} >= 0 && iy_{phase} < i32(p.in_h)) {{",
                 f"            let row = (n * p.in_h + u32(iy_{phase})) * p.in_w;"]
        lines += [f"            let x{j} = x_at(row, ix0 + {j}, c4);" for j in cols]
        for i, r in taps:
            lines.append(f"            if (g >= {i}u && g - {i}u < p.strip) {{  // row oy0 + g - {i}: filter row {r}")
            a = "a0" if single else f"a{i}"
            lines += [f"                {a}_{u} = fma(x{u * sw + k * dw}, w{r}_{k}, {a}_{u});"
                      for k in range(kw) for u in range(tile)]
            lines.append("            }")
        lines.append("        }")
        steps += lines
    last = slots - 1
    finish = [f"        if (g >= {last}u && g - {last}u < p.strip) {{",
              f"            let oy = oy0 + g - {last}u;"]
    finish += [f"            store_at(n, oy, ox0 + {u}u, c4, channel, a{0 if single else last}_{u});"
               for u in range(tile)]
    finish.append("        }")
    if not single:  # (the open rows move up a slot; the newest starts from zero)
        finish += [f"        a{i}_{u} = a{i - 1}_{u};" for i in range(last, 0, -1) for u in range(tile)]
        finish += [f"        a0_{u} = vec4<f32>(0.0);" for u in range(tile)]
    return {"weights": weights, "slots": acc, "steps": "\n".join(steps), "finish": "\n".join(finish)}


@lowers("conv2d")
def lower_conv2d(node, ctx: LoweringContext) -> None:
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    candidates = [v for v in ctx.variants("conv2d", node) if v not in WINOGRAD_TILES]
    problem = problem_of(node)
    choice = ctx.policy.choose("conv2d", node, candidates, problem)
    if choice.variant == "gemm_i8":
        _conv_i8(node, ctx, choice)
        return
    if choice.variant == "generic":
        # Weights computed at run time (or fed as an input) are read as they are, OIHW, by the
        # scalar kernel: the tiled kernels need them packed, which happens at load time.
        weights = ctx.const(w.value.astype(np.float32, copy=False)) if w.is_constant else ctx.tensor(w)
        _conv_generic(node, ctx, weights, choice)
        return
    n, c, h, wd = x.shape
    o, cpg, kh, kw = w.shape
    _, _, oh, ow = out.shape
    g = node.attrs["groups"]
    (sh, sw), (dh, dw), (pt, pl, _, _) = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
    weights = w.value.astype(np.float32, copy=False)
    tile = choice.tile

    # the matrix kernels: over the NHWC rows where the filter is 1x1 with stride 1, else (the pointwise
    # variants) over one filter row of neighbouring pixels
    nhwc_rows = "pointwise" in candidates and (kh, kw, sh, sw) == (1, 1, 1, 1) and (
        choice.variant in ("pointwise", "subgroup", "gemv") or choice.variant in GEMMS)
    pointwise = nhwc_rows or ("pointwise" in candidates and choice.variant in ("pointwise", "subgroup"))
    if x_scale_of(node) is not None and not pointwise:  # (only the matrix kernels scale B's rows)
        raise ctx.error(node, f"variant {choice.variant!r} cannot scale its input per channel")
    if choice.variant == "depthwise":
        refs, template, params = _epilogue(node, ctx, o, vec4=True)
        tiles = -(-ow // tile)
        strip = DEPTHWISE_STRIP or depthwise_strip(node, tile, ctx.policy.adapter.kind)
        slots = depthwise_slots(kh, sh, dh)
        strips = -(-oh // strip)
        params.update(batch=n, in_h=h, in_w=wd, c4=c // 4, out_h=oh, out_w=ow, tiles_w=tiles, strip=strip,
                      strips=strips, steps=strip + slots - 1, pad_top=pt, pad_left=pl)
        x_ref = ctx.tensor(x)
        w_ref, w_words = _weight_words(ctx, node, "w", weights[:, 0].transpose(1, 2, 0))  # weights KH, KW, C
        template.update(tile_x=tile, stride_w=sw, stride_h=sh, x_zero=0.0, **_words(x=x_ref), **w_words)
        template.update(_depthwise_code(tile, (kh, kw), (sh, sw), (dh, dw), w_words["w_read"], strip == 1))
        if node.attrs.get("x_zero") is not None:  # quantized integers as stored: the sums take x_q - x_zero
            template.update(x_zero=float(node.attrs["x_zero"]))
        ctx.dispatch("depthwise", node=node, template=template, params=params,
                     bindings=[x_ref, w_ref] + refs + [ctx.tensor(out)],
                     threads=n * strips * tiles * (c // 4), choice=choice, loops=strip + slots)
    elif nhwc_rows:
        # A pointwise convolution is a matrix multiply over the NHWC rows (gemm too: no pixel gathering).
        _matmul_call(node, ctx, ctx.tensor(x), weights[:, :, 0, 0].T, m=n * h * wd, k=c, cols=o,
                     batch=1, a_stride=0, b_stride=0, choice=choice)
    elif pointwise:
        # One filter row, unpadded (patterns.row_product): each output row of pixels is a matrix product
        # whose rows of A are the KW * C neighbouring input values under the filter, overlapping
        # (stride_w * C apart), and whose B is the filter as (KW * C) x O.
        rows = weights[:, :, 0, :].transpose(2, 1, 0).reshape(kw * c, o)
        _matmul_call(node, ctx, ctx.tensor(x), rows, m=ow, k=kw * c, cols=o, batch=n * oh,
                     a_stride=sh * wd * c, b_stride=0, choice=choice, a_row=sw * c)
    elif choice.variant == "subgroup" and columns_conv(node, ctx.policy.adapter, ctx.policy.precision):
        # The input's columns under the filter (im2col.wgsl), then their product with the weights
        # [KH * KW * C][Cout] on matmul_shared: the same sums in the same order as conv2d_shared's.
        x_ref, taps = ctx.tensor(x), kh * kw * (c // 4)
        columns = ctx.temporary(node, (n * oh * ow, taps * 4), "columns")
        ctx.dispatch("im2col", node=node, template=_words(x=x_ref),
                     params=dict(pixels=n * oh * ow, taps=taps, in_c4=c // 4, in_h=h, in_w=wd, out_h=oh, out_w=ow,
                                 kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw,
                                 pad_top=pt, pad_left=pl),
                     bindings=[x_ref, columns], threads=n * oh * ow, flops_share=0.0, loops=taps)
        _matmul_call(node, ctx, columns, weights.transpose(2, 3, 1, 0), m=n * oh * ow, k=taps * 4, cols=o,
                     batch=1, a_stride=0, b_stride=0, choice=choice, flops_share=1.0)  # (B: KH, KW, Cin, Cout)
    elif choice.variant in GEMMS:  # implicit GEMM on workgroup tiles: rows are output pixels
        refs, template, params = _epilogue(node, ctx, o, vec4=True)
        params.update(in_h=h, in_w=wd, in_c4=c // 4, out_h=oh, out_w=ow, kernel_w=kw, stride_h=sh, stride_w=sw,
                      dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
        packed = ctx.const(weights.transpose(2, 3, 1, 0))  # KH, KW, Cin, Cout: B [K, Cout]
        _gemm(node, ctx, "conv2d_gemm", ctx.tensor(x), packed, refs, template, params, choice, problem,
              factor=_factor(node, ctx))
    else:  # direct (subgroup: conv2d_shared, the same with its input shared across octets of lanes)
        refs, template, params = _epilogue(node, ctx, o, vec4=True)
        tiles = -(-ow // tile)
        params.update(batch=n, in_h=h, in_w=wd, in_c4=c // 4, out_h=oh, out_w=ow, out_c4=o // 4, tiles_w=tiles,
                      kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
        x_ref, packed_w = ctx.tensor(x), weights.transpose(2, 3, 1, 0)  # KH, KW, Cin/group, Cout
        template.update(tile_x=tile)
        if choice.variant == "subgroup":
            c8 = -(-o // 32)
            kernel, threads = "conv2d_shared", n * oh * tiles * c8 * 8
            params.update(c8=c8)
            w_ref, w_words = _weight_words(ctx, node, "w", ctx.packed(_panels, packed_w, kh * kw * cpg))
            params.update(w_panel=kh * kw * cpg * 8)
            template.update(path=SUBGROUP_PATH, **_words(x=x_ref), **w_words)
        else:
            w_ref = ctx.const(packed_w)
            kernel, threads = "conv2d", n * oh * tiles * (o // 4)
            params.update(cin4_per_group=cpg // 4, cout4_per_group=o // g // 4)
        ctx.dispatch(kernel, node=node, template=template, params=params,
                     bindings=[x_ref, w_ref] + refs + [ctx.tensor(out)] + _factor(node, ctx), threads=threads,
                     choice=choice)


def _conv_i8(node, ctx: LoweringContext, choice: Choice) -> None:
    """A quantized convolution on packed int8 (``conv2d_i8.wgsl``): weights packed four bytes to a
    word along K, the packing offset folded into the int32 bias, a fused requantize if there is one
    (``ops.quant.FusedRequantize``: and a dequantize, and a residual block's add and quantize)."""
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    _, _, oh, ow = out.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
    offset = node.attrs["int8_offset"]  # x_zero - the packing offset
    x_zero = node.attrs.get("x_zero")  # reads x_q itself (else x_q - x_zero)
    weights = w.value.astype(np.int64).transpose(2, 3, 1, 0).reshape(kh * kw * c, o)  # [K][Cout], K = (ky, kx, ci)
    k4, n4 = weights.shape[0] // 4, o // 4
    packed = weights.astype(np.int8).reshape(k4, 4, n4, 4).transpose(0, 2, 3, 1).copy().view(np.uint32)
    bias = node.inputs[2].value.astype(np.int64) if len(node.inputs) > 2 else np.zeros(o, np.int64)
    bias = bias - int(offset) * weights.sum(axis=0)
    mode, table = _requantize_table(node.attrs.get("requantize"), o)
    rows, cols4 = gemm_block(choice.tile, choice.workgroup)
    m = n * oh * ow
    m_tiles, n_tiles = -(-m // rows), -(-n4 // cols4)
    split, per_split = _k_parts(k4, choice.split, step4=8)  # (BK4 = 8 words of K per step)
    pointwise = (kh, kw, sh, sw, pt, pl, pb, pr) == (1, 1, 1, 1, 0, 0, 0, 0)
    params = dict(m=m, k4=k4, n4=n4, m_tiles=m_tiles, n_tiles=n_tiles, in_h=h, in_w=wd, in_c4=c // 4, out_h=oh,
                  out_w=ow, kernel_w=kw, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl,
                  x_add=offset if x_zero is None else offset - x_zero, splits=split, k4_per_split=per_split)
    y_slice, y_params = ctx.write_slice(out)
    params.update(y_params)
    x_packed, r_packed = _packed(ctx, x), _packed(ctx, node.inputs[3]) if len(node.inputs) > 3 else None
    pad_byte = int(offset) & 0xFF  # the padding, x_zero - offset, in each byte
    params.update(x_flip=0x80808080 if x_packed == "u8" else 0, x_pad_word=pad_byte * 0x01010101)
    ends = dict(_y_store(ctx, out), **y_slice, has_residual=len(node.inputs) > 3,
                residual_type="u32" if r_packed else "vec4<residual_elem>",
                residual_load=f"unpack_{r_packed}" if r_packed else "vec4<f32>")
    wg_x, tile_n4 = gemm_layout(choice.tile, choice.workgroup)
    template = dict(tile_m=choice.tile, wg_x=wg_x, tile_n4=tile_n4, pointwise=pointwise, mode_id=mode,
                    partial=split > 1,
                    x_packed=bool(x_packed), x_type="u32" if x_packed else "vec4<x_elem>",
                    x_word="x[index] ^ p.x_flip" if x_packed else "0u",
                    x_vec="vec4<f32>(0.0)" if x_packed else "vec4<f32>(x[index])",
                    y_partial="pack4xI8" if _packed(ctx, out) else "vec4<y_elem>", **ends)
    refs = [ctx.const(bias.astype(np.int32).view(np.uint32)), ctx.const(table, f32=True)]  # (f32: _epilogue's)
    res = [ctx.tensor(node.inputs[3]) if len(node.inputs) > 3 else ctx.dummy()]
    operands = [ctx.tensor(x), ctx.const(packed.reshape(k4, 4 * n4))]
    groups = split * m_tiles * n_tiles
    if split == 1:
        ctx.dispatch("conv2d_i8", node=node, template=template, params=params, bindings=operands + refs
                     + [ctx.tensor(out)] + res, workgroups=groups, choice=choice)
        return
    partial = ctx.temporary(node, (split, m * n4, 4), "partials", dtype="i32")
    ctx.dispatch("conv2d_i8", node=node, template=dict(template, y_type="vec4<y_elem>", y_store="vec4<y_elem>",
                                                       y_partial="vec4<y_elem>", y_slice=False, y_swap=False,
                                                       y_scatter=False),
                 params=params,
                 bindings=operands + [ctx.dummy(), ctx.dummy(), partial, ctx.dummy()], workgroups=groups, choice=choice,
                 flops_share=1.0)
    ctx.dispatch("splitk_i8", node=node, template=dict(ends, mode_id=mode),
                 params=dict(total=m * n4, n4=n4, splits=split, **y_params),
                 bindings=[partial, ctx.dummy()] + refs + [ctx.tensor(out)] + res, threads=m * n4, choice=choice,
                 flops_share=0.0)


def _k_parts(k4: int, split: int | None, step4: int) -> tuple[int, int]:
    """Split-K of ``k4`` vec4s (or packed words) of K into about ``split`` parts of whole steps of
    ``step4``: (the parts, the vec4s each)."""
    per_split = -(-k4 // max(1, min(split or 1, k4)))
    per_split = -(-per_split // step4) * step4
    return -(-k4 // per_split), per_split


def _requantize_table(requantize, channels: int) -> tuple[int, np.ndarray]:
    """The mode and constants of ``requantize4`` (``requantize.wgsl``) for a conv2d node's fused
    requantize (None: mode 0, the sums as they are): the multipliers of ``channels`` channels, then
    three vec4s."""
    if requantize is None:
        return 0, np.zeros(channels + 12, np.float32)
    mode = ((5 if requantize.quantize[3] else 4) if requantize.quantize is not None
            else 3 if requantize.scale is not None else 2 if requantize.shifted else 1)
    r_zero, r_scale = requantize.residual or (0.0, 1.0)
    q_scale, q_zero, (q_lo, q_hi), _ = requantize.quantize or (1.0, 0, (0, 0), False)
    tail = [requantize.zero, *requantize.bounds, requantize.scale or 1.0, r_zero, r_scale, q_scale, q_zero, q_lo, q_hi,
            0.0, 0.0]
    multiplier = np.pad(requantize.multiplier, (0, channels - requantize.multiplier.size))
    return mode, np.concatenate([multiplier, np.float32(tail)]).astype(np.float32)


def _conv_generic(node, ctx: LoweringContext, weights: Ref, choice: Choice) -> None:
    """Any convolution on the scalar kernel, its weights (a binding) in OIHW order."""
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    _, _, oh, ow = out.shape
    (sh, sw), (dh, dw), (pt, pl, _, _) = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
    refs, template, params = _epilogue(node, ctx, o, vec4=False)
    template["w_access"] = "read" if w.is_constant else "read_write"
    params.update(batch=n, in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=o, groups=node.attrs["groups"],
                  kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
    ctx.dispatch("conv2d_generic", node=node, template=template, params=params,
                 bindings=[ctx.tensor(x), weights] + refs + [ctx.tensor(out)] + _factor(node, ctx), threads=out.size,
                 choice=choice)


@lowers("conv_transpose2d")
def lower_conv_transpose2d(node, ctx: LoweringContext) -> None:
    x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
    n, c, h, wd = x.shape
    _, o, oh, ow = out.shape
    g = node.attrs["groups"]
    _, opg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, _, _) = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
    if w.is_constant:  # [Cin, Cout/g, KH, KW] -> [Cout][KH][KW][Cin/g]: the inner loop walks input channels
        cpg = c // g
        weights = w.value.astype(np.float32, copy=False).reshape(g, cpg, opg, kh, kw)
        weights = ctx.const(weights.transpose(0, 2, 3, 4, 1))
    else:  # computed at run time: read in ONNX's order (its logical order: the layout pass keeps it so)
        weights = ctx.tensor(w)
    refs, template, params = _epilogue(node, ctx, o, vec4=False)
    template["packed"] = w.is_constant
    template["w_access"] = "read" if w.is_constant else "read_write"
    params.update(batch=n, in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=o, groups=g, kernel_h=kh,
                  kernel_w=kw, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
    ctx.dispatch("conv_transpose", node=node, template=template, params=params,
                 bindings=[ctx.tensor(x), weights] + refs + [ctx.tensor(out)], threads=out.size)


def _matmul_call(node, ctx: LoweringContext, a_ref: Ref, b, *, m: int, k: int, cols: int, batch: int,
                 a_stride: int, b_stride: int, choice: Choice, a_row: int | None = None,
                 flops_share: float | None = None) -> None:
    """C = A x B (+ the node's epilogue) on the variant ``choice`` names: ``tiled`` (or a pointwise
    convolution's ``pointwise``) on the vec4 register-tiled kernel, ``gemm`` on workgroup tiles
    (split-K when ``choice.split`` > 1), ``gemv`` for a single row, ``generic`` on the scalar kernel.
    ``b`` is a constant array or a ``Ref`` to B computed at run time; ``a_row``: where A's rows lie
    apart, in elements, if not K (the register-tiled kernels only); ``flops_share`` the part of the
    node's arithmetic the product is, where another dispatch runs for it too (the register-tiled
    kernels only)."""
    out = node.outputs[0]
    if batch == 1:  # (no second product, or no second row, to step to: a strided convolution's steps,
        a_stride = b_stride = 0  # past 32 bits where its stride is, take no part)
    if m == 1:
        a_row = None
    b_const = not isinstance(b, Ref)
    vec4 = choice.variant != "generic"
    ragged = vec4 and cols % 4 != 0  # (the register-tiled kernel only: matmul.wgsl's N_RAGGED)
    refs, template, params = _epilogue(node, ctx, cols, vec4=vec4)
    scale = x_scale_of(node)
    if scale is not None and choice.variant not in X_SCALE_VARIANTS:
        raise ctx.error(node, f"variant {choice.variant!r} cannot scale its input per channel")
    template.update(_x_scale_template(scale is not None))
    extra = [ctx.tensor(scale)] if scale is not None else []  # binding 7, after y
    # binding 7 too: a product's run-time factor (epilogue.wgsl), never with an x_scale
    factor = _factor(node, ctx)
    if choice.variant == "gemv":  # B transposed, [N][K], so neighbouring invocations read neighbours
        params.update(k4=k // 4, n4=cols // 4)
        bt = b.reshape(k, cols).T
        template.update(bt_word="vec4<bt_elem>", bt_read="vec4<f32>")
        packed = ctx.packed(_int8_weights, bool(node.attrs.get("exact")), bt)  # (four of K to a word)
        if packed is not None:
            bt = packed
            template.update(bt_word=INT8_WORDS["word"], bt_read=INT8_WORDS["read"])
        ctx.dispatch("gemv", node=node, template=template, params=params,
                     bindings=[a_ref, ctx.const(bt)] + refs + [ctx.tensor(out)] + factor, workgroups=cols // 4,
                     choice=choice)
        return
    # The register-tiled kernels' constant B in panels (_panels, which also pads a ragged N with zero
    # columns: only these kernels take one); the packing cache lets an unrolled recurrent layer's
    # steps share one B.
    panels = b_const and vec4 and choice.variant not in GEMMS
    if panels:
        b = ctx.packed(_panels, b, k)
        b_stride = b[0].size if b_stride else 0
    # (B's words as _words reads them, f16 as two u32s; an exact product's integer weights a byte or
    # two each on subgroup and tiled: _weight_words, which leaves other weights as _words has them)
    if b_const and choice.variant in INTEGER_WEIGHTS:
        b_ref, b_words = _weight_words(ctx, node, "b", b)
    else:
        b_ref = ctx.const(b, exact=bool(node.attrs.get("exact"))) if b_const else b
        b_words = _words(b=b_ref)
    template["b_access"] = "read" if b_const else "read_write"
    if choice.variant in GEMMS:
        params.update(a_batch_stride=a_stride // 4, b_batch_stride=b_stride // 4)
        _gemm(node, ctx, "matmul_gemm", a_ref, b_ref, refs, template, params, choice, Problem(batch, m, k, cols),
              extra, factor)
    elif vec4:
        template["tile_m"] = choice.tile
        tiles = -(-m // choice.tile)
        n4 = -(-cols // 4)
        # N not a multiple of 4 (ragged.wgsl): B computed at run time read as scalars, and y as
        # scalars, each row's values stored up to column N
        scalar_b = ragged and not b_const
        template.update(n_ragged=ragged, b_col=4 if scalar_b else 1, b_lane="b[i + j]" if scalar_b else "0.0")
        if ragged:
            template.update(SCATTER_STORE)
        template.update(b_panels=str(panels).lower())  # (in panels a row is 8 words, _panels)
        params.update(m=m, k4=k // 4, n4=n4, m_tiles=tiles, batch=batch, n=cols, b_panel=k * 8,
                      b_row=cols if scalar_b else 8 if panels else n4,
                      a_batch_stride=a_stride // 4, b_batch_stride=b_stride if scalar_b else b_stride // 4)
        bindings = [a_ref, b_ref] + refs + [ctx.tensor(out)] + extra + factor
        # K not a multiple of 4: A's rows do not fall on vec4s, read as scalars, and the last K % 4
        # values of K one at a time (attention's probabilities times V over a sequence of any length)
        scalar_a = k % 4 != 0
        template.update(_scalar_a_template(scalar_a))
        params.update(k_tail=k % 4, a_batch_stride=a_stride if scalar_a else a_stride // 4)
        a_row = (a_row or k) if scalar_a else (a_row or k) // 4  # (in A's words)
        if choice.variant == "subgroup":  # octets of lanes: eight vec4 columns each, the last one ragged
            n8 = -(-n4 // 8)
            # B's four rows of a K step, as the template writes them out (a branch between the two
            # forms in the K loop would stay there on lavapipe: measured 1.05-1.1x ResNet50's time);
            # the vec4 form steps by p.n4 as before, not p.b_row (the same number there: about 1.05x
            # ResNet50's FP16 time on lavapipe, seven alternated rounds)
            # (constant B in panels, _panels: its rows 8 words apart)
            b_row = "p.b_row" if scalar_b else "8u" if panels else "p.n4"
            steps = ("", f" + {b_row}", f" + 2u * {b_row}", f" + 3u * {b_row}")
            if scalar_b:
                b_words = {"b_word": "b_elem"}
                rows = [f"b_lanes(bk{o}, col)" for o in steps]
            else:
                rows = [f"{b_words['b_read']}(b[bk{o}])" for o in steps]
            template.update(b_rows=f"mat4x4<f32>({', '.join(rows)})", b_one=rows[0].replace("bk", "i"),
                            b_row=b_row)
            if not scalar_a:  # (vec4 words as _words reads them: f16 as two u32s)
                words = _words(a=a_ref)
                template.update(a_word=words["a_word"], a_four=f"{words['a_read']}(a[i])", a_one="0.0")
            # A batch of products over one B (a convolution's rows of output pixels): one product of
            # all their rows (whole tiles, B read once a row tile; the output rows lie in that order)
            fold = m if batch > 1 and b_stride == 0 else 0
            rows, products = (batch * m, 1) if fold else (m, batch)
            tiles = -(-rows // choice.tile)
            # (B's columns larger than A's rows: each column block's row tiles side by side; at 16 rows
            # an octet only: at 8 that order took 1.2-1.57x the time of ResNet50's 7 x 7 and 14 x 14
            # products in fp16 on lavapipe, at 16 0.76-0.93x; bench/results/2026-12-06-lavapipe-rows-first-tile-8.txt)
            rows_first = int(choice.tile == 16 and tiles > 1 and cols > rows)
            ctx.dispatch("matmul_shared", node=node, template=dict(template, path=SUBGROUP_PATH, **b_words),
                         params=dict(params, n8=n8, a_row=a_row, rows_first=rows_first, fold=fold, m=rows,
                                     batch=products, m_tiles=tiles), bindings=bindings,
                         threads=products * tiles * n8 * 8, choice=choice, loops=k // 4 + 4, flops_share=flops_share)
        else:
            # (B's vec4 words as _words reads them: f16 as two u32s, which took 0.68x vec4<f16>'s time
            # on a single row of 1024 x 8192 on lavapipe, 0.84x at 8 rows; integer weights packed)
            template.update(b_word="b_elem" if scalar_b else b_words["b_word"],
                            b_four="b_lanes(i, col)" if scalar_b else f"{b_words['b_read']}(b[i])",
                            b_row="8u" if panels else "p.b_row")
            ctx.dispatch("matmul", node=node, template=template, params=dict(params, a_row=a_row),
                         bindings=bindings, threads=batch * tiles * n4, choice=choice, loops=k // 4 + 4,
                         flops_share=flops_share)
    else:
        params.update(m=m, k=k, n=cols, batch=batch, a_batch_stride=a_stride, b_batch_stride=b_stride)
        ctx.dispatch("matmul_generic", node=node, template=template, params=params,
                     bindings=[a_ref, b_ref] + refs + [ctx.tensor(out)] + factor, threads=batch * m * cols,
                     choice=choice, loops=k)


def _gemm(node, ctx: LoweringContext, kernel: str, a_ref: Ref, b_ref: Ref, refs: list[Ref], template: dict,
          params: dict, choice: Choice, problem: Problem, extra: list[Ref] | None = None,
          factor: list[Ref] | None = None) -> None:
    """One workgroup-tiled product (``gemm_tile.wgsl``), or with split-K two dispatches: the partial
    products into a temporary, then their sum and the epilogue (``splitk_reduce``). ``extra``: the
    kernel's bindings after y (matmul_gemm's x_scale); ``factor``: the epilogue's run-time factor
    (binding 7, the reduce's where K is split)."""
    extra, factor = extra or [], factor or []
    out = node.outputs[0]
    rows, cols4 = gemm_block(choice.tile, choice.workgroup)
    k4, n4 = problem.k // 4, problem.n // 4
    split, per_split = _k_parts(k4, choice.split, step4=4)  # (BK = 16 of K per step)
    m_tiles, n_tiles = -(-problem.m // rows), -(-n4 // cols4)
    params.update(m=problem.m, k4=k4, n4=n4, m_tiles=m_tiles, n_tiles=n_tiles, batch=problem.batch, splits=split,
                  k4_per_split=per_split)
    wg_x, tile_n4 = gemm_layout(choice.tile, choice.workgroup)
    half = choice.variant in HALF_GEMMS
    template = dict(template, tile_m=choice.tile, wg_x=wg_x, tile_n4=tile_n4, partial=split > 1, step_sums=half)
    math = {"math": "f16" if half else "f32"}
    groups = problem.batch * split * m_tiles * n_tiles
    if split == 1:
        ctx.dispatch(kernel, node=node, template=template, params=params,
                     bindings=[a_ref, b_ref] + refs + [ctx.tensor(out)] + extra + factor, workgroups=groups,
                     choice=choice, types_extra=math)
        return
    total4 = problem.batch * problem.m * n4
    partial = ctx.temporary(node, (split, total4, 4), "partials")
    # The partial products skip the epilogue: one pipeline serves every activation.
    ctx.dispatch(kernel, node=node, template=dict(template, act="none", residual=False, quant=0, y_slice=False,
                                                  y_swap=False, y_scatter=False, r_window=False, affine=False,
                                                  **VEC4_STORE, **FACTOR_TEMPLATE[False]),
                 params={k: v for k, v in params.items() if k != "factor_scale"},
                 bindings=[a_ref, b_ref, ctx.dummy(), ctx.dummy(), ctx.dummy(), partial] + extra, workgroups=groups,
                 choice=choice, flops_share=1.0, types_extra=math)
    reduce_template = {k: v for k, v in template.items()
                       if k in ("act", "residual", "residual_after", "quant", "y_type", "y_store", "y_slice",
                                "y_swap", "y_scatter", "r_window", "affine", "biased") or k.startswith("factor_")}
    ctx.dispatch("splitk_reduce", node=node, template=reduce_template,
                 params=dict({k: v for k, v in params.items()
                              if k in ("alpha", "beta", "factor_scale") or k.startswith(("y_", "r_", "post_"))},
                             total=total4, n4=n4, splits=split),
                 bindings=[partial, ctx.dummy()] + refs + [ctx.tensor(out)] + factor, threads=total4, choice=choice,
                 flops_share=0.0)  # additions of partial sums: not the product's multiply-adds


def _nbits_call(node, ctx: LoweringContext, packed: BlockWeights, *, m: int, choice: Choice) -> None:
    """A product whose B stays packed as weight-only quantization stores it: ``nbits`` on
    ``matmul_nbits`` (a register tile, K spread over ``choice.split`` invocations), ``nbits_subgroup``
    on ``matmul_nbits_shared`` (octets of lanes sharing A's rows), ``nbits_gemm`` on
    ``matmul_nbits_gemm`` (workgroup tiles, split-K; ``nbits_gemm_f16`` in f16 arithmetic). The
    words as they are, four columns' side by side; each block's scales and zero points by vec4 of
    columns (``by_block``: the zero points a byte each where they are whole bytes)."""
    k, n = packed.values.shape
    refs, template, params = _epilogue(node, ctx, n, vec4=True)
    n4 = n // 4
    # by word then column where neighbouring invocations differ in column (one walking all of K, or
    # the GEMM core staging a tile's rows), by column then word where invocations share a column's
    # K (a view: a later plan's constant pool knows what it became)
    gemm = choice.variant in ("nbits_gemm", "nbits_gemm_f16")
    k_major = choice.split in (None, 1) or gemm
    words = packed.words.reshape(n4, 4, -1).transpose((2, 0, 1) if k_major else (0, 2, 1))
    tiles = -(-m // choice.tile)
    params.update(m=m, k4=k // 4, n4=n4, m_tiles=tiles, words=k // packed.per_word, col_words=packed.words.shape[1])
    scales, zeros = packed.by_block
    zero_bytes = zeros.dtype == np.uint32
    template.update(tile_m=choice.tile, bits=packed.bits, k_major=k_major, block_words=packed.block // packed.per_word,
                    zero_bytes=zero_bytes, zero_word="u32" if zero_bytes else "vec4<zeros_elem>",
                    zero_read="unpack_u8" if zero_bytes else "vec4<f32>")
    bindings = [ctx.tensor(node.inputs[0]), ctx.const(words)] + refs + \
        [ctx.tensor(node.outputs[0]), ctx.const(scales, exact=True), ctx.const(zeros, exact=True)]
    # A as the register-tiled kernels read it (f16 as two u32 words: a software adapter's f16 vec4
    # loads took twice the time, MiniLM at 4 bits in fp16 on Mesa 22); the GEMM core stages vec4s
    template.update(_words(a=bindings[0]) if not gemm else {"a_word": "vec4<a_elem>", "a_read": "vec4<f32>"})
    if gemm:
        params.pop("words")  # (the core's loop walks K by its own steps)
        _gemm(node, ctx, "matmul_nbits_gemm", bindings[0], bindings[1], refs, template, params, choice,
              Problem(1, m, k, n), bindings[-2:])
        return
    if choice.variant == "nbits_subgroup":
        n8 = -(-n4 // 8)
        ctx.dispatch("matmul_nbits_shared", node=node, template=dict(template, path=SUBGROUP_PATH),
                     params=dict(params, n8=n8), bindings=bindings, threads=tiles * n8 * 8, choice=choice)
        return
    template.update(split=choice.split, partial_size=choice.tile * choice.workgroup if choice.split > 1 else 1)
    ctx.dispatch("matmul_nbits", node=node, template=template, params=params, bindings=bindings,
                 workgroups=-(-tiles * n4 * choice.split // choice.workgroup), choice=choice)


@lowers("matmul")
def lower_matmul(node, ctx: LoweringContext) -> None:
    a, b = node.inputs[0], node.inputs[1]
    problem = problem_of(node)
    m, k, cols = problem.m, problem.k, problem.n
    sa = a.shape if a.rank > 1 else (1,) + a.shape
    sb = b.shape if b.rank > 1 else b.shape + (1,)
    batch_shape = tuple(np.broadcast_shapes(sa[:-2], sb[:-2]))

    def stride(shape, per_matrix):
        full = tuple(shape[:-2])
        if int(np.prod(full, dtype=np.int64)) == 1:
            return 0
        if (1,) * (len(batch_shape) - len(full)) + full != batch_shape:
            raise ctx.unsupported(node, f"MatMul batch broadcasting between {a.shape} and {b.shape}")
        return per_matrix

    a_stride, b_stride = stride(sa, m * k), stride(sb, k * cols)
    choice = ctx.policy.choose("matmul", node, ctx.variants("matmul", node), problem)
    if choice.variant in NBITS_VARIANTS:
        _nbits_call(node, ctx, block_weights(node), m=problem.batch * m, choice=choice)
        return
    b_value = b.value.astype(np.float32, copy=False).reshape(sb) if b.is_constant else ctx.tensor(b)
    _matmul_call(node, ctx, ctx.tensor(a), b_value, m=m, k=k, cols=cols, batch=problem.batch, a_stride=a_stride,
                 b_stride=b_stride, choice=choice)


@lowers("pool2d")
def lower_pool2d(node, ctx: LoweringContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    a = node.attrs
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = a["kernel"], a["strides"], a["pads"], a["dilations"]
    window = dict(batch=n, in_h=h, in_w=w, out_h=out.shape[2], out_w=out.shape[3], kernel_h=kh, kernel_w=kw,
                  stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pt, pad_left=pl)
    if a["mode"] == "argmax":
        params = dict(window, c=c, storage_order=int(a["storage_order"]))
        ctx.dispatch("pool_argmax", node=node, template={}, params=params,
                     bindings=[ctx.tensor(x), ctx.tensor(out), ctx.tensor(node.outputs[1])], threads=out.size)
        return
    lanes = 4 if c % 4 == 0 else 1  # four channels per invocation, as one vec4, when they divide
    params = dict(window, c=c // lanes, pad_bottom=pb, pad_right=pr, count_include_pad=int(a["count_include_pad"]))
    vec = lanes == 4
    template = {"mode": a["mode"], "lanes": lanes, "v_type": "vec4<f32>" if vec else "f32",
                "u_type": "vec4<u32>" if vec else "u32",
                "x_type": "vec4<x_elem>" if vec else "x_elem", "y_type": "vec4<y_elem>" if vec else "y_elem"}
    bindings = [ctx.tensor(x), ctx.tensor(out)]
    choice = ctx.policy.choose("pool2d", node, ctx.variants("pool2d", node)) if global_pool(node) else None
    if (choice is None or choice.variant == "row") and pool_rows(node):
        # the row-tiled kernel: four outputs of a row per invocation share their input columns
        tiles_w = -(-out.shape[3] // POOL_ROW_TILE)
        ctx.dispatch("pool_rows", node=node, template=dict(template, **_pool_row_code(a["mode"], kw, sw)),
                     params=dict(params, tiles_w=tiles_w), bindings=bindings,
                     threads=n * out.shape[2] * tiles_w * (c // 4))
        return
    # x read through a channel window, y written into a concat's result, where planned (four lanes:
    # data.concat_slices and channel_windows take only whole vec4s of channels)
    window4 = ctx.windows.get(id(x)) if vec else None
    slice_template, slice_params = ctx.write_slice(out)
    pitch4, offset4 = window4 or (c // lanes, 0)
    params.update(x_pitch4=pitch4, x_offset4=offset4, **slice_params)
    template.update(x_window=window4 is not None, **slice_template)
    if choice is not None and choice.variant == "workgroup":  # a workgroup per output's window
        ctx.dispatch("pool_global", node=node, template=template, params=params, bindings=bindings,
                     workgroups=out.size // lanes, choice=choice)
        return
    ctx.dispatch("pool", node=node, template=template, params=params, bindings=bindings, threads=out.size // lanes,
                 choice=choice)


POOL_ROW_TILE = 4  # outputs of a row per invocation in pool_rows.wgsl (its TX)


def _pool_row_code(mode: str, width: int, stride: int) -> dict[str, str]:
    """pool_rows.wgsl's tile, its window states, their unrolled ``body`` (one window row: the
    columns' loads, then each output's window taking its ``width`` columns, ``stride`` apart) and
    ``stores``."""
    pad = " " * 8
    columns = (POOL_ROW_TILE - 1) * stride + width
    states = [f"    var s{t} = init_{mode}();" for t in range(POOL_ROW_TILE)]
    body = [f"{pad}let col{j} = column(row, ix0 + {j});" for j in range(columns)]
    body += [f"{pad}s{t} = take_{mode}(s{t}, col{t * stride + k});" for t in range(POOL_ROW_TILE) for k in range(width)]
    stores = [f"    if (ox0 + {t}u < p.out_w) {{\n        y[(out_row + ox0 + {t}u) * p.c + c4] = "
              f"vec4<y_elem>(finish_{mode}(s{t}, padded_window_size(oy, ox0 + {t}u)));\n    }}"
              for t in range(POOL_ROW_TILE)]
    return {"tile": POOL_ROW_TILE, "states": "\n".join(states), "body": "\n".join(body), "stores": "\n".join(stores)}


@lowers("softmax")
def lower_softmax(node, ctx: LoweringContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    mask = node.inputs[1] if len(node.inputs) > 1 else None
    perm = ctx.perm(x)
    k = perm.index(node.attrs["axis"] % x.rank)
    phys = [x.shape[p] for p in perm]
    outer, inner = int(np.prod(phys[:k], dtype=np.int64)), int(np.prod(phys[k + 1:], dtype=np.int64))
    params = {"rows": outer * inner, "axis_size": phys[k], "inner": inner, "scale": node.attrs.get("scale", 1.0),
              "m_step": 0, "m_rank": 1, "m_shape": pack_dims([1], 1), "m_strides": pack_dims([0], 0),
              "x_outer": ctx.row_pitch.get(id(x), phys[k] * inner)}  # (x may be a wider tensor's first columns)
    lead = [0]
    if mask is not None:  # over the last axis, x in logical order (the op's layout)
        strides = broadcast_strides(mask, x.shape, ctx.perm(mask))
        shape, (lead,) = merge_dims(list(x.shape[:-1]) or [1], [strides[:-1] or [0]])
        params.update(m_step=strides[-1], m_rank=len(shape), m_shape=pack_dims(shape, 1),
                      m_strides=pack_dims(lead, 0))
    # vec4s along a contiguous row whose every start (x's, y's, the mask's) is a multiple of 4; or x's
    # rows so, inside a wider tensor whose padding covers the last vec4, y stored a value at a time
    axis, pitch = params["axis_size"], params["x_outer"]
    wide = (inner == 1 and axis % 4 == 0 and pitch % 4 == 0
            and (mask is None or (params["m_step"] == 1 and all(s % 4 == 0 for s in lead))))
    tail = inner == 1 and axis % 4 != 0 and pitch % 4 == 0 and pitch >= axis + (-axis % 4) and mask is None
    # (up to four passes over the row's loads, and the mask's dimensions)
    template, size = ctx.rows(node, outer * inner, 4 * -(-axis // (4 if wide or tail else 1)) + MAX_RANK)
    template.update(ctx.row_vectors(4 if wide or tail else 1, ("x", "mask", "y")), log=node.attrs.get("log", False),
                    masked="true" if mask is not None else "false", in_row="v",
                    store_part="y[base / W + j * p.inner] = y_store(v);",
                    rescale_part="let i = base / W + j * p.inner;\n    y[i] = y_store(V(y[i]) * inv_s);",
                    keep_exp=not node.attrs.get("log", False) and ctx.storage[id(ctx.root(out))] == "f32" and not tail)
    if tail:
        template.update(y_type="y_elem", in_row="select(v, V(-3.402823e38), vec4<u32>(4u * j) + "
                        "vec4<u32>(0u, 1u, 2u, 3u) >= vec4<u32>(p.axis_size))",
                        store_part="for (var l = 0u; l < 4u; l++) { if (4u * j + l < p.axis_size) { "
                        "y[base + 4u * j + l] = y_elem(v[l]); } }", rescale_part="")
    ctx.dispatch("softmax", node=node, template=template, params=params,
                 bindings=[ctx.tensor(x), ctx.tensor(mask) if mask is not None else ctx.dummy(), ctx.tensor(out)],
                 **size)


@lowers("layer_norm")
def lower_layer_norm(node, ctx: LoweringContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    scale, bias = (node.inputs[k] if len(node.inputs) > k else None for k in (1, 2))
    axis = node.attrs["axis"] % x.rank
    n = int(np.prod(x.shape[axis:], dtype=np.int64))
    rows = x.size // max(n, 1)
    template, size = ctx.rows(node, rows, 3 * (n // 4 if n % 4 == 0 else n))  # (three passes over the row)
    template.update(ctx.row_vectors(4 if n % 4 == 0 else 1, ("x", "scale", "bias", "y")),
                    scaled="true" if scale is not None else "false", shifted="true" if bias is not None else "false",
                    centered="false" if node.attrs.get("rms") else "true")
    ctx.dispatch("layer_norm", node=node, template=template,
                 params={"rows": rows, "n": n, "epsilon": node.attrs["epsilon"]},
                 bindings=[ctx.tensor(x)] + [ctx.tensor(t) if t is not None else ctx.dummy() for t in (scale, bias)]
                 + [ctx.tensor(out)], **size)


@lowers("det")
def lower_det(node, ctx: LoweringContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    n = x.shape[-1]
    work = ctx.temporary(node, (max(out.size, 1) * n * n,), "work")
    ctx.dispatch("det", node=node, template={}, params={"total": out.size, "n": n},
                 bindings=[ctx.tensor(x), work, ctx.tensor(out)], threads=out.size)


@lowers("lrn")
def lower_lrn(node, ctx: LoweringContext) -> None:
    x, out = node.inputs[0], node.outputs[0]
    a = node.attrs
    params = {"total": out.size, "c": x.shape[1], "size": a["size"], "alpha": a["alpha"], "beta": a["beta"],
              "bias": a["bias"]}
    ctx.dispatch("lrn", node=node, template={}, params=params, bindings=[ctx.tensor(x), ctx.tensor(out)],
                 threads=out.size)


def _winograd_terms(row: np.ndarray, names: list[str]) -> str:
    """One row of a Winograd transform matrix as WGSL: its nonzero terms over the values ``names``
    (integer coefficients without a decimal point, so the same text serves f32 and i32 vectors)."""
    terms = [("-" if c < 0 else "+", names[k] if abs(c) == 1 else f"{abs(int(c))} * {names[k]}")
             for k, c in enumerate(row) if c != 0]
    return ("-" if terms[0][0] == "-" else "") + terms[0][1] + "".join(f" {sg} {t}" for sg, t in terms[1:])


def _winograd_input_code(side: int) -> str:
    """winograd_input.wgsl's written-out body for tiles of ``side``: the patch's values loaded into
    named registers (zero in the padding), B^T d per column, then B^T of each row of that, each value
    stored. Named values, not arrays indexed in loops, which lavapipe keeps in memory it reads lane
    by lane: 0.73-0.85x the looped kernel's time on lavapipe (ResNet50, SqueezeNet, ddddocr's
    detector; bench/results/2026-12-06-lavapipe-winograd-written-out.txt), the same values."""
    b_t = TRANSFORMS[side][0]
    alpha = side + 2
    lines = []
    for a in range(alpha):  # (each patch row and column clamped into the image, and whether it lies inside)
        lines += [f"    let py{a} = u32(clamp(y0 + {a}, 0, i32(p.in_h) - 1));",
                  f"    let in_py{a} = y0 + {a} >= 0 && y0 + {a} < i32(p.in_h);",
                  f"    let px{a} = u32(clamp(x0 + {a}, 0, i32(p.in_w) - 1));",
                  f"    let in_px{a} = x0 + {a} >= 0 && x0 + {a} < i32(p.in_w);"]
    for a in range(alpha):
        lines += [f"    let d{a}_{b} = select(vec4<f32>(0.0), x_at((n * p.in_h + py{a}) * p.in_w + px{b}, c4), "
                  f"in_py{a} && in_px{b});" for b in range(alpha)]
    for b in range(alpha):
        column = [f"d{k}_{b}" for k in range(alpha)]
        lines += [f"    let r{i}_{b} = {_winograd_terms(b_t[i], column)};" for i in range(alpha)]
    for i in range(alpha):
        row = [f"r{i}_{k}" for k in range(alpha)]
        lines += [f"    v[({i * alpha + j}u * tiles + t) * p.c4 + c4] = vec4<v_elem>({_winograd_terms(b_t[j], row)});"
                  for j in range(alpha)]
    return "\n".join(lines)


def _winograd_output_code(side: int, unit: int) -> str:
    """winograd_output.wgsl's written-out body for tiles of ``side`` (as ``_winograd_input_code``):
    the ALPHA x ALPHA products loaded into named registers, A^T P per column, then A^T of each row
    of that, each output through the epilogue where it lies inside the output, divided by ``unit``
    (4 for integer sums, see the kernel)."""
    a_t = TRANSFORMS[side][2]
    alpha = side + 2
    lines = []
    for j in range(alpha):
        for i in range(alpha):
            lines.append(f"    let m{i}_{j} = m_at(({j}u * tiles + t) * p.c4 + c4 + {i}u * stride);")
    for j in range(alpha):
        column = [f"m{k}_{j}" for k in range(alpha)]
        lines += [f"    let c{r}_{j} = {_winograd_terms(a_t[r], column)};" for r in range(side)]
    lines.append("    let channel = channel_at(c4);")
    for i in range(side):
        lines.append(f"    let oy{i} = ty * M + {i}u;")
        row = [f"c{i}_{k}" for k in range(alpha)]
        for j in range(side):
            lines.append(f"    let o{i}_{j} = {_winograd_terms(a_t[j], row)};")
            lines.append(f"    if (oy{i} < p.out_h && tx * M + {j}u < p.out_w) {{")
            lines.append(f"        write_channel(((n * p.out_h + oy{i}) * p.out_w + tx * M + {j}u) * p.c4 + c4, "
                         f"channel, vec4<f32>(o{i}_{j} / acc4({unit})));")
            lines.append("    }")
    return "\n".join(lines)


@lowers("winograd_input")
def lower_winograd_input(node, ctx: LoweringContext) -> None:
    x, v = node.inputs[0], node.outputs[0]
    n, c, h, w = x.shape
    (th, tw), (pt, pl) = node.attrs["tiles"], node.attrs["pads"]
    window = ctx.windows.get(id(x))  # (x may be a channel slice of a wider tensor, read in place)
    pitch4, offset4 = window or (c // 4, 0)
    params = dict(batch=n, in_h=h, in_w=w, c4=c // 4, tiles_h=th, tiles_w=tw, pad_top=pt, pad_left=pl,
                  x_pitch4=pitch4, x_offset4=offset4)
    side = node.attrs.get("m", 2)
    template = dict(m=side, x_window=window is not None, body=_winograd_input_code(side))
    ctx.dispatch("winograd_input", node=node, template=template, params=params,
                 bindings=[ctx.tensor(x), ctx.tensor(v)], threads=n * th * tw * (c // 4),
                 choice=node.attrs.get("kernel_choice"))


@lowers("winograd_output")
def lower_winograd_output(node, ctx: LoweringContext) -> None:
    m, y = node.inputs[0], node.outputs[0]
    n, o, oh, ow = node.attrs["out_shape"]
    th, tw = node.attrs["tiles"]
    refs, template, params = _epilogue(node, ctx, o, vec4=True)
    exact = bool(node.attrs.get("exact"))  # a quantized convolution's sums: A^T M A on i32
    side = node.attrs.get("m", 2)
    unit = 4 if exact else 1  # (the products times 4 on i32, else as they are: 4 M where products_scale is 4)
    template.update(m=side, alpha=side + 2, acc4="vec4<i32>" if exact else "vec4<f32>",
                    unit=unit // node.attrs.get("products_scale", 1), body=_winograd_output_code(side, unit))
    params.update(batch=n, out_h=oh, out_w=ow, c4=o // 4, tiles_h=th, tiles_w=tw)
    ctx.dispatch("winograd_output", node=node, template=template, params=params,
                 bindings=[ctx.tensor(m), ctx.dummy()] + refs + [ctx.tensor(y)] + _factor(node, ctx),
                 threads=n * th * tw * (o // 4),
                 choice=node.attrs.get("kernel_choice"))


def _lstm_gates(node) -> tuple[dict, dict]:
    """lstm_update.wgsl's template (the gates' activations) and Params fields (their alpha and
    beta), shared by lstm_cell and lstm_step."""
    f, g, h = node.attrs["activations"]
    return (dict(f=f.kind, g=g.kind, h=h.kind, act="none"),
            dict(f_alpha=f.alpha, f_beta=f.beta, g_alpha=g.alpha, g_beta=g.beta, h_alpha=h.alpha, h_beta=h.beta))


@lowers("lstm_cell")
def lower_lstm_cell(node, ctx: LoweringContext) -> None:
    pre, c_prev = node.inputs
    h_out, c_out = node.outputs
    template, gates = _lstm_gates(node)
    params = dict(total=h_out.size, hidden=h_out.shape[1], has_c=int(c_prev is not None), **gates)
    ctx.dispatch("lstm_cell", node=node, template=template, params=params,
                 bindings=[ctx.tensor(pre), ctx.tensor(c_prev) if c_prev is not None else ctx.dummy(),
                           ctx.tensor(h_out), ctx.tensor(c_out)], threads=h_out.size)


# Invocations that share one unit's product in lstm_step's "workgroup" variant (a power of two).
LSTM_STEP_PARTS = 16
# Batch rows one lstm_step invocation computes, reading R^T once for all of them, at most (the
# kernel writes them out: 1 to 4).
LSTM_STEP_ROWS = 4
# Invocations of a GPU's lstm_layer.wgsl sharing each block of four units' K (unmeasured: a step's
# product then waits on a quarter of the loads in a row; the partial sums are integers, exact)
LSTM_LAYER_PARTS = 4
# The most rows of R^T (its hidden size) an invocation of lstm_layer.wgsl keeps in a private array on
# a software adapter: 8 KB of words an invocation (lavapipe keeps what lives across barriers in the
# coroutine's frame, on the heap), each a vector of the SIMD lanes' values.
LSTM_LAYER_KEPT = 512


def _lstm_step_weights(r: np.ndarray, bias: np.ndarray | None, hidden: int, scale: tuple | None,
                       words: bool, sums: bool, dot4: bool = False) -> np.ndarray:
    """R^T (hidden, 4 hidden) as [k][unit][gate], then the bias and the weights' scales as two more
    rows of it, and with ``sums`` (a packed state) R^T's column sums as a third (lstm_step.wgsl);
    with ``words`` (integer weights that fit a byte), R^T's four gates of a unit as one u32 of
    int8s, the rows after it as f32 bits; with ``dot4`` (words too) a u32 holds four rows k of one
    gate of a unit instead, laid out [k / 4][gate][unit], what dot4I8Packed takes with the state's
    words."""
    packed = r.reshape(hidden, 4, hidden).transpose(0, 2, 1)
    if dot4:  # [k / 4][k % 4][gate][unit] -> [k / 4][gate][unit][k % 4]: four rows of a gate a word
        packed = r.reshape(hidden // 4, 4, 4, hidden).transpose(0, 2, 3, 1)
    bias = bias.astype(np.float32) if bias is not None else np.zeros(4 * hidden, np.float32)
    scale = np.broadcast_to(np.asarray(1.0 if scale is None else scale, np.float32).reshape(-1), (4 * hidden,))
    rows = (bias, scale) + ((r.astype(np.float64).sum(axis=0).astype(np.float32),) if sums else ())
    tail = [row.reshape(4, hidden).T.reshape(-1) for row in rows]  # (the sums: integers below 2^24, exact)
    if words:
        return np.concatenate([np.ascontiguousarray(packed.astype(np.int8)).view(np.uint32).reshape(-1)]
                              + [row.view(np.uint32) for row in tail])
    return np.concatenate([packed.astype(np.float32).reshape(-1)] + tail)


def _lstm_layer_weights(hidden: int, batch: int, *directions) -> np.ndarray:
    """lstm_layer.wgsl's weights: per direction (``directions``, three arguments each: r, scale,
    c0) its R^T as ``_lstm_step_weights`` packs a quantized step's (int8 words, then the bias,
    scales and column sums as rows of f32 bits), then the initial cell state c0 (batch, hidden) as
    f32 bits (zeros where None)."""
    out = []
    for r, scale, c0 in zip(directions[::3], directions[1::3], directions[2::3]):
        out.append(_lstm_step_weights(r, None, hidden, scale, True, True))
        c0 = np.zeros((batch, hidden), np.float32) if c0 is None else np.asarray(c0, np.float32)
        out.append(np.ascontiguousarray(c0).view(np.uint32).reshape(-1))
    return np.concatenate(out)


@lowers("lstm_layer")
def lower_lstm_layer(node, ctx: LoweringContext) -> None:
    y, c_out = node.outputs
    dirs = len(node.inputs) // 4
    steps, batch, width = node.inputs[0].shape
    hidden = width // 4
    c0s, h0 = node.inputs[2::4], node.inputs[3]  # (initial hidden states: a layer of one direction only)
    initial = h0 is not None
    directions = []
    for d in range(dirs):
        scale = node.attrs["scales"][d]
        c0 = None if c0s[d] is None or initial else np.asarray(c0s[d].value, np.float32)
        if c0 is not None and ctx.elem == "f16" and fits_f16(c0):  # (as the lstm_cell it replaces read
            c0 = c0.astype(np.float16).astype(np.float32)  # it: a constant in the session's precision)
        directions.append((node.inputs[4 * d + 1].value,
                           None if scale is None else tuple(np.asarray(scale, np.float32).reshape(-1).tolist()), c0))
    packed = ctx.packed(_lstm_layer_weights, hidden, batch, *(x for three in directions for x in three))
    blocks = hidden // 4
    workgroup = lstm_layer_workgroup(hidden)
    # a GPU's invocations share each block's K (lstm_layer.wgsl's PARTS) where workgroup memory
    # holds their partial sums beside the state
    parts = 1
    if (ctx.policy.adapter.kind == "gpu"
            and 9 * batch * hidden + LSTM_LAYER_WORKGROUP * (8 + 64) + 16 <= WORKGROUP_STORAGE):
        parts, workgroup = LSTM_LAYER_PARTS, LSTM_LAYER_WORKGROUP
    choice = Choice("layer", workgroup=workgroup, split=parts)
    ctx.policy.choices[node.name] = choice
    template, gates = _lstm_gates(node)
    # a software adapter keeps each invocation's units' R^T in a private array (lstm_layer.wgsl's CACHED)
    cached = ctx.policy.adapter.kind == "cpu" and blocks <= workgroup and hidden <= LSTM_LAYER_KEPT
    template.update(max_state=batch * hidden, max_rows=1 if node.attrs["whole"] else batch,
                    cached=str(cached).lower(), kept=hidden if cached else 1, initial=str(initial).lower(),
                    parts=parts, partial=workgroup if parts > 1 else 1)
    params = dict(hidden=hidden, batch=batch, steps=steps, dirs=dirs, whole=int(bool(node.attrs["whole"])),
                  forward=sum(int(f) << d for d, f in enumerate(node.attrs["forward"])),
                  has_c0=sum(int(c is not None) << d for d, c in enumerate(c0s)),
                  block=packed.size // dirs // 4, **gates)
    projections = [ctx.tensor(node.inputs[4 * d]) for d in range(dirs)]
    states = [ctx.tensor(x) if initial and x is not None else ctx.dummy() for x in (h0, c0s[0])]
    bindings = [projections[0], projections[-1] if dirs > 1 else ctx.dummy(), ctx.const(packed, exact=True),
                ctx.tensor(y), ctx.tensor(c_out)] + states
    # the steps in one dispatch, or where the adapter cuts long loops short in several, each
    # starting where the one before left (the policy runs a layer whole only where one step fits;
    # the loops counted as an invocation's that walks K alone, more than one that shares it)
    chunk = lstm_layer_chunk(steps, batch, hidden, ctx.policy.adapter.loop_limit) or steps
    for first in range(0, steps, chunk):
        count = min(chunk, steps - first)
        ctx.dispatch("lstm_layer", node=node, template=template, params=dict(params, first=first, count=count),
                     choice=choice, bindings=bindings, workgroups=(dirs, 1), flops_share=count / steps,
                     loops=lstm_layer_loops(count, batch, hidden))


@lowers("lstm_step")
def lower_lstm_step(node, ctx: LoweringContext) -> None:
    h_prev, r, bias, proj, c_prev, h_scale = node.inputs[:6]
    h_zero = node.inputs[6] if node.attrs.get("words") else None  # (a packed state's zero points)
    h_out, c_out = node.outputs
    batch, hidden = h_out.shape
    scale = node.attrs.get("scale")
    words = bool(node.attrs.get("byte_weights"))  # (R^T's integers fit int8: fuse_lstm_step says so)
    choice = ctx.policy.choose("lstm_step", node, ctx.variants("lstm_step", node))
    dot4 = choice.variant == "dot4"  # (the policy offers it for a packed state and int8 weights only)
    packed = ctx.packed(_lstm_step_weights, r.value, bias.value if bias is not None else None, hidden,
                        None if scale is None else tuple(np.asarray(scale, np.float32).reshape(-1).tolist()), words,
                        h_zero is not None, dot4)
    workgroup = choice.workgroup
    parts = LSTM_STEP_PARTS if choice.variant != "row" and workgroup >= 2 * LSTM_STEP_PARTS else 1
    # the batch spread evenly over the fewest invocations a unit (9 rows: three of three, not 4, 4
    # and a last one computing 1 of 4; the sums' tree holds four vec4s an invocation, 16 KB at 256)
    rows = -(-batch // -(-batch // LSTM_STEP_ROWS))
    template, gates = _lstm_gates(node)
    params = dict(hidden=hidden, has_c=int(c_prev is not None), has_proj=int(proj is not None),
                  has_scale=int(h_scale is not None), scale_rows=int(h_scale is not None and h_scale.size > 1),
                  **gates, batch=batch)
    grid = (-(-hidden // (workgroup // parts)), -(-batch // rows))  # (blocks of units, groups of batch rows)
    h_ref, r_ref = ctx.tensor(h_prev), ctx.const(packed, exact=bool(node.attrs.get("quantized")))
    # h_prev's four values i .. i + 3: a packed state's u32 word of four int8s; else (the hidden size
    # a multiple of 4) a vec4, f16 ones as two u32 words (``halves``: a software adapter runs each
    # load lane by lane, and so half the loads); else four scalars
    if h_zero is not None:
        h_word, h_four = "u32", "vec4<f32>(unpack4xI8(h_prev[i / 4u]))"
    elif hidden % 4 == 0:
        read = _words(h_prev=h_ref)
        h_word, h_four = read["h_prev_word"], f"{read['h_prev_read']}(h_prev[i / 4u])"
    else:
        h_word = "h_prev_elem"
        h_four = "vec4<f32>(f32(h_prev[i]), f32(h_prev[i + 1u]), f32(h_prev[i + 2u]), f32(h_prev[i + 3u]))"
    r_read = _words(r=r_ref)  # (float weights: a unit's four gates a vec4, f16 ones two words)
    template.update(parts=parts, rows=rows, partial=workgroup if parts > 1 else 1, r_words=str(words).lower(),
                    packed=str(h_zero is not None).lower(), dot4=str(dot4).lower(), h_word=h_word, h_four=h_four,
                    h_word_at="h_prev[i]" if h_zero is not None else "0u", r_word_at="r[at]" if words else "0u",
                    h_one="f32(h_prev[i])" if h_word == "h_prev_elem" else "h_four(i - i % 4u)[i % 4u]",
                    r_word="u32" if words else r_read["r_word"],
                    r_four="vec4<f32>(unpack4xI8(r[at]))" if words else f"{r_read['r_read']}(r[at])",
                    r_tail="vec4<f32>()" if words else f"{r_read['r_read']}(r[(p.hidden + tail) * p.hidden + j])",
                    r_tail_words="bitcast<vec4<f32>>(vec4<u32>(r[at], r[at + 1u], r[at + 2u], r[at + 3u]))"
                    if words else "vec4<f32>()")
    ctx.dispatch("lstm_step", node=node, template=template, params=params, choice=choice,
                 bindings=[h_ref, r_ref]
                 + [ctx.tensor(t) if t is not None else ctx.dummy() for t in (proj, c_prev)]
                 + [ctx.tensor(h_out), ctx.tensor(c_out)]
                 + [ctx.tensor(t) if t is not None else ctx.dummy() for t in (h_scale, h_zero)], workgroups=grid)
