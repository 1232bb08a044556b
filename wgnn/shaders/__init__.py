"""WGSL kernels, shipped as package data, and the small template renderer that reads them.

A shader file may ``#include "other.wgsl"`` (each file once) and use ``${name}`` parameters:
the data type (``elem``), tile sizes, the activation and the like. Shapes never go into the source;
they travel in the ``Params`` uniform, so one pipeline serves every shape. ``parse_interface``
reads the ``Params`` struct and the bindings back from the source, so the host side packs uniforms
and builds bind-group layouts from the shader itself.
"""

from __future__ import annotations

import re
import string
from functools import cache
from importlib import resources

WORKGROUP_SIZE = 64

_INCLUDE = re.compile(r'^#include "([\w.]+)"[^\n]*$', re.M)
_STRUCT = re.compile(r"struct Params\s*\{(.*?)\}", re.S)
_BINDING = re.compile(r"@binding\((\d+)\)\s*var<(uniform|storage,\s*read_write|storage,\s*read)>")


@cache
def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _expand(name: str, seen: set[str]) -> str:
    def include(match: re.Match) -> str:
        dep = match.group(1)
        if dep in seen:
            return ""
        seen.add(dep)
        return _expand(dep, seen)

    return _INCLUDE.sub(include, _read(name))


@cache
def _render_cached(name: str, items: tuple) -> str:
    params = dict(items)
    header = "enable f16;\n" if params["elem"] == "f16" else ""
    header += f"alias elem = {params['elem']};\nconst WG: u32 = {WORKGROUP_SIZE}u;\n"
    body = _expand(name + ".wgsl", {name + ".wgsl"})
    try:
        return header + string.Template(body).substitute(params)
    except KeyError as e:
        raise KeyError(f"shader {name}.wgsl needs template parameter {e}") from None


def render(name: str, **params: object) -> str:
    """The WGSL source of kernel ``name`` with its template parameters filled in."""
    params.setdefault("elem", "f32")
    items = tuple(sorted((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()))
    return _render_cached(name, items)


@cache
def parse_interface(source: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(Params fields as (name, type), binding kinds in order: uniform | storage | read-only-storage)."""
    fields: list[tuple[str, str]] = []
    struct = _STRUCT.search(source)
    if struct:
        body = re.sub(r"//[^\n]*", "", struct.group(1))
        for part in re.split(r",(?![^<]*>)", body):
            if ":" in part:
                fname, ftype = part.split(":", 1)
                fields.append((fname.strip(), " ".join(ftype.split())))
    kinds: dict[int, str] = {}
    for index, kind in _BINDING.findall(source):
        kind = kind.replace(" ", "")
        kinds[int(index)] = {"uniform": "uniform", "storage,read_write": "storage",
                             "storage,read": "read-only-storage"}[kind]
    return fields, [kinds[i] for i in sorted(kinds)]
