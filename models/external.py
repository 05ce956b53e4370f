"""Attention classes from outside this repository: import paths and installed entry points.

A method need not live in ``models/``. Anything that takes a method name also takes

* an import path ``package.module:ClassName`` (``model=external model.target=...``), or
* the name of an entry point in the group ``lra.attention`` of an installed package::

      # the package's pyproject.toml
      [project.entry-points."lra.attention"]
      sigmoid = "sigmoid_attention:SigmoidAttention"

The class must subclass :class:`models.Attention` (most subclass
:class:`models.ProjectedAttention` and implement ``attend``), be built as
``cls(dim, heads, dropout=..., qkv_dim=..., **options)`` and be called as
``forward(x [B, N, D], mask [B, N]) -> [B, N, D]``. Every way it can fail to be that raises
:class:`MethodError` with one line naming the target and what is wrong.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata as metadata
import inspect
from typing import Any

from models.base import Attention, ProjectedAttention

ENTRY_POINT_GROUP = "lra.attention"
BUILT_IN_PACKAGE = "lra"  # the distribution that holds ``models``


class MethodError(ValueError):
    """An attention target that cannot be used; the message is one line naming it."""


def is_import_path(text: str) -> bool:
    """``package.module:ClassName`` (a colon; a registry or entry-point name has none)."""
    return ":" in text


@functools.cache
def entry_points() -> dict[str, str]:
    """Installed attention entry points: name -> ``module:attribute`` (first one wins)."""
    found: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def method_label(cls: type[Attention]) -> str:
    """The registered name of exactly this class, else its qualified name (what checks and
    runs call a class that ``model.name`` does not name)."""
    return vars(cls).get("name") or cls.__qualname__


def target_of(cls: type[Attention]) -> str:
    """The import path of a class: ``package.module:ClassName``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_attention(target: str) -> type[Attention]:
    """The attention class at ``target`` (``package.module:ClassName``), checked.

    Raises:
        MethodError: a malformed path, a module that does not import, a missing attribute, or
            a class that is not an attention module (:func:`check_attention_class`).
    """
    module_name, sep, qualname = target.partition(":")
    if not sep or not module_name or not qualname or ":" in qualname:
        raise MethodError(
            f"attention target {target!r} is not an import path: write package.module:ClassName"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # ImportError, or the module's own error while importing
        hint = " (is its package installed in this environment?)"
        hint = hint if isinstance(err, ModuleNotFoundError) else ""
        raise MethodError(
            f"attention target {target!r}: importing {module_name!r} failed: "
            f"{type(err).__name__}: {err}{hint}"
        ) from None
    obj: Any = module
    for part in qualname.split("."):
        if not hasattr(obj, part):
            raise MethodError(f"attention target {target!r}: {module_name} has no {qualname!r}")
        obj = getattr(obj, part)
    check_attention_class(obj, target)
    return obj


def check_attention_class(obj: Any, target: str) -> None:
    """Raise :class:`MethodError` unless ``obj`` is an :class:`Attention` subclass with the
    interface's constructor and call signatures."""
    where = f"attention target {target!r}"
    if not (isinstance(obj, type) and issubclass(obj, Attention)):
        what = obj.__qualname__ if isinstance(obj, type) else type(obj).__name__
        raise MethodError(
            f"{where} is {what}, not an attention class: subclass models.Attention "
            f"(or models.ProjectedAttention and implement attend(q, k, v, mask))"
        )
    projected = issubclass(obj, ProjectedAttention) and obj.forward is ProjectedAttention.forward
    if obj.forward is Attention.forward or (projected and obj.attend is ProjectedAttention.attend):
        raise MethodError(f"{where} implements neither forward(x, mask) nor attend(q, k, v, mask)")
    init = _positional(obj.__init__)[1:]  # without self
    if init[:2] != ["dim", "heads"]:
        raise MethodError(
            f"{where}: the constructor must start (dim, heads, ...), got ({', '.join(init)})"
        )
    forward = _positional(obj.forward)[1:]
    if len(forward) != 2:
        raise MethodError(
            f"{where}: forward must take (x, mask) -> [B, N, D], got ({', '.join(forward)})"
        )


def _positional(fn: Any) -> list[str]:
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


@functools.cache
def load_entry_point(name: str) -> type[Attention]:
    """The class of the installed entry point ``name`` (``KeyError`` if there is none)."""
    target = entry_points()[name]
    try:
        return import_attention(target)
    except MethodError as err:
        raise MethodError(f"entry point {name!r} ({ENTRY_POINT_GROUP}): {err}") from None


@functools.cache
def _import_cached(target: str) -> type[Attention]:
    return import_attention(target)


def external_class(method: str) -> type[Attention] | None:
    """The class an import path or an installed entry-point name stands for; None when
    ``method`` is neither."""
    if is_import_path(method):
        return _import_cached(method)
    if method in entry_points():
        return load_entry_point(method)
    return None


def method_source(cls: type[Attention]) -> dict[str, str | None]:
    """Where a class comes from: ``target`` (import path), ``package`` and ``version`` of the
    installed distribution that holds its top-level module (None for a module on the path
    that no distribution installed)."""
    top = cls.__module__.split(".")[0]
    if top == "models":
        package = BUILT_IN_PACKAGE
    else:
        dists = metadata.packages_distributions().get(top, [])
        package = dists[0] if dists else None
    version = None
    if package:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = None
    return {"target": target_of(cls), "package": package, "version": version}


__all__ = [
    "BUILT_IN_PACKAGE",
    "ENTRY_POINT_GROUP",
    "MethodError",
    "check_attention_class",
    "entry_points",
    "external_class",
    "import_attention",
    "is_import_path",
    "method_label",
    "method_source",
    "target_of",
]
