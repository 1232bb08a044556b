"""What an ONNX Runtime script hands ``InferenceSession``: session options, providers and their
options, and the model metadata it asks back. wgnn is one execution provider, WebGPU's."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from .errors import ConfigError

# ONNX Runtime's module API that these answer (``wgnn.onnxruntime``, standing in for the module, gives them all)
__all__ = ["ExecutionMode", "GraphOptimizationLevel", "IOBinding", "ModelMetadata", "OrtEpDevice",
           "OrtExecutionProviderDevicePolicy", "OrtHardwareDevice", "OrtHardwareDeviceType", "OrtValue", "RunOptions",
           "SessionOptions", "get_all_providers", "get_available_providers", "get_device", "get_ep_devices",
           "set_default_logger_severity", "set_default_logger_verbosity"]

# Names a script may use for the WebGPU execution provider (ONNX Runtime's and wgnn's own).
WEBGPU_PROVIDERS = {"webgpuexecutionprovider", "webgpu", "wgnn", "wgnnexecutionprovider"}
# Listed beside WebGPU, these are the fallbacks ONNX Runtime would use for nodes WebGPU lacks;
# wgnn runs every node it accepts on the GPU and refuses the rest by name, so they have no effect.
FALLBACKS = {"cpuexecutionprovider"}
# ONNX Runtime's names of wgnn's tensor types (``NodeArg.type``, ``OrtValue.data_type``).
ONNX_TYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "int32": "tensor(int32)",
              "int64": "tensor(int64)", "bool": "tensor(bool)"}

PROVIDER_KEYS = {"adapter", "deviceId", "device_id"}  # read; other keys are warned about and ignored


class GraphOptimizationLevel(IntEnum):
    """As ONNX Runtime's: ORT_DISABLE_ALL turns wgnn's graph passes off; the others leave them on."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_ALL = 99


class ExecutionMode(IntEnum):
    """As ONNX Runtime's; no effect (a run is one submission of GPU work)."""

    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


@dataclass
class RunOptions:
    """As ONNX Runtime's ``RunOptions``: accepted by ``run``, no effect (its config entries kept)."""

    log_severity_level: int = 2
    log_verbosity_level: int = 0
    run_tag: str = ""
    terminate: bool = False
    logid: str = ""
    only_execute_path_to_fetches: bool = False
    config: dict = field(default_factory=dict)  # add_run_config_entry's

    def add_run_config_entry(self, key: str, value: str) -> None:
        self.config[str(key)] = str(value)

    def get_run_config_entry(self, key: str) -> str:
        return _config_entry(self.config, key, "RunOptions")


def _config_entry(config: dict, key: str, owner: str) -> str:
    if key not in config:  # (ONNX Runtime's error, word for word)
        raise RuntimeError(f"{owner} does not have configuration with key: {key}")
    return config[key]


