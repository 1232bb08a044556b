"""Run a quantized convolution (or matrix product) on its integers.

ONNX Runtime's quantizer writes a quantized convolution as dequantize -> Conv -> quantize (QDQ), or
as QLinearConv, which the importer turns into the same three nodes (likewise MatMul and
QLinearMatMul against constant weights, whose output channels are B's columns). Where x and y are
quantized per tensor and the weights (and an int32 bias) are constants quantized per tensor or per
output channel, this rewrites

    dequantize(x_q) -> conv2d(dequantize(w_q), dequantize(bias_q)) [-> relu or clip] -> quantize(y)

into

    x_q - x_zero   (a dequantize with scale 1: small integers, exact in f32 and in f16)
    -> conv2d with weights w_q - w_zero and the int32 bias as floats, marked ``exact``: its sums are
       stored in f32, and it keeps off the kernels that would round them (f16 products, Winograd)
    -> requantize: saturate(round_half_even(sum * multiplier) + y_zero),
       multiplier = x_scale * w_scale / y_scale in float32, saturating to the activation's range
       (quantize(clip(y, lo, hi)) = clamp(quantize(y), quantize(lo), quantize(hi)): rounding is
       monotone, so the fused activation becomes an integer clamp, as TFLite computes it)

A requantized result that only the next integer convolutions read is stored already shifted
(``requantize`` writes ``q - y_zero``). At compile time ``fuse_requantize`` (called by the compute
backend's kernel policy) moves the requantize and what follows it into the convolution's epilogue;
see its docstring. That is ONNX Runtime's QLinearConv arithmetic: integer sums (exact while they stay below 2^24 in
magnitude; beyond, f32 rounds them by one part in 2^24) and one float32 requantization. The float
path it replaces rounds x_scale * (x - x_zero) and every product, so it lands on the other side of
rounding ties now and then, and those one-step differences grow through a deep network. Padding in
the shifted domain is 0, that is x_zero, as QLinearConv pads.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Operand, fresh_name, is_integer
from ..ops import static_value
from ..ops.quant import FusedRequantize, quant_range, shifted_range


def _const(name: str, value: np.ndarray, dtype: str) -> Operand:
    value = np.asarray(value).astype(dtype)
    return Operand(fresh_name(name), value.shape, dtype, value=value)


def _channel_shape(op: str, channels: int) -> tuple[int, ...]:
    """How one value per output channel lies against the weights: OIHW filters, [K, N] matrices."""
    return (channels, 1, 1, 1) if op == "conv2d" else (1, channels)


def _per_channel(value: np.ndarray, op: str, channels: int) -> np.ndarray | None:
    """A scale or zero point of the weights as one value per output channel (None: another shape)."""
    if value.size == 1:
        return np.full(channels, value.reshape(()))
    if value.shape in (_channel_shape(op, channels), (channels,) if op == "matmul" else None):
        return value.reshape(channels)
    return None


def _int_bias(bias: Operand | None, x_scale: np.float32, w_scale: np.ndarray) -> np.ndarray | None:
    """The int32 bias behind ``bias`` = dequantize(b_q, x_scale * w_scale, 0), or None."""
    channels = w_scale.size
    if bias is None:
        return np.zeros(channels, np.int64)
    dq = bias.producer
    if dq is None or dq.op != "dequantize_linear":
        return None
    b_q, scale, zero = (static_value(t) for t in dq.inputs)
    if b_q is None or scale is None or zero is None or np.any(zero != 0) or b_q.shape != (channels,):
        return None
    if not np.allclose(np.broadcast_to(scale.reshape(-1), (channels,)), x_scale * w_scale, rtol=1e-6):
        return None
    return b_q.astype(np.int64)


def _bounds(activation) -> tuple[float, float] | None:
    """The interval an activation clamps to (None: one that is not a clamp)."""
    if activation is None:
        return (-np.inf, np.inf)
    if activation.kind == "relu":
        return (0.0, np.inf)
    if activation.kind == "clip":
        return (activation.alpha, activation.beta)
    return None


def _shift(x_q: Operand, one: Operand, zero: Operand, dtype: str) -> Node:
    """A new shift: ``x_q - zero`` as a float of ``dtype`` (a dequantize by scale ``one``)."""
    shifted = Operand(fresh_name(x_q.name + "_shifted"), x_q.shape, dtype)
    shifted.producer = Node("dequantize_linear", [x_q, one, zero], [shifted], {"shift": True}, name=shifted.name)
    return shifted.producer


def _existing_shift(graph: Graph, x_q: Operand, zero: np.ndarray, dtype: str) -> Operand | None:
    """The result of a shift ``x_q - zero`` already in the graph, if there is one."""
    for node in graph.nodes:
        if (node.op == "dequantize_linear" and node.attrs.get("shift") and node.inputs[0] is x_q
                and node.outputs[0].dtype == dtype and np.array_equal(static_value(node.inputs[2]), zero)):
            return node.outputs[0]
    return None


def _saturation(dtype: str, bounds: tuple[float, float], scale: np.float32, zero: int) -> tuple[int, int]:
    """The integers quantizing into ``dtype`` saturates to, narrowed by an activation's ``bounds``
    (quantize(clip(y, lo, hi)) = clamp(quantize(y), quantize(lo), quantize(hi)): rounding is monotone)."""
    low, high = quant_range(dtype)
    if np.isfinite(bounds[0]):
        low = max(low, int(np.rint(np.float32(bounds[0]) / scale)) + zero)
    if np.isfinite(bounds[1]):
        high = min(high, int(np.rint(np.float32(bounds[1]) / scale)) + zero)
    return low, high


def integer_conv(graph: Graph) -> int:
    users = graph.consumers()
    outputs = graph.output_ids()
    rewritten = 0
    for quant in list(graph.nodes):
        if quant.op != "quantize_linear":
            continue
        y = quant.inputs[0]
        conv = y.producer
        standalone = None
        if conv is not None and conv.op == "activation" and len(users.get(id(y), [])) == 1 and id(y) not in outputs:
            standalone, y = conv, conv.inputs[0]
            conv = y.producer
        if (conv is None or conv.op not in ("conv2d", "matmul") or conv.attrs.get("exact") or len(conv.inputs) > 3
                or len(users.get(id(y), [])) != 1 or id(y) in outputs):
            continue
        if conv.op == "matmul" and (conv.inputs[1].rank != 2 or conv.inputs[0].rank < 2):
            continue  # (a constant [K, N] matrix behind a dequantize)
        if standalone is not None and conv.attrs.get("activation") is not None:
            continue
        bounds = _bounds((standalone or conv).attrs.get("activation"))
        if bounds is None:
            continue
        x_f, w_f = conv.inputs[0], conv.inputs[1]
        views = []  # transposes between the dequantize and the conv (TFLite's NHWC -> NCHW views)
        dq_x = x_f.producer
        while dq_x is not None and dq_x.op == "transpose":
            views.append(dq_x)
            dq_x = dq_x.inputs[0].producer
        dq_w = w_f.producer
        if dq_x is None or dq_w is None or dq_x.op != "dequantize_linear" or dq_w.op != "dequantize_linear":
            continue
        x_scale, x_zero = static_value(dq_x.inputs[1]), static_value(dq_x.inputs[2])
        w_q, w_scale, w_zero = (static_value(t) for t in dq_w.inputs)
        y_scale, y_zero = static_value(quant.inputs[1]), static_value(quant.inputs[2])
        values = (x_scale, x_zero, w_q, w_scale, w_zero, y_scale, y_zero)
        if any(v is None for v in values) or any(v.size != 1 for v in (x_scale, x_zero, y_scale, y_zero)):
            continue
        channels = w_f.shape[0] if conv.op == "conv2d" else w_f.shape[-1]
        w_scale, w_zero = _per_channel(w_scale, conv.op, channels), _per_channel(w_zero, conv.op, channels)
        if w_scale is None or w_zero is None:
            continue
        x_scale = np.float32(x_scale.reshape(()))
        bias = _int_bias(conv.inputs[2] if len(conv.inputs) > 2 else None, x_scale, w_scale.astype(np.float32))
        if bias is None or np.abs(bias).max(initial=0) >= 1 << 24:  # the bias must be exact in f32
            continue
        multiplier = (x_scale * w_scale.astype(np.float32)) / np.float32(y_scale.reshape(()))

        x_q = dq_x.inputs[0]
        added = []
        for view in reversed(views):  # the same views of the integers (x and zero are per tensor)
            moved = Operand(fresh_name(view.outputs[0].name + "_q"), view.outputs[0].shape, x_q.dtype)
            added.append(Node("transpose", [x_q], [moved], dict(view.attrs), name=moved.name))
            moved.producer, x_q = added[-1], moved
        shifted = _existing_shift(graph, x_q, x_zero, x_f.dtype)  # (convolutions reading one input share it)
        if shifted is None:
            shift = _shift(x_q, _const("one", 1.0, x_f.dtype), _const("x_zero", x_zero, x_q.dtype), x_f.dtype)
            shifted = shift.outputs[0]
            added.append(shift)
        weights = w_q.astype(np.int64) - w_zero.astype(np.int64).reshape(_channel_shape(conv.op, channels))
        conv.inputs = [shifted, _const(w_f.name + "_int", weights, "float32"), _const("bias_int", bias, "float32")]
        conv.attrs["exact"] = True
        conv.attrs["x_range"] = shifted_range(x_q.dtype, int(x_zero.reshape(())))
        offset = _int8_offset(x_q.dtype, int(x_zero.reshape(())), weights, bias) if conv.op == "conv2d" else None
        if offset is not None:
            conv.attrs["int8_offset"] = offset
        at = graph.nodes.index(conv)
        graph.nodes[at:at] = added
        conv.attrs["activation"] = None
        if standalone is not None:
            graph.nodes.remove(standalone)
        y_scale, y_zero = np.float32(y_scale.reshape(())), int(y_zero.reshape(()))
        quant.op, quant.attrs = "requantize", {"range": _saturation(quant.outputs[0].dtype, bounds, y_scale, y_zero)}
        along = (1, channels, 1, 1) if conv.op == "conv2d" else (channels,)
        quant.inputs = [y, _const("multiplier", multiplier.reshape(along), "float32"),
                        _const("y_zero", y_zero, quant.outputs[0].dtype)]
        rewritten += 1
    moved = _shift_before_maxpool(graph)  # (before: the moved shifts then meet their requantize)
    if _dequantize_at_requantize(graph) or moved or rewritten:
        graph.prune()
    return rewritten  # (the convolutions: what pass_log counts)


def _int8_offset(x_dtype: str, x_zero: int, weights: np.ndarray, bias: np.ndarray) -> float | None:
    """Where the packed-int8 kernel (``conv2d_i8.wgsl``) can run the convolution: what it adds to a
    shifted activation ``x_q - x_zero`` to get a signed byte (``x_zero - offset``, the offset 0 for
    int8 and 128 for uint8 activations), or None where a value or a sum would not fit: weights
    ``w_q - w_zero`` outside [-128, 127] (uint8 weights), activations of more than 8 bits, or sums
    beyond i32."""
    low, high = quant_range(x_dtype)
    if high - low > 255 or weights.min(initial=0) < -128 or weights.max(initial=0) > 127:
        return None
    taps = weights[0].size
    if taps * 128 * 128 + 128 * np.abs(weights).sum(axis=(1, 2, 3)).max() + np.abs(bias).max(initial=0) >= 2**31:
        return None
    return float(x_zero - (low + high + 1) // 2)


def fuse_requantize(graph: Graph, choose) -> int:
    """Fuse each ``requantize`` into the integer convolution whose sums only it reads, unless
    ``choose(conv)``, the kernel policy's choice for the convolution (a device-dependent rewrite: the
    compute backend's kernel policy calls it), is the scalar kernel (or the product's columns are
    not whole vec4s). The convolution then writes the
    quantized (or shifted, or dequantized) result itself (``conv2d`` attr ``requantize``, an
    ``ops.quant.FusedRequantize``, and attr ``kernel_choice``, that choice, which the fused node keeps
    although its signature changes); a residual block's add and quantize after it go too. On the
    packed-int8 kernel it also reads its quantized input as it is, without the shift."""
    users = graph.consumers()
    outputs = graph.output_ids()
    fused = 0
    for node in list(graph.nodes):
        if node.op != "requantize":
            continue
        conv = node.inputs[0].producer
        if (conv is None or conv.op not in ("conv2d", "matmul") or not conv.attrs.get("exact")
                or conv.attrs.get("requantize") is not None or len(users.get(id(conv.outputs[0]), [])) != 1
                or id(conv.outputs[0]) in outputs or conv.attrs.get("activation") is not None or len(conv.inputs) > 3):
            continue
        multiplier, zero = static_value(node.inputs[1]), static_value(node.inputs[2])
        channels = conv.outputs[0].shape[1 if conv.op == "conv2d" else -1]
        if multiplier is None or zero is None or zero.size != 1 or multiplier.size not in (1, channels):
            continue
        choice = choose(conv)
        if choice.variant == "generic" or (conv.op == "matmul" and channels % 4):  # (the scalar kernel,
            # or the register-tiled one's ragged columns, matmul.wgsl's N_RAGGED: no requantizing epilogue)
            continue
        conv.attrs["kernel_choice"] = choice
        zero_dtype = node.inputs[2].dtype
        conv.attrs["requantize"] = FusedRequantize(
            np.broadcast_to(multiplier.astype(np.float32).reshape(-1), (channels,)).copy(), int(zero.reshape(())),
            zero_dtype, tuple(node.attrs.get("range", quant_range(zero_dtype))), bool(node.attrs.get("shifted")),
            node.outputs[0].dtype, node.attrs.get("scale"), 1 if conv.op == "conv2d" else -1)
        result = node.outputs[0]
        conv.outputs = [result]
        result.producer = conv
        graph.nodes.remove(node)
        if conv.op == "conv2d":
            _fuse_block_tail(graph, conv, users, outputs)
        if choice.variant in ("gemm_i8", "depthwise"):
            _read_integers(conv)
        fused += 1
    if fused:
        graph.prune()  # (the dequantizes the fused tails no longer read)
        _quantize_concat_parts(graph)
        _pack_for_gemm_i8(graph)
        _shift_block_outputs(graph)
        graph.prune()
    return fused


def _quantize_concat_parts(graph: Graph) -> None:
    """quantize(concat(a, b, ...)), where each part is a convolution's dequantized result that only
    the concat reads (SqueezeNet's fire modules, QLinearConcat): quantizing commutes with
    concatenating, so each convolution quantizes its own part (``FusedRequantize.quantize`` without
    a residual) and the concat moves integers, or, where only shifts read the result, shifted
    integers, and the shifts go too."""
    users = graph.consumers()
    outputs = graph.output_ids()
    for quant in list(graph.nodes):
        cat = quant.inputs[0].producer if quant.op == "quantize_linear" else None
        if cat is None or cat.op != "concat" or len(users.get(id(cat.outputs[0]), [])) != 1:
            continue
        scale, zero = static_value(quant.inputs[1]), static_value(quant.inputs[2])
        if scale is None or zero is None or scale.size != 1 or zero.size != 1 or quant.inputs[1].dtype != "float32":
            continue
        parts = cat.inputs
        if len({id(t) for t in parts}) != len(parts) or not all(_dequantized_alone(t, users, outputs) for t in parts):
            continue
        zero = int(zero.reshape(()))
        result = quant.outputs[0]
        readers = users.get(id(result), [])
        shifts = (bool(readers) and id(result) not in outputs
                  and all(r.op == "dequantize_linear" and _subtracts_zero(r, result, zero) for r in readers))
        dtype = "float32" if shifts else result.dtype
        bounds = quant_range(result.dtype)
        moved = []
        for part in parts:
            conv = part.producer
            fusion = conv.attrs["requantize"]
            fusion.quantize, fusion.dtype = (float(np.float32(scale.reshape(()))), zero, bounds, shifts), dtype
            q = Operand(fresh_name(part.name + "_q"), part.shape, dtype)
            q.producer = conv
            conv.outputs = [q]
            moved.append(q)
        cat.inputs = moved
        if shifts:
            out = Operand(fresh_name(result.name + "_shifted"), result.shape, dtype)
            for reader in readers:
                graph.replace_uses(reader.outputs[0], out)
                graph.nodes.remove(reader)
        else:
            out = result
        cat.outputs = [out]
        out.producer = cat
        graph.nodes.remove(quant)


def _dequantized_alone(part: Operand, users: dict, outputs: set) -> bool:
    """``part`` is a convolution's requantized and dequantized result that one node alone reads."""
    conv = part.producer
    fusion = conv.attrs.get("requantize") if conv is not None and conv.op == "conv2d" else None
    return (fusion is not None and fusion.scale is not None and fusion.quantize is None
            and len(users.get(id(part), [])) == 1 and id(part) not in outputs)


def _reads_packed(node: Node, y: Operand) -> bool:
    """A quantized convolution that can read ``y`` stored packed: the packed-int8 kernel (as its
    input, or as a fused block tail's residual), or the depthwise kernel (as its input only: it
    unpacks each word into four channels)."""
    choice = node.attrs.get("kernel_choice") if node.op == "conv2d" else None
    if choice is None or node.attrs.get("requantize") is None:
        return False
    if choice.variant == "gemm_i8":
        return True
    return choice.variant == "depthwise" and node.inputs[0] is y and all(t is not y for t in node.inputs[1:])


def _pack_for_gemm_i8(graph: Graph) -> None:
    """A quantized convolution's 8-bit result that only packed-int8 or depthwise convolutions read
    (``_reads_packed``) is stored packed, four bytes to a word: a quarter of the bytes, and its
    readers load words instead of packing vec4s. A result stored shifted for its readers is stored
    as integers again (they read ``x_q`` with ``x_zero``)."""
    users = graph.consumers()
    outputs = graph.output_ids()
    for conv in graph.nodes:
        fusion = conv.attrs.get("requantize") if conv.op == "conv2d" else None
        if (fusion is None or fusion.scale is not None and fusion.quantize is None or id(conv.outputs[0]) in outputs
                or conv.outputs[0].shape[1] % 4 or fusion.quantize is not None and fusion.quantize[3]):
            continue
        y = conv.outputs[0]
        shifted = fusion.shifted and fusion.quantize is None
        if (fusion.zero_dtype if shifted else fusion.dtype) not in ("int8", "uint8"):
            continue
        zero = fusion.result_zero
        readers = users.get(id(y), [])
        if shifted:  # (read as the input, and only so)
            ok = all(_reads_packed(r, y) and r.inputs[0] is y and all(t is not y for t in r.inputs[1:])
                     for r in readers)
        else:
            ok = all(_reads_packed(r, y) and _subtracts_zero(r, y, zero) for r in readers)
        if not readers or not ok:
            continue
        if shifted:  # back to integers, which the readers take with their zero point
            q = Operand(fresh_name(y.name + "_q"), y.shape, fusion.zero_dtype)
            q.producer = conv
            conv.outputs = [q]
            fusion.shifted, fusion.dtype = False, fusion.zero_dtype
            for reader in readers:
                reader.inputs = [q if t is y else t for t in reader.inputs]
                reader.attrs["x_zero"] = zero
        fusion.packed = True


def _shift_block_outputs(graph: Graph) -> None:
    """A convolution's quantized output (requantized, or a residual block's, its tail fused) whose
    every reader subtracts its zero point again (the next convolutions' shifts or integer reads, and
    the next block's tail reading it as its residual) is stored shifted, ``q - zero`` as a float: the
    shift passes go."""
    users = graph.consumers()
    outputs = graph.output_ids()
    for conv in list(graph.nodes):
        fusion = conv.attrs.get("requantize") if conv.op == "conv2d" else None
        if fusion is None or not is_integer(fusion.dtype) or fusion.packed or id(conv.outputs[0]) in outputs:
            continue
        q, zero = conv.outputs[0], fusion.result_zero
        readers = users.get(id(q), [])
        if not readers or not all(_subtracts_zero(r, q, zero) for r in readers):
            continue
        shifted = Operand(fresh_name(q.name + "_shifted"), q.shape, "float32")
        shifted.producer = conv
        conv.outputs = [shifted]
        if fusion.quantize is None:
            fusion.shifted = True
        else:
            fusion.quantize = fusion.quantize[:3] + (True,)
        fusion.dtype = "float32"
        for reader in readers:
            if reader.op == "dequantize_linear":
                graph.replace_uses(reader.outputs[0], shifted)
                graph.nodes.remove(reader)
                continue
            if reader.inputs[0] is q:
                reader.attrs.pop("x_zero")
            if len(reader.inputs) > 3 and reader.inputs[3] is q:
                tail = reader.attrs["requantize"]
                tail.residual = (0.0, tail.residual[1])
            reader.inputs = [shifted if t is q else t for t in reader.inputs]


def _subtracts_zero(reader: Node, q: Operand, zero: int) -> bool:
    """Whether ``reader`` uses ``q`` only as ``q - zero``: a shift, a convolution reading integers
    with that zero point, or a fused block tail whose residual it is."""
    if reader.op == "dequantize_linear":
        return (bool(reader.attrs.get("shift")) and reader.inputs[0] is q
                and int(static_value(reader.inputs[2]).reshape(())) == zero)
    if reader.op != "conv2d":
        return False
    tail = reader.attrs.get("requantize")
    as_input = reader.inputs[0] is q and reader.attrs.get("x_zero") == zero
    as_residual = (len(reader.inputs) > 3 and reader.inputs[3] is q and tail is not None
                   and tail.residual is not None and tail.residual[0] == zero)
    return (as_input or reader.inputs[0] is not q) and (as_residual or all(t is not q for t in reader.inputs[3:]))


def _fuse_block_tail(graph: Graph, conv: Node, users: dict, outputs: set) -> None:
    """Where the convolution's dequantized result only meets a residual in an add (with a ReLU or
    Clip, or none) that is then quantized, per tensor: fuse the add and the quantize too. The
    residual is read as it is stored: the integers behind its dequantize, or a float tensor."""
    fusion, y = conv.attrs["requantize"], conv.outputs[0]
    readers = users.get(id(y), [])
    if fusion.scale is None or len(readers) != 1 or id(y) in outputs:
        return
    add = readers[0]
    if (add.op != "binary" or add.attrs.get("kind") != "add" or id(add.outputs[0]) in outputs
            or add not in graph.nodes):  # (fused already: the residual of the other convolution)
        return
    other = add.inputs[1] if add.inputs[0] is y else add.inputs[0]
    bounds = _bounds(add.attrs.get("activation"))
    quants = users.get(id(add.outputs[0]), [])
    if other is y or other.shape != y.shape or bounds is None or len(quants) != 1 or static_value(other) is not None:
        return  # (a constant residual would be bound read-only where the kernels write)
    quant = quants[0]
    if quant.op != "quantize_linear":  # (the add's result read by anything else: a Mul, say)
        return
    q_scale, q_zero = static_value(quant.inputs[1]), static_value(quant.inputs[2])
    if q_scale is None or q_zero is None or q_scale.size != 1 or q_zero.size != 1 or quant.inputs[1].dtype != "float32":
        return
    residual, r_zero, r_scale = other, 0.0, 1.0
    dq = other.producer
    if dq is not None and dq.op == "dequantize_linear" and not dq.attrs.get("shift"):
        scale, zero = static_value(dq.inputs[1]), static_value(dq.inputs[2])
        if scale is not None and zero is not None and scale.size == 1 and zero.size == 1 and other.dtype == "float32":
            residual, r_zero, r_scale = dq.inputs[0], float(zero.reshape(())), float(np.float32(scale.reshape(())))
    if residual is other and other.dtype != "float32":
        return
    q_scale, q_zero = np.float32(q_scale.reshape(())), int(q_zero.reshape(()))
    fusion.residual = (r_zero, r_scale)
    fusion.quantize = (float(q_scale), q_zero, _saturation(quant.outputs[0].dtype, bounds, q_scale, q_zero), False)
    fusion.dtype = quant.outputs[0].dtype
    conv.inputs = conv.inputs[:3] + [residual]
    conv.outputs = [quant.outputs[0]]
    quant.outputs[0].producer = conv
    graph.nodes.remove(conv)  # to where the add was: after whatever computes the residual
    graph.nodes[graph.nodes.index(add)] = conv
    graph.nodes.remove(quant)


def _read_integers(conv: Node) -> None:
    """The packed-int8 kernel packs integers as well as it packs shifted ones: a convolution whose
    input is a shift ``x_q - x_zero`` reads ``x_q`` itself (attr ``x_zero``); the shift goes when
    nothing else reads it."""
    shift = conv.inputs[0].producer
    if shift is None or shift.op != "dequantize_linear" or not shift.attrs.get("shift"):
        return
    conv.inputs = [shift.inputs[0]] + conv.inputs[1:]
    conv.attrs["x_zero"] = int(static_value(shift.inputs[2]).reshape(()))


def _shift_before_maxpool(graph: Graph) -> int:
    """shift(maxpool(q)) -> maxpool(shift(q)) where the max pooling of integers ``q`` (what
    ``drop_quant_roundtrips`` leaves of a quantized MaxPool) is read only by shifts and is the only
    reader of ``q``: subtracting the zero point is increasing, so the maximum of the shifted values
    is the shifted maximum (and a max pool's padding takes no part). The shift then meets the
    requantize that makes ``q``, which writes it (``_dequantize_at_requantize``): a pass over the
    pooled activations fewer."""
    users = graph.consumers()
    outputs = graph.output_ids()
    moved = 0
    for pool in list(graph.nodes):
        if pool.op != "pool2d" or pool.attrs.get("mode") != "max" or len(pool.inputs) != 1:
            continue
        q, m = pool.inputs[0], pool.outputs[0]
        shifts = users.get(id(m), [])
        if (not is_integer(q.dtype) or len(users.get(id(q), [])) != 1 or id(m) in outputs or id(q) in outputs
                or not shifts or not all(r.op == "dequantize_linear" and r.attrs.get("shift") for r in shifts)):
            continue
        first = shifts[0]
        zero, dtype = static_value(first.inputs[2]), first.outputs[0].dtype
        if any(r.outputs[0].dtype != dtype or not np.array_equal(static_value(r.inputs[2]), zero) for r in shifts):
            continue
        shift = _shift(q, first.inputs[1], first.inputs[2], dtype)
        pooled = Operand(fresh_name(m.name + "_shifted"), m.shape, dtype)
        float_pool = Node("pool2d", shift.outputs, [pooled], dict(pool.attrs), name=pool.name)
        pooled.producer = float_pool
        at = graph.nodes.index(pool)
        graph.nodes[at:at + 1] = [shift, float_pool]
        for r in shifts:
            graph.replace_uses(r.outputs[0], pooled)
            graph.nodes.remove(r)
        moved += 1
    return moved


def _dequantize_at_requantize(graph: Graph) -> int:
    """Where a requantized result is read only by dequantizes with its zero point, the requantize
    writes what they would, one pass over the activations fewer (a quantize of a float tensor, the
    network's input, likewise where only shifts read it):

    - read only by the next integer convolutions' shifts (``q - zero``): it stores ``q - zero`` as a
      float (attr ``shifted``), and the shifts go;
    - read only by one float32 dequantize per tensor (a residual add in float reads it so): it
      writes ``(q - zero) * scale`` (attr ``scale``), and the dequantize goes."""
    users = graph.consumers()
    outputs = graph.output_ids()
    fused = 0
    for node in list(graph.nodes):
        if (node.op not in ("requantize", "quantize_linear") or node.attrs.get("shifted")
                or id(node.outputs[0]) in outputs):
            continue
        q = node.outputs[0]
        readers = users.get(id(q), [])
        if not readers or any(r.op != "dequantize_linear" or r.inputs[0] is not q for r in readers):
            continue  # (before the zero points' values: a computed one walks the graph above it)
        zero = static_value(node.inputs[2])
        if any(not np.array_equal(static_value(r.inputs[2]), zero) for r in readers):
            continue
        if node.op == "quantize_linear":  # only the network's float input quantized, per tensor (a
            x = node.inputs[0]  # quantize after a residual add is a block's tail for fuse_requantize)
            if (x.producer is not None or x.is_constant or zero is None or zero.size != 1
                    or x.dtype not in ("float32", "float16")
                    or not all(r.attrs.get("shift") and r.outputs[0].dtype == x.dtype for r in readers)):
                continue
        if all(r.attrs.get("shift") for r in readers):
            shifted = Operand(fresh_name(q.name + "_shifted"), q.shape, readers[0].outputs[0].dtype)
            shifted.producer = node
            node.outputs = [shifted]
            node.attrs["shifted"] = True
            for reader in readers:
                graph.replace_uses(reader.outputs[0], shifted)
                graph.nodes.remove(reader)
            fused += 1
            continue
        reader = readers[0]
        scale = static_value(reader.inputs[1])
        if (len(readers) != 1 or reader.attrs.get("shift") or scale is None or scale.size != 1
                or reader.outputs[0].dtype != "float32"):
            continue
        node.attrs["scale"] = float(np.float32(scale.reshape(())))
        node.outputs = [reader.outputs[0]]
        reader.outputs[0].producer = node
        graph.nodes.remove(reader)
        fused += 1
    return fused
