"""Linear quantization: QuantizeLinear and DequantizeLinear as ONNX defines them.

    quantize:   y = saturate(round_half_even(x / scale) + zero_point)   (float -> small integer)
    dequantize: y = (x - zero_point) * scale                            (integer -> float)

``scale`` and ``zero_point`` broadcast against ``x``: per-tensor ones are scalars, per-axis and
blocked ones are reshaped (and, for blocks, repeated) by the importer. Both are ordinary operands,
so DynamicQuantizeLinear's computed scale runs through the same kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..graph import FLOAT_DTYPES, NARROW, is_integer
from .activation import apply_fused
from .registry import broadcast_shapes, fail, register

# The integer types a quantized tensor may have, and their ranges (saturation bounds).
QUANT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535),
                "int4": (-8, 7), "uint4": (0, 15), "int2": (-2, 1), "uint2": (0, 3), "int32": (-2**31, 2**31 - 1)}


def quant_range(dtype: str) -> tuple[int, int]:
    return QUANT_RANGES[dtype]


def shifted_range(dtype: str, zero: int | None) -> tuple[int, int]:
    """The values ``q - zero`` can take for integers q of ``dtype``: their range less ``zero``, or
    (``zero`` None: a zero point computed at run time, any value of the type) less any of them. A
    quantized convolution's attr ``x_range`` (the kernel policy's Winograd bound,
    ``passes/winograd.py``)."""
    low, high = quant_range(dtype)
    return (low - high, high - low) if zero is None else (low - zero, high - zero)


def _saturate(real: np.ndarray, zero: np.ndarray, bounds: tuple[int, int]) -> np.ndarray:
    """round_half_even(real) + zero, clamped to ``bounds`` (float32; what both quantizing kernels do)."""
    return np.clip(np.rint(real) + zero.astype(np.float32), *bounds)


def quantized_shifted(x: np.ndarray, scale: np.ndarray, zero: np.ndarray, bounds: tuple[int, int]) -> np.ndarray:
    """x quantized by ``scale`` and ``zero`` into ``bounds``, less ``zero``: float32 (a shifted
    quantize_linear's, and a quantizing pad's, ops/tensor.py)."""
    q = _saturate(x.astype(np.float32) / scale.astype(np.float32), zero, bounds)
    return q - zero.astype(np.float32)


@register("quantize_linear")
class QuantizeLinear:
    """inputs [x (float), scale (float), zero_point (the output's integer type)]; attr shifted
    (optional, set by ``passes/integer_conv.py`` where only the next convolutions' shifts read the
    result): the result is ``q - zero_point`` in x's float type."""

    traits = ("layout_free",)

    @staticmethod
    def flops(node):
        return 3 * node.outputs[0].size

    @staticmethod
    def infer(node):
        x, scale, zero = node.inputs
        if x.dtype not in FLOAT_DTYPES + ("int32",) or scale.dtype not in FLOAT_DTYPES:
            raise fail(node, f"quantizes a float tensor by a float scale, got {x.dtype} and {scale.dtype}")
        if zero.dtype not in NARROW:
            raise fail(node, f"quantizes to an 8-, 16-, 4- or 2-bit integer type, got zero point of {zero.dtype}")
        shifted = node.attrs.get("shifted") and x.dtype in FLOAT_DTYPES
        return [(broadcast_shapes(node, x.shape, scale.shape, zero.shape), x.dtype if shifted else zero.dtype)]

    @staticmethod
    def reference(node, ins):
        x, scale, zero = ins
        bounds = quant_range(node.inputs[2].dtype)
        if node.attrs.get("shifted"):
            return [quantized_shifted(x, scale, zero, bounds).astype(node.outputs[0].dtype)]
        q = _saturate(x.astype(np.float32) / scale.astype(np.float32), zero, bounds)
        return [q.astype(node.outputs[0].dtype)]


@register("dequantize_linear")
class DequantizeLinear:
    """inputs [x (integer), scale (float), zero_point (x's type)]; the result has scale's dtype."""

    traits = ("layout_free",)

    @staticmethod
    def flops(node):
        return 2 * node.outputs[0].size

    @staticmethod
    def infer(node):
        x, scale, zero = node.inputs
        if not is_integer(x.dtype) or x.dtype in ("bool", "uint32", "int64", "uint64"):
            raise fail(node, f"dequantizes a 2-, 4-, 8-, 16- or 32-bit integer tensor, got {x.dtype}")
        if scale.dtype not in FLOAT_DTYPES:
            raise fail(node, f"the scale must be a float tensor, got {scale.dtype}")
        if zero.dtype != x.dtype:
            raise fail(node, f"the zero point must have x's dtype {x.dtype}, got {zero.dtype}")
        return [(broadcast_shapes(node, x.shape, scale.shape, zero.shape), scale.dtype)]

    @staticmethod
    def reference(node, ins):
        x, scale, zero = ins
        y = (x.astype(np.int64) - zero.astype(np.int64)).astype(np.float32) * scale.astype(np.float32)
        return [y.astype(node.outputs[0].dtype)]


@register("dequantize_sum")
class DequantizeSum:
    """inputs [acc (float32 holding an integer sum: a product marked ``exact``), scale (float), offset
    (int32)]: ``float32(int32(acc) + offset) * scale``, then the fused activation if any; with attr
    ``scale`` (a number) the scale input times it; with attr ``bias_scaled`` the offset input is a
    float bias and the offset int32(floor(bias / scale)) (passes/drop_exact_casts.py). The tail
    ONNX Runtime's quantize_dynamic writes after a ConvInteger (Add of its int32 bias, Cast to float,
    Mul by x_scale * w_scale) in one pass (``passes/drop_exact_casts.py``), the int32 sum computed as
    ONNX Runtime computes it, so that its one rounding to float is the same."""

    traits = ("fusable", "layout_free")

    @staticmethod
    def flops(node):
        return 2 * node.outputs[0].size

    @staticmethod
    def infer(node):
        acc, scale, offset = node.inputs
        want = "float32" if node.attrs.get("bias_scaled") else "int32"
        if acc.dtype != "float32" or scale.dtype not in FLOAT_DTYPES or offset.dtype != want:
            raise fail(node, f"takes a float32 integer sum, a float scale and an {want} offset, got {acc.dtype}, "
                             f"{scale.dtype} and {offset.dtype}")
        return [(broadcast_shapes(node, acc.shape, scale.shape, offset.shape), scale.dtype)]

    @staticmethod
    def reference(node, ins):
        acc, scale, offset = ins
        scale = np.asarray(scale, np.float32)
        if node.attrs.get("scale") is not None:
            scale = (scale * np.float32(node.attrs["scale"])).astype(np.float32)
        if node.attrs.get("bias_scaled"):
            offset = np.floor((np.asarray(offset, np.float32) / scale).astype(np.float32)).astype(np.int32)
        total = (np.asarray(acc).astype(np.int64) + np.asarray(offset).astype(np.int64)).astype(np.int32)
        y = total.astype(np.float32) * scale
        return [apply_fused(node.attrs, y.astype(np.float32), None).astype(node.outputs[0].dtype)]


@register("dynamic_range")
class DynamicRange:
    """inputs [x (float)]: DynamicQuantizeLinear's uint8 scale and zero point over the whole of x,
    in one pass: scale = (max(x, 0) - min(x, 0)) / 255 (1 where that is 0, as ONNX Runtime has it),
    zero_point = saturate(round_half_even(-min(x, 0) / scale)). Outputs [scale (float32, kept f32
    in fp16 sessions), zero_point (uint8)], both scalars; with attr rows, one of each for every
    slice along x's first axis (shaped to broadcast against x: (rows, 1, ...); x then in its
    logical order)."""

    traits = ("wide_output",)

    @staticmethod
    def layout(node, perms):
        return [() if node.attrs.get("rows") else None], [(), ()]

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        if x.dtype not in FLOAT_DTYPES:
            raise fail(node, f"takes a float tensor, got {x.dtype}")
        if node.attrs.get("rows"):
            if x.rank < 1:
                raise fail(node, "takes rows of a tensor of rank 1 or more, got a scalar")
            rows = (x.shape[0],) + (1,) * (x.rank - 1)
            return [(rows, "float32"), (rows, "uint8")]
        return [((), "float32"), ((), "uint8")]

    @staticmethod
    def reference(node, ins):
        x = np.asarray(ins[0], np.float32)
        if node.attrs.get("rows"):
            found = [_range_of(row) for row in x.reshape(x.shape[0], -1)]
            shape = (x.shape[0],) + (1,) * (x.ndim - 1)
            return [np.array([f[0] for f in found], np.float32).reshape(shape),
                    np.array([f[1] for f in found], np.uint8).reshape(shape)]
        scale, zero = _range_of(x)
        return [np.asarray(scale, np.float32), np.asarray(zero).astype(np.uint8)]


def _range_of(x: np.ndarray) -> tuple[np.float32, np.ndarray]:
    """DynamicRange's scale and zero point of the values ``x``."""
    lo = np.float32(min(float(x.min(initial=0.0)), 0.0))
    hi = np.float32(max(float(x.max(initial=0.0)), 0.0))
    spread = np.float32(hi - lo)
    scale = np.float32(spread / np.float32(255)) if spread > 0 else np.float32(1)
    return scale, _saturate(np.float32(np.float32(0) - lo) / scale, np.zeros((), np.uint8), quant_range("uint8"))


@register("dynamic_quantize")
class DynamicQuantize:
    """inputs [x (float)]: DynamicQuantizeLinear whole, range and quantize in one dispatch where x is
    small (``passes.fuse_dynamic_quantize``). Outputs [y, scale, zero_point], each what
    ``dynamic_range`` and then ``quantize_linear`` give: y uint8, or with attr shifted
    ``q - zero_point`` in x's float type; x's physical order. Kept f32 in fp16 sessions, as the
    range's outputs are. Attr rows: each slice along x's first axis over its own range, as
    ``dynamic_range``'s (x and y then in their logical order). Attr words (``fuse_lstm_step``'s
    packed LSTM state): y is ``q - 128`` as int8, four to a uint32 word along x's last axis (x of
    shape (..., 4n) makes y (..., n), both in their logical order); ``q - zero_point`` is then
    those values plus ``128 - zero_point``."""

    traits = ("wide_output",)

    @staticmethod
    def layout(node, perms):
        if node.attrs.get("rows") or node.attrs.get("words"):
            return [()], [(), (), ()]
        return [None], [perms[id(node.inputs[0])], (), ()]

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        ranges = DynamicRange.infer(node)
        if node.attrs.get("words"):
            if x.rank < 1 or x.shape[-1] % 4:
                raise fail(node, f"packs its last axis four values a word: its length must divide by 4, got {x.shape}")
            return [(x.shape[:-1] + (x.shape[-1] // 4,), "uint32")] + ranges
        return [(x.shape, x.dtype if node.attrs.get("shifted") else "uint8")] + ranges

    @staticmethod
    def reference(node, ins):
        scale, zero = DynamicRange.reference(node, ins)
        x = np.asarray(ins[0], np.float32)
        q = _saturate(x / scale, zero, quant_range("uint8"))  # (rows: shaped to broadcast)
        if node.attrs.get("words"):
            return [state_words(q), scale, zero]
        if node.attrs.get("shifted"):
            return [(q - zero.astype(np.float32)).astype(node.outputs[0].dtype), scale, zero]
        return [q.astype(np.uint8), scale, zero]


def fits_int(array: np.ndarray, bits: int) -> bool:
    """Whether every value of ``array`` is an integer in the range of a signed ``bits``-bit one."""
    bound = 1 << (bits - 1)
    return (array.min(initial=0) >= -bound and array.max(initial=0) < bound
            and bool(np.array_equal(array, np.round(array))))


def state_words(q: np.ndarray) -> np.ndarray:
    """uint8 values ``q`` (..., 4n) as ``dynamic_quantize``'s words: q - 128 as int8, four to a
    uint32 along the last axis, the first in the lowest byte (WGSL's pack4xI8)."""
    shifted = (np.asarray(q).astype(np.int16) - 128).astype(np.int8)
    return np.ascontiguousarray(shifted).view("<u4").reshape(shifted.shape[:-1] + (-1,)).astype(np.uint32)


def state_values(words: np.ndarray, zero) -> np.ndarray:
    """``state_words``' words back as q - zero (float32): their int8 values plus 128 - zero."""
    values = np.ascontiguousarray(words, "<u4").view(np.int8).reshape(words.shape[:-1] + (-1,))
    return values.astype(np.float32) + (np.float32(128) - np.asarray(zero, np.float32))


@register("requantize")
class Requantize:
    """inputs [acc (float holding an integer sum), multiplier (float), zero_point (integer)]:
    saturate(round_half_even(acc * multiplier) + zero_point), the requantization of an integer
    convolution's sum (``passes/integer_conv.py``), with the multiplier x_scale * w_scale / y_scale.
    attrs: range (optional), the (low, high) it saturates to: the type's, narrowed by a fused
    activation; shifted (optional): the result is ``q - zero_point`` in acc's float type, what the
    next integer convolution reads; scale (optional): the result is dequantized again,
    ``(q - zero_point) * scale`` in float32, what a float op (a residual add) reads."""

    traits = ("layout_free",)

    @staticmethod
    def flops(node):
        return 3 * node.outputs[0].size

    @staticmethod
    def infer(node):
        acc, multiplier, zero = node.inputs
        if acc.dtype not in FLOAT_DTYPES or multiplier.dtype != "float32" or zero.dtype not in NARROW:
            raise fail(node, f"requantizes a float sum by a float32 multiplier to a small integer type, got "
                             f"{acc.dtype}, {multiplier.dtype} and {zero.dtype}")
        shape = broadcast_shapes(node, acc.shape, multiplier.shape, zero.shape)
        if node.attrs.get("scale") is not None:
            return [(shape, "float32")]
        return [(shape, acc.dtype if node.attrs.get("shifted") else zero.dtype)]

    @staticmethod
    def reference(node, ins):
        acc, multiplier, zero = ins
        return [requantized(acc, multiplier, zero, node.attrs.get("range", quant_range(zero.dtype.name)),
                            bool(node.attrs.get("shifted")), node.outputs[0].dtype, node.attrs.get("scale"))]


def requantized(acc, multiplier, zero, bounds: tuple[int, int], shifted: bool, dtype: str,
                scale: float | None = None) -> np.ndarray:
    """What ``requantize`` computes (float32 arithmetic, as its kernels do); with ``scale``, the
    result dequantized again: ``(q - zero) * scale``."""
    q = _saturate(np.asarray(acc).astype(np.float32) * np.asarray(multiplier).astype(np.float32),
                  np.asarray(zero), bounds)
    if scale is not None:
        return ((q - np.float32(zero)) * np.float32(scale)).astype(dtype)
    return (q - np.float32(zero) if shifted else q).astype(dtype)


@dataclass(eq=False)
class FusedRequantize:
    """A ``requantize`` fused into the integer convolution or matrix product whose sums it reads (a
    conv2d or matmul attr, set by the compute backend wherever a kernel with a quantized epilogue, not
    the scalar one, runs the node): the per-output-channel ``multiplier``, the zero point and its
    dtype, the saturation bounds, ``shifted`` and ``scale`` as the requantize's attrs say.

    With ``quantize`` (and ``scale``), what follows is fused as well: the dequantized result, plus,
    with ``residual``, the convolution's residual input ``r`` dequantized, ``(r - r_zero) * r_scale``
    (``residual`` = (r_zero, r_scale); (0, 1) for a float ``r``): a residual block's tail; without,
    the quantize of a concatenation of such results. ``quantize`` = (scale, zero, bounds, shifted):
    the bounds also hold a ReLU or Clip of the sum, and ``shifted`` stores ``q - zero`` as a float32."""

    multiplier: np.ndarray  # float32, one per output channel
    zero: int
    zero_dtype: str
    bounds: tuple[int, int]
    shifted: bool
    dtype: str  # the result's: zero_dtype, the float type of the sums when shifted, float32 with scale
    scale: float | None = None  # the requantize's ``scale``: the result dequantized, (q - zero) * scale
    axis: int = 1  # the channels' axis of the result: 1 for a convolution (NCHW), -1 for a matrix product
    residual: tuple[float, float] | None = None
    quantize: tuple[float, int, tuple[int, int], bool] | None = None
    packed: bool = False  # the (integer) result is stored four bytes to a word: its readers unpack it

    @property
    def result_zero(self) -> int:
        """The zero point of the integers the node writes (or writes shifted)."""
        return self.zero if self.quantize is None else self.quantize[1]

    def apply(self, acc: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """The result of the sums ``acc`` (and of the residual input, with ``residual``)."""
        dtype = "float32" if self.quantize else self.dtype
        along = [-1 if k == self.axis % acc.ndim else 1 for k in range(acc.ndim)]
        y = requantized(acc, self.multiplier.reshape(along), np.array(self.zero, self.zero_dtype),
                        self.bounds, self.shifted, dtype, self.scale)
        if self.quantize is None:
            return y
        if self.residual is not None:
            r_zero, r_scale = self.residual
            y = y + (residual.astype(np.float32) - np.float32(r_zero)) * np.float32(r_scale)
        scale, zero, bounds, shifted = self.quantize
        q = _saturate(y / np.float32(scale), np.array(zero), bounds)
        return (q - np.float32(zero) if shifted else q).astype(self.dtype)


@dataclass(eq=False)
class BlockWeights:
    """A matmul's constant B (K x N) as weight-only quantization stores it (ONNX Runtime's
    MatMulNBits), kept beside the float values it dequantizes to, so that a kernel can read the
    packed words instead (``matmul_nbits.wgsl``): for each of N columns, its values ``bits`` bits
    each, packed from each u32 word's low bits up, in blocks of ``block`` values along K, each
    block's scale and zero point as floats ([N, blocks]). A matmul node carries it as
    ``attrs["nbits"]``; it describes B only while B is still ``values`` itself (``block_weights``),
    so a pass that replaces B (a slice, a concat, padding) leaves the node an ordinary product."""

    values: np.ndarray  # B as the graph has it, (K, N)
    words: np.ndarray  # uint32, [N, words per column]
    scales: np.ndarray  # float32, [N, blocks]
    zeros: np.ndarray  # float32, [N, blocks]
    bits: int
    block: int

    def __repr__(self) -> str:  # (node attributes are printed; the arrays are not worth it)
        return f"BlockWeights({self.bits} bits, blocks of {self.block}, {self.words.shape[0]} columns)"

    @property
    def per_word(self) -> int:
        return 32 // self.bits

    def widened(self, values: np.ndarray) -> BlockWeights:
        """These weights with zero columns after them, up to ``values``' width (its float form, a
        pass's zero-padded copy): their words 0, scales 0 and zero points 0, so they dequantize to 0."""
        extra = values.shape[1] - self.words.shape[0]
        pad = ((0, extra), (0, 0))
        return BlockWeights(values, np.pad(self.words, pad), np.pad(self.scales, pad), np.pad(self.zeros, pad),
                            self.bits, self.block)

    def describes(self, node) -> bool:
        """Whether ``node``'s weights are still these (the very array: no pass replaced them)."""
        return len(node.inputs) > 1 and node.inputs[1] is not None and node.inputs[1].value is self.values

    @cached_property
    def by_block(self) -> tuple[np.ndarray, np.ndarray]:
        """The scales and zero points as the ``nbits`` kernels read them, made once, by
        [block][vec4 of columns], one load a vec4 of columns' values: the scales as f32; the zero
        points as a u32 of four bytes where all are whole numbers 0 to 255 (as every quantizer
        writes them: a quarter of f32's bytes), else as f32 (MatMulNBits takes any float)."""
        n, blocks = self.scales.shape
        scales = np.ascontiguousarray(self.scales.T.reshape(blocks, n // 4, 4), np.float32)
        zeros = self.zeros.T.reshape(blocks, n // 4, 4)
        if np.array_equal(zeros, np.round(zeros)) and zeros.min(initial=0) >= 0 and zeros.max(initial=0) <= 255:
            return scales, np.ascontiguousarray(zeros.astype(np.uint8)).view(np.uint32)[..., 0]
        return scales, np.ascontiguousarray(zeros, np.float32)


def pack_words(q: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned ``bits``-bit values, [N, K] with K a multiple of 32 / ``bits``, packed into u32
    words from the low bits up, as MatMulNBits stores them: [N, K * bits / 32]."""
    per_word = 32 // bits
    n, k = q.shape
    shifts = np.arange(per_word, dtype=np.uint32) * bits
    values = q.astype(np.uint32).reshape(n, k // per_word, per_word) << shifts
    return np.bitwise_or.reduce(values, axis=2).astype(np.uint32)


def block_weights(node) -> BlockWeights | None:
    """A matmul node's packed B (``BlockWeights``) where it still describes the node's B and the
    packed kernel can read it (N and K whole vec4s and words), else None."""
    packed = node.attrs.get("nbits")
    if packed is None or node.op != "matmul" or not packed.describes(node):
        return None
    k, n = packed.values.shape
    if n % 4 or k % packed.per_word:  # (values per word: 4, 8 or 16)
        return None
    return packed
