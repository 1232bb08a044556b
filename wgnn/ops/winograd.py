"""Winograd F(2x2, 3x3) and F(4x4, 3x3): a 3x3, stride-1 convolution as transforms around
(m + 2)^2 matrix products, m the side of the output tile (2 or 4).

Each m x m block of output pixels (a tile) is computed from the (m + 2) x (m + 2) input patch d under
it as ``A^T [(G g G^T) . (B^T d B)] A`` (Lavin and Gray, 2016): the element-wise product becomes,
over channels, (m + 2)^2 independent matrix products [tiles, Cin] x [Cin, Cout], one per position of
the transformed patch. That is 16 multiplies per 2x2 tile (4 an output pixel) or 36 per 4x4 tile
(2.25) and channel pair where direct convolution needs 9 a pixel, and the products run on the tiled
matmul kernel. F(4x4, 3x3) has larger constants in its transforms (interpolation points 0, +-1,
+-2), so it rounds a little more (about twice F(2x2, 3x3)'s error in f32). ``passes/winograd.py``
rewrites eligible convolutions into

    winograd_input (x -> V [(m+2)^2, tiles, Cin])  ->  matmul (V, U [(m+2)^2, Cin, Cout])  ->  winograd_output

where U = G g G^T is computed once, at compile time, and ``winograd_output`` carries the
convolution's fused epilogue (bias, residual, activation). Tiles are numbered (n, tile row, tile
column); output rows and columns past the end of the output are computed and dropped. Attr ``m``
(default 2) on both transforms.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..layout import NHWC
from .activation import apply_epilogue
from .registry import fail, register, require_nchw

# The transform matrices (B^T, G, A^T) of F(m x m, 3x3), by m.
TRANSFORMS = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
        np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)),
    4: (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                  [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                  [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float64)),
}
B_T, G, A_T = TRANSFORMS[2]


def transform_filter(w: np.ndarray, m: int = 2) -> np.ndarray:
    """OIHW 3x3 weights -> U [(m + 2)^2, Cin, Cout] (float64; a transposed view): U[p * (m + 2) + q]
    = G g G^T at (p, q), one product of every filter's nine taps with kron(G, G) (a tenth of an
    einsum's time on ResNet50's filters)."""
    g = TRANSFORMS[m][1]
    o, c = w.shape[:2]
    u = w.reshape(o, c, 9).astype(np.float64) @ np.kron(g, g).T  # [O, C, (m + 2)^2]
    return u.transpose(2, 1, 0)


def tiles_of(out_h: int, out_w: int, m: int = 2) -> tuple[int, int]:
    return -(-out_h // m), -(-out_w // m)


@register("winograd_input")
class WinogradInput:
    """x [N, C, H, W] -> V [(m + 2)^2, N * tiles_h * tiles_w, C]; attrs pads (top, left), tiles
    (th, tw), m."""

    @staticmethod
    def flops(node):
        # B^T d B per patch and channel: 32 additions for m = 2 (B's entries are 0 and +-1), about 216
        # operations for m = 4
        return {2: 2, 4: 6}[node.attrs.get("m", 2)] * node.outputs[0].size

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        require_nchw(node, x)
        th, tw = node.attrs["tiles"]
        return [(((node.attrs.get("m", 2) + 2) ** 2, x.shape[0] * th * tw, x.shape[1]), x.dtype)]

    @staticmethod
    def reference(node, ins):
        x = ins[0].astype(np.float64)
        n, c, h, w = x.shape
        (th, tw), (pt, pl), m = node.attrs["tiles"], node.attrs["pads"], node.attrs.get("m", 2)
        alpha, b_t = m + 2, TRANSFORMS[m][0]
        xp = np.zeros((n, c, m * th + 2, m * tw + 2))
        rows = slice(max(0, pt), min(m * th + 2, h + pt))
        cols = slice(max(0, pl), min(m * tw + 2, w + pl))
        xp[:, :, rows, cols] = x[:, :, rows.start - pt:rows.stop - pt, cols.start - pl:cols.stop - pl]
        d = sliding_window_view(xp, (alpha, alpha), axis=(2, 3))[:, :, ::m, ::m]  # n, c, th, tw, alpha, alpha
        v = np.einsum("pa,ncyxab,qb->pqnyxc", b_t, d, b_t, optimize=True)
        return [v.reshape(alpha ** 2, n * th * tw, c).astype(np.float32)]

    @staticmethod
    def layout(node, perms):
        return [NHWC], [()]


@register("winograd_output")
class WinogradOutput:
    """M [16, tiles, Cout] -> y [N, Cout, OH, OW], then the fused epilogue. Inputs [M, None, bias?,
    residual?, slope?] (a convolution's, its filter slot empty); attrs out_shape, tiles, activation,
    and a quantized convolution's ``exact``, ``requantize`` and ``products_scale`` (4: the products
    are 4 M, their filter transformed times 4; ``passes/winograd.py``)."""

    traits = ("fusable", "residual")

    @staticmethod
    def flops(node):
        th, tw = node.attrs["tiles"]
        n, o = node.attrs["out_shape"][:2]
        return {2: 36, 4: 180}[node.attrs.get("m", 2)] * n * th * tw * o  # A^T M A per tile

    @staticmethod
    def infer(node):
        m = node.inputs[0]
        n, o, oh, ow = node.attrs["out_shape"]
        th, tw = node.attrs["tiles"]
        want = ((node.attrs.get("m", 2) + 2) ** 2, n * th * tw, o)
        if m.shape != want:
            raise fail(node, f"expected products of shape {want}, got {m.shape}")
        requantize = node.attrs.get("requantize")  # (a quantized convolution's, see ops/nn.py's conv2d)
        return [((n, o, oh, ow), requantize.dtype if requantize is not None else m.dtype)]

    @staticmethod
    def reference(node, ins):
        n, o, oh, ow = node.attrs["out_shape"]
        th, tw = node.attrs["tiles"]
        side = node.attrs.get("m", 2)
        a_t = TRANSFORMS[side][2]
        m = ins[0].astype(np.float64).reshape(side + 2, side + 2, n, th, tw, o) / node.attrs.get("products_scale", 1)
        y = np.einsum("ip,pqnyxo,jq->noyixj", a_t, m, a_t, optimize=True).reshape(n, o, side * th, side * tw)
        y = y[:, :, :oh, :ow]
        bias, residual, slope = (ins + [None, None, None])[2:5]
        if bias is not None:
            y = y + bias.reshape(1, -1, 1, 1)
        requantize = node.attrs.get("requantize")
        y = apply_epilogue(node.attrs, y, residual if requantize is None else None,
                           None if slope is None else slope.reshape(1, -1, 1, 1))
        return [y if requantize is None else requantize.apply(y, residual)]

    @staticmethod
    def layout(node, perms):
        return [(), None, None, NHWC, None], [NHWC]