@dataclass
class SessionOptions:
    """ONNX Runtime's ``SessionOptions`` fields that a script sets, under the same names. wgnn reads
    ``graph_optimization_level`` (ORT_DISABLE_ALL turns the graph passes off); the thread counts,
    execution mode and log levels are accepted and have no effect on a GPU; asking for
    ``enable_profiling`` or ``optimized_model_filepath`` is an error pointing to what wgnn has."""

    graph_optimization_level: int = GraphOptimizationLevel.ORT_ENABLE_ALL
    intra_op_num_threads: int = 0
    inter_op_num_threads: int = 0
    execution_mode: int = 0
    log_severity_level: int = 2
    log_verbosity_level: int = 0
    enable_profiling: bool = False
    optimized_model_filepath: str = ""
    extra: dict = field(default_factory=dict)
    # accepted, no effect: how ONNX Runtime's CPU side plans its memory and threads
    enable_cpu_mem_arena: bool = True
    enable_mem_pattern: bool = True
    enable_mem_reuse: bool = True
    use_deterministic_compute: bool = False  # (wgnn's kernels sum in a fixed order, split-K's too)
    use_per_session_threads: bool = True
    logid: str = ""
    profile_file_prefix: str = "onnxruntime_profile_"
    execution_order: int = 0
    config: dict = field(default_factory=dict)  # add_session_config_entry's, kept; none changes wgnn
    # symbolic dimension name -> size (add_free_dimension_override_by_name): an input whose every
    # symbolic dimension is named here is pinned at those sizes (``input_shapes``)
    free_dimensions: dict = field(default_factory=dict)
    # (provider, options) from add_provider_for_devices: what a session made without ``providers`` runs
    # as; and the selection policy, accepted (wgnn is one provider)
    device_providers: list = field(default_factory=list)
    provider_selection_policy: int = 0

    @property
    def optimize(self) -> bool:
        return int(self.graph_optimization_level) != GraphOptimizationLevel.ORT_DISABLE_ALL

    def add_session_config_entry(self, key: str, value: str) -> None:
        self.config[str(key)] = str(value)

    def get_session_config_entry(self, key: str) -> str:
        return _config_entry(self.config, key, "SessionOptions")

    def add_free_dimension_override_by_name(self, name: str, value: int) -> None:
        """Fix symbolic dimension ``name`` at ``value``, as ONNX Runtime does: an input whose
        symbolic dimensions are all fixed so compiles once, at load, for that shape."""
        if isinstance(value, bool) or not float(value).is_integer() or int(value) < 0:
            raise ConfigError(f"add_free_dimension_override_by_name({name!r}, {value!r}): a size is a whole "
                              "number, 0 or more")
        self.free_dimensions[str(name)] = int(value)

    def add_provider_for_devices(self, ep_devices: list, provider_options: dict) -> None:
        """As ONNX Runtime's: the provider of ``ep_devices`` (from ``get_ep_devices``; one provider
        for all) with ``provider_options``, for sessions made without ``providers``; the first
        device's adapter is the one they run on."""
        names = sorted({d.ep_name for d in ep_devices})
        if len(names) != 1:
            raise ConfigError(f"add_provider_for_devices: the devices must all be one execution provider's, got "
                              f"{names or 'none'}")
        self.device_providers.append((names[0], {**ep_devices[0].ep_options, **dict(provider_options or {})}))

    def has_providers(self) -> bool:
        return bool(self.device_providers)

    def set_provider_selection_policy(self, policy: int) -> None:
        """Accepted: wgnn runs as the WebGPU provider whatever the policy prefers."""
        self.provider_selection_policy = int(policy)

    def register_custom_ops_library(self, path: str) -> None:
        raise ConfigError(f"register_custom_ops_library({path!r}): a library of custom operators is CPU code "
                          "for ONNX Runtime (onnxruntime-extensions, say); wgnn runs only the operators it "
                          "compiles to WGSL (`wgnn info --ops`)")


def pin_free_dimensions(model: Any, sizes: dict[str, int], input_shapes: dict) -> dict:
    """``input_shapes`` with each input of the ONNX ``model`` whose every symbolic dimension is named
    in ``sizes`` (``SessionOptions.add_free_dimension_override_by_name``) pinned at them; an input
    with a dimension left unnamed stays symbolic (any size runs)."""
    from .importers.onnx import describe_io

    pinned = dict(input_shapes)
    for name, dims, _ in describe_io(model)[0]:
        symbolic = [d for d in dims or () if not isinstance(d, int)]
        if name not in pinned and symbolic and all(d in sizes for d in symbolic):
            pinned[name] = tuple(d if isinstance(d, int) else sizes[d] for d in dims)
    return pinned


def read_session_options(options: Any) -> SessionOptions:
    """wgnn's ``SessionOptions`` from ONNX Runtime's (or wgnn's own, or None)."""
    if options is None:
        return SessionOptions()
    if isinstance(options, SessionOptions):
        ours = options
    else:
        ours = SessionOptions()
        for name in ("graph_optimization_level", "intra_op_num_threads", "inter_op_num_threads", "execution_mode",
                     "log_severity_level", "log_verbosity_level", "enable_profiling", "optimized_model_filepath"):
            if not hasattr(options, name):
                raise ConfigError(f"sess_options: expected onnxruntime.SessionOptions or wgnn's SessionOptions, got "
                                  f"{type(options).__name__} (no {name!r})")
            value = getattr(options, name)
            setattr(ours, name, int(value) if hasattr(value, "__int__") and not isinstance(value, (bool, str))
                    else value)
    if ours.enable_profiling:
        raise ConfigError("sess_options.enable_profiling: wgnn profiles with `wgnn profile MODEL` or "
                          "wgnn.profiler.profile(session, feeds), per GPU dispatch")
    if ours.optimized_model_filepath:
        raise ConfigError("sess_options.optimized_model_filepath: wgnn compiles to WGSL dispatches, not to an "
                          "ONNX file it could save")
    return ours


