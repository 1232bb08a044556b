"""What a compute lowering sees (``LoweringContext``) and the registry of lowerings.

A lowering is a function ``lower(node, ctx)`` registered with ``@lowers("op")``; it turns one IR node
into kernel calls with ``ctx.dispatch`` (a kernel name from ``shaders/compute/``, template
parameters, uniforms and bindings). Which variant of a kernel, and which tile and workgroup sizes,
it asks of ``ctx.policy`` (``policy.KernelPolicy``); it never branches on the adapter itself.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from ... import shaders
from ...errors import GraphError, UnsupportedOperatorError
from ...graph import Node, Operand, freeze, is_integer, to_storage, viewed
from ...runtime import Device
from ..base import lowering_registry
from ..common import check_loops, fits_f16
from .policy import HALF_GEMMS, WORKGROUP_SIZES, Choice, KernelPolicy, row_loops

LOWERINGS, lowers = lowering_registry()  # @lowers("op") registers this backend's lowering of "op"


@dataclass(frozen=True)
class Ref:
    """What a binding points at: a tensor, a slice of the constant buffer, or a placeholder."""

    kind: str  # "tensor" | "const" | "dummy"
    operand: Operand | None = None
    offset: int = 0
    nbytes: int = 0
    dtype: str | None = None  # the WGSL element type stored there: f32, f16, i32, u32 (None: any)


@dataclass(frozen=True)
class Slice:
    """Where a tensor can be written inside another one's storage (a concat's part, in place): rows
    of ``row`` elements that lie ``pitch`` apart, from element ``offset`` on (multiples of 4).
    ``windowed``: the part has readers besides the concat, which then read it there through a
    channel window (``LoweringContext.windows``), as do the slices of it in ``views``."""

    whole: Operand
    row: int
    pitch: int
    offset: int
    windowed: bool = False
    views: tuple[Operand, ...] = ()


@dataclass
class KernelCall:
    node: Node
    kernel: str
    source: str
    params: dict
    bindings: list[Ref]
    workgroups: tuple[int, int]
    variant: str  # what the profiler shows: the policy's choice, else the kernel's name
    flops_share: float | None = None  # of the node's FLOPs (None: an equal share per dispatch)


@dataclass
class Chunk:
    """One distinct array of a ``ConstantPool``: its ``key`` (its bytes, their SHA-256, or the view
    it was packed from), where it lies in the pool and its size with its padding; ``data``: its
    bytes, or None where they are made only if they must be uploaded (``ConstantPool.data``)."""

    key: object  # bytes (the SHA-256 digest where a store finds chunks by it), or what identifies a view
    offset: int
    nbytes: int
    data: bytes | memoryview | None = None
    make: object = None  # () -> the stored array, where data is None


def view_of(array: np.ndarray, tag: tuple) -> tuple[tuple, np.ndarray]:
    """(which elements of which array ``array`` views, and ``tag``), and that array."""
    root = viewed(array)
    start = array.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return (id(root), start, array.shape, array.strides, array.dtype.str, tag), root


def _integer_storage(array: np.ndarray, *, dtype: str, what: str) -> tuple[np.ndarray, str]:
    """An integer constant as the GPU stores it (``graph.to_storage``: i32), for ``ConstantPool.add``."""
    return to_storage(array, dtype, what), "i32"


class ConstantPool:
    """Packs weights (in the layout their kernel wants) for the constant buffers: ``entries``, a
    ``Chunk`` per distinct array. With a ``store`` (the ``SharedBuffers`` of a session's plans),
    chunks are told apart by the SHA-256 of their bytes, what the store finds them by; else as
    ``_unkeyed`` says. Either way they are kept as the arrays' own memory until uploaded.

    A plan after the first packs the same weights again, mostly as the same views of the same
    arrays: the store remembers what each view of an array became (``SharedBuffers.derived``), so
    such a chunk is neither converted nor hashed again, and its bytes are made only where no
    earlier plan's buffer holds them any more."""

    def __init__(self, alignment: int, *, store: SharedBuffers | None = None):
        self.alignment = alignment
        self.store = store
        self.entries: list[Chunk] = []
        self.size = 0
        self._seen: dict[object, int] = {}
        self._held: list[np.ndarray] = []

    def add(self, array: np.ndarray, dtype: str | Callable[[np.ndarray], tuple[np.ndarray, str]],
            tag: tuple = ()) -> Ref:
        """The binding of ``array`` stored as ``dtype`` (its WGSL element type), or as what
        ``dtype(array)`` converts it to: (the stored array, its element type), a function of the
        array alone and of ``tag``, which says which function it is."""
        convert = dtype if callable(dtype) else (lambda a, t=dtype: (a, t))
        tag = tag if callable(dtype) else ("as", dtype)
        origin = self.store.origin(array, tag) if self.store is not None else None
        known = self.store.derived(origin) if origin is not None else None
        if known is not None:  # (an earlier plan packed this view of this array: its key, size, type)
            key, nbytes, stored_as = known
            if key in self._seen or self.store.find(key) is not None:
                return self._enter(Chunk(key, 0, nbytes, make=lambda: convert(array)[0]), stored_as)
        stored, stored_as = convert(array)
        stored = np.ascontiguousarray(stored)
        pad = b"\0" * (-stored.nbytes % 16)  # vec4 arrays need whole vec4s (the alignment's padding gives them)
        nbytes = stored.nbytes + len(pad)
        if self.store is None:
            return self._enter(self._unkeyed(array, tag, stored, pad), stored_as)
        stored.setflags(write=False)  # (read until uploaded, so no longer writable: a write after this would raise)
        data = memoryview(stored.reshape(-1).view(np.uint8))
        if known is not None:
            key = known[0]
        else:
            digest = hashlib.sha256(data)
            digest.update(pad)
            key = digest.digest()
            if origin is not None:
                self.store.remember(origin, key, nbytes, stored_as)
        return self._enter(Chunk(key, 0, nbytes, data), stored_as)

    SMALL = 4096

    def _unkeyed(self, array: np.ndarray, tag: tuple, stored: np.ndarray, pad: bytes) -> Chunk:
        """The chunk of ``stored`` (what ``array`` became) in a pool without a store: small ones are
        told apart by their bytes (the biases and tables that many nodes repeat), larger ones by
        what they are a view of (a weight bound twice is packed once), without copying them."""
        nbytes = stored.nbytes + len(pad)
        if stored.nbytes < self.SMALL:
            key = stored.tobytes() + pad
            return Chunk(key, 0, nbytes, key)
        key, root = view_of(array, tag)  # (nothing writes the weights while a graph compiles)
        self._held.append(root)  # (so that no other array takes its id while the pool lives)
        return Chunk(("view",) + key, 0, nbytes, memoryview(stored.reshape(-1).view(np.uint8)))

    def _enter(self, chunk: Chunk, dtype: str) -> Ref:
        offset = self._seen.get(chunk.key)
        if offset is None:
            offset = chunk.offset = self._seen[chunk.key] = self.size
            self.entries.append(chunk)
            self.size += chunk.nbytes + (-chunk.nbytes % self.alignment)
        return Ref("const", offset=offset, nbytes=chunk.nbytes, dtype=dtype)

    @staticmethod
    def data(chunk: Chunk) -> bytes | memoryview:
        """A chunk's bytes (without the padding to 16 bytes where the pool did not keep it): made
        now where they were not kept."""
        if chunk.data is not None:
            return chunk.data
        return memoryview(np.ascontiguousarray(chunk.make()).reshape(-1).view(np.uint8))


class SharedBuffers:
    """The GPU buffers one session's plans share: a session compiles a plan per shape of its
    symbolic inputs, and every plan packs the same weights and plans its intermediates into an arena.

    Weights: each distinct chunk (by the SHA-256 of its bytes) is uploaded once and bound by every
    plan that packs it, for as long as one of them holds the buffer it lies in (``find``, ``keep``:
    only weak references; a plan's executable holds its own). So a new shape costs no upload of the
    weights and no GPU memory for them.

    Intermediates: a session runs one plan at a time, in the order of one queue, so its plans share
    one arena (``arena_for``), as large as the largest plan needs; where a plan needs more, a new
    one ``ARENA_GROWTH`` times as large replaces it (so it grows a few times, not with every shape),
    and each plan binds the new one the next time it runs (``ComputeExecutable``)."""

    ARENA_GROWTH = 1.5

    def __init__(self):
        self._where: dict[bytes, tuple[weakref.ref, int]] = {}
        self._derived: dict[tuple, tuple[weakref.ref, bytes, int, str]] = {}
        self._purge_at = 64
        self._made: dict[tuple, tuple[tuple[weakref.ref, ...], object]] = {}  # (``made``)
        self.arena = None

    def made(self, fn: Callable, args: tuple):
        """``fn(*args)``, what a lowering makes from weights (``LoweringContext.packed``), made once
        for all of a session's plans while the arrays among ``args`` (by what they view) live: a
        new input shape then neither checks nor packs the weights again, nor hashes what they
        became (an array made here is read-only, so the pool finds it by ``derived``). Arguments
        other than arrays must be hashable values, the same for every plan."""
        parts, roots = [], []
        for arg in args:
            if isinstance(arg, np.ndarray):
                origin = self.origin(arg, ())
                if origin is None:
                    return fn(*args)
                parts.append(origin[0])
                roots.append(origin[1])
            else:
                parts.append(arg)
        key = (fn, tuple(parts))
        found = self._made.get(key)
        if found is not None and all(ref() is root for ref, root in zip(found[0], roots)):
            return found[1]
        value = fn(*args)
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
        made = self._made

        def forget(_, key=key):  # (what was made from an array goes with it: a lowering's own temporaries too)
            entry = made.get(key)
            if entry is not None and any(ref() is None for ref in entry[0]):
                del made[key]

        made[key] = (tuple(weakref.ref(root, forget) for root in roots), value)
        return value

    @staticmethod
    def origin(array: np.ndarray, tag: tuple) -> tuple[tuple, np.ndarray] | None:
        """What ``array`` is, as far as packing it goes: (which elements of which array, read-only
        from now on, it views; ``tag``) and that array; None where its memory could still change
        (it views memory that another object owns: ``graph.freeze``)."""
        return view_of(array, tag) if freeze(array) else None

    def derived(self, origin: tuple[tuple, np.ndarray]) -> tuple[bytes, int, str] | None:
        """(key, bytes, element type) of what an earlier plan packed from the same ``origin``."""
        found = self._derived.get(origin[0])
        if found is None or found[0]() is not origin[1]:
            return None
        return found[1:]

    def remember(self, origin: tuple[tuple, np.ndarray], key: bytes, nbytes: int, dtype: str) -> None:
        if len(self._derived) >= self._purge_at:  # (forget the arrays no graph holds any more)
            self._derived = {k: v for k, v in self._derived.items() if v[0]() is not None}
            self._purge_at = 2 * max(len(self._derived), 32)
        self._derived[origin[0]] = (weakref.ref(origin[1]), key, nbytes, dtype)

    def find(self, key: bytes):
        """(buffer, offset) of the weights' chunk with this key, if a live buffer holds it."""
        found = self._where.get(key)
        if found is None:
            return None
        buffer = found[0]()
        if buffer is None:
            del self._where[key]
            return None
        return buffer, found[1]

    def keep(self, key: bytes, buffer, offset: int) -> None:
        self._where[key] = (weakref.ref(buffer), offset)

    def __len__(self) -> int:
        return sum(ref() is not None for ref, _ in self._where.values())

    def arena_for(self, device: Device, nbytes: int):
        """The arena, at least ``nbytes`` large."""
        if self.arena is None or self.arena.size < nbytes:
            grown = int(self.arena.size * self.ARENA_GROWTH) if self.arena is not None else 0
            limit = int(device.limits.get("max-buffer-size", nbytes))
            self.arena = device.buffer(max(nbytes, min(grown, limit)), label="arena (shared by the plans)")
        return self.arena


class LoweringContext:
    """Layouts, tensor and constant references, the kernel policy, and ``dispatch``."""

    def __init__(self, device: Device, perms: dict[int, tuple[int, ...]], storage: dict[int, str],
                 roots: dict[int, Operand], policy: KernelPolicy, *, precision: str = "fp32",
                 opset: int | None = None, shared: SharedBuffers | None = None):
        self.device = device
        self.perms = perms
        self.storage = storage  # id(storage root) -> WGSL element type
        self.roots = roots  # id(view) -> the operand that owns its bytes
        self.placed: dict[int, int] = {}  # id(view) -> its first byte in its root's (the compile's placed)
        self.policy = policy
        self.constants = ConstantPool(device.storage_alignment, store=shared)
        self.calls: list[KernelCall] = []
        self.scratch: list[tuple[Operand, Node]] = []  # per-node temporaries (split-K's partial sums)
        self.slices: dict[int, Slice] = {}  # id(tensor) -> where it may be written in place (data.py)
        # id(tensor) -> (pitch, offset) in vec4s: a channel slice read in place, inside its NHWC root
        # (data.channel_windows)
        self.windows: dict[int, tuple[int, int]] = {}
        # id(tensor) -> the row length of the wider tensor whose leading columns it is, read in place
        # by a softmax (data.leading_columns)
        self.row_pitch: dict[int, int] = {}
        # id(tensor) -> the slice node that makes it, where only concats read it: they copy its
        # elements from the sliced tensor themselves (data.sliced_parts)
        self.slice_views: dict[int, Node] = {}
        self.elem = "f16" if precision == "fp16" else "f32"
        self.opset = opset
        self._packed: dict[tuple, tuple[tuple, object]] = {}  # (``packed``: its arguments, what it made)

    def packed(self, fn: Callable[..., np.ndarray], *args) -> np.ndarray:
        """``fn(*args)``, what a lowering packs from weights, made once per compile for the same
        arrays (by identity) and other arguments: an unrolled recurrent layer's steps all pack the
        same recurrent weights, which the constant pool then holds once, neither copied nor hashed
        again for each step. With a session's store, once for all its plans (``SharedBuffers.made``:
        the other arguments then plain values, not nodes)."""
        key = (fn,) + tuple(("array", id(a)) if isinstance(a, np.ndarray) else a for a in args)
        if key not in self._packed:  # (the arrays held with it: no other array takes their ids meanwhile)
            store = self.constants.store
            self._packed[key] = (args, store.made(fn, args) if store is not None else fn(*args))
        return self._packed[key][1]

    def perm(self, operand: Operand) -> tuple[int, ...]:
        return self.perms[id(operand)]

    def root(self, operand: Operand) -> Operand:
        return self.roots.get(id(operand), operand)

    def tensor(self, operand: Operand, *, exact: bool = False) -> Ref:
        """The binding of ``operand``; a float constant in the session's precision unless ``exact``
        asks to keep values that f16 would round (quantization scales) in f32."""
        if operand.is_constant:
            if is_integer(operand.dtype):  # (converted to i32 where no earlier plan packed it: an int8
                # embedding table's i32 is four times its bytes, neither made nor hashed again a plan)
                convert = partial(_integer_storage, dtype=operand.dtype, what=f"constant {operand.name!r}")
                return self.constants.add(np.asarray(operand.value), convert, ("i32", operand.dtype))
            return self.const(operand.value, exact=exact)
        return Ref("tensor", operand, dtype=self.storage[id(self.root(operand))])

    def write_slice(self, operand: Operand, heads: tuple[str, int] | None = None) -> tuple[dict, dict]:
        """The template (``y_slice``, ``y_swap``) and params (``y_row4``, ``y_pitch4``,
        ``y_offset4``) of ``y_slice.wgsl`` for a kernel whose epilogue writes ``operand``. Where the
        compile planned ``operand`` inside another tensor (``slices``), the kernel writes it there,
        and from then on its bytes are that tensor's; else y is ``operand`` itself. ``heads``: a
        matrix product's (``ops.nn.heads_layout``), whose vec4s the epilogue moves to where the
        heads-apart (or together) tensor has them: the fields then hold the swap's sizes."""
        s = self.slices.get(id(operand))
        if heads is not None:
            if s is not None:
                raise self.error(operand.producer, "a product storing attention heads apart cannot also write "
                                                   "into a concat's result")
            kind, h = heads
            if kind == "split":  # computed (B, S, H, D4), stored (B, H, S, D4)
                x, y, z = operand.shape[2], h, operand.shape[3] // 4
            elif kind == "split_t":  # computed (B, S, H, D4), stored (B, H, D, S): four values S apart
                x, y, z = operand.shape[3], h, operand.shape[2] // 4
            else:  # computed (B, H, S, D4), stored (B, S, H, D4)
                x, y, z = h, operand.shape[1], operand.shape[2] // h // 4
            return ({"y_slice": False, "y_swap": True, "y_scatter": kind == "split_t"},
                    {"y_row4": z, "y_pitch4": y, "y_offset4": x})
        if s is None:
            return ({"y_slice": False, "y_swap": False, "y_scatter": False},
                    {"y_row4": 0, "y_pitch4": 0, "y_offset4": 0})
        self.roots[id(operand)] = s.whole
        if s.windowed:  # its other readers read it where it now lies, and so do the slices of it
            pitch, offset = s.pitch // 4, s.offset // 4
            for view in s.views:
                self.windows[id(view)] = (pitch, offset + self.windows[id(view)][1])
                self.roots[id(view)] = s.whole
            self.windows[id(operand)] = (pitch, offset)
        return ({"y_slice": True, "y_swap": False, "y_scatter": False},
                {"y_row4": s.row // 4, "y_pitch4": s.pitch // 4, "y_offset4": s.offset // 4})

    def variants(self, op: str, node: Node) -> list[str]:
        """The policy's eligible variants of ``op`` for ``node``, less f16 arithmetic where an operand
        computed inside the graph is stored in f32 (because its values may exceed f16's range)."""
        wide = any(t is not None and not t.is_constant and not t.is_input
                   and self.storage.get(id(self.root(t))) == "f32" for t in node.inputs[:2])
        return [v for v in self.policy.eligible(op, node) if not (wide and v in HALF_GEMMS)]

    def rows(self, node: Node, rows: int, walk: int) -> tuple[dict, dict]:
        """The policy's shape of a row kernel (softmax.wgsl, layer_norm.wgsl, reduce.wgsl) over
        ``rows`` rows: its template (``per_row``, ``row``, ``combine``) and dispatch size, a
        workgroup per row or an invocation per row. ``walk``: the loop iterations one invocation
        runs walking a row alone (its passes times the loads of a row), which a workgroup divides
        among its invocations (the policy keeps within the adapter's ``loop_limit``)."""
        loops = {"row": walk, "workgroup": row_loops(walk, min(WORKGROUP_SIZES))}
        choice = self.policy.choose(node.op, node, self.variants(node.op, node), loops=loops)
        if choice.variant == "row":
            return ({"per_row": "true", "row": "flat_id(wid, lid, nwg)", "combine": "v"},
                    {"threads": rows, "choice": choice, "loops": walk})
        return ({"per_row": "false", "row": "wid.y * nwg.x + wid.x", "combine": "workgroup_reduce(v, lid, kind)"},
                {"workgroups": rows, "choice": choice, "loops": row_loops(walk, choice.workgroup)})

    @staticmethod
    def row_vectors(width: int, bindings: tuple[str, ...]) -> dict:
        """The template of a row kernel (softmax.wgsl, layer_norm.wgsl) that moves ``width`` (1 or 4)
        elements of a row a load: each binding's array element, the value type ``V`` and how its
        lanes combine."""
        template = {f"{name}_type": f"vec4<{name}_elem>" if width == 4 else f"{name}_elem" for name in bindings}
        if width == 4:
            return dict(template, width=4, vec="vec4<f32>", lanes_max="max(max(v.x, v.y), max(v.z, v.w))",
                        lanes_sum="(v.x + v.y) + (v.z + v.w)")
        return dict(template, width=1, vec="f32", lanes_max="v", lanes_sum="v")

    def const(self, array: np.ndarray, *, exact: bool = False, f32: bool = False) -> Ref:
        """Weights or other constant data. Floats are stored in the session's precision, except
        arrays with values beyond f16's range, which stay f32 rather than turn into infinities,
        ``exact`` ones that f16 would round, and ``f32`` ones: a table a kernel finds the end of by
        its binding's length (``arrayLength``), which in f16 the buffer's padding to whole 16 bytes
        would lengthen (a requantize table of 8 channels: 20 f16s, 40 bytes bound as 48)."""
        return self.constants.add(np.asarray(array), partial(self._stored, exact=exact, f32=f32),
                                  ("const", self.elem, exact, f32))

    def _stored(self, array: np.ndarray, *, exact: bool, f32: bool = False) -> tuple[np.ndarray, str]:
        if array.dtype.kind in "iub":
            return array.astype(np.uint32, copy=False), "u32"
        if (self.elem == "f16" and not f32 and fits_f16(array)
                and not (exact and np.any(array != array.astype(np.float16)))):
            return array.astype(np.float16, copy=False), "f16"
        return array.astype(np.float32, copy=False), "f32"

    def temporary(self, node: Node, shape: tuple[int, ...], what: str, dtype: str = "f32") -> Ref:
        """An f32 (or ``dtype``: i32) tensor that lives only while ``node``'s kernels run (the arena
        plans it too)."""
        operand = Operand(f"{node.name}/{what}", tuple(shape), {"f32": "float32", "i32": "int32"}[dtype])
        self.storage[id(operand)] = dtype
        self.scratch.append((operand, node))
        return Ref("tensor", operand, dtype=dtype)

    @staticmethod
    def dummy() -> Ref:
        return Ref("dummy")

    @staticmethod
    def error(node: Node, message: str) -> GraphError:
        return GraphError(f"{node.op} node {node.name!r}: {message}")

    def unsupported(self, node: Node, message: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(node.attrs.get("onnx_op", node.op), node.name, self.opset, message)

    def dispatch(self, kernel: str, *, node: Node, template: dict, params: dict, bindings: list[Ref],
                 threads: int | None = None, workgroups: int | tuple[int, int] | None = None,
                 choice: Choice | None = None, flops_share: float | None = None,
                 types_extra: dict[str, str] | None = None, loops: int = 0) -> None:
        """Record one dispatch of ``kernel``: ``threads`` invocations, or ``workgroups`` groups (a
        number, laid out along x and then y as the adapter's limit asks, or an (x, y) grid that the
        kernel reads as such).

        ``choice`` (from the policy) sets the workgroup size and names the variant. Each binding's
        element type comes from what is bound there (see ``shaders``). ``flops_share``: the part of
        the node's arithmetic this dispatch does, where the node's dispatches do unequal parts.
        ``types_extra``: element types of the kernel's other ``*_elem`` aliases (gemm's ``math``).
        ``loops``: the most loop iterations one invocation runs, where that grows with the data (0:
        bounded); beyond the adapter's ``loop_limit`` the node is refused rather than cut short."""
        if (threads if workgroups is None else workgroups) == 0 or (isinstance(workgroups, tuple) and 0 in workgroups):
            return  # a zero-sized output: nothing to compute
        check_loops(self.device, node, kernel, loops)
        wg = choice.workgroup if choice is not None else shaders.WORKGROUP_SIZE
        name = "compute/" + kernel
        names = shaders.binding_names(shaders.render(name, elem=self.elem, wg=wg, **template))[1:]
        types = {n: ref.dtype for n, ref in zip(names, bindings) if ref.dtype in ("f32", "f16", "i32")}
        types.update(types_extra or {})
        source = shaders.render(name, elem=self.elem, types=types, wg=wg, **template)
        limit = int(self.device.limits.get("max-compute-workgroups-per-dimension", 65535))
        if isinstance(workgroups, tuple):
            gx, gy = workgroups
            groups = gx * gy
        else:
            groups = workgroups if workgroups is not None else -(-max(threads or 0, 1) // wg)
            gx = min(groups, limit)
            gy = -(-groups // gx)
        if gx > limit or gy > limit:
            raise self.error(node, f"needs {groups} workgroups, more than this adapter can dispatch")
        variant = choice.label if choice is not None else kernel
        self.calls.append(KernelCall(node, kernel, source, params, bindings, (gx, gy), variant, flops_share))
