"""Read the screenshots ``xwd`` writes (X Window Dump, version 7) into an HxWx3 uint8 array: enough
for the TrueColor 24/32-bit visuals Xvfb uses, without ImageMagick."""

from __future__ import annotations

import struct

import numpy as np


def read_xwd(data: bytes) -> np.ndarray:
    fields = struct.unpack(">25I", data[:100])
    header_size, version, _fmt, _depth, width, height = fields[:6]
    byte_order, bits_per_pixel, bytes_per_line = fields[7], fields[11], fields[12]
    red_mask, green_mask, blue_mask = fields[14:17]
    ncolors = fields[19]
    if version != 7 or bits_per_pixel not in (24, 32):
        raise ValueError(f"unsupported XWD: version {version}, {bits_per_pixel} bits per pixel")
    start = header_size + 12 * ncolors
    rows = np.frombuffer(data, np.uint8, height * bytes_per_line, start).reshape(height, bytes_per_line)
    step = bits_per_pixel // 8
    raw = rows[:, :width * step].reshape(height, width, step).astype(np.uint32)
    order = range(step) if byte_order == 0 else range(step - 1, -1, -1)  # 0: least significant byte first
    pixel = sum(raw[:, :, i] << (8 * k) for k, i in enumerate(order))

    def channel(mask: int) -> np.ndarray:
        shift = (mask & -mask).bit_length() - 1
        return ((pixel & mask) >> shift).astype(np.uint8)

    return np.stack([channel(red_mask), channel(green_mask), channel(blue_mask)], axis=-1)
