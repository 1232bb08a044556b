"""wgnn: neural-network inference on WebGPU (WGSL compute shaders through wgpu-py).

    import wgnn
    sess = wgnn.InferenceSession("model.onnx")
    (probs,) = sess.run(None, {"input": image})
"""

from .builder import OpBuilder
from .errors import (
    ConfigError,
    DeviceError,
    DeviceLostError,
    GraphError,
    InputError,
    InputValuesNeeded,
    ModelLoadError,
    NoAdapterError,
    PrecisionError,
    UnknownModelError,
    UnsupportedOperatorError,
    WgnnError,
)
from .graph import Graph, Node, Operand
from .ort_compat import (
    ExecutionMode,
    GraphOptimizationLevel,
    OrtExecutionProviderDevicePolicy,
    OrtHardwareDeviceType,
    OrtValue,
    RunOptions,
    SessionOptions,
    get_all_providers,
    get_available_providers,
    get_device,
    get_ep_devices,
    set_default_logger_severity,
    set_default_logger_verbosity,
)
from .runtime import Device, GPUTensor, choose_adapter, default_device, list_adapters
from .session import GraphBuilder, InferenceSession, NodeArg

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "Device", "DeviceError", "DeviceLostError", "ExecutionMode", "GPUTensor", "Graph", "GraphBuilder",
    "GraphError", "GraphOptimizationLevel", "InferenceSession", "InputError", "InputValuesNeeded", "ModelLoadError",
    "OrtExecutionProviderDevicePolicy", "OrtHardwareDeviceType", "OrtValue",
    "NoAdapterError", "Node", "NodeArg", "OpBuilder", "Operand", "PrecisionError", "RunOptions",
    "SessionOptions", "UnknownModelError", "UnsupportedOperatorError", "WgnnError", "choose_adapter",
    "default_device", "get_all_providers", "get_available_providers", "get_device", "get_ep_devices", "list_adapters",
    "set_default_logger_severity", "set_default_logger_verbosity",
]