def get_available_providers() -> list[str]:
    """As ``onnxruntime.get_available_providers()``: what wgnn runs as, the WebGPU provider."""
    return ["WebGpuExecutionProvider"]


def get_all_providers() -> list[str]:
    """As ``onnxruntime.get_all_providers()``: the names a session takes (the CPU one as a fallback
    name only: wgnn runs every node it accepts on the GPU)."""
    return ["WebGpuExecutionProvider", "CPUExecutionProvider"]


class OrtHardwareDeviceType(IntEnum):
    """As ONNX Runtime's."""

    CPU = 0
    GPU = 1
    NPU = 2


class OrtExecutionProviderDevicePolicy(IntEnum):
    """As ONNX Runtime's (``SessionOptions.set_provider_selection_policy``)."""

    DEFAULT = 0
    PREFER_CPU = 1
    PREFER_NPU = 2
    PREFER_GPU = 3
    MAX_PERFORMANCE = 4
    MAX_EFFICIENCY = 5
    MIN_OVERALL_POWER = 6


@dataclass(frozen=True)
class OrtHardwareDevice:
    """As ONNX Runtime's: an adapter, as wgpu describes it (``type``: CPU for a software adapter)."""

    type: OrtHardwareDeviceType
    vendor: str
    vendor_id: int
    device_id: int
    metadata: dict


@dataclass(frozen=True)
class OrtEpDevice:
    """As ONNX Runtime's: the WebGPU provider on one adapter (``ep_options``: its ``deviceId``)."""

    ep_name: str
    ep_vendor: str
    ep_metadata: dict
    ep_options: dict
    device: OrtHardwareDevice


def get_ep_devices() -> list[OrtEpDevice]:
    """As ``onnxruntime.get_ep_devices()``: the WebGPU provider on each adapter that runs compute
    shaders (Vulkan, Metal, D3D12), in ``wgnn.list_adapters()``'s order (``deviceId`` its index
    there); ``SessionOptions.add_provider_for_devices`` takes them."""
    from .runtime import list_adapters

    version = getattr(sys.modules.get(__package__), "__version__", "")  # (wgnn's, without importing it back)
    devices = []
    for index, adapter in enumerate(list_adapters()):
        info = adapter.info
        if info.get("backend_type") not in ("Vulkan", "Metal", "D3D12"):
            continue
        kind = OrtHardwareDeviceType.CPU if info.get("adapter_type") == "CPU" else OrtHardwareDeviceType.GPU
        hardware = OrtHardwareDevice(kind, str(info.get("vendor") or ""), int(info.get("vendor_id") or 0),
                                     int(info.get("device_id") or 0),
                                     {"device": str(info.get("device", "")), "backend": str(info.get("backend_type"))})
        devices.append(OrtEpDevice("WebGpuExecutionProvider", "wgnn", {"version": version},
                                   {"deviceId": str(index)}, hardware))
    return devices


def get_device() -> str:
    """As ``onnxruntime.get_device()``: "GPU" (wgnn runs on a WebGPU adapter, a software one too)."""
    return "GPU"


def set_default_logger_severity(severity: int) -> None:
    """As ONNX Runtime's: accepted, no effect (wgnn logs through Python's ``logging``, "wgnn")."""


def set_default_logger_verbosity(verbosity: int) -> None:
    """As ONNX Runtime's: accepted, no effect."""


