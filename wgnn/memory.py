"""Buffer planning: give every intermediate tensor an offset in one arena buffer.

A tensor is live from the step that writes it to the last step that reads it (both included:
a kernel's inputs and output are live together). Two tensors may share bytes only when their
lifetimes do not overlap. The plan is a pure function of (size, first, last) triples:

    step:      0   1   2   3   4
    a (4 KB)   [=======]               a and c never live together,
    b (2 KB)       [=======]           so c reuses a's bytes:
    c (4 KB)               [=======]
                                       offset 0    4K   6K
                                       | a / c    | b  |

Algorithm (greedy, best fit): place tensors one by one; each goes into the smallest gap between
already-placed tensors *whose lifetimes overlap its own*, or above them all. Offsets are rounded up
to the adapter's storage-buffer offset alignment. The tensors are placed in three orders (largest
first, ties by first or by last use; by first use) and the smallest arena is kept.

``MemoryReport`` compares the plan with two yardsticks: ``naive_bytes`` (every intermediate in
its own buffer) and ``lower_bound_bytes`` (the most bytes live at any one step; no plan can do
better).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import TooLargeForAdapter


@dataclass(frozen=True)
class Block:
    """One tensor to place: ``size`` bytes live over steps ``first..last`` (inclusive)."""

    key: object
    size: int
    first: int
    last: int
    name: str = ""  # the tensor's, for messages

    def overlaps(self, other: Block) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class MemoryReport:
    naive_bytes: int
    lower_bound_bytes: int
    planned_bytes: int

    @property
    def saving(self) -> float:
        """Fraction of the naive size the plan saves."""
        return 1.0 - self.planned_bytes / self.naive_bytes if self.naive_bytes else 0.0

    def __str__(self) -> str:
        mib = 1 / (1 << 20)
        return (f"intermediates: naive {self.naive_bytes * mib:.2f} MiB, lower bound "
                f"{self.lower_bound_bytes * mib:.2f} MiB, planned {self.planned_bytes * mib:.2f} MiB "
                f"({self.saving:.0%} saved)")


@dataclass
class Plan:
    offsets: dict[object, int]
    arena_bytes: int
    report: MemoryReport


def _align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def lower_bound(blocks: list[Block]) -> int:
    """The most bytes live at any one step."""
    events: dict[int, int] = {}
    for b in blocks:
        events[b.first] = events.get(b.first, 0) + b.size
        events[b.last + 1] = events.get(b.last + 1, 0) - b.size
    live = peak = 0
    for step in sorted(events):
        live += events[step]
        peak = max(peak, live)
    return peak


def plan_buffers(blocks: list[Block], *, alignment: int = 256, max_binding_size: int | None = None) -> Plan:
    """Assign each block an offset so that blocks live at the same time never overlap in memory."""
    for b in blocks:
        if b.first > b.last:
            raise ValueError(f"block {b.key!r} ends (step {b.last}) before it starts (step {b.first})")
        if max_binding_size is not None and b.size > max_binding_size:
            raise TooLargeForAdapter(f"tensor {b.name or b.key!r} needs {b.size} bytes, more than the adapter's "
                                     f"max-storage-buffer-binding-size ({max_binding_size})", b.size, max_binding_size)
    offsets, arena = min((_place(sorted(blocks, key=order), alignment) for order in ORDERS), key=lambda p: p[1])
    report = MemoryReport(sum(b.size for b in blocks), lower_bound(blocks), arena)
    return Plan(offsets, arena, report)


# The orders ``plan_buffers`` places blocks in, keeping the smallest arena: largest first (ties by
# first use), largest first (ties by last use, latest first), and by first use. None is best on
# every graph: ResNet50 with F(4x4, 3x3) convolutions plans 1.25x its lower bound largest first,
# 1.11x by first use; the MobileNets 1.0x largest first, up to 1.5x by first use.
# Blocks that tie keep the order they were given in (a stable sort), so that a graph plans the same
# on every run (a key is often an object's id, an address).
ORDERS = (lambda b: (-b.size, b.first), lambda b: (-b.size, -b.last), lambda b: (b.first, -b.size))


_FEW = 24


def _place(blocks: list[Block], alignment: int) -> tuple[dict[object, int], int]:
    """Each block in turn at the lowest offset of the smallest gap it fits between the blocks
    already placed that are live with it (else past them all): (offsets, arena bytes). (With
    arrays of what is placed, so that a block looks at the few blocks live with it in Python, not
    at every block before it: a graph of 500 intermediates planned 365,000 pairs a plan.)"""
    n = len(blocks)
    firsts, lasts = np.empty(n, np.int64), np.empty(n, np.int64)
    starts, ends = np.empty(n, np.int64), np.empty(n, np.int64)
    offsets: dict[object, int] = {}
    for k, block in enumerate(blocks):
        live = np.flatnonzero((firsts[:k] <= block.last) & (lasts[:k] >= block.first))
        best_offset = 0
        if 0 < live.size <= _FEW:  # (a few: in Python, cheaper than the arrays' calls)
            best_gap, cursor = None, 0
            for start, end in sorted(zip(starts[live].tolist(), ends[live].tolist())):
                gap = start - cursor
                if gap >= block.size and (best_gap is None or gap < best_gap):
                    best_offset, best_gap = cursor, gap
                cursor = max(cursor, -(-end // alignment) * alignment)
            if best_gap is None:
                best_offset = cursor
        elif live.size:
            busy_starts, busy_ends = starts[live], ends[live]
            order = np.lexsort((busy_ends, busy_starts))  # (by start, then end)
            busy_starts, busy_ends = busy_starts[order], busy_ends[order]
            aligned = -(-busy_ends // alignment) * alignment
            # the cursor before each busy block: the furthest aligned end of those before it
            cursors = np.maximum.accumulate(np.concatenate(([0], aligned)))
            gaps = busy_starts - cursors[:-1]
            fits = gaps >= block.size
            if fits.any():  # the smallest gap that fits, the first of equal ones
                best_offset = int(cursors[:-1][fits][np.argmin(gaps[fits])])
            else:
                best_offset = int(cursors[-1])
        offsets[block.key] = best_offset
        firsts[k], lasts[k], starts[k], ends[k] = block.first, block.last, best_offset, best_offset + block.size
    return offsets, int(ends.max()) if n else 0


def check_plan(blocks: list[Block], offsets: dict[object, int]) -> list[tuple[object, object]]:
    """Pairs of blocks that are live together and overlap in memory (empty for a valid plan)."""
    clashes = []
    for i, a in enumerate(blocks):
        for b in blocks[i + 1:]:
            if a.overlaps(b):
                oa, ob = offsets[a.key], offsets[b.key]
                if oa < ob + b.size and ob < oa + a.size:
                    clashes.append((a.key, b.key))
    return clashes
