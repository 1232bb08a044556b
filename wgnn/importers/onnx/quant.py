"""ONNX converters for quantized operators: the QOperator format ONNX Runtime's quantizer writes
(QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger, and the ``com.microsoft`` QLinear ops it
emits for CNNs).

Each becomes what it computes: its quantized inputs dequantized, the float operator, and the result
quantized again (``QuantizeLinear``/``DequantizeLinear`` are in ``tensor.py``). Dequantizing a
constant (the weights, the int32 bias) folds at compile time, so what runs is the float kernel
between a dequantize and a quantize of the activations. ONNX Runtime computes the same operators in
integers with a float requantization; the two agree to within one quantization step where a value
lands on a rounding tie.

The integer-output operators (ConvInteger, MatMulInteger) run in f32 on the zero-point-shifted
integers (their product marked ``exact``: f32 sums in fp16 sessions too) and round back, exact
while partial sums stay below 2^24 in magnitude. With constant weights that is known at load: no
partial sum of an output passes 255 times the sum of its column's |weights|, whatever the
activations and the order of summation. Where that bound passes 2^24, the weights are split into
base-2^k digits, one exact product per digit, added in int32 with their place values.
"""

from __future__ import annotations

import numpy as np

from ...errors import GraphError
from ...ops.quant import BlockWeights, shifted_range
from .common import CONVERTERS, NodeInfo, converts, static

F32_EXACT = 1 << 24  # integers up to this magnitude are exact in f32


def _part(node: NodeInfo, suffix: str, op_type: str) -> NodeInfo:
    return NodeInfo(f"{node.name}/{suffix}", op_type, node.opset)


def _dq(b, node, x, scale, zero, tag: str, axis: int = 1):
    """x dequantized; a 1-D scale is per ``axis`` (0 for conv weights, the last for matmul's B)."""
    return b.dequantize_linear(x, scale, zero, axis=axis, name=f"{node.name}/{tag}")


def _q(b, node, y, scale, zero, axis: int = 1):
    return b.quantize_linear(y, scale, zero, axis=axis, dtype=zero.dtype if zero is not None else "uint8",
                             name=node.name)


@converts("QLinearConv")
def _qlinear_conv(b, node, ins, attrs):
    x, xs, xz, w, ws, wz, ys, yz = ins[:8]
    bias = ins[8] if len(ins) > 8 else None
    xf = _dq(b, node, x, xs, xz, "x")
    wf = _dq(b, node, w, ws, wz, "w", axis=0)
    inputs = [xf, wf]
    if bias is not None:
        # int32 bias in units of x_scale * w_scale (per output channel where w_scale is)
        bias_scale = b.mul(xs, ws, name=f"{node.name}/bias_scale")
        inputs.append(b.dequantize_linear(bias, bias_scale, None, axis=0, name=f"{node.name}/bias"))
    yf = CONVERTERS["Conv"](b, _part(node, "float", "Conv"), inputs, attrs)
    return _q(b, node, yf, ys, yz)


@converts("QLinearMatMul")
def _qlinear_matmul(b, node, ins, attrs):
    a, as_, az, m, ms, mz, ys, yz = ins[:8]
    af = _dq(b, node, a, as_, az, "a", axis=-2)
    mf = _dq(b, node, m, ms, mz, "b", axis=-1)
    yf = CONVERTERS["MatMul"](b, _part(node, "float", "MatMul"), [af, mf], attrs)
    return _q(b, node, yf, ys, yz, axis=-2)  # a 1-D y_scale is per row


def _shifted(b, node, x, zero, tag: str, axis: int):
    """float(x - zero_point), the zero point per tensor or per ``axis``."""
    xf = b.cast(x, "float32", name=f"{node.name}/{tag}_float")
    if zero is None:
        return xf
    zf = b.cast(zero, "float32", name=f"{node.name}/{tag}_zero_float")
    if zf.rank == 1 and zf.size > 1:
        shape = [1] * x.rank
        shape[axis % x.rank] = zf.size
        zf = b.reshape(zf, shape, name=f"{node.name}/{tag}_zero_axis")
    return b.sub(xf, zf, name=f"{node.name}/{tag}_shifted")


def _exact(y, x_range: tuple[int, int] | None = None):
    """Mark the product behind ``y`` exact: its integer sums stay f32 (also in fp16 sessions) and off
    f16 arithmetic. ``x_range``: the values its input ``x - x_zero`` can take, where known (the
    kernel policy's Winograd bound, ``passes/winograd.py``)."""
    producer = y.producer
    while producer is not None and producer.op in ("reshape", "transpose"):  # 1-D convs are lifted to 2-D
        producer = producer.inputs[0].producer
    if producer is not None and producer.op in ("conv2d", "matmul"):
        producer.attrs["exact"] = True
        if x_range is not None:
            producer.attrs["x_range"] = x_range
    return y