def read_provider_options(providers: list | None, provider_options: list[dict] | None,
                          adapter: str | int | None) -> str | int | None:
    """Check ``providers`` (names, or (name, options) pairs, as ONNX Runtime takes them) and return
    the adapter the WebGPU provider's options select (else ``adapter``)."""
    if providers is None:
        return adapter
    if isinstance(providers, str):
        providers = [providers]
    names, options = [], []
    for i, p in enumerate(providers):
        name, opts = (p[0], dict(p[1])) if isinstance(p, (tuple, list)) else (p, {})
        if provider_options is not None and i < len(provider_options):
            opts.update(provider_options[i] or {})
        names.append(str(name))
        options.append(opts)
    webgpu = [i for i, n in enumerate(names) if n.lower() in WEBGPU_PROVIDERS]
    if not webgpu:
        raise ConfigError(f"providers {names}: wgnn is a WebGPU execution provider and runs only as one; ask for "
                          "'WebGpuExecutionProvider' (or use onnxruntime for the others)")
    others = [n for n in names if n.lower() not in WEBGPU_PROVIDERS | FALLBACKS]
    if others:
        raise ConfigError(f"providers {names}: wgnn cannot run {others}; it is the WebGPU execution provider alone "
                          "(CPUExecutionProvider may be listed as a fallback: wgnn runs every node it accepts on "
                          "the GPU)")
    opts = options[webgpu[0]]
    unknown = sorted(set(opts) - PROVIDER_KEYS)
    if unknown:
        warnings.warn(f"WebGpuExecutionProvider options {unknown} have no effect in wgnn (it reads "
                      f"{sorted(PROVIDER_KEYS)})", stacklevel=3)
    chosen = opts.get("adapter", opts.get("deviceId", opts.get("device_id")))
    if chosen is not None and adapter is not None and str(chosen) != str(adapter):
        raise ConfigError(f"adapter={adapter!r} and the provider option {chosen!r} disagree")
    if chosen is None:
        return adapter
    return int(chosen) if str(chosen).isdigit() else chosen


@dataclass(frozen=True)
class ModelMetadata:
    """As ``onnxruntime.ModelMetadata``."""

    producer_name: str = ""
    graph_name: str = ""
    domain: str = ""
    description: str = ""
    graph_description: str = ""
    version: int = 0
    custom_metadata_map: dict = field(default_factory=dict)


def model_metadata(model: Any, fmt: str) -> ModelMetadata:
    """The metadata of ``model`` (the session's source: a path, bytes or a ModelProto)."""
    from .graph import Graph

    if model is None or isinstance(model, Graph):
        return ModelMetadata(producer_name="wgnn.GraphBuilder")
    if fmt == "tflite":
        return ModelMetadata(producer_name="TFLite", domain="tflite")
    from .importers.onnx import read_model

    proto = read_model(model)
    return ModelMetadata(producer_name=proto.producer_name, graph_name=proto.graph.name, domain=proto.domain,
                         description=proto.doc_string, graph_description=proto.graph.doc_string,
                         version=int(proto.model_version),
                         custom_metadata_map={p.key: p.value for p in proto.metadata_props})


class IOBinding:
    """``session.io_binding()``, as ONNX Runtime's: inputs bound from host arrays or ``GPUTensor``s,
    outputs left on the GPU. ``session.run_with_iobinding(binding)`` runs; ``get_outputs()`` gives
    the outputs as ``GPUTensor``s (valid until the session's next run, as ``run_on_gpu``'s) and
    ``copy_outputs_to_cpu()`` as arrays. wgnn has no pointers to bind: ONNX Runtime's
    ``bind_input(name, device_type, ..., buffer_ptr)`` form is refused with what to use instead."""

    def __init__(self, session):
        self._session = session
        self._inputs: dict = {}
        self._outputs: list[str] | None = None
        self._results: dict | None = None

    def bind_cpu_input(self, name: str, array) -> None:
        self._inputs[name] = array

    def bind_input(self, name: str, value, *args, **kwargs) -> None:
        """``bind_input(name, gpu_tensor_or_array)``."""
        if args or kwargs or isinstance(value, str):
            raise ConfigError("IOBinding.bind_input: wgnn binds a GPUTensor or an array (bind_input(name, value)); "
                              "it has no device pointers")
        self._inputs[name] = value

    def bind_ortvalue_input(self, name: str, value) -> None:
        """An ``OrtValue`` (host or GPU: a GPU one stays there) or a ``GPUTensor``."""
        self.bind_input(name, unwrap(value))

    def bind_ortvalue_output(self, name: str, value=None) -> None:
        """As ``bind_output``: wgnn keeps the output in its own buffer (``get_outputs``)."""
        self.bind_output(name)

    def bind_output(self, name: str, *args, **kwargs) -> None:
        """Keep output ``name`` on the GPU (every output is kept when none is bound)."""
        if name not in self._session.output_names:
            from .errors import InputError

            raise InputError(f"unknown output {name!r}; the model's outputs are {self._session.output_names}")
        self._outputs = (self._outputs or []) + [name]

    def clear_binding_inputs(self) -> None:
        self._inputs = {}

    def synchronize_inputs(self) -> None:
        """As ONNX Runtime's: nothing to wait for (inputs are copied as a run is submitted)."""

    def synchronize_outputs(self) -> None:
        """As ONNX Runtime's: nothing to wait for (reading an output waits for the run that writes
        it: the GPU's queue keeps their order)."""

    def clear_binding_outputs(self) -> None:
        self._outputs = None

    def _run(self) -> None:
        results = self._session.run_on_gpu(self._inputs)
        names = self._outputs or list(results)
        self._results = {n: results[n] for n in names}

    def get_outputs(self) -> list:
        if self._results is None:
            raise ConfigError("IOBinding: run_with_iobinding has not run yet")
        return list(self._results.values())

    def copy_outputs_to_cpu(self) -> list:
        return [t.numpy() for t in self.get_outputs()]


