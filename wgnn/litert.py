"""wgnn standing in for LiteRT's Python interpreter, for code that runs TFLite models through it.

LiteRT's ``Interpreter`` (``ai_edge_litert.interpreter``, formerly ``tflite_runtime.interpreter``;
TensorFlow's ``tf.lite.Interpreter`` has the same API) is how Python code runs a ``.tflite`` file:
allocate, set the inputs by tensor index, invoke, read the outputs. ``Interpreter`` here answers
that API on a wgnn session, so the model runs on the GPU; ``install()`` puts it where a package
that imports the interpreter itself finds it (openWakeWord's default framework)::

    import wgnn.litert
    wgnn.litert.install()                 # before the package imports tflite_runtime
    import tflite_runtime.interpreter as tflite
    interpreter = tflite.Interpreter(model_path="model.tflite")
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

What is the same: the input and output details (name, index, shape, shape_signature, dtype,
quantization and its parameters), ``set_tensor`` refusing another dtype or shape as LiteRT does,
``resize_tensor_input`` (strict or not) then ``allocate_tensors``, ``tensor(index)`` for writing an
input in place, integer inputs and outputs of quantized models, signature runners (inputs and
outputs by name, resized as given). What is not: reading tensors other than the model's inputs
and outputs (``get_tensor_details``, ``experimental_preserve_all_tensors``), signatures over other
subgraphs, and delegates (``load_delegate`` raises ``ValueError``, as LiteRT does for a delegate it
cannot load; the model runs on WebGPU instead). ``num_threads`` is accepted and unused.
"""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import numpy as np

from .errors import ModelLoadError
from .importers import tflite as _tflite
from .session import InferenceSession

log = logging.getLogger("wgnn")
_said: set[str] = set()


class InterpreterLoadError(ModelLoadError, ValueError):
    """A model file the interpreter cannot read: a ``ValueError``, as LiteRT raises for one."""


class OpResolverType:
    """LiteRT's choice of kernels (accepted; wgnn has its own)."""

    AUTO, BUILTIN, BUILTIN_REF, BUILTIN_WITHOUT_DEFAULT_DELEGATES = range(4)


def load_delegate(library, options=None):
    """LiteRT's delegate loader: wgnn runs the model on WebGPU itself, so no delegate loads (a
    ``ValueError``, as LiteRT raises for a delegate it cannot load; callers fall back without it)."""
    raise ValueError(f"failed to load delegate from {library}: wgnn runs TFLite models on WebGPU itself, "
                     "without delegates")


