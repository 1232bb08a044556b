"""The WebGPU device: adapter choice, features and limits, pipelines, buffers and GPU tensors.

A ``Device`` is shared by every session made on it (``default_device()``), so results can stay on
the GPU between sessions. Pipelines are cached by shader source: sessions that use the same kernel
with the same template parameters share one pipeline whatever their shapes.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

from . import shaders
from .errors import InputError, NoAdapterError
from .graph import STORAGE as STORAGE_TYPES
from .graph import from_storage, storage_numpy, stored_nbytes, to_storage

# Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on every device open where
# the variable is missing (a headless server, a container, a cron job); wgnn uses nothing under it.
# Where it is unset, it points at the temporary folder before any driver loads.
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())

try:
    import wgpu
except ImportError as exc:  # pragma: no cover - wgpu is a hard dependency
    raise ImportError("wgnn needs wgpu-py: pip install wgpu") from exc

OPTIONAL_FEATURES = ("shader-f16", "timestamp-query", "subgroup", "timestamp-query-inside-passes")
# Limits worth raising to the adapter's maximum; the rest keep WebGPU's defaults.
RAISED_LIMITS = (
    "max-storage-buffer-binding-size",
    "max-buffer-size",
    "max-storage-buffers-per-shader-stage",
    "max-compute-workgroup-storage-size",
    "max-compute-invocations-per-workgroup",
    "max-compute-workgroup-size-x",
    "max-compute-workgroups-per-dimension",
)
STORAGE = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST


def _wgpu_native():
    """wgpu-py's bindings of wgpu-native: (ffi, lib, libf), ``lib`` its functions as they are and
    ``libf`` the same through wgpu-py's error capture (an error raises); None where wgpu-py runs on
    another backend."""
    try:
        from wgpu.backends.wgpu_native._api import libf
        from wgpu.backends.wgpu_native._ffi import ffi, lib
    except ImportError:
        return None
    return ffi, lib, libf


WGPU_NATIVE = _wgpu_native()


def _quick_type_parsing() -> bool:
    """Make cffi's parsing of the C type strings wgpu-py hands it (``ffi.new("WGPUBufferDescriptor *")``:
    about 50 distinct ones in a process that loads and runs a model) take 0.4 ms each instead of 12:
    cffi parses each with every typedef of wgpu.h declared in front of it (about 2600 lines; its own
    comment says so), where only the typedef names that occur in the string can change the parse.
    So while it parses a type string, its parser sees only those among its typedefs (its structs,
    unions and enums all). On lavapipe that is 0.55 s of every process's cold start. Installed only
    where cffi's parser has the attributes this relies on and gives the same type for a probe with
    and without it; returns whether it is installed."""
    if WGPU_NATIVE is None:
        return False
    import re
    import types

    parser = getattr(WGPU_NATIVE[0], "_parser", None)
    full_parse = getattr(type(parser), "parse_type_and_quals", None)
    if full_parse is None or not isinstance(getattr(parser, "_declarations", None), dict):
        return False
    identifier = re.compile(r"[A-Za-z_]\w*")

    def parse_type_and_quals(self, cdecl):
        names = set(identifier.findall(cdecl))
        declarations = self._declarations
        seen = self._declarations = {k: v for k, v in declarations.items()
                                     if not k.startswith("typedef ") or k[8:] in names}
        known = len(seen)
        try:
            return full_parse(self, cdecl)
        finally:
            if len(seen) != known:  # (what the parse declared, a struct it met first, say, is kept)
                declarations.update({k: v for k, v in seen.items() if k not in declarations})
            self._declarations = declarations

    probe = "void(WGPUBufferMapCallbackInfo *, WGPUStringView, uint8_t [])"
    try:
        (full, full_quals), (quick, quick_quals) = full_parse(parser, probe), parse_type_and_quals(parser, probe)
    except Exception:  # noqa: BLE001 - a cffi this does not know: left as it is
        return False
    if (full.get_c_name(), full_quals) != (quick.get_c_name(), quick_quals):
        return False
    parser.parse_type_and_quals = types.MethodType(parse_type_and_quals, parser)
    return True


QUICK_TYPES = _quick_type_parsing()


def _native_map():
    """A function (device, buffer, size) -> the buffer's bytes that maps, waits and unmaps through
    wgpu-native's functions on the calling thread; None where wgpu-py does not run on wgpu-native.
    The calls that can fail go through wgpu-py's error capture (``libf``: an error raises, as
    wgpu-py's own mapping does); the poll, made in a loop, goes straight to wgpu-native. The map's
    callback fires inside ``wgpuDevicePoll`` on whichever thread polls (this one, or wgpu-py's poll
    thread if it is polling for another promise), so the wait polls until the callback has been
    seen, and gives up once the queue has stood empty for ten seconds without it."""
    if WGPU_NATIVE is None:
        return None
    import threading
    import time

    from wgpu.backends.wgpu_native._api import from_c_string_view

    ffi, lib, libf = WGPU_NATIVE
    pending: dict[int, object] = {}  # the handles whose callback has not fired yet, kept alive

    @ffi.callback("void(WGPUMapAsyncStatus, WGPUStringView, void *, void *)")
    def done(status, message, cell, _unused):
        event, result = ffi.from_handle(cell)
        result.append((int(status), from_c_string_view(message)))
        pending.pop(id(result), None)
        event.set()

    def read(device, buffer, size: int) -> memoryview:
        event, result = threading.Event(), []
        handle = pending[id(result)] = ffi.new_handle((event, result))
        info = ffi.new("WGPUBufferMapCallbackInfo *")
        info.mode, info.callback, info.userdata1 = lib.WGPUCallbackMode_AllowProcessEvents, done, handle
        libf.wgpuBufferMapAsync(buffer, lib.WGPUMapMode_Read, 0, size, info[0])
        idle_since = None
        while not event.is_set():
            if lib.wgpuDevicePoll(device, True, ffi.NULL) and not event.is_set():  # the queue is empty
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 10.0:
                    raise RuntimeError("Could not map buffer: its map never completed after the GPU went idle")
                event.wait(0.001)
        status, message = result[0]
        if status != lib.WGPUMapAsyncStatus_Success:
            raise RuntimeError(f"Could not map buffer ({status} : {message}).")
        try:
            mapped = libf.wgpuBufferGetMappedRange(buffer, 0, size)
            if mapped == ffi.NULL:
                raise RuntimeError("Could not map buffer: wgpu-native gave no mapped range")
            return memoryview(bytearray(ffi.buffer(mapped, size))).cast("B")
        finally:
            libf.wgpuBufferUnmap(buffer)

    return read


_NATIVE_MAP = _native_map()


def list_adapters() -> list:
    """Every adapter wgpu can see (all backends)."""
    try:
        return list(wgpu.gpu.enumerate_adapters_sync())
    except Exception as exc:  # wgpu-native raises when no Vulkan/Metal/D3D12 loader is present
        raise NoAdapterError(str(exc).splitlines()[0]) from exc


def _describe(adapter) -> str:
    info = adapter.info
    return f"{info.get('device', '?')} ({info.get('adapter_type', '?')}) via {info.get('backend_type', '?')}"


def choose_adapter(selector: str | int | None = None):
    """Pick an adapter: by index or by a case-insensitive substring of its description.

    Without a selector, ``WGNN_ADAPTER`` is used if set, else wgpu's high-performance choice.
    Compute-capable backends (Vulkan, Metal, D3D12) are preferred over OpenGL.
    """
    selector = os.environ.get("WGNN_ADAPTER") if selector is None else selector
    if selector is None or selector == "":
        try:
            adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        except Exception as exc:
            raise NoAdapterError(str(exc).splitlines()[0]) from exc
        if adapter is None:
            raise NoAdapterError()
        return adapter
    adapters = list_adapters()
    if not adapters:
        raise NoAdapterError()
    if isinstance(selector, int) or str(selector).isdigit():
        index = int(selector)
        if not 0 <= index < len(adapters):
            raise NoAdapterError(f"adapter index {index} requested, {len(adapters)} available")
        return adapters[index]
    matches = [a for a in adapters if str(selector).lower() in _describe(a).lower()]
    if not matches:
        names = "; ".join(_describe(a) for a in adapters)
        raise NoAdapterError(f"no adapter matches {selector!r}; available: {names}")
    matches.sort(key=lambda a: a.info.get("backend_type") == "OpenGL")
    return matches[0]


@dataclass
class Pipeline:
    pipeline: object
    layout: object  # the bind-group layout
    fields: list[tuple[str, str]]  # the Params uniform's fields
    kinds: list[str]  # binding kinds in order


_WRAPPED: dict[int, Device] = {}  # id(wgpu.GPUDevice) -> its wrapper (Device.wrap)


# Mesa's llvmpipe ends each shader invocation's loops after this many iterations in all (gallivm's
# LP_MAX_TGSI_LOOP_ITERATIONS, shared by every loop of the invocation): measured on lavapipe, a row
# of 65,536 ones summed by one invocation gives 65,535.
LLVMPIPE_LOOP_LIMIT = 65535


class Device:
    """An adapter, a device opened with the optional features it offers, and a pipeline cache."""

    def __init__(self, adapter: str | int | object | None = None):
        self.adapter = adapter if hasattr(adapter, "request_device_sync") else choose_adapter(adapter)
        features = [f for f in OPTIONAL_FEATURES if f in self.adapter.features]
        limits = {k: self.adapter.limits[k] for k in RAISED_LIMITS if k in self.adapter.limits}
        self.device = self.adapter.request_device_sync(required_features=features, required_limits=limits)
        self.features = set(self.device.features)
        self.limits = dict(self.device.limits)
        self.queue = self.device.queue
        self._pipelines: dict[str, Pipeline] = {}
        self._interfaces: dict[str, Pipeline] = {}  # (``interface``: layouts of pipelines not made yet)
        self.lost = False

    @classmethod
    def wrap(cls, device) -> Device:
        """A ``Device`` for ``device``: a ``wgnn.Device`` as it is, or a ``wgpu.GPUDevice`` opened by
        other code (wgpu-py's default device, which pygfx uses, or a user's own), used as it was
        opened: its features and limits are what wgnn gets. One wrapper per GPUDevice, so sessions
        on it share their pipelines."""
        if isinstance(device, Device):
            return device
        if not (hasattr(device, "create_compute_pipeline") and hasattr(device, "queue")):
            from .errors import ConfigError

            raise ConfigError(f"device: expected a wgnn.Device or a wgpu.GPUDevice, got {type(device).__name__}")
        wrapped = _WRAPPED.get(id(device))
        if wrapped is None or wrapped.device is not device:
            wrapped = cls.__new__(cls)
            wrapped.adapter, wrapped.device, wrapped.queue = device.adapter, device, device.queue
            wrapped.features, wrapped.limits = set(device.features), dict(device.limits)
            wrapped._pipelines, wrapped._interfaces, wrapped.lost = {}, {}, False
            _WRAPPED[id(device)] = wrapped
        return wrapped

    @property
    def name(self) -> str:
        return _describe(self.adapter)

    @property
    def loop_limit(self) -> int | None:
        """The most loop iterations one shader invocation runs on this adapter before its driver
        ends them, where a driver does: Mesa's llvmpipe (lavapipe) counts every iteration of every
        loop of an invocation and stops them all at 65,535 (``LP_MAX_TGSI_LOOP_ITERATIONS``), with
        no error. None elsewhere. Kernels whose loops could run longer are given other variants or
        refused (``wgnn.errors.LoopLimitError``); ``WGNN_LOOP_LIMIT`` sets another bound (0: none)."""
        forced = os.environ.get("WGNN_LOOP_LIMIT")
        if forced:
            return int(forced) or None
        return LLVMPIPE_LOOP_LIMIT if "llvmpipe" in str(self.adapter.info.get("device", "")).lower() else None

    def gpu_error(self, exc: Exception, doing: str) -> Exception:
        """A wgnn error for an error wgpu raised while ``doing`` something on this device: a lost
        device (then marked lost, so that ``default_device()`` opens a fresh one), else the GPU's
        message as a ``DeviceError``. Raise the result."""
        from .errors import DeviceError, DeviceLostError

        message = str(exc).strip().replace("\n", " ")
        if "lost" in message.lower() or "destroyed" in message.lower():
            self.lost = True
            return DeviceLostError(f"the GPU device was lost while {doing} ({self.name}): what was on it is gone. A "
                                   "session made on the default device recompiles on a fresh one at its next run; "
                                   "one made on a device you gave needs a new device and a new session")
        return DeviceError(f"the GPU refused {doing} on {self.name}: {message[:300]}")

    @property
    def storage_alignment(self) -> int:
        return max(16, int(self.limits.get("min-storage-buffer-offset-alignment", 256)))

    @property
    def uniform_alignment(self) -> int:
        return max(16, int(self.limits.get("min-uniform-buffer-offset-alignment", 256)))

    def _layout(self, kinds: list[str], stage):
        entries = []
        for i, kind in enumerate(kinds):
            if kind == "texture":
                entries.append({"binding": i, "visibility": stage,
                                "texture": {"sample_type": "unfilterable-float", "view_dimension": "2d"}})
            elif kind.startswith("storage-texture "):
                entries.append({"binding": i, "visibility": stage, "storage_texture": {
                    "access": "write-only", "format": kind.split()[1], "view_dimension": "2d"}})
            else:
                entries.append({"binding": i, "visibility": stage, "buffer": {"type": kind}})
        return self.device.create_bind_group_layout(entries=entries)

    def _cached(self, key: str, source: str, stage, make, what: str) -> Pipeline:
        """The pipeline cached under ``key``, else ``make(pipeline_layout, module)`` for ``source``.
        Where the GPU refuses to make it (a shader beyond one of its limits), a ``DeviceError`` that
        names ``what`` (the kernel and its node), or a ``DeviceLostError``."""
        cached = self._pipelines.get(key)
        if cached is None:
            fields, kinds = shaders.parse_interface(source)
            try:
                cached = self._new_pipeline(source, fields, kinds, stage, make)
            except Exception as exc:
                raise self.gpu_error(exc, f"making the pipeline of {what or 'a kernel'}") from exc
            self._pipelines[key] = cached
        return cached

    def _new_pipeline(self, source: str, fields, kinds: list[str], stage, make) -> Pipeline:
        """``make(pipeline_layout, module)`` for ``source`` (whose interface is ``fields``, ``kinds``),
        with the bind-group layout ``interface`` made for it where it did."""
        known = self._interfaces.get(source) if stage == wgpu.ShaderStage.COMPUTE else None
        layout = known.layout if known is not None else self._layout(kinds, stage)
        module = self.device.create_shader_module(code=source)
        return Pipeline(make(self.device.create_pipeline_layout(bind_group_layouts=[layout]), module), layout,
                        fields, kinds)

    def _compute_pipeline(self, layout, module):
        return self.device.create_compute_pipeline(layout=layout, compute={"module": module, "entry_point": "main"})

    def pipeline(self, source: str, what: str = "") -> Pipeline:
        """A compute pipeline (entry point ``main``) for ``source``, made once per device; ``what``
        names it in an error."""
        return self._cached(source, source, wgpu.ShaderStage.COMPUTE, self._compute_pipeline, what)

    def interface(self, source: str) -> Pipeline:
        """What binding a compute pipeline for ``source`` needs, without making the pipeline: its
        bind-group layout, the Params uniform's fields and the binding kinds (``pipeline`` None
        until ``pipeline(source)`` makes it, with this layout, so that bind groups made now fit it).
        For a plan that may never run (a session's plan at the placeholder sizes of its symbolic
        dimensions): making a pipeline compiles its shader, 40-65 ms each on lavapipe."""
        made = self._pipelines.get(source) or self._interfaces.get(source)
        if made is None:
            fields, kinds = shaders.parse_interface(source)
            made = self._interfaces[source] = Pipeline(None, self._layout(kinds, wgpu.ShaderStage.COMPUTE), fields,
                                                       kinds)
        return made

    def make_pipelines(self, sources: list[tuple[str, str]]) -> None:
        """Make the compute pipelines of ``sources`` ((source, what), as ``pipeline`` takes them)
        that this device has not made yet, several at once: making one compiles its shader on the
        host (a software adapter's, such as lavapipe's, takes 40-65 ms each), and wgpu-native makes
        pipelines from several threads (each of wgpu-py's calls captures its own errors). ResNet50's
        and MobileNet V2's 18 on lavapipe with 2 cores: 0.49 s instead of 0.75.
        ``$WGNN_PIPELINE_THREADS`` caps the threads (default: the CPU's cores, at most 8; 1: one
        after another)."""
        todo = {source: what for source, what in sources if source not in self._pipelines}
        threads = min(len(todo), int(os.environ.get("WGNN_PIPELINE_THREADS") or min(os.cpu_count() or 1, 8)))
        if threads < 2:
            return  # (``pipeline`` makes each as it is asked for)
        jobs = [(source, *shaders.parse_interface(source)) for source in todo]

        def make(job):
            try:
                return self._new_pipeline(*job, wgpu.ShaderStage.COMPUTE, self._compute_pipeline), None
            except Exception as exc:  # noqa: BLE001 - raised below, on the calling thread, naming the kernel
                return None, exc

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads, thread_name_prefix="wgnn-pipeline") as pool:
            made = list(pool.map(make, jobs))
        for (source, _, _), (pipeline, exc) in zip(jobs, made):
            if exc is not None:
                raise self.gpu_error(exc, f"making the pipeline of {todo[source] or 'a kernel'}") from exc
            self._pipelines[source] = pipeline

    def render_pipeline(self, source: str, target_format: str, what: str = "") -> Pipeline:
        """A render pipeline (vertex shader ``vs_main`` without vertex buffers, triangle list,
        fragment shader ``fs_main``) into one colour target of ``target_format``, its bindings
        visible to both stages; made once per device. The texture path's ``vs_main`` draws one
        full-screen triangle; the demo's marks draw instanced quads. ``what`` names it in an error."""
        def make(layout, module):
            return self.device.create_render_pipeline(
                layout=layout,
                vertex={"module": module, "entry_point": "vs_main", "buffers": []},
                primitive={"topology": wgpu.PrimitiveTopology.triangle_list},
                depth_stencil=None,
                multisample=None,
                fragment={"module": module, "entry_point": "fs_main", "targets": [{"format": target_format}]},
            )

        return self._cached(f"{target_format}\n{source}", source,
                            wgpu.ShaderStage.VERTEX | wgpu.ShaderStage.FRAGMENT, make, what)

    def render_pipeline_kinds(self, pipeline) -> list[str]:
        """The binding kinds of a render pipeline made by ``render_pipeline``."""
        return next(p.kinds for p in self._pipelines.values() if p.pipeline is pipeline)

    @property
    def pipeline_count(self) -> int:
        return len(self._pipelines)

    def forget_pipelines(self) -> int:
        """Drop the cached pipelines (about 2 MB each on lavapipe: its compiled shader code): a
        process that makes sessions of many models, one after another, keeps only what its live
        sessions hold, which keep theirs. Later sessions make theirs again. Each compute pipeline's
        bind-group layout is kept (``interface``), so a plan whose pipelines are made at its first run
        gets the layout its bind groups were made with. Returns how many were dropped."""
        for key, made in self._pipelines.items():
            self._interfaces.setdefault(key, Pipeline(None, made.layout, made.fields, made.kinds))
        dropped = len(self._pipelines)
        self._pipelines.clear()
        return dropped

    def buffer(self, size: int, usage=STORAGE, data: bytes | None = None, label: str = ""):
        size = max(16, -(-size // 16) * 16)
        if data is not None:
            buf = self.device.create_buffer(size=size, usage=usage | wgpu.BufferUsage.COPY_DST, label=label)
            if len(data):
                self.queue.write_buffer(buf, 0, data)
            return buf
        return self.device.create_buffer(size=size, usage=usage, label=label)

    def buffer_of(self, size: int, chunks, usage=STORAGE, label: str = ""):
        """A buffer of ``size`` bytes holding each of ``chunks`` ((offset, bytes), offsets multiples
        of 8) where it says, zeros elsewhere: written into the buffer's mapping at its creation, so
        the chunks are copied once, not first joined into one block of bytes."""
        size = max(16, -(-size // 16) * 16)
        buf = self.device.create_buffer(size=size, usage=usage, mapped_at_creation=True, label=label)
        try:
            for offset, data in chunks:
                if len(data):
                    buf.write_mapped(data, offset)
        finally:
            buf.unmap()
        return buf

    def read_mapped(self, buffer) -> memoryview:
        """Map a MAP_READ buffer whose contents a submitted copy wrote, copy its bytes out, unmap it.

        On wgpu-native this maps and waits on the calling thread (``_NATIVE_MAP``): half the host
        time of wgpu-py's ``map_sync`` for a small read on lavapipe (0.17 against 0.33 ms). That one
        first submits an empty command buffer (a workaround for writes that no submit has flushed
        yet, which wgnn never maps: what it reads back, a copy in the run's own submission wrote)
        and then waits for its poll thread to see the map done."""
        if _NATIVE_MAP is None or not hasattr(buffer, "_internal") or not hasattr(self.device, "_internal"):
            buffer.map_sync(mode=wgpu.MapMode.READ)
            try:
                return buffer.read_mapped(copy=True)
            finally:
                buffer.unmap()
        return _NATIVE_MAP(self.device._internal, buffer._internal, buffer.size)

    def read(self, buffer, offset: int, nbytes: int) -> bytes:
        return bytes(self.queue.read_buffer(buffer, offset, -(-nbytes // 4) * 4))[:nbytes]


_DEFAULT: Device | None = None


def default_device() -> Device:
    """The process-wide device, opened on first use, and again after it was lost."""
    global _DEFAULT
    if _DEFAULT is None or _DEFAULT.lost:
        _DEFAULT = Device()
    return _DEFAULT


@dataclass(eq=False)
class GPUTensor:
    """A tensor that lives in a GPU buffer: returned by ``InferenceSession.run_on_gpu`` and accepted
    as an input by any session on the same device, which copies it on the GPU (no host round trip).
    """

    device: Device
    buffer: object
    offset: int
    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def nbytes(self) -> int:
        """Bytes in the buffer: int64 and bool tensors are stored as 32-bit integers there."""
        return stored_nbytes(self.shape, self.dtype)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(tensor)``: a copy read back from the GPU."""
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        return f"GPUTensor(shape={tuple(self.shape)}, dtype={self.dtype}, on {self.device.name})"

    def numpy(self) -> np.ndarray:
        """Copy to the host."""
        raw = self.device.read(self.buffer, self.offset, self.nbytes)
        return from_storage(np.frombuffer(raw, dtype=storage_numpy(self.dtype)).reshape(self.shape), self.dtype)

    @classmethod
    def from_numpy(cls, array, device: Device | None = None) -> GPUTensor:
        """``array`` uploaded into a buffer of its own on ``device`` (default: the default device)."""
        device = device or default_device()
        array = np.asarray(array)
        dtype = str(array.dtype)
        if dtype not in STORAGE_TYPES:
            raise InputError(f"GPUTensor.from_numpy: arrays of {dtype} have no GPU storage")
        tensor = cls(device, device.buffer(stored_nbytes(array.shape, dtype), usage=STORAGE, label="gpu-tensor"), 0,
                     array.shape, dtype)
        tensor.write(array)
        return tensor

    def write(self, array) -> None:
        """Replace the contents with ``array``, of this tensor's shape and dtype (as the GPU stores it)."""
        data = to_storage(np.ascontiguousarray(array), self.dtype, "GPUTensor").astype(storage_numpy(self.dtype),
                                                                                      copy=False)
        raw = data.tobytes()
        self.device.queue.write_buffer(self.buffer, self.offset, raw + b"\0" * (-len(raw) % 4))  # (whole words)

    def clone(self) -> GPUTensor:
        """A copy in a buffer of its own, which later runs of the session will not overwrite."""
        buf = self.device.buffer(self.nbytes, label="gpu-tensor")
        enc = self.device.device.create_command_encoder()
        enc.copy_buffer_to_buffer(self.buffer, self.offset, buf, 0, -(-self.nbytes // 4) * 4)
        self.device.queue.submit([enc.finish()])
        return GPUTensor(self.device, buf, 0, self.shape, self.dtype)