def _shifted_range(b, x, zero) -> tuple[int, int] | None:
    """The values ``x - zero`` can take for 8-bit integers x: their range less the zero point (a
    constant one), or less any value of x's type (one computed at run time); None for wider types."""
    if x.dtype not in ("uint8", "int8"):
        return None
    z = np.zeros(1) if zero is None else b.static_value(zero)
    return shifted_range(x.dtype, int(z.reshape(())) if z is not None and z.size == 1 else None)


def _exact_limit(terms: int) -> int:
    """The largest |weight| whose ``terms`` products with 8-bit activations (|x - x_zero| <= 255)
    sum exactly in f32."""
    return (F32_EXACT - 1) // (255 * terms)


def _exact_sums(w: np.ndarray, reduce: tuple[int, ...]) -> bool:
    """Whether the sums over ``reduce`` of the integer weights ``w`` (zero point taken off) times
    8-bit activations (|x - x_zero| <= 255) are exact in f32 for any activations, summed in any
    order: every partial sum of an output is at most 255 times its column's sum of |w|."""
    return 255 * int(np.abs(w).sum(axis=reduce).max(initial=0)) < F32_EXACT


def _weight_digits(node, wv: np.ndarray, zv: np.ndarray | None, axis: int,
                   reduce: tuple[int, ...]) -> list[tuple[int, np.ndarray]]:
    """Constant weights ``wv - zv`` (the zero point per tensor or per ``axis``; None: 0) as (place,
    digits) pairs whose sum of place * digits they are, each digit small enough that its sums over
    ``reduce`` with 8-bit activations are exact in f32 (``_exact_sums``): one pair where the
    weights already are, else a split into base-2^k digits."""
    wv = wv.astype(np.int64)
    zv = np.zeros((), np.int64) if zv is None else zv.astype(np.int64)
    if zv.size > 1:
        shape = [1] * wv.ndim
        shape[axis % wv.ndim] = zv.size
        zv = zv.reshape(shape)
    wv = wv - zv
    if _exact_sums(wv, reduce):
        return [(1, wv)]
    terms = int(np.prod([wv.shape[a] for a in reduce]))
    limit = _exact_limit(terms)
    if limit < 1:
        raise GraphError(f"{node.op_type} node {node.name!r}: sums of {terms} integer products, beyond what f32 sums "
                         "hold exactly (2^24) even one bit of the weights at a time")
    base, place, digits = 1 << int(np.log2(limit + 1)), 1, []
    while not _exact_sums(wv, reduce):  # each digit is below base, at most limit: its sums are exact
        digit = np.mod(wv, base)
        digits.append((place, digit))
        wv, place = (wv - digit) // base, place * base
    return digits + [(place, wv)]


def _shared_digits(b, node, w, zero, axis: int, reduce: tuple[int, ...]) -> list[tuple[int, np.ndarray]] | None:
    """``_weight_digits``, each digit as float32, made once for a session's imports of the model
    (one per shape of its symbolic inputs, ``b.shared_arrays``: a session's ``ModelSource``) from
    the same weights: every plan then packs the same arrays, which it recognises instead of
    converting and hashing them again. None where the weights are not known at compile time."""
    shared = getattr(b, "shared_arrays", None)
    wv, zv = b.static_value(w), b.static_value(zero) if zero is not None else None
    if wv is None or (zero is not None and zv is None):
        return None  # (weights computed at run time)
    if shared is not None and not any(v is wv for v in shared.values()):
        shared = None  # (weights each import makes anew: nothing to share them by)
    key = ("wgnn integer digits", id(wv), id(zv), axis, reduce)
    found = shared.get(key) if shared is not None else None
    if found is not None and found[0] is wv and found[1] is zv:
        return found[2]
    digits = [(place, digit.astype(np.float32)) for place, digit in _weight_digits(node, wv, zv, axis, reduce)]
    if shared is not None:  # (the sources kept too: an id is only theirs while they live; each
        shared[key] = (wv, zv, digits)  # digit also by itself, among the arrays every import shares)
        shared.update({key + (k,): digit for k, (_, digit) in enumerate(digits)})
    return digits


