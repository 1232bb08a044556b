"""``InferenceSession``: load a model, compile it for the GPU, run it — ONNX Runtime's API shape."""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backends import BACKENDS
from .builder import OpBuilder
from .errors import (
    ConfigError,
    DataDependentShape,
    GraphError,
    InputError,
    InputValuesNeeded,
    PrecisionError,
    TooLargeForAdapter,
)
from .graph import FLOAT_DTYPES, Graph, Operand, SharedArrays
from .importers import ModelSource
from .memory import MemoryReport
from .ort_compat import ONNX_TYPES
from .passes import REQUIRED_RULES, rules_for
from .passes import optimize as run_passes
from .reference import run_reference
from .runtime import Device, GPUTensor, default_device
from .scheduler import compile_graph

log = logging.getLogger("wgnn")


@dataclass(frozen=True)
class NodeArg:
    """An input or output description, as ``onnxruntime.NodeArg``: name, shape, type."""

    name: str
    shape: list[int]
    type: str


class InferenceSession:
    """A model compiled for one GPU device.

    Arguments:
        model: an ONNX or TFLite file path (told apart by content), its bytes, an ``onnx.ModelProto``,
            or a ``Graph`` from ``GraphBuilder``. ``session.format`` says which: onnx, tflite or graph.
        device: a ``wgnn.Device``; default: the shared ``default_device()``.
        adapter: instead of ``device``: which adapter to open (index or name substring).
        optimize: run the graph passes (batch-norm folding, fusion; default True). Off, only what
            is needed to run at all: constant folding, and batch norm as a multiply-add.
        input_shapes: shapes for inputs whose ONNX shape has symbolic dimensions (those default to 1);
            for a sequence input (ONNX seq(tensor)), the list of its elements' shapes. ``run`` then
            takes that input as a list of arrays, and returns sequence outputs as lists.
        precision: "fp32", "fp16" or "auto". fp16 stores weights and activations as f16 (adapter
            feature shader-f16) and accumulates in f32; inputs and outputs keep their dtype. "auto"
            picks fp16 where the adapter has shader-f16 and runs a probe of CNN layers in at most
            0.95x fp32's time, else fp32 (``wgnn.tuner.auto_precision``: measured once per adapter,
            driver and backend, about 1-2 s on lavapipe, logged, and cached); where the fp16 it
            chose gives outputs that are not finite (values beyond f16's range inside the model),
            the session computes in fp32 from that run on, saying so once. Default: fp16 for
            models whose inputs or outputs are float16, or most of whose float weights are (a
            float16 model that keeps float32 inputs and outputs), else fp32. ``session.precision``
            says which was used.
        backend: "compute" (default): WGSL compute shaders over buffers; or "texture": the
            WebGL-style path, fragment-shader passes over RGBA textures (see ``wgnn.backends``).
        kernels: compute backend: a fixed choice of kernel variants instead of the kernel policy's,
            {op or node name: variant name or ``Choice``}, e.g. ``{"conv2d": "generic"}``
            (``wgnn.backends.compute.policy``). An op's choice applies where that variant can run
            the node; a node's choice must be able to. ``kernel_choices()`` says what ran.
        tune: compute backend: before compiling, measure the kernel variants of every convolution and
            matrix product not yet measured on this adapter and driver (``wgnn.tuner``), at most
            ``tune`` seconds if a number (True: 120 s); the results are cached, so later loads
            only read them. ``session.tuning`` reports what was measured.
    """

    def __init__(self, model: str | Path | bytes | Any, sess_options: Any = None, providers: list | None = None,
                 provider_options: list[dict] | None = None, *, device: Device | Any | None = None,
                 adapter: str | int | None = None, optimize: bool | None = None,
                 input_shapes: dict[str, tuple[int, ...]] | None = None, precision: str | None = None,
                 backend: str = "compute", kernels: dict | None = None, tune: bool | float = False):
        start = time.perf_counter()
        if precision not in (None, "fp32", "fp16", "auto"):
            raise PrecisionError(f"precision must be 'fp32', 'fp16' or 'auto', got {precision!r}")
        from .ort_compat import read_provider_options, read_session_options

        self.sess_options = read_session_options(sess_options)
        if providers is None and self.sess_options.device_providers:  # (add_provider_for_devices)
            providers = list(self.sess_options.device_providers)
        adapter = read_provider_options(providers, provider_options, adapter)
        if optimize is None:
            optimize = self.sess_options.optimize
        self.opset: int | None = None
        self.format = "graph"
        self._model = model.copy() if isinstance(model, Graph) else model
        self._source = None if isinstance(model, Graph) else ModelSource(model)  # what each new shape imports
        if self.sess_options.free_dimensions and self._source is not None and self._source.format == "onnx":
            from .ort_compat import pin_free_dimensions

            input_shapes = pin_free_dimensions(self._source.proto(), self.sess_options.free_dimensions,
                                               input_shapes or {})
        self._input_shapes = dict(input_shapes or {})
        self._declared = None  # the model's declared inputs and outputs, while no plan is compiled
        # Inputs an If branches on: a plan is compiled per value of them (``_plan_for``).
        self.value_inputs: dict[str, str] = {}  # name -> dtype
        self._stages = None  # a model run in stages around a data-dependent node (wgnn.stages)
        staged_at = None
        if isinstance(model, Graph):
            graph = model.copy()  # the passes rewrite in place; the caller's graph stays intact
        else:
            try:
                graph, self.opset, self.format = self._import()
            except InputValuesNeeded as exc:
                graph = self._values_needed(model, exc)
            except DataDependentShape as exc:
                graph, staged_at = self._keep_declared(model), exc.index
            except GraphError:
                # Symbolic sizes of 1 may not fit the model (a pooling window wider than a 1x1
                # input): then the first run imports and compiles it for its own shapes.
                staged_at = _first_data_dependent(model)
                graph = self._declared_only(model, input_shapes) if staged_at is None else self._keep_declared(model)
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be {' or '.join(map(repr, BACKENDS))}, got {backend!r}")
        self.backend = backend
        self._on_default_device = device is None and adapter is None
        self.device = Device.wrap(device) if device is not None else (
            Device(adapter) if adapter is not None else default_device())
        has_f16 = "shader-f16" in self.device.features
        if precision is None:
            dtypes = ([o.dtype for o in list(graph.inputs.values()) + list(graph.outputs.values())] if graph is not None
                      else [t for _, _, t in self._declared[0] + self._declared[1]])
            precision = "fp16" if "float16" in dtypes or _float16_weights(graph) else "fp32"
        asked_auto = precision == "auto"
        if asked_auto:
            from .tuner import auto_precision

            precision = auto_precision(self.device, backend) if has_f16 else "fp32"
        if precision == "fp16" and not has_f16:
            raise PrecisionError(f"precision='fp16' needs the adapter feature shader-f16, which {self.device.name} "
                                 "lacks; use 'fp32' or 'auto'")
        self.precision: str = precision
        self._f16_checked = precision != "fp16"  # (until an fp16 run's outputs were found not finite)
        # fp16 that precision="auto" chose: where it overflows, the session computes in fp32 instead
        self._auto_f16 = asked_auto and precision == "fp16" and staged_at is None
        self.tuning = None
        if tune and backend != "compute":
            raise ConfigError(f"tune measures the compute backend's kernels, not the {backend} backend's")
        self._compile_options = {"optimize": optimize, "kernels": kernels, "tune": tune}
        # Inputs declared with symbolic dimensions, as declared (None: an unnamed unknown one). A run
        # with another shape of them compiles a plan for it (``_plan_for``); plans are kept per shape.
        self._lock = threading.RLock()
        self._plans: OrderedDict[tuple, dict] = OrderedDict()
        self._shared = None  # the weights and the arena its plans share on the GPU (``_shared_buffers``)
        self._arrays = SharedArrays()  # and on the host
        # Plan keys of batches too large for the adapter -> what ``_run_parts`` takes;
        # batch_parts: batch -> the batch each part runs at (``wgnn.chunking``)
        self._parts: dict[tuple, tuple] = {}
        self.batch_parts: dict[int, int] = {}
        if staged_at is not None:
            from .importers.onnx import default_opset, read_model
            from .stages import Stages

            proto = read_model(model)
            self.symbolic_dims = {}  # each stage compiles per shape itself
            self.opset = default_opset(proto)
            sub_options = {"device": None if self._on_default_device else self.device, "optimize": optimize,
                           "precision": precision, "backend": backend, "kernels": kernels, "tune": tune}
            self.pass_log = Counter()  # the stages' passes, summed after each run
            self._stages = Stages(proto, staged_at,
                                  lambda proto, shapes: InferenceSession(proto, input_shapes=shapes, **sub_options),
                                  input_shapes)
        if graph is None:
            self.graph = self._exe = self._source_graph = None
            self.outputs, self._constant_outputs, self._sequence_of = {}, {}, {}
            self.output_names = [name for name, _, _ in self._declared[1]]
        else:
            self.symbolic_dims = dict(graph.symbolic_dims)
            shapes = {n: graph.inputs[n].shape for n in self.symbolic_dims if n in graph.inputs}
            # (at placeholder sizes of its symbolic dimensions, a plan its first run may never use:
            # its pipelines are made if it runs)
            self._add_plan(graph, self._plan_key(shapes, {}), shapes, defer_pipelines=bool(self.symbolic_dims))
        if self._source is not None and not (self.symbolic_dims or self.value_inputs):
            self._source.release()  # one plan: nothing to share the model's arrays with
        self.load_seconds = time.perf_counter() - start

    def _declared_only(self, model, input_shapes) -> None:
        """After an import that failed at the placeholder sizes of symbolic dimensions: keep what
        the model declares, or re-raise where it has no symbolic dimension to blame."""
        if input_shapes:
            raise
        self._keep_declared(model)
        if not self.symbolic_dims:
            raise
        return None

    def _values_needed(self, model, exc: InputValuesNeeded) -> None:
        """After an import that stopped at an If branching on input values: keep what the model
        declares; each run's values of those inputs pick (or compile) a plan."""
        self._keep_declared(model)
        self._add_value_inputs(exc)
        return None

    def _keep_declared(self, model) -> None:
        """No plan yet: the model's inputs and outputs as it declares them (ONNX or TFLite), and its
        inputs with symbolic dimensions (those ``input_shapes`` pins left out), which its first run
        fixes."""
        from .importers.onnx import describe_io
        from .importers.tflite import describe_io as describe_tflite

        self.format = self._source.format
        inputs, outputs = describe_tflite(model) if self.format == "tflite" else describe_io(self._source.proto())
        self._declared = (inputs, outputs)
        self.symbolic_dims = {name: tuple(dims) for name, dims, _ in inputs if name not in self._input_shapes
                              and dims and any(not isinstance(d, int) for d in dims)}

    def _add_value_inputs(self, exc: InputValuesNeeded) -> None:
        declared = {name: dtype for name, _, dtype in self._declared[0]} if self._declared else \
            {n: o.dtype for n, o in self.source_graph.inputs.items()}
        self.value_inputs.update({n: declared[n] for n in exc.names})

    # -- compiling, one plan per shape of the symbolic inputs (and value of the inputs an If reads) --

    _PLAN = ("graph", "_source_graph", "pass_log", "_constant_outputs", "_exe", "outputs", "_sequence_of",
             "output_names", "_key", "_import_args")
    # Shapes (and values) of those inputs kept compiled per session, the least recently used going
    # first: at most MAX_PLANS, and beyond the newest only while the plans together hold at most
    # PLAN_BYTES of GPU memory of their own (intermediates, inputs, outputs; the weights they share).
    MAX_PLANS = 32
    PLAN_BYTES = 1 << 30

    def _compile(self, graph: Graph, defer_pipelines: bool = False) -> None:
        """Run the passes on ``graph`` and compile it (``compile_graph``'s ``defer_pipelines``); the
        results are this session's current plan."""
        options = self._compile_options
        # The graph as imported, for ``run_reference``: kept for the plan a session compiles first;
        # a later plan's (another shape) is imported again when asked (``source_graph``), so the many
        # plans of a text model's lengths do not each hold a copy of it (Python's collector walks
        # them all, about 70 ms a full collection with T5's decoder at a few lengths).
        self._source_graph = graph.copy() if not self._plans else None
        if self._source is not None:  # (what the passes derive from the weights: once for all plans, Graph.derive;
            graph.arrays = self._arrays  # the model's arrays are the session's own, read-only from then on)
        rules = rules_for(self.backend) if options["optimize"] else REQUIRED_RULES
        with collector_paused():  # (not while tuning: minutes of measuring)
            self.pass_log: Counter = run_passes(graph, rules)
        if options["tune"]:
            from .tuner import tune as measure

            seconds = 120.0 if options["tune"] is True else float(options["tune"])
            self.tuning = measure(graph, self.device, precision=self.precision, seconds=seconds)
        # Integer and bool outputs known at compile time (a Shape, a Size, an integer
        # ConstantOfShape) are returned as the folded values they are, whatever their range (the GPU
        # stores int64 as i32); the rest is compiled.
        outputs = dict(graph.outputs)
        self._constant_outputs = {n: o.value for n, o in outputs.items()
                                  if o.is_constant and o.dtype not in FLOAT_DTYPES}
        graph.outputs = {n: o for n, o in outputs.items() if n not in self._constant_outputs}
        with collector_paused():
            self._exe = compile_graph(graph, self.device, backend=self.backend, precision=self.precision,
                                      opset=self.opset, kernels=options["kernels"], optimize=options["optimize"],
                                      shared=self._shared_buffers(), defer_pipelines=defer_pipelines)
        self.pass_log.update(self._exe.rewrites)  # (the backend's rewrites, the element-wise chains fused)
        if self._plans:  # a second plan or later: what the passes derived, held once
            self._arrays.share(graph, self._source.shared if self._source is not None else set())
        # every output in the model's order (graph.outputs keeps the compiled ones only)
        self.outputs = {n: outputs[n] if n in self._constant_outputs else graph.outputs[n] for n in outputs}
        self.graph = graph
        # The model's own inputs and outputs, in order: a sequence stands for its element tensors.
        self._sequence_of = {e: n for seqs in (graph.sequence_inputs, graph.sequence_outputs)
                             for n, elems in seqs.items() for e in elems}
        self.output_names = list(dict.fromkeys(self._sequence_of.get(n, n) for n in self.outputs))

    @property
    def source_graph(self) -> Graph | None:
        """The current plan's graph as imported, before any pass (None before a first plan)."""
        with self._lock:  # (an import reads the session's model source, as a new shape's does)
            if self._source_graph is None and self._exe is not None:
                self._source_graph = self._import(*self._import_args)[0]
                if self._key in self._plans:
                    self._plans[self._key]["_source_graph"] = self._source_graph
            return self._source_graph

    def _shared_buffers(self):
        """The compute backend's GPU buffers this session's plans share from its second plan on
        (another shape of its symbolic inputs, another value of the inputs an If reads): each plan
        binds the weights the earlier ones uploaded, and one arena for the intermediates of all
        (``backends.compute.context.SharedBuffers``). None for the first plan, which keeps its own,
        so that a session that runs one shape hashes nothing (SHA-256 of every weight: 0.15 s of
        ResNet50's load on lavapipe)."""
        if self.backend != "compute" or not self._plans:
            return None
        if self._shared is None:
            from .backends.compute.context import SharedBuffers

            self._shared = SharedBuffers()
        return self._shared

    def _add_plan(self, graph: Graph, key: tuple, shapes: dict | None = None, values: dict | None = None,
                  defer_pipelines: bool = False) -> None:
        """Compile ``graph`` as the current plan, the one for ``key`` (imported with ``shapes`` and
        ``values``), and keep it (the least recently used beyond ``MAX_PLANS`` or ``PLAN_BYTES`` go)."""
        try:
            self._compile(graph, defer_pipelines)
        except Exception:  # the plan that was current stays whole (``_compile`` sets it as it goes)
            if getattr(self, "_key", None) in self._plans:
                self._use_plan(self._key)
            raise
        self._key, self._import_args = key, (shapes or {}, values or {})
        self._plans[key] = {k: getattr(self, k) for k in self._PLAN}
        arena = self._shared.arena.size if self._shared is not None and self._shared.arena is not None else 0
        while len(self._plans) > 1 and (len(self._plans) > self.MAX_PLANS or arena + sum(
                plan["_exe"].held_bytes for plan in self._plans.values()) > self.PLAN_BYTES):
            self._plans.popitem(last=False)

    @staticmethod
    def _plan_key(shapes: dict, values: dict) -> tuple:
        """What tells the plans apart: the shapes of the symbolic inputs, the values of the inputs an
        If reads."""
        return tuple(shapes.items()), tuple((n, v.shape, v.tobytes()) for n, v in values.items())

    def _feed_key(self, feeds: dict) -> tuple[tuple, dict, dict] | None:
        """(plan key, shapes of the symbolic inputs, values of the inputs an If reads) of ``feeds``;
        None where the model has neither or ``feeds`` does not give them as declared (sizes that
        break a dimension the model fixes, values of another dtype: ``_check_feeds`` refuses them)."""
        if not (self.symbolic_dims or self.value_inputs) or not isinstance(feeds, dict):
            return None
        shapes, values = {}, {}
        for name, dims in self.symbolic_dims.items():
            value = feeds.get(name)
            shape = tuple(getattr(value, "shape", None) or np.shape(value)) if value is not None else None
            if shape is None or len(shape) != len(dims) or any(isinstance(d, int) and d != s
                                                               for d, s in zip(dims, shape)):
                return None
            shapes[name] = shape
        for name, dtype in self.value_inputs.items():
            value = feeds.get(name)
            if isinstance(value, GPUTensor):
                value = value.numpy()
            value = np.asarray(value) if value is not None else None
            if value is None or str(value.dtype) != dtype:
                return None
            values[name] = value
        return self._plan_key(shapes, values), shapes, values

    def _plan_for(self, feeds: dict) -> None:
        """Make the plan for the shapes of ``feeds``' symbolic inputs (and the values of the inputs
        an If reads) current, compiling it on first use."""
        found = self._feed_key(feeds)
        if found is None:
            return
        key, shapes, values = found
        if key == getattr(self, "_key", None):
            return
        plan = self._plans.get(key)
        if plan is None:
            try:
                graph, self.opset, _ = self._import(shapes, values)
            except InputValuesNeeded as exc:  # a branch taken branches on more inputs
                if set(exc.names) <= set(self.value_inputs):
                    raise
                self._add_value_inputs(exc)
                return self._plan_for(feeds)
            self._add_plan(graph, key, shapes, values)
            return
        self._use_plan(key)

    def _use_plan(self, key: tuple) -> None:
        self._plans.move_to_end(key)
        for k, v in self._plans[key].items():
            setattr(self, k, v)

    def _ready(self, feeds: dict) -> None:
        """Make the session able to run ``feeds``: on a live device (``_recover``), with the plan for
        their shapes current (``_plan_for``), compiled."""
        self._recover()
        self._plan_for(feeds)
        if self._exe is None:
            wanted = [f"every input with symbolic dimensions ({sorted(self.symbolic_dims)}) at a shape that fits "
                      "the model's declared dimensions"] if self.symbolic_dims else []
            wanted += [f"every input an If branches on {sorted(self.value_inputs)} with its declared dtype "
                       f"({', '.join(sorted(set(self.value_inputs.values())))})"] if self.value_inputs else []
            raise InputError(f"feed {', and '.join(wanted)}: this session compiles on its first run")

    def prepare(self, input_feed: dict[str, Any]) -> None:
        """Compile (or pick) the plan for the shapes of ``input_feed`` without running it, so that
        ``dispatch_count``, ``memory_report()`` and the first timed run describe those shapes (a
        batch run in parts: the part's). A model run in stages compiles what follows its
        data-dependent node on its first run."""
        with self._lock:
            if self._stages is not None:
                if self._stages.head is not None:
                    self._stages.head.prepare({a.name: input_feed[a.name] for a in self._stages.head.get_inputs()})
                return
            self._ready_or_parts(_unwrapped(input_feed))

    def _import(self, shapes: dict | None = None, values: dict | None = None):
        """The model imported again (``shapes``: for its symbolic inputs; ``values``: of the inputs
        an If branches on): (graph, opset, format)."""
        if isinstance(self._model, Graph):
            return self._model.copy(), self.opset, self.format
        with collector_paused():
            return self._source.load(input_shapes={**self._input_shapes, **(shapes or {})},
                                     input_values=values or None)

    def _recover(self) -> None:
        """After the device was lost: a session on the default device moves to a fresh one and
        recompiles its current plan; one on a device given to it cannot."""
        if not self.device.lost:
            return
        from .errors import DeviceLostError

        if not self._on_default_device:
            raise DeviceLostError(f"this session's device ({self.device.name}) was lost: open a new device and make "
                                  "a new session on it")
        self.device = default_device()
        self._compile_again()

    def _compile_again(self) -> None:
        """Drop every plan and the weights on the GPU, and compile the current plan anew (on a new
        device, or in another precision)."""
        self._plans.clear()
        self._shared = None
        if self._exe is None:  # nothing compiled yet: the first run compiles
            return
        shapes, values = self._import_args
        graph, self.opset, _ = self._import(shapes, values)
        self._add_plan(graph, self._key, shapes, values)

    def _execute(self, feeds: dict, read_back: bool = True):
        """One run of the current plan; wgpu's errors become wgnn's (a lost device marked so)."""
        import wgpu

        try:
            return self._exe.run(self._check_feeds(feeds), read_back=read_back)
        except wgpu.GPUError as exc:
            raise self.device.gpu_error(exc, "running the model") from None

    @property
    def stages(self):
        """A model run in stages around a node whose output shape its input values decide
        (``wgnn.stages.Stages``: ``head``, the node's ``op_type`` and ``node_name``, the latest
        ``tail``), else None."""
        return self._stages

    @property
    def plans_compiled(self) -> int:
        """How many shapes of the symbolic inputs this session holds compiled (in stages: the head's
        plans and the tails')."""
        if self._stages is not None:
            return self._stages.plans_compiled()
        return len(self._plans)

    # -- descriptions -------------------------------------------------------------------------

    def _describe(self, tensors: dict) -> list[NodeArg]:
        """NodeArgs of the model's values: a sequence as seq(tensor(...)) whose shape is its length."""
        args = {}
        for name, operand in tensors.items():
            kind = ONNX_TYPES.get(operand.dtype, f"tensor({operand.dtype})")
            seq = self._sequence_of.get(name)
            if seq is None:
                args[name] = NodeArg(name, list(operand.shape), kind)
            elif seq not in args:
                length = len(self.graph.sequence_inputs.get(seq) or self.graph.sequence_outputs[seq])
                args[seq] = NodeArg(seq, [length], f"seq({kind})")
        return list(args.values())

    def get_inputs(self) -> list[NodeArg]:
        """The inputs, as ONNX Runtime lists them: a symbolic dimension by its name (None if unnamed)."""
        if self.graph is None:
            return [NodeArg(n, list(d or []), ONNX_TYPES.get(t, f"tensor({t})")) for n, d, t in self._declared[0]]
        return [NodeArg(a.name, list(self.symbolic_dims[a.name]), a.type) if a.name in self.symbolic_dims else a
                for a in self._describe(self.graph.inputs)]

    def get_outputs(self) -> list[NodeArg]:
        if self.graph is None:
            return [NodeArg(n, list(d or []), ONNX_TYPES.get(t, f"tensor({t})")) for n, d, t in self._declared[1]]
        return self._describe(self.outputs)

    def get_providers(self) -> list[str]:
        """ONNX Runtime's name for what runs the model: wgnn is a WebGPU execution provider."""
        return ["WebGpuExecutionProvider"]

    def get_provider_options(self) -> dict[str, dict]:
        return {"WebGpuExecutionProvider": {"backend": self.backend, "precision": self.precision,
                                            "adapter": self.device.name}}

    def get_session_options(self):
        return self.sess_options

    def set_providers(self, providers: list | None = None, provider_options: list[dict] | None = None) -> None:
        """As ONNX Runtime's: the providers are checked as at load. The session stays on its adapter;
        options that pick another one are refused (make a new session there)."""
        from .ort_compat import read_provider_options
        from .runtime import _describe, choose_adapter

        chosen = read_provider_options(providers, provider_options, None)
        if chosen is not None and _describe(choose_adapter(chosen)) != self.device.name:
            raise ConfigError(f"set_providers: the options pick adapter {chosen!r}, and this session runs on "
                              f"{self.device.name}; make a new InferenceSession for another adapter")

    def disable_fallback(self) -> None:
        """As ONNX Runtime's; wgnn never falls back: a node it cannot run is refused at load."""

    def enable_fallback(self) -> None:
        """As ONNX Runtime's; wgnn has no fallback to enable (see ``disable_fallback``)."""

    def get_overridable_initializers(self) -> list[NodeArg]:
        """As ONNX Runtime's: none. wgnn compiles every initializer into the graph (an old-style model's
        initializers listed as inputs too), so none can be fed."""
        return []

    def end_profiling(self) -> str:
        """As ONNX Runtime's without profiling: the empty file name (``sess_options.enable_profiling``
        is refused; ``wgnn profile`` and ``wgnn.profiler`` time each dispatch)."""
        return ""

    def get_profiling_start_time_ns(self) -> int:
        return 0

    def io_binding(self):
        """An ``IOBinding`` (``wgnn.ort_compat``): inputs from arrays or GPUTensors, outputs kept on
        the GPU; run it with ``run_with_iobinding``."""
        from .ort_compat import IOBinding

        return IOBinding(self)

    def run_with_iobinding(self, binding, run_options: Any = None) -> None:
        binding._run()

    def get_modelmeta(self):
        """The model's metadata, as ``onnxruntime.ModelMetadata``: producer, graph name, domain,
        description, version and the custom metadata map (ONNX; TFLite and builder graphs give
        what they have)."""
        from .ort_compat import model_metadata

        return model_metadata(self._model, self.format)

    @property
    def adapter_name(self) -> str:
        return self.device.name

    @property
    def dispatch_count(self) -> int:
        """Dispatches per run (in stages: the head's and the latest run's tail's)."""
        if self._stages is not None:
            return sum(s.dispatch_count for s in self._stages.sessions())
        return len(self._exe.dispatches)

    @property
    def pipeline_count(self) -> int:
        """Distinct compute pipelines this session uses (shared across shapes and layers)."""
        if self._stages is not None:
            return sum(s.pipeline_count for s in self._stages.sessions())
        return len(self._exe.pipelines)

    def kernel_choices(self) -> dict[str, str]:
        """{node name: the kernel variant, tile and workgroup size that runs it}, for the nodes the
        compute backend's kernel policy decided (convolutions and matrix products); in a model run
        in stages, its data-dependent node as "host"."""
        if self._stages is not None:
            return self._stages.kernel_choices()
        return {name: choice.label for name, choice in getattr(self._exe, "choices", {}).items()}

    def memory_report(self) -> MemoryReport:
        """Intermediate-tensor bytes: naive (one buffer each), lower bound, and planned (in stages:
        summed over the head and the latest run's tail, which hold their buffers at once)."""
        if self._stages is not None:
            reports = [s.memory_report() for s in self._stages.sessions()]
            return MemoryReport(*(sum(getattr(r, f) for r in reports)
                                  for f in ("naive_bytes", "lower_bound_bytes", "planned_bytes")))
        return self._exe.report

    # -- running ------------------------------------------------------------------------------

    def _check_feeds(self, feeds: dict[str, Any]) -> dict[str, np.ndarray | GPUTensor]:
        if not isinstance(feeds, dict):
            raise InputError(f"inputs must be a dict of name -> array, got {type(feeds).__name__}")
        feeds = dict(feeds)
        for name, elems in self.graph.sequence_inputs.items():  # a sequence feeds its element inputs
            if name not in feeds:
                continue
            value = feeds.pop(name)
            if not isinstance(value, (list, tuple)) or len(value) != len(elems):
                got = f"a sequence of {len(value)}" if isinstance(value, (list, tuple)) else type(value).__name__
                raise InputError(f"input {name!r}: expected a sequence (list) of {len(elems)} arrays, as compiled "
                                 f"(input_shapes), got {got}")
            feeds.update(zip(elems, value))
        expected = self.graph.inputs
        unknown = sorted(set(feeds) - set(expected))
        missing = sorted(set(expected) - set(feeds))
        if unknown or missing:
            detail = (f"; unknown {unknown}" if unknown else "") + (f"; missing {missing}" if missing else "")
            raise InputError(f"input names: expected {sorted(expected)}, got {sorted(feeds)}{detail}")
        checked: dict[str, np.ndarray | GPUTensor] = {}
        for name, value in feeds.items():
            want = expected[name]
            if isinstance(value, GPUTensor):
                if value.device is not self.device:
                    raise InputError(f"input {name!r}: the GPUTensor lives on another device")
                got_shape, got_dtype = tuple(value.shape), value.dtype
            else:
                try:  # anything numpy converts (a list, a torch CPU tensor, ...); its dtype is checked below
                    value = np.asarray(value)
                except (TypeError, ValueError) as exc:
                    raise InputError(f"input {name!r}: expected an array, got {type(value).__name__} ({exc})") from None
                if value.dtype == object:
                    raise InputError(f"input {name!r}: expected an array of numbers, got {type(feeds[name]).__name__}")
                if isinstance(feeds[name], (list, tuple, int, float, bool)):
                    value = _listed(name, value, want.dtype)
                got_shape, got_dtype = value.shape, str(value.dtype)
            if got_dtype != want.dtype:
                raise InputError(f"input {name!r}: expected dtype {want.dtype}, got {got_dtype}")
            if tuple(got_shape) != want.shape:
                raise InputError(f"input {name!r}: expected shape {want.shape}, got {tuple(got_shape)}")
            checked[name] = value if isinstance(value, GPUTensor) else np.ascontiguousarray(value)
        return checked

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any], run_options: Any = None
            ) -> list[np.ndarray]:
        """Run on the GPU; returns the requested outputs (all when ``output_names`` is None or empty,
        as ONNX Runtime does), in order. A sequence output is a list of arrays. Safe from several
        threads at once (runs on one session take turns). ``run_options`` (ONNX Runtime's
        ``RunOptions``) is accepted and has no effect."""
        names = self._output_names(output_names)
        results = self._run(input_feed)
        return [results[n] for n in names]

    def run_with_ort_values(self, output_names: list[str] | None, input_dict_ort_values: dict[str, Any],
                            run_options: Any = None) -> list:
        """ONNX Runtime's: inputs as ``OrtValue``s (on the host or the GPU), outputs as host ``OrtValue``s."""
        from .ort_compat import OrtValue

        return [OrtValue(v) for v in self.run(output_names, input_dict_ort_values, run_options)]

    def _output_names(self, output_names: list[str] | None) -> list[str]:
        names = list(output_names) if output_names else list(self.output_names)
        bad = [n for n in names if n not in self.output_names]
        if bad:
            raise InputError(f"unknown output names {bad}; the model's outputs are {self.output_names}")
        return names

    def run_async(self, output_names: list[str] | None, input_feed: dict[str, Any], callback, user_data: Any = None,
                  run_options: Any = None) -> None:
        """As ONNX Runtime's: returns at once; the run goes on a worker thread, which then calls
        ``callback(outputs, user_data, err)``, ``err`` "" on success, else the error (type and
        message) with ``outputs`` empty. Unknown output names and missing or unknown input names
        raise here, before anything runs."""
        names = self._output_names(output_names)
        if not isinstance(input_feed, dict):
            raise InputError(f"inputs must be a dict of name -> array, got {type(input_feed).__name__}")
        declared = {a.name for a in self.get_inputs()}
        if set(input_feed) != declared:
            raise InputError(f"input names: expected {sorted(declared)}, got {sorted(input_feed)}")

        def work():
            try:
                outputs = self.run(names, input_feed)
            except Exception as exc:  # noqa: BLE001 - handed to the callback, as ONNX Runtime does
                callback([], user_data, f"{type(exc).__name__}: {exc}")
                return
            callback(outputs, user_data, "")

        threading.Thread(target=work, name="wgnn-run-async", daemon=True).start()

    def _run(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        feeds = _unwrapped(feeds)
        if not isinstance(feeds, dict):
            raise InputError(f"inputs must be a dict of name -> array, got {type(feeds).__name__}")
        with self._lock:  # one run at a time on a session's buffers; each run one submit
            results = self._results(feeds)
            if not self._f16_checked and not self._results_stand(results):
                self._in_fp32()
                results = self._results(feeds)
            return results

    def _results(self, feeds: dict) -> dict[str, np.ndarray]:
        if self._stages is not None:
            results = self._stages.run(feeds)
            self.pass_log = self._stages.pass_log()
            return results
        parts = self._ready_or_parts(feeds)
        results = self._execute(feeds) if parts is None else self._run_parts(feeds, *parts)
        results.update({n: v.copy() for n, v in self._constant_outputs.items()})
        results = self._gather_sequences(results)
        return {n: results[n] for n in self.output_names}

    def _results_stand(self, results: dict) -> bool:
        """In fp16, until an output holds infinities or NaN (which a value beyond float16's range,
        65504, inside the model gives: a spectrogram's power of int16-scale samples, T5's hidden
        states): whether these results stand. Where an output is not finite, a warning says so,
        once: the same model in fp32 computes it in full. A session that asked for fp16 keeps its
        results; one whose fp16 ``precision="auto"`` chose does not: it computes them again in fp32
        (``_in_fp32``; also where fp32 would give the same infinities, at fp32's cost)."""
        for name, value in results.items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
                self._f16_checked = True
                if self._auto_f16:
                    log.warning("output %r holds infinities or NaN in fp16, which precision='auto' chose on this "
                                "adapter: a value inside the model exceeds float16's range (65504); this session "
                                "computes in fp32 from now on, this run too", name)
                    return False
                log.warning("output %r holds infinities or NaN in fp16: a value inside the model may exceed "
                            "float16's range (65504); precision='fp32' computes it in full", name)
                return True
        return True

    def _in_fp32(self) -> None:
        """The session's precision made fp32 (an ``auto`` session whose fp16 overflowed): its plans,
        weights on the GPU and batch parts go, and the current plan compiles again in fp32."""
        self.precision, self._auto_f16 = "fp32", False
        self._parts.clear()
        self.batch_parts.clear()
        self._compile_again()

    # -- a batch too large for the adapter, run in parts (wgnn.chunking) ----------------------------

    def _ready_or_parts(self, feeds: dict) -> tuple | None:
        """``_ready``, or where ``feeds``' batch does not fit the adapter and the model treats its
        samples alone: (the batched inputs, the batch, the part's batch, each output's batch axis),
        the part's plan compiled."""
        found = self._feed_key(feeds) if self._parts else None  # (only once a batch has run in parts)
        parts = self._parts.get(found[0]) if found is not None else None
        if parts is not None:
            return parts
        try:
            self._ready(feeds)
            return None
        except TooLargeForAdapter as exc:
            found = found or self._feed_key(feeds)
            if found is None:
                raise
            parts = self._batch_parts(feeds, found, exc)
        self._parts[found[0]] = parts
        return parts

    def _batch_parts(self, feeds: dict, found: tuple, exc: TooLargeForAdapter) -> tuple:
        from .chunking import batch_axes, part_size

        _, shapes, values = found
        names = tuple(name for name, dims in self.symbolic_dims.items() if dims and not isinstance(dims[0], int))
        sizes = {shapes[name][0] for name in names}
        if len(sizes) != 1 or min(sizes) < 2 or exc.weight:
            raise exc
        n = sizes.pop()
        if self._stages is not None or any(isinstance(feeds[name], GPUTensor) for name in names):
            raise exc
        graph, _, _ = self._import(shapes, values)
        out_axes, why = (None, "it has sequence inputs or outputs") if graph.sequence_inputs or \
            graph.sequence_outputs else batch_axes(graph, {name for name in names if name in graph.inputs}, n)
        if why is not None:
            raise TooLargeForAdapter(f"{exc} at batch {n}, and the batch cannot run in parts: {why}", exc.size,
                                     exc.limit) from None
        part = part_size(n, exc.size, exc.limit)
        while True:
            try:
                self._ready(_batch_part(feeds, names, 0, part))
                break
            except TooLargeForAdapter as again:
                if part == 1:
                    raise TooLargeForAdapter(f"{again}, even at batch 1", again.size, again.limit) from None
                part = part_size(part, again.size, again.limit)
        self.batch_parts[n] = part
        log.warning("%s: batch %d runs as %d runs of %d (at batch %d: %s)", self.device.name, n, -(-n // part), part,
                    n, exc)
        return names, n, part, out_axes

    def _run_parts(self, feeds: dict, names: tuple[str, ...], n: int, part: int,
                   out_axes: dict[str, int]) -> dict[str, np.ndarray]:
        """One run per ``part`` samples of ``feeds``' ``names`` (the last padded with copies of the
        batch's last sample), their outputs joined along each one's batch axis and cut to ``n``."""
        runs = []
        for start in range(0, n, part):
            piece = _batch_part(feeds, names, start, part)
            self._ready(piece)
            runs.append(self._execute(piece))
        return {name: np.concatenate([run[name] for run in runs], axis=out_axes[name]).take(range(n), out_axes[name])
                for name in runs[0]}

    def _gather_sequences(self, results: dict) -> dict:
        """``results`` with each sequence output's element tensors replaced by their list."""
        for name, elems in self.graph.sequence_outputs.items():
            results[name] = [results.pop(e) for e in elems]
        return results

    def compute(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """WebNN-style: {input name: array} -> {output name: array}."""
        return self._run(inputs)

    def run_on_gpu(self, input_feed: dict[str, Any]) -> dict[str, GPUTensor]:
        """Run without reading back: outputs stay in this session's GPU buffers.

        The returned tensors are overwritten by this session's next run (``clone()`` keeps one).
        They can be fed to any session on the same device, copied on the GPU.
        """
        if self.backend != "compute":
            raise ConfigError("run_on_gpu needs the compute backend; texture sessions return arrays")
        if self._stages is not None:
            if not self._stages.outputs_on_gpu:
                raise ConfigError(f"this model runs in stages around {self._stages.op_type} node "
                                  f"{self._stages.node_name!r}, and some of its outputs are made before that node "
                                  "or by it, on the host; run() returns them")
            with self._lock:
                return self._stages.run(_unwrapped(input_feed), on_gpu=True)
        if self._constant_outputs:
            raise ConfigError(f"outputs {sorted(self._constant_outputs)} are compile-time constants of a dtype the "
                             "GPU does not store; run() returns them")
        input_feed = _unwrapped(input_feed)
        with self._lock:
            try:
                self._ready(input_feed)
            except TooLargeForAdapter as exc:
                raise TooLargeForAdapter(f"{exc}; results kept on the GPU need the whole batch in one run (run() "
                                         "runs a batch in parts where the model allows): feed fewer samples",
                                         exc.size, exc.limit, weight=exc.weight) from None
            self._execute(input_feed, read_back=False)
            return {name: GPUTensor(self.device, self._exe.output_buffers[name], 0, out.shape, out.dtype)
                    for name, out in self.graph.outputs.items()}

    def run_reference(self, input_feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The same model in numpy, from the graph as imported (before any pass), at the shapes of
        ``input_feed`` (a model with symbolic dimensions: their plan is made current, compiled on
        first use, as ``run`` would)."""
        if self._stages is not None:
            return self._stages.run(_unwrapped(input_feed), reference=True)
        with self._lock:
            feeds = _unwrapped(input_feed)
            self._ready(feeds)
            return self._gather_sequences(run_reference(self.source_graph, self._check_feeds(feeds)))


_collector = {"depth": 0, "enabled": True}
_collector_lock = threading.Lock()


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off while a model is imported or a plan compiled (where it
    was on): they make tens of thousands of objects that live through them, which set off full
    collections of every object in the process, about 50 ms each on lavapipe's machine, one or two
    for every new shape of T5's decoder (12 new lengths: 0.55-0.74 s of collections, 0.12-0.21 s
    paused). What they leave behind is collected afterwards as usual; the tuner's measuring (minutes
    of it, at ``tune=``) runs with the collector on. Nested and concurrent pauses turn it back on
    once, after the last."""
    with _collector_lock:
        if not _collector["depth"]:
            _collector["enabled"] = gc.isenabled()
            gc.disable()
        _collector["depth"] += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector["depth"] -= 1
            if not _collector["depth"] and _collector["enabled"]:
                gc.enable()


def _listed(name: str, value: np.ndarray, dtype: str) -> np.ndarray:
    """A feed given as Python numbers (a list of lists, a scalar), which have no dtype of their own,
    as the input's ``dtype``, as ONNX Runtime converts them (Magika feeds its bytes so): where the
    values stay what they are (integers into an integer input, in its range; numbers into a float
    one), else as it was, for the dtype check to refuse."""
    if value.dtype.kind not in "biuf" or dtype not in ("float32", "float16", "int64", "int32", "int16", "int8",
                                                       "uint8", "uint16", "uint32", "bool"):
        return value
    target = np.dtype(dtype)
    if target.kind == "f":
        return value.astype(target) if value.dtype.kind != "b" else value
    if target.kind == "b" or value.dtype.kind == "b":
        return value
    info = np.iinfo(target)
    if value.size and (not np.array_equal(value, np.round(value)) or value.min() < info.min or value.max() > info.max):
        raise InputError(f"input {name!r}: expected {dtype} values, got numbers that {dtype} does not hold")
    return value.astype(target)


def _first_data_dependent(model) -> int | None:
    """The place of an ONNX model's first node whose output shape depends on input values
    (NonZero, ...), or None (also for other formats)."""
    from .importers import detect_format
    from .importers.onnx import data_dependent, op_key, read_model

    if isinstance(model, Graph) or detect_format(model) != "onnx":
        return None
    return next((i for i, n in enumerate(read_model(model).graph.node) if op_key(n) in data_dependent.OPS), None)


def _batch_part(feeds: dict, names: tuple[str, ...], start: int, part: int) -> dict:
    """``feeds`` with the inputs ``names`` cut to samples ``start .. start + part - 1``, the batch's
    last sample repeated past its end."""
    piece = dict(feeds)
    for name in names:
        value = np.asarray(feeds[name])
        rows = value[start:start + part]
        if len(rows) < part:
            rows = np.concatenate([rows, np.repeat(value[-1:], part - len(rows), axis=0)])
        piece[name] = rows
    return piece


def _unwrapped(feeds: Any) -> Any:
    """``feeds`` with ``OrtValue``s replaced by the arrays or ``GPUTensor``s they hold."""
    from .ort_compat import unwrap

    return {k: unwrap(v) for k, v in feeds.items()} if isinstance(feeds, dict) else feeds


class GraphBuilder(OpBuilder):
    """The WebNN ``MLGraphBuilder``: ``OpBuilder``'s ops, and ``build``, which compiles for the GPU."""

    def build(self, outputs: dict[str, Operand], **session_options) -> InferenceSession:
        """Compile for the GPU: returns an ``InferenceSession`` (``compute`` / ``run``); the keyword
        arguments are ``InferenceSession``'s."""
        return InferenceSession(self.build_graph(outputs), **session_options)


def _float16_weights(graph: Graph | None) -> bool:
    """Whether most of ``graph``'s float weights, by bytes, are float16: a float16 model whose
    converter kept its inputs and outputs float32 (ONNX Runtime's ``keep_io_types``)."""
    if graph is None:
        return False
    seen: dict[int, Operand] = {}
    for node in graph.nodes:
        for t in node.inputs:
            if t is not None and t.is_constant and t.dtype in ("float16", "float32"):
                seen[id(t)] = t
    half = sum(t.nbytes for t in seen.values() if t.dtype == "float16")
    return half > 0 and half * 2 > sum(t.nbytes for t in seen.values() if t.dtype == "float32")
