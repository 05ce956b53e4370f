"""Model configs for attention classes outside ``conf/model/``: ``model=external`` and
installed entry points, so that ``model.<option>=`` works for them as for built-in methods.

* ``model=external model.target=package.module:ClassName`` (:mod:`models.external`).
* ``model=<name>`` for each entry point ``<name>`` in the group ``lra.attention`` of an
  installed package (a ``conf/model/<name>.yaml`` of the same name wins).

Each is a node of Hydra's ConfigStore in the group ``model``: ``name``, ``target`` and the
class's constructor options with their defaults, so ``model.bias=0.5`` is an ordinary
override, a misspelled option gets a suggestion, and the record's config lists every option
the run used. Nodes are stored before composing (:func:`register_method_configs`, called by
:func:`lra.config.compose` and by the console entry points with the command line), because
the ``external`` node depends on the command's ``model.target``. Importing a class happens
only for the methods a command names; a target that cannot be imported still gets a node
(``name`` and ``target``), and the run is refused before it starts with the import's error
(:func:`lra.run.checks.validate_run_config`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from lra.config import CONF_DIR

EXTERNAL = "external"
MISSING = "???"
NEEDS_TARGET = "model=external needs model.target=package.module:ClassName"


def override_values(overrides: Sequence[str], key: str) -> list[str]:
    """The values given to ``key`` (any ``+``/``++`` prefix), a multirun's choices each, as
    Hydra's override grammar reads them (``a\\:B`` is ``a:B``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep

    parser = OverridesParser.create()
    values: list[str] = []
    for arg in overrides:
        name, sep, _ = arg.partition("=")
        if not sep or name.lstrip("+~") != key:
            continue
        try:
            value = parser.parse_override(arg).value()
        except Exception:  # noqa: BLE001 - a malformed override: Hydra's own error says it
            continue
        choices = value.list if isinstance(value, ChoiceSweep) else [value]
        values += [str(v) for v in choices if v is not None]
    return values


def split_model_args(argv: Sequence[str]) -> tuple[list[str], str | None, dict[str, Any]]:
    """``lra-train``-style method arguments out of a command line: ``model=<name>``,
    ``model.target=<import path>`` (with ``model=external``) and ``model.<option>=<value>``
    (values read as YAML) -> the other arguments, the method (None without one) and its
    options. For commands whose own config has no ``model`` (``lra-bench``, ``lra-check``)."""
    import yaml

    rest, method, options = [], None, {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+")
        if not sep or not (key == "model" or key.startswith("model.")):
            rest.append(arg)
        elif key == "model":
            method = method if value == EXTERNAL else value
        elif key == "model.target":
            method = value
        elif key != "model.name":
            options[key.removeprefix("model.")] = yaml.safe_load(value) if value else None
    return rest, method, options


def option_node(cls: type) -> dict[str, Any]:
    """The constructor options of ``cls`` (besides what the recipe gives) with their defaults,
    as config values; an option without a default is ``???`` (must be given); one whose
    default is not a config value (a callable, an object) is left out."""
    from models.base import option_defaults

    node: dict[str, Any] = {}
    for key, default in option_defaults(cls).items():
        if key in ("dropout", "qkv_dim", "max_len"):
            continue  # set by the task's recipe
        if default is inspect.Parameter.empty:
            node[key] = MISSING
        elif default is None or isinstance(default, bool | int | float | str):
            node[key] = default
        elif isinstance(default, tuple | list) and all(
            isinstance(v, bool | int | float | str) for v in default
        ):
            node[key] = list(default)
    return node


def method_node(target: str | None, name: str | None = None) -> dict[str, Any]:
    """The config node of the attention class at ``target`` (import path or entry point),
    named ``name`` (default: :func:`models.external.method_label`). Without a usable target: ``name`` (the
    class name the path ends with) and ``target`` (``???`` when missing) only."""
    from models.external import MethodError, external_class, method_label

    fallback = target.rpartition(":")[2] if target else EXTERNAL  # the class name in the path
    node: dict[str, Any] = {"name": name or fallback, "target": target or MISSING}
    if not target:
        return node
    try:
        cls = external_class(target)
    except MethodError:
        return node  # the run is refused later with this error (validate_run_config)
    if cls is None:
        return node
    node["name"] = name or method_label(cls)
    return node | option_node(cls)


def register_method_configs(overrides: Sequence[str] = ()) -> None:
    """Store the ``model`` nodes a command with these ``overrides`` needs: ``external`` for
    ``model=external`` and one per installed entry point it chooses (``model=a,b``). A command
    that chooses only ``conf/model`` methods stores nothing (and imports neither torch nor the
    models)."""
    chosen = [
        n
        for n in override_values(overrides, "model")
        if not (CONF_DIR / "model" / f"{n}.yaml").is_file()
    ]
    if not chosen:
        return
    from hydra.core.config_store import ConfigStore

    from models.external import entry_points

    store = ConfigStore.instance()
    installed = entry_points()
    for name in chosen:
        if name in installed and name != EXTERNAL:
            store.store(group="model", name=name, node=method_node(installed[name], name))
    if EXTERNAL in chosen:
        targets = override_values(overrides, "model.target")
        store.store(group="model", name=EXTERNAL, node=method_node(targets[0] if targets else None))


__all__ = [
    "EXTERNAL",
    "NEEDS_TARGET",
    "override_values",
    "split_model_args",
    "method_node",
    "option_node",
    "register_method_configs",
]