class Interpreter:
    """LiteRT's ``Interpreter`` on a wgnn session (see the module's documentation)."""

    def __init__(self, model_path=None, model_content=None, experimental_delegates=None, num_threads=None,
                 experimental_op_resolver_type=OpResolverType.AUTO, experimental_preserve_all_tensors=False,
                 **kwargs):
        if (model_path is None) == (model_content is None):
            raise ValueError("Interpreter takes model_path or model_content (one of them)")
        if model_content is None:
            path = Path(model_path)
            if not path.is_file():
                raise InterpreterLoadError(f"Could not open {str(path)!r}: no such model file")
            model_content = path.read_bytes()
        self._model = bytes(model_content)
        if experimental_delegates and "delegates" not in _said:
            _said.add("delegates")
            log.warning("Interpreter(experimental_delegates=...): wgnn runs the model on WebGPU without them")
        if experimental_preserve_all_tensors:
            raise ValueError("experimental_preserve_all_tensors: wgnn reads back a model's inputs and outputs only")
        try:
            imp = _tflite._importer(self._model)  # (a clear error for bytes that are no TFLite model)
            graph = imp.graph
            self._inputs = [_details(imp, graph.Inputs(k)) for k in range(graph.InputsLength())]
            self._outputs = [_details(imp, graph.Outputs(k)) for k in range(graph.OutputsLength())]
            self._signatures = _signatures(imp.model)
        except ModelLoadError as exc:
            raise InterpreterLoadError(str(exc)) from None
        except (TypeError, AttributeError, IndexError, ValueError) as exc:
            raise InterpreterLoadError(f"not a valid TFLite model: {type(exc).__name__} ({exc}) while reading "
                                       "its inputs and outputs") from None
        self._session: InferenceSession | None = None
        self._sessions: dict[tuple, InferenceSession] = {}  # by the shapes pinned beyond the model's own
        self._buffers: dict[int, np.ndarray] = {}
        self._results: dict[int, np.ndarray] = {}

    # -- details ----------------------------------------------------------------------------------

    def get_input_details(self) -> list[dict]:
        return [_copy(d) for d in self._inputs]

    def get_output_details(self) -> list[dict]:
        return [_copy(d) for d in self._outputs]

    def get_signature_list(self) -> dict:
        """The model's signatures: {key: {"inputs": [names], "outputs": [names]}}."""
        return {key: {"inputs": list(sig["inputs"]), "outputs": list(sig["outputs"])}
                for key, sig in self._signatures.items()}

    def get_signature_runner(self, signature_key: str | None = None) -> SignatureRunner:
        """A runner of the signature ``signature_key`` (the model's one where it has one and none is
        named): called with its inputs by name, it gives its outputs by name."""
        if signature_key is None:
            if len(self._signatures) != 1:
                raise ValueError(f"SignatureDef signature_key is None and the model has {len(self._signatures)} "
                                 f"signatures {sorted(self._signatures)}: name one")
            signature_key = next(iter(self._signatures))
        if signature_key not in self._signatures:
            raise ValueError(f"SignatureDef signature_key {signature_key!r} not found; the model's: "
                             f"{sorted(self._signatures)}")
        return SignatureRunner(self, signature_key)

    def get_tensor_details(self) -> list[dict]:
        raise ValueError("wgnn's Interpreter reads a model's inputs and outputs only (get_input_details, "
                         "get_output_details)")

    # -- shapes and memory --------------------------------------------------------------------------

    def resize_tensor_input(self, input_index: int, tensor_size, strict: bool = False) -> None:
        """Give input ``input_index`` the shape ``tensor_size`` (``allocate_tensors`` then makes it);
        ``strict``: only its dynamic dimensions (-1 in its shape signature) may change."""
        details = self._input(input_index, "resize")
        shape = np.asarray(tensor_size, np.int32).reshape(-1)
        signature = details["shape_signature"]
        if strict and _tflite.beyond_signature(shape, signature):  # (a RuntimeError, as LiteRT's)
            raise RuntimeError(f"resize_tensor_input (strict) of input {input_index} ({details['name']!r}): "
                               f"{shape.tolist()} changes a dimension its signature {signature.tolist()} fixes; "
                               "a strict resize only changes the dimensions given as -1")
        if (shape < 0).any():
            raise ValueError(f"resize_tensor_input of input {input_index}: negative size in {shape.tolist()}")
        _reshaped(details, shape)
        self._session = None

    def allocate_tensors(self) -> None:
        """Make the inputs' host buffers at their current shapes, on a session that runs them: one
        session compiles per shape of the model's dynamic dimensions (a resize to a shape met before
        compiles nothing), another is loaded for shapes that change a dimension the model fixes."""
        if self._session is not None:
            return
        pinned = tuple((d["name"], tuple(int(v) for v in d["shape"])) for d in self._inputs
                       if _tflite.beyond_signature(d["shape"], d["_model_signature"]))
        if pinned not in self._sessions:
            self._sessions[pinned] = InferenceSession(self._model, input_shapes=dict(pinned) or None)
        self._session = self._sessions[pinned]
        self._buffers = {d["index"]: np.zeros(tuple(d["shape"]), d["dtype"]) for d in self._inputs}
        self._results = {}
        # The plan for these shapes, compiled now, as LiteRT prepares its nodes here: the outputs'
        # details give their shapes from now on (a model run in stages knows them after a run).
        self._session.prepare({d["name"]: self._buffers[d["index"]] for d in self._inputs})
        if self._session.graph is not None and len(self._session.outputs) == len(self._outputs):
            for d, out in zip(self._outputs, self._session.outputs.values()):
                _reshaped(d, out.shape)

    # -- running ----------------------------------------------------------------------------------------

    def set_tensor(self, tensor_index: int, value) -> None:
        details = self._input(tensor_index, "set")
        buffer = self._allocated(tensor_index)
        value = np.asarray(value)
        if value.dtype != buffer.dtype:
            raise ValueError(f"Cannot set tensor: Got value of type {value.dtype} but expected type {buffer.dtype} "
                             f"for input {tensor_index}, name: {details['name']}")
        if value.shape != buffer.shape:
            raise ValueError(f"Cannot set tensor: shape {value.shape}, but input {tensor_index} "
                             f"({details['name']!r}) has {buffer.shape} (resize_tensor_input, then "
                             "allocate_tensors, to change it)")
        buffer[...] = value

    def tensor(self, tensor_index: int):
        """A function giving the tensor's array itself: an input's host buffer (write it in place,
        then ``invoke``), or an output's last result."""
        if any(d["index"] == tensor_index for d in self._inputs):
            self._allocated(tensor_index)
            return lambda: self._buffers[tensor_index]
        self._output(tensor_index)
        return lambda: self._results.get(tensor_index, self._empty(tensor_index))

    def invoke(self) -> None:
        if self._session is None:
            raise RuntimeError("Invoke called before allocate_tensors() (after a resize_tensor_input too)")
        results = self._session.run(None, {d["name"]: self._buffers[d["index"]] for d in self._inputs})
        self._results = {d["index"]: r for d, r in zip(self._outputs, results)}
        for d, r in zip(self._outputs, results):
            _reshaped(d, r.shape)

    def get_tensor(self, tensor_index: int, subgraph_index: int = 0) -> np.ndarray:
        """A copy of an input's buffer or of an output's last result (zeros before the first ``invoke``)."""
        if subgraph_index != 0:
            raise ValueError(f"subgraph {subgraph_index}: wgnn's Interpreter reads subgraph 0's inputs and outputs")
        if any(d["index"] == tensor_index for d in self._inputs):
            return self._allocated(tensor_index).copy()
        self._output(tensor_index)
        return np.array(self._results.get(tensor_index, self._empty(tensor_index)))

    def reset_all_variables(self) -> None:
        """Accepted: wgnn's sessions keep no state between invocations."""

    # -- helpers --------------------------------------------------------------------------------------

    def _input(self, index: int, what: str) -> dict:
        for d in self._inputs:
            if d["index"] == index:
                return d
        raise ValueError(f"cannot {what} tensor {index}: the model's inputs are tensors "
                         f"{[d['index'] for d in self._inputs]} (wgnn's Interpreter sets inputs only)")

    def _output(self, index: int) -> dict:
        for d in self._outputs:
            if d["index"] == index:
                return d
        raise ValueError(f"tensor {index} is none of the model's inputs {[d['index'] for d in self._inputs]} or "
                         f"outputs {[d['index'] for d in self._outputs]}: wgnn's Interpreter reads only those")

    def _allocated(self, index: int) -> np.ndarray:
        if self._session is None:
            raise ValueError(f"tensor {index}: call allocate_tensors() first (after a resize_tensor_input too)")
        return self._buffers[index]

    def _empty(self, index: int) -> np.ndarray:
        d = self._output(index)
        return np.zeros(tuple(max(int(v), 0) for v in d["shape"]), d["dtype"])