def _integer_product(b, node, x, x_zero, w, w_zero, axes: tuple[int, int], reduce: tuple[int, ...],
                     product) -> object:
    """The int32 result of ``product(x - x_zero, w - w_zero)`` on f32 kernels, exact: the weights
    split into digits where their sums (over ``reduce``, w's axes the product sums over) could pass
    2^24 (a product per digit, each exact, added in int32 with its place value)."""
    xf = _shifted(b, node, x, x_zero, "x", axes[0])
    x_range = _shifted_range(b, x, x_zero)
    digits = _shared_digits(b, node, w, w_zero, axes[1], reduce)
    if digits is None:  # weights computed at run time: exact while the activations' sums stay below 2^24
        return b.cast(_exact(product(xf, _shifted(b, node, w, w_zero, "w", axes[1]), "")), "int32", name=node.name)
    total = None
    for k, (place, digit) in enumerate(digits):
        tag = f"/digit{k}" if len(digits) > 1 else ""
        last = k == len(digits) - 1
        part = b.cast(_exact(product(xf, b.constant(digit, name=f"{node.name}/w{tag}"), tag),
                             x_range), "int32", name=node.name if len(digits) == 1 else f"{node.name}/int{tag}")
        if place != 1:
            part = b.mul(part, b.constant(np.int32(place)), name=f"{node.name}/place{tag}")
        total = part if total is None else b.add(total, part, name=node.name if last else f"{node.name}/sum{tag}")
    return total


@converts("ConvInteger")
def _conv_integer(b, node, ins, attrs):
    x, w = ins[0], ins[1]
    xz = ins[2] if len(ins) > 2 else None
    wz = ins[3] if len(ins) > 3 else None

    def conv(xf, wf, tag):
        return CONVERTERS["Conv"](b, _part(node, "float" + tag, "Conv"), [xf, wf], attrs)

    return _integer_product(b, node, x, xz, w, wz, (1, 0), tuple(range(1, w.rank)), conv)


@converts("MatMulInteger")
def _matmul_integer(b, node, ins, attrs):
    a, m = ins[0], ins[1]
    az = ins[2] if len(ins) > 2 else None
    mz = ins[3] if len(ins) > 3 else None

    def matmul(af, mf, tag):
        return CONVERTERS["MatMul"](b, _part(node, "float" + tag, "MatMul"), [af, mf], attrs)

    return _integer_product(b, node, a, az, m, mz, (-2, -1), (-2,) if m.rank >= 2 else (0,), matmul)


# -- com.microsoft ---------------------------------------------------------------------------------

