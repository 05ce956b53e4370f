"""Command-line overrides checked before Hydra runs: a misspelled key gets the closest valid
one, and a key added with ``+`` that nothing would read is refused instead of ignored.

Hydra refuses ``task.optim.stpes=10`` ("Key 'stpes' is not in struct") without a suggestion and
advises ``+task.optim.stpes=10``, which then runs the job with the typo silently ignored. Here
both get one line naming the key and the closest existing one. Config group choices
(``task=text``, ``+sweep=lr_search``), ``hydra.*`` keys and flags are left to Hydra.
"""

from __future__ import annotations

import difflib
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lra.config import CONF_DIR, compose, group_options
from lra.method_configs import EXTERNAL, NEEDS_TARGET, override_values

GROUPS = ("task", "model", "trainer", "logger", "experiment", "sweep")
"""Config groups whose choices (``group=name``) decide what the other keys are."""


def _parse(arg: str) -> tuple[str, str, str] | None:
    """``(prefix, key, value)`` of an override (prefix ``""``, ``+``, ``++`` or ``~``), or None
    for a flag or a Hydra key."""
    if arg.startswith("-") or "=" not in arg:
        return None
    key, value = arg.split("=", 1)
    prefix = next((p for p in ("++", "+", "~") if key.startswith(p)), "")
    key = key[len(prefix) :]
    if key == "hydra" or key.startswith(("hydra.", "hydra/")):
        return None
    return prefix, key, value


def _is_group(key: str) -> bool:
    return "." not in key and ((CONF_DIR / key).is_dir() or key in GROUPS)


def leaf_keys(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every value in ``node`` (``hydra`` left out)."""
    keys = []
    for key, value in node.items():
        if key == "hydra":
            continue
        path = f"{prefix}{key}"
        keys += leaf_keys(value, f"{path}.") if isinstance(value, dict) else [path]
    return keys


def closest(key: str, keys: list[str]) -> str | None:
    """The valid key most like ``key``: where its parent exists, the sibling whose last part is
    most like ``key``'s; else any key like the whole of it; None when nothing is close."""
    parent, _, leaf = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in keys if parent and k.startswith(parent + ".")}
    if siblings:  # the parent exists: only its own keys are candidates
        match = difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)
        return siblings[match[0]] if match else None
    match = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    return match[0] if match else None


def check_overrides(argv: list[str], config_name: str = "train") -> str | None:
    """The error of the first misspelled or unread key in ``argv``, or None when all are
    known. Multirun values (``a,b``) are fine; only keys are checked."""
    parsed = [p for p in map(_parse, argv) if p is not None]
    choices = [
        f"{prefix}{key}={value.split(',')[0]}"
        for prefix, key, value in parsed
        if _is_group(key) and prefix != "~"
    ]
    for prefix, key, value in parsed:
        if _is_group(key) and prefix != "~":
            problem = _choice_problem(key, value)
            if problem:
                return problem
    targets = override_values(argv, "model.target")
    if "model=external" in choices and not targets:
        return NEEDS_TARGET
    if targets:
        problem = _target_problem(targets, choices)
        if problem:
            return problem
        choices.append(f"model.target={targets[0]}")
    try:
        cfg: DictConfig = compose(config_name, choices)
    except Exception:  # noqa: BLE001 - a bad group choice: Hydra's own message says it
        return None
    container = OmegaConf.to_container(cfg, resolve=False)
    keys = leaf_keys(container)
    for prefix, key, value in parsed:
        if _is_group(key) or prefix == "~":
            continue
        if key == "model.target":
            continue
        if OmegaConf.select(cfg, key, default=_MISSING) is not _MISSING:
            continue
        if prefix and _is_method_option(cfg, key):
            continue
        suggestion = closest(key, keys)
        hint = f"; did you mean {suggestion}={value}?" if suggestion else ""
        if prefix:
            return (
                f"{prefix}{key}={value} adds a key that nothing reads (it would be ignored){hint}"
            )
        return f"unknown key {key}{hint}"
    return None


def _choice_problem(group: str, value: str) -> str | None:
    """Why ``group=value`` names no config (with the closest valid choice), or None. A
    ``model`` may also be ``external`` or an installed entry point; multirun lists are checked
    element by element."""
    valid = group_options(group) + ([EXTERNAL] if group == "model" else [])
    for choice in (c.strip() for c in value.split(",")):
        if not valid or choice in valid or choice in ("", "null") or not choice.isidentifier():
            continue  # nothing to compare with, or a sweep function Hydra parses (choice(...))
        if group == "model":
            from models.external import entry_points

            valid = valid + sorted(set(entry_points()) - set(valid))
            if choice in valid:
                continue
        match = difflib.get_close_matches(choice, valid, n=1, cutoff=0.6)
        hint = f"did you mean {group}={match[0]}? " if match else ""
        return f"unknown {group} {choice!r}; {hint}choices: {', '.join(sorted(valid))}"
    return None


def _target_problem(targets: list[str], choices: list[str]) -> str | None:
    """Why ``model.target=`` cannot be used as given, or None: it needs ``model=external``
    and takes one import path per command."""
    from models.external import ENTRY_POINT_GROUP

    if "model=external" not in choices:
        return "model.target= needs model=external (model=external model.target=pkg.module:Class)"
    if len(targets) > 1:
        return (
            f"model.target={','.join(targets)}: one import path per command; to sweep several "
            f"external methods, install them as entry points ({ENTRY_POINT_GROUP}) and sweep "
            f"model=a,b"
        )
    import models

    try:
        models.attention_class(targets[0])
    except (KeyError, ValueError) as err:  # models.external.MethodError is a ValueError
        return str(err.args[0])
    return None


def _is_method_option(cfg: DictConfig, key: str) -> bool:
    """``model.<option>`` that the chosen method's constructor takes (read by ``models.build``
    even when ``conf/model/<name>.yaml`` does not list it)."""
    if not key.startswith("model.") or key.count(".") != 1 or "name" not in cfg.get("model", {}):
        return False
    import models

    try:
        return key.split(".", 1)[1] in models.accepted_options(models.method_class(cfg.model))
    except (KeyError, ValueError):  # an unknown method: its own error comes later
        return False


_MISSING = object()
