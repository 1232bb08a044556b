"""wgnn standing in for the ``onnxruntime`` module, for packages that import ONNX Runtime themselves.

A script of one's own changes its import (``import wgnn as ort``). A package one does not edit
(Magika, NudeNet, openWakeWord, RapidOCR...) imports ``onnxruntime`` itself; ``install()`` puts this
module where that import finds it, so the package's sessions run on the GPU through wgnn::

    import wgnn.onnxruntime
    wgnn.onnxruntime.install()      # before the package imports onnxruntime
    from magika import Magika       # its InferenceSession is wgnn's

Everything ONNX Runtime's module offers that wgnn answers (``InferenceSession``, ``SessionOptions``,
``OrtValue``, ``get_available_providers``...) is here, and the module-level calls packages make on
the way (``disable_telemetry_events``, ``get_build_info``, ``set_seed``, ``preload_dlls``...), and
``onnxruntime.capi``'s binding module with its exception classes (each the wgnn error that means
the same: ``InvalidArgument`` is ``wgnn.InputError``).
Standing in for ONNX Runtime means running what the package asks of it: a session asked for other
execution providers alone (``["CPUExecutionProvider"]``, as most packages hard-code, or CUDA's) runs
on WebGPU, said once on the ``wgnn`` logger; ``wgnn.InferenceSession`` called directly refuses them
instead. ``__version__`` is the ONNX Runtime API version this answers as (packages compare it).
"""

from __future__ import annotations

import logging
import sys
import types

from . import __version__ as wgnn_version
from . import errors
from .ort_compat import *  # noqa: F403  (ONNX Runtime's module API: ort_compat.__all__)
from .ort_compat import (
    FALLBACKS,
    WEBGPU_PROVIDERS,
    IOBinding,
    get_all_providers,
    get_available_providers,
    get_device,
    set_default_logger_severity,
)
from .session import InferenceSession as _Session
from .session import NodeArg  # noqa: F401

__version__ = "1.20.0"  # the ONNX Runtime API answered (InferenceSession, OrtValue, IOBinding as of 1.20)
SessionIOBinding = IOBinding

log = logging.getLogger("wgnn")
_said: set[tuple[str, ...]] = set()


class InferenceSession(_Session):
    """``wgnn.InferenceSession`` as the package's ONNX Runtime session: asked for other execution
    providers alone, it runs on WebGPU (a package standing on wgnn asked for ONNX Runtime, and this
    is it); their provider options are left out."""

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, **kwargs):
        providers, provider_options = _webgpu(providers, provider_options)
        super().__init__(path_or_bytes, sess_options, providers, provider_options, **kwargs)


def _webgpu(providers, provider_options) -> tuple[list | None, list | None]:
    """The WebGPU entries of ``providers`` (with their options), or WebGPU's alone where it has none."""
    if providers is None:
        return None, provider_options
    entries = [providers] if isinstance(providers, str) else list(providers)
    options = list(provider_options) if provider_options is not None else [None] * len(entries)
    names = [str(p[0] if isinstance(p, (tuple, list)) else p) for p in entries]
    kept = [(p, o) for p, o, n in zip(entries, options + [None] * len(entries), names)
            if n.lower() in WEBGPU_PROVIDERS | FALLBACKS]
    if not any(n.lower() in WEBGPU_PROVIDERS for n in names):
        if tuple(names) not in _said:
            _said.add(tuple(names))
            log.warning("providers %s: wgnn stands in for onnxruntime here, so these sessions run on WebGPU "
                        "(wgnn.onnxruntime.install)", names)
        return ["WebGpuExecutionProvider"], None
    return [p for p, _ in kept], ([o or {} for _, o in kept] if provider_options is not None else None)


# -- module-level calls packages make on the way -------------------------------------------------------


def disable_telemetry_events() -> None:
    """Accepted: wgnn sends no telemetry."""


def enable_telemetry_events() -> None:
    """Accepted: wgnn sends no telemetry."""


def get_version_string() -> str:
    return __version__


def get_build_info() -> str:
    return f"wgnn {wgnn_version} standing in for ONNX Runtime {__version__} (WebGPU execution provider)"