class OrtValue:
    """ONNX Runtime's ``OrtValue``: a tensor on the host (``device_type`` "cpu") or on the GPU (any
    other device type, "cuda", "webgpu" or "dml", means wgnn's default device, where it is a
    ``GPUTensor``). Sessions take OrtValues wherever they take arrays (``run``,
    ``run_with_ort_values``, ``IOBinding.bind_ortvalue_input``); ``numpy()`` copies to the host."""

    def __init__(self, value):
        self._value = value  # an np.ndarray or a GPUTensor

    @classmethod
    def ortvalue_from_numpy(cls, array, device_type: str = "cpu", device_id: int = 0) -> OrtValue:
        import numpy as np

        from .runtime import GPUTensor

        array = np.asarray(array)
        if str(device_type).lower() == "cpu":
            return cls(array)  # (the array itself, as ONNX Runtime's refers to its memory)
        return cls(GPUTensor.from_numpy(array))

    @classmethod
    def ortvalue_from_shape_and_type(cls, shape, element_type=None, device_type: str = "cpu",
                                     device_id: int = 0) -> OrtValue:
        import numpy as np

        return cls.ortvalue_from_numpy(np.zeros(tuple(shape), element_type or np.float32), device_type, device_id)

    @property
    def value(self):
        """The array or ``GPUTensor`` it holds."""
        return self._value

    def numpy(self):
        import numpy as np

        return np.asarray(self._value) if not hasattr(self._value, "numpy") else self._value.numpy()

    def shape(self) -> list[int]:
        return list(self._value.shape)

    def data_type(self) -> str:
        dtype = str(self._value.dtype)
        return ONNX_TYPES.get(dtype, f"tensor({dtype})")

    def element_type(self):
        import numpy as np

        return np.dtype(str(self._value.dtype)).type

    def device_name(self) -> str:
        return "cpu" if not hasattr(self._value, "buffer") else "webgpu"

    def is_tensor(self) -> bool:
        return True

    def has_value(self) -> bool:
        return True

    def update_inplace(self, array) -> None:
        """Replace the contents with ``array`` (same shape and type), on the host or the GPU."""
        import numpy as np

        array = np.asarray(array)
        if tuple(array.shape) != tuple(self._value.shape) or str(array.dtype) != str(self._value.dtype):
            raise ConfigError(f"OrtValue.update_inplace: expected {tuple(self._value.shape)} {self._value.dtype}, got "
                              f"{array.shape} {array.dtype}")
        if hasattr(self._value, "buffer"):
            self._value.write(array)
        else:
            self._value[...] = array

    def __repr__(self) -> str:
        return f"OrtValue({self.data_type()}, shape={self.shape()}, on {self.device_name()})"


def unwrap(value):
    """An OrtValue's array or GPUTensor; anything else as it is."""
    return value.value if isinstance(value, OrtValue) else value
