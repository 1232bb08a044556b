"""Exceptions raised by wgnn. Each names the node, the op and what was expected."""

from __future__ import annotations


class WgnnError(Exception):
    """Base class of every error wgnn raises on purpose."""


class UnsupportedOperatorError(WgnnError):
    """A model uses an operator (or an attribute of one) that wgnn cannot run."""

    def __init__(self, op_type: str, node_name: str, opset: int | None = None, detail: str = "",
                 format: str = "ONNX"):
        self.op_type = op_type
        self.node_name = node_name
        self.opset = opset
        where = f"node {node_name!r}" if node_name else "an unnamed node"
        opset_txt = f" (opset {opset})" if opset is not None else ""
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"unsupported operator {op_type}{opset_txt} at {where}{extra}. "
            f"Supported {format} operators: wgnn.importers.{format.lower()}.SUPPORTED_OPS "
            "(also listed by `wgnn info --ops`)."
        )


class ValueComputedOnGPU(UnsupportedOperatorError):
    """An If's condition or a Loop's trip count that the static graph needs when compiling is
    computed on the GPU. In a model's main graph an ``InferenceSession`` runs the model in stages
    around the node instead (``wgnn.stages``); inside a subgraph it is refused."""


class ModelLoadError(WgnnError):
    """A model file or buffer could not be read or is malformed."""


class GraphError(WgnnError, ValueError):
    """A graph is inconsistent: shapes that do not match, a missing input, a bad attribute."""


class TooLargeForAdapter(GraphError):
    """A tensor (or all the intermediates together) needs more bytes than the adapter binds or
    allocates at once: ``size`` bytes against its ``limit``. A session running a batch that the
    model treats sample by sample runs it in parts instead (``wgnn.chunking``), unless the tensor is
    a weight (``weight``), which no smaller batch makes smaller."""

    def __init__(self, message: str, size: int, limit: int, *, weight: bool = False):
        self.size, self.limit, self.weight = size, limit, weight
        super().__init__(message)


class LoopLimitError(GraphError):
    """A kernel would run more loop iterations in one invocation (``iterations``) than the adapter's
    driver runs before it stops a shader's loops (``limit``): llvmpipe (lavapipe), Mesa's software
    driver, ends every loop of an invocation after 65,535 iterations in all, which would leave the
    result silently wrong. The kernel policy picks variants that stay within it; where none can,
    the session refuses the node with this error."""

    def __init__(self, message: str, iterations: int, limit: int):
        self.iterations, self.limit = iterations, limit
        super().__init__(message)


class StaticValueNeeded(GraphError):
    """A value the static graph needs when compiling (a Reshape's shape, Slice's starts, TopK's k)
    depends on a graph input. ``operand`` is that value's operand. The ONNX importer turns it into a
    plan per value of a small input (``InputValuesNeeded``) or, in the main graph, into stages
    (``DataDependentShape``); elsewhere it is the error it says."""

    def __init__(self, message: str, operand):
        self.operand = operand
        super().__init__(message)


class InputValuesNeeded(WgnnError, ValueError):
    """Importing a model needs the values of some of its inputs: an ``If`` branches on them, or a
    Reshape's shape (any value the static graph needs) is one.

    wgnn compiles static graphs, so it takes the branch those values choose. An InferenceSession
    does that by itself, compiling a plan per value fed (as it does per shape of symbolic inputs);
    ``wgnn.importers.load`` takes the values as ``input_values``."""

    def __init__(self, names, node_name: str, op_type: str = ""):
        self.names, self.node_name = tuple(names), node_name
        super().__init__(f"{op_type + ' ' if op_type else ''}node {node_name!r} needs the value of input(s) "
                         f"{list(self.names)} when compiling: "
                         "give them to load() as input_values (an InferenceSession compiles a plan per value "
                         "fed, by itself)")


class DataDependentShape(WgnnError, ValueError):
    """A node's output shape depends on values computed on the GPU (NonZero, NonMaxSuppression, ...).

    wgnn compiles static plans, so an ``InferenceSession`` runs such a model in stages
    (``wgnn.stages``): the plan up to the node, the node on the host, a plan for the rest per size of
    its result. ``index`` is the node's place among the graph's nodes (None inside a subgraph)."""

    def __init__(self, op_type: str, node_name: str, index: int | None):
        self.op_type, self.node_name, self.index = op_type, node_name, index
        super().__init__(f"{op_type} node {node_name!r}: its output's shape depends on values computed on the GPU; "
                         "an InferenceSession runs the model in stages around it (importers.load cannot)")


class PrecisionError(WgnnError, ValueError):
    """The requested precision cannot run on this adapter (fp16 without shader-f16)."""


class NoAdapterError(WgnnError, RuntimeError):
    """No WebGPU adapter could be found."""

    def __init__(self, detail: str = ""):
        super().__init__(
            "no WebGPU adapter was found"
            + (f" ({detail})" if detail else "")
            + ". wgnn needs a Vulkan, Metal or D3D12 driver: install your GPU's driver, or on Linux "
            "without a GPU install Mesa's software Vulkan driver (Debian/Ubuntu: "
            "`apt-get install mesa-vulkan-drivers libvulkan1`). `wgnn info` lists what wgpu sees."
        )


class InputError(WgnnError, ValueError):
    """A run's inputs do not match the model: names, shapes, dtypes or kinds of value."""


class ConfigError(WgnnError, ValueError):
    """An option wgnn cannot honour: an unknown backend, provider or column, or options that do not
    go together."""


class UnknownModelError(WgnnError, KeyError):
    """A zoo or pretrained model's name that wgnn does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DeviceError(WgnnError, RuntimeError):
    """The device lacks what was asked of it: a feature (timestamp queries for the profiler), or a
    kernel its shader compiler accepts (the message names the kernel and node)."""


class DeviceLostError(DeviceError):
    """The GPU device was lost (destroyed, a driver reset, removed): what was on it is gone."""