def set_seed(seed: int) -> None:
    """Accepted: wgnn's random operators draw from their nodes' own seeds (Dropout with ``seed``)."""


def preload_dlls(*args, **kwargs) -> None:
    """Accepted: wgnn loads no CUDA or cuDNN libraries."""


def has_collective_ops() -> bool:
    return False


# -- onnxruntime.capi: what packages import from ONNX Runtime's binding ------------------------------

# ``from onnxruntime.capi import _pybind_state as C`` (NudeNet), and the exception classes scripts catch
# (``onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument``), as the wgnn errors that mean the same
_pybind_state = types.ModuleType("onnxruntime.capi._pybind_state", "ONNX Runtime's binding, as wgnn answers it")
for _name, _value in {"get_available_providers": get_available_providers, "get_all_providers": get_all_providers,
                      "get_device": get_device, "set_default_logger_severity": set_default_logger_severity,
                      "Fail": errors.WgnnError, "RuntimeException": errors.WgnnError,
                      "InvalidArgument": errors.InputError, "NoSuchFile": errors.ModelLoadError,
                      "NoModel": errors.ModelLoadError, "InvalidProtobuf": errors.ModelLoadError,
                      "ModelLoaded": errors.ModelLoadError, "InvalidGraph": errors.GraphError,
                      "NotImplemented": errors.UnsupportedOperatorError, "EPFail": errors.DeviceError,
                      "EngineError": errors.DeviceError}.items():
    setattr(_pybind_state, _name, _value)
capi = types.ModuleType("onnxruntime.capi", "ONNX Runtime's binding package, as wgnn answers it")
capi._pybind_state = capi.onnxruntime_pybind11_state = _pybind_state
_MODULES = {"onnxruntime.capi": capi, "onnxruntime.capi._pybind_state": _pybind_state,
            "onnxruntime.capi.onnxruntime_pybind11_state": _pybind_state}


# -- standing in -----------------------------------------------------------------------------------------


def install() -> types.ModuleType | None:
    """Make ``import onnxruntime`` give this module, from now on in this process; returns what it
    gave before (None where nothing had imported it), for ``uninstall``. A module that imported
    ONNX Runtime before keeps the one it has: call this first."""
    before = sys.modules.get("onnxruntime")
    if before is not None and before is not sys.modules[__name__]:
        log.warning("onnxruntime was imported before wgnn.onnxruntime.install(): modules that hold it keep ONNX "
                    "Runtime; install first")
    sys.modules["onnxruntime"] = sys.modules[__name__]
    sys.modules.update(_MODULES)
    return before if before is not sys.modules[__name__] else None


def uninstall(before: types.ModuleType | None = None) -> None:
    """Undo ``install``: ``import onnxruntime`` gives ``before`` again (``install``'s result), or
    imports ONNX Runtime anew."""
    if sys.modules.get("onnxruntime") is sys.modules[__name__]:
        for name, module in _MODULES.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
        if before is None:
            del sys.modules["onnxruntime"]
        else:
            sys.modules["onnxruntime"] = before


def main(argv: list[str] | None = None) -> int:
    """``python -m wgnn.onnxruntime SCRIPT [ARGS...]`` (or ``-m MODULE [ARGS...]``): run a script
    or module as ``python`` would, with wgnn standing in for onnxruntime from its first line."""
    from . import onnxruntime as standing_in  # (the module, not this file run as __main__)

    return run_standing_in(standing_in.install, argv, "wgnn.onnxruntime", "onnxruntime (wgnn.onnxruntime.install)")


def run_standing_in(install, argv: list[str] | None, prog: str, what: str) -> int:
    """Run ``argv`` (a script and its arguments, or ``-m MODULE`` and its) as ``python`` would,
    after ``install()``: ``python -m PROG``'s body, where wgnn stands in for ``what``."""
    import runpy

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or (args[0] == "-m" and len(args) < 2):
        print(f"usage: python -m {prog} SCRIPT [ARGS...]\n"
              f"       python -m {prog} -m MODULE [ARGS...]\n"
              f"runs it with wgnn standing in for {what}", file=sys.stderr)
        return 2
    install()
    if args[0] == "-m":
        sys.argv = [args[1]] + args[2:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