class SignatureRunner:
    """LiteRT's ``SignatureRunner``: a signature's inputs by name in, its outputs by name out (an
    input of another shape than its tensor's is resized to it first, as LiteRT's runner does)."""

    def __init__(self, interpreter: Interpreter, key: str):
        self._it, self._key = interpreter, key
        self._sig = interpreter._signatures[key]

    def get_input_details(self) -> dict[str, dict]:
        details = {d["index"]: d for d in self._it.get_input_details()}
        return {name: details[index] for name, index in self._sig["inputs"].items()}

    def get_output_details(self) -> dict[str, dict]:
        details = {d["index"]: d for d in self._it.get_output_details()}
        return {name: details[index] for name, index in self._sig["outputs"].items()}

    def allocate_tensors(self) -> None:
        self._it.allocate_tensors()

    def invoke(self, **kwargs) -> None:
        self(**kwargs)

    def __call__(self, **kwargs) -> dict[str, np.ndarray]:
        inputs = self._sig["inputs"]
        if len(kwargs) != len(inputs):
            raise ValueError(f"Invalid number of inputs provided for running a SignatureDef, expected "
                             f"{len(inputs)} vs provided {len(kwargs)} (signature {self._key!r}: {list(inputs)})")
        values = {}
        for name, value in kwargs.items():
            if name not in inputs:
                raise ValueError(f"Invalid Input name ({name}) for SignatureDef {self._key!r}: its inputs are "
                                 f"{list(inputs)}")
            values[inputs[name]] = value = np.asarray(value)
            current = self._it._input(inputs[name], "set")["shape"]
            if tuple(current) != value.shape:
                self._it.resize_tensor_input(inputs[name], value.shape)
        self._it.allocate_tensors()
        for index, value in values.items():
            self._it.set_tensor(index, value)
        self._it.invoke()
        return {name: self._it.get_tensor(index) for name, index in self._sig["outputs"].items()}


def _signatures(model) -> dict[str, dict]:
    """The model's SignatureDefs over subgraph 0: {key: {"inputs": {name: tensor}, "outputs": ...}}."""
    found = {}
    for k in range(model.SignatureDefsLength()):
        sig = model.SignatureDefs(k)
        if sig.SubgraphIndex() != 0:
            continue  # (wgnn's interpreter runs subgraph 0)
        key = sig.SignatureKey().decode("utf-8", "replace")
        found[key] = {side: {(m := getter(j)).Name().decode("utf-8", "replace"): int(m.TensorIndex())
                             for j in range(count())}
                      for side, getter, count in (("inputs", sig.Inputs, sig.InputsLength),
                                                  ("outputs", sig.Outputs, sig.OutputsLength))}
    return found