@converts("com.microsoft.DynamicQuantizeLSTM")
def _dynamic_quantize_lstm(b, node, ins, attrs):
    """ONNX Runtime's quantize_dynamic form of an LSTM: ONNX's LSTM with 8-bit weights W [directions,
    input, 4*hidden] and R [directions, hidden, 4*hidden], scaled per direction (or per direction
    and column). Each matrix product is computed as ONNX Runtime computes it: the float operand
    quantized to uint8 over its own range (the whole input sequence at once; at each step the
    hidden state, a batch row at a time, as ONNX Runtime does where it spreads the rows over its
    threads), the integer product exact in f32, then times operand_scale * weight_scale."""
    from .nn import _recurrent

    ins = ins + [None] * (12 - len(ins))
    x, wq, rq, bias, lens, h0, c0, peep, ws, wz, rs, rz = ins[:12]
    weights, scales = [], []
    for q, scale, zero, tag in ((wq, ws, wz, "W"), (rq, rs, rz, "R")):
        qv, sv = static(b, node, q, tag), static(b, node, scale, f"{tag}_scale")
        zv = static(b, node, zero, f"{tag}_zero_point") if zero is not None else np.zeros(1, np.int64)
        if qv is None or sv is None or qv.ndim != 3:
            raise GraphError(f"DynamicQuantizeLSTM node {node.name!r}: {tag} and {tag}_scale must be given, {tag} "
                             f"as [directions, rows, 4*hidden], got {None if qv is None else qv.shape}")
        dirs, rows, _ = qv.shape
        shifted = qv.astype(np.int64) - zv.astype(np.int64).reshape(dirs if zv.size > 1 else 1, 1, -1)
        if not _exact_sums(shifted, (1,)):
            raise node.unsupported(f"{tag}'s products over {rows} terms could pass 2^24, beyond exact f32 sums")
        weights.append(b.constant(np.ascontiguousarray(shifted.transpose(0, 2, 1)).astype(np.float32),
                                  name=f"{node.name}/{tag}"))
        scales.append(np.broadcast_to(sv.astype(np.float32).reshape(dirs, -1) if sv.size > 1 else sv.reshape(1, 1),
                                      (dirs, sv.size // dirs if sv.size > 1 else 1)))

    def product(a, w_t, which, d, name):
        # the input sequence over its whole range; the hidden state per batch row
        rows = which == "recurrent" and a.shape[0] > 1
        y, a_scale, a_zero = b.dynamic_quantize_linear(a, axis=0 if rows else None, name=f"{name}/quantize")
        zero = b.cast(a_zero, "float32", name=f"{name}/zero")  # (rows: (rows, 1) each)
        a_int = b.sub(b.cast(y, "float32", name=f"{name}/y"), zero, name=f"{name}/shifted")
        acc = _exact(b.matmul(a_int, w_t, name=name))
        scale = scales[0 if which == "input" else 1][d]
        multiplier = b.mul(a_scale, b.constant(scale.copy() if scale.size > 1 else scale.reshape(()).copy()),
                           name=f"{name}/scale")
        return b.mul(acc, multiplier, name=f"{name}/scaled")

    lstm = NodeInfo(node.name, "LSTM", node.opset, node.outputs)
    return _recurrent(b, lstm, [x, weights[0], weights[1], bias, lens, h0, c0, peep], attrs, product)


@converts("com.microsoft.QLinearAdd", "com.microsoft.QLinearMul")
def _qlinear_binary(b, node, ins, attrs):
    a, as_, az, c, cs, cz, ys, yz = ins[:8]
    af, cf = _dq(b, node, a, as_, az, "a"), _dq(b, node, c, cs, cz, "b")
    op = b.add if node.op_type == "QLinearAdd" else b.mul
    return _q(b, node, op(af, cf, name=f"{node.name}/float"), ys, yz)


# com.microsoft's one-input QLinear ops, (X, X_scale, X_zero_point, Y_scale, Y_zero_point), each
# around the float ONNX op it names, which takes its attributes (channels_last, NHWC pooling, must be
# 0; QLinearSoftmax's "opset" is the Softmax opset whose axis rule applies).
_QLINEAR_UNARY = {"QLinearSigmoid": "Sigmoid", "QLinearLeakyRelu": "LeakyRelu", "QLinearSoftmax": "Softmax",
                  "QLinearGlobalAveragePool": "GlobalAveragePool", "QLinearAveragePool": "AveragePool"}


@converts(*(f"com.microsoft.{op}" for op in _QLINEAR_UNARY))
def _qlinear_unary(b, node, ins, attrs):
    if attrs.get("channels_last", 0):
        raise node.unsupported("channels_last=1 (NHWC) inputs")
    x, xs, xz, ys, yz = ins[:5]
    xf = _dq(b, node, x, xs, xz, "x")
    float_op = _QLINEAR_UNARY[node.op_type]
    inner = NodeInfo(f"{node.name}/float", float_op, int(attrs.get("opset", node.opset)))
    yf = CONVERTERS[float_op](b, inner, [xf], {k: v for k, v in attrs.items() if k not in ("channels_last", "opset")})
    return _q(b, node, yf, ys, yz)


@converts("com.microsoft.QLinearConcat")
def _qlinear_concat(b, node, ins, attrs):
    ys, yz, rest = ins[0], ins[1], ins[2:]
    if len(rest) % 3 or not rest:
        raise GraphError(f"QLinearConcat node {node.name!r}: expected (X, X_scale, X_zero_point) triples after "
                         f"Y_scale and Y_zero_point, got {len(ins)} inputs")
    parts = [_dq(b, node, rest[k], rest[k + 1], rest[k + 2], f"x{k // 3}") for k in range(0, len(rest), 3)]
    yf = b.concat(parts, int(attrs.get("axis", 1)), name=f"{node.name}/float")
    return _q(b, node, yf, ys, yz)


@converts("com.microsoft.QGemm")
def _qgemm(b, node, ins, attrs):
    a, as_, az, m, ms, mz = ins[:6]
    c = ins[6] if len(ins) > 6 else None
    ys = ins[7] if len(ins) > 7 else None
    yz = ins[8] if len(ins) > 8 else None
    af = _dq(b, node, a, as_, az, "a")
    mf = _dq(b, node, m, ms, mz, "b", axis=0 if attrs.get("transB", 0) else -1)
    if c is not None:  # int32 in units of a_scale * b_scale
        c = b.dequantize_linear(c, b.mul(as_, ms, name=f"{node.name}/c_scale"), None, axis=-1,
                                name=f"{node.name}/c")
    gemm_attrs = {k: attrs[k] for k in ("alpha", "transA", "transB") if k in attrs}
    gemm = _part(node, "float", "Gemm") if ys is not None else NodeInfo(node.name, "Gemm", node.opset)
    yf = CONVERTERS["Gemm"](b, gemm, [af, mf] + ([c] if c is not None else []), gemm_attrs)
    if ys is None:  # no output scale: the float result
        return yf
    return _q(b, node, yf, ys, yz, axis=-1)


def _unpack_bits(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The first ``count`` unsigned ``bits``-bit values of each row of ``packed`` (uint8, values
    packed from each byte's low bits up, as MatMulNBits stores them)."""
    per_byte = 8 // bits
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    values = (packed[..., :, None] >> shifts) & np.uint8((1 << bits) - 1)
    return values.reshape(packed.shape[:-1] + (-1,))[..., :count]


@converts("com.microsoft.MatMulNBits")
def _matmul_nbits(b, node, ins, attrs):
    """Y = A @ W + bias with W's K x N weights stored as ``bits``-bit integers in blocks of
    ``block_size`` along K, each block with its scale and zero point (ONNX Runtime's weight-only
    quantization, ``MatMulNBitsQuantizer``): W dequantized once, at load, into a float constant,
    (q - zero_point) * scale as ONNX Runtime computes it, the product's weights; where the blocks
    are whole u32 words in K's order, the product also carries the packed words (``BlockWeights``),
    which the compute backend's ``nbits`` kernels read instead, so that the weights take ``bits``
    bits each on the GPU, not 32. Zero points packed like the weights or given as floats; without
    them 2^(bits - 1); ``g_idx`` (act-order) gives each row of K its block."""
    a, packed, scales, zeros, g_idx, bias = (list(ins) + [None] * 6)[:6]
    missing = [key for key in ("K", "N", "block_size") if key not in attrs]
    if missing:
        raise node.unsupported(f"attributes {missing} are required")
    k, n, block = (int(attrs[key]) for key in ("K", "N", "block_size"))
    bits = int(attrs.get("bits", 4))
    if bits not in (2, 4, 8) or block < 1 or block * bits % 8:
        raise node.unsupported(f"bits={bits}, block_size={block} (takes 2, 4 and 8 bits, blocks of whole bytes)")
    q = static(b, node, packed, "quantized weights")
    s = static(b, node, scales, "scales")
    blocks = -(-k // block)
    if q.shape != (n, blocks, block * bits // 8) or s.size != n * blocks:
        raise node.unsupported(f"weights {q.shape} and scales {s.shape} for K={k}, N={n}, block_size={block} "
                               f"(expected ({n}, {blocks}, {block * bits // 8}) and {n * blocks} scales)")
    values = _unpack_bits(q.reshape(n, -1), bits, blocks * block)[:, :k].astype(np.float32)
    s = s.reshape(n, blocks).astype(np.float32)
    z = static(b, node, zeros, "zero points")
    packed_zeros = z is not None and z.dtype == np.uint8
    if z is not None and z.size != n * (-(-blocks * bits // 8) if packed_zeros else blocks):
        raise node.unsupported(f"zero points {z.shape} for N={n} and {blocks} blocks (packed {bits}-bit: "
                               f"{n} x {-(-blocks * bits // 8)} bytes; as floats: {n} x {blocks})")
    if z is None:
        z = np.full((n, blocks), 1 << (bits - 1), np.float32)
    elif packed_zeros:
        z = _unpack_bits(z.reshape(n, -1), bits, blocks).astype(np.float32)
    else:
        z = z.reshape(n, blocks).astype(np.float32)
    group = static(b, node, g_idx, "g_idx")
    in_order = np.arange(k) // block
    group = in_order if group is None else group.reshape(-1).astype(np.int64)
    if group.shape != (k,) or group.min() < 0 or group.max() >= blocks:
        raise node.unsupported(f"g_idx must give each of the {k} rows of K a block in [0, {blocks})")
    weights = ((values - z[:, group]) * s[:, group]).T  # (K, N), each value as ONNX Runtime dequantizes it
    dtype = a.dtype if a.dtype in ("float32", "float16") else "float32"
    w = b.constant(weights.astype(dtype), name=f"{node.name}/weights")
    y = CONVERTERS["MatMul"](b, node, [a, w], {})
    if (y.producer is not None and y.producer.op == "matmul" and np.array_equal(group, in_order)
            and block * bits % 32 == 0):
        # the packed words too, for the kernel that reads them (``BlockWeights``): blocks of whole words
        words = np.ascontiguousarray(q.reshape(n, -1)).view("<u4")
        y.producer.attrs["nbits"] = BlockWeights(w.value, words, s, z, bits, block)
    return y if bias is None else b.add(y, bias, name=f"{node.name}/bias")
