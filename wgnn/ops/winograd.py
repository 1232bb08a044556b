"""Winograd F(2x2, 3x3): a 3x3, stride-1 convolution as transforms around 16 matrix products.

Each 2x2 block of output pixels (a tile) is computed from the 4x4 input patch d under it as
``A^T [(G g G^T) . (B^T d B)] A`` (Lavin and Gray, 2016): the element-wise product becomes, over
channels, 16 independent matrix products [tiles, Cin] x [Cin, Cout], one per position of the 4x4
transformed patch. That is 16 multiplies per tile and channel pair instead of 36, and the products
run on the tiled matmul kernel. ``passes/winograd.py`` rewrites eligible convolutions into

    winograd_input (x -> V [16, tiles, Cin])  ->  matmul (V, U [16, Cin, Cout])  ->  winograd_output

where U = G g G^T is computed once, at compile time, and ``winograd_output`` carries the
convolution's fused epilogue (bias, residual, activation). Tiles are numbered (n, tile row, tile
column); output rows and columns past the end of an odd-sized output are computed and dropped.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..layout import NHWC
from .activation import apply_epilogue
from .registry import fail, register, require_nchw

# The F(2x2, 3x3) transform matrices.
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)


def transform_filter(w: np.ndarray) -> np.ndarray:
    """OIHW 3x3 weights -> U [16, Cin, Cout] (float64)."""
    u = np.einsum("pa,ocab,qb->pqco", G, w.astype(np.float64), G, optimize=True)
    return u.reshape(16, w.shape[1], w.shape[0])


def tiles_of(out_h: int, out_w: int) -> tuple[int, int]:
    return -(-out_h // 2), -(-out_w // 2)


@register("winograd_input")
class WinogradInput:
    """x [N, C, H, W] -> V [16, N * tiles_h * tiles_w, C]; attrs pads (top, left), tiles (th, tw)."""

    @staticmethod
    def flops(node):
        return 32 * node.outputs[0].size // 16  # B^T d B: 32 additions per 4x4 patch and channel

    @staticmethod
    def infer(node):
        x = node.inputs[0]
        require_nchw(node, x)
        th, tw = node.attrs["tiles"]
        return [((16, x.shape[0] * th * tw, x.shape[1]), x.dtype)]

    @staticmethod
    def reference(node, ins):
        x = ins[0].astype(np.float64)
        n, c, h, w = x.shape
        (th, tw), (pt, pl) = node.attrs["tiles"], node.attrs["pads"]
        xp = np.zeros((n, c, 2 * th + 2, 2 * tw + 2))
        rows = slice(max(0, pt), min(2 * th + 2, h + pt))
        cols = slice(max(0, pl), min(2 * tw + 2, w + pl))
        xp[:, :, rows, cols] = x[:, :, rows.start - pt:rows.stop - pt, cols.start - pl:cols.stop - pl]
        d = sliding_window_view(xp, (4, 4), axis=(2, 3))[:, :, ::2, ::2]  # n, c, th, tw, 4, 4
        v = np.einsum("pa,ncyxab,qb->pqnyxc", B_T, d, B_T, optimize=True)
        return [v.reshape(16, n * th * tw, c).astype(np.float32)]

    @staticmethod
    def layout(node, perms):
        return [NHWC], [()]


@register("winograd_output")
class WinogradOutput:
    """M [16, tiles, Cout] -> y [N, Cout, OH, OW], then the fused epilogue. Inputs [M, None, bias?,
    residual?, slope?] (a convolution's, its filter slot empty); attrs out_shape, tiles, activation,
    and a quantized convolution's ``exact`` and ``requantize`` (``passes/winograd.py``)."""

    traits = ("fusable", "residual")

    @staticmethod
    def flops(node):
        th, tw = node.attrs["tiles"]
        n, o = node.attrs["out_shape"][:2]
        return 36 * n * th * tw * o  # A^T M A

    @staticmethod
    def infer(node):
        m = node.inputs[0]
        n, o, oh, ow = node.attrs["out_shape"]
        th, tw = node.attrs["tiles"]
        if m.shape != (16, n * th * tw, o):
            raise fail(node, f"expected products of shape {(16, n * th * tw, o)}, got {m.shape}")
        requantize = node.attrs.get("requantize")  # (a quantized convolution's, see ops/nn.py's conv2d)
        return [((n, o, oh, ow), requantize.dtype if requantize is not None else m.dtype)]

    @staticmethod
    def reference(node, ins):
        n, o, oh, ow = node.attrs["out_shape"]
        th, tw = node.attrs["tiles"]
        m = ins[0].astype(np.float64).reshape(4, 4, n, th, tw, o)
        y = np.einsum("ip,pqnyxo,jq->noyixj", A_T, m, A_T, optimize=True).reshape(n, o, 2 * th, 2 * tw)
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