def _details(imp, index: int) -> dict:
    """LiteRT's description of tensor ``index``."""
    q = imp.tensors[index].Quantization()
    scales = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else np.zeros(0, np.float32)
    zeros = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else np.zeros(0, np.int64)
    kind = imp.tensor_type(index)
    shape = np.asarray(imp.tensor_shape(index), np.int32)
    signature = np.asarray(imp.tensor_signature(index), np.int32)
    return {"name": imp.tensor_name(index), "index": index, "shape": shape, "shape_signature": signature,
            "dtype": _tflite.NUMPY_TYPES.get(kind, np.float32),
            "quantization": (float(scales[0]) if len(scales) == 1 else 0.0, int(zeros[0]) if len(zeros) == 1 else 0),
            "quantization_parameters": {"scales": np.asarray(scales, np.float32),
                                        "zero_points": np.asarray(zeros, np.int32),
                                        "quantized_dimension": int(q.QuantizedDimension()) if q is not None else 0,
                                        "block_size": 0},
            "sparsity_parameters": {},
            # (a tensor the model gives no shape signature of its own: LiteRT's follows its shape;
            # the model's own, which says what a resize changes, is kept apart)
            "_signature_follows": not imp.tensors[index].ShapeSignatureLength(),
            "_model_signature": signature.copy()}


def _reshaped(details: dict, shape) -> None:
    """A tensor's details at the shape it now has, its signature too where LiteRT's follows it."""
    details["shape"] = np.asarray(shape, np.int32)
    if details["_signature_follows"]:
        details["shape_signature"] = details["shape"].copy()


def _copy(details: dict) -> dict:
    """The details as LiteRT gives them (its keys, arrays copied)."""
    return {k: (v.copy() if isinstance(v, np.ndarray) else dict(v) if isinstance(v, dict) else v)
            for k, v in details.items() if not k.startswith("_")}


# -- standing in -----------------------------------------------------------------------------------------

interpreter = types.ModuleType("tflite_runtime.interpreter", "LiteRT's interpreter module, as wgnn answers it")
interpreter.Interpreter, interpreter.load_delegate, interpreter.OpResolverType = \
    Interpreter, load_delegate, OpResolverType
interpreter.__wgnn__ = True
_PACKAGES = ("tflite_runtime", "ai_edge_litert")


def install() -> dict[str, types.ModuleType]:
    """Make ``import tflite_runtime.interpreter`` and ``import ai_edge_litert.interpreter`` give
    wgnn's ``Interpreter``, from now on in this process; returns what they gave before, for
    ``uninstall``. A module that imported LiteRT before keeps the one it has: call this first."""
    before = {}
    for package in _PACKAGES:
        for name in (package, f"{package}.interpreter"):
            if name in sys.modules and getattr(sys.modules[name], "__wgnn__", False) is False:
                before[name] = sys.modules[name]
        module = types.ModuleType(package, f"{package}, as wgnn answers it")
        module.__wgnn__, module.__path__, module.interpreter = True, [], interpreter
        sys.modules[package], sys.modules[f"{package}.interpreter"] = module, interpreter
    if before:
        log.warning("%s imported before wgnn.litert.install(): modules that hold it keep LiteRT; install first",
                    sorted(before))
    return before


def uninstall(before: dict[str, types.ModuleType] | None = None) -> None:
    """Undo ``install``: the modules it replaced come back (``install``'s result), or are imported anew."""
    for package in _PACKAGES:
        for name in (package, f"{package}.interpreter"):
            module = sys.modules.get(name)
            if getattr(module, "__wgnn__", False):
                del sys.modules[name]
    sys.modules.update(before or {})


def main(argv: list[str] | None = None) -> int:
    """``python -m wgnn.litert SCRIPT [ARGS...]`` (or ``-m MODULE [ARGS...]``): run a script or module
    with wgnn standing in for LiteRT's interpreter from its first line."""
    from . import litert as standing_in  # (the module, not this file run as __main__)
    from .onnxruntime import run_standing_in

    return run_standing_in(standing_in.install, argv, "wgnn.litert",
                           "LiteRT's interpreter (tflite_runtime, ai_edge_litert; wgnn.litert.install)")


if __name__ == "__main__":
    sys.exit(main())
