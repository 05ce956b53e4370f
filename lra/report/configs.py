"""Which configuration each record ran, and which table it belongs in.

For every record (its resolved ``config``):

* ``fingerprint``: :func:`lra.identity.config_fingerprint`, equal exactly for the seeds of one
  configuration; the leaderboard pools seeds of one fingerprint only.
* ``diff``: what differs from the recipe its protocol names, i.e. from ``conf/train.yaml``
  composed with its task and model (and ``experiment=<protocol>`` for a protocol other than
  ``lra``), as ``key=value`` texts. Records are compared with the current config tree.
* ``protocol``: the declared one (the ``protocol`` key) only when nothing under ``task.``
  differs and the evaluation was not capped (``trainer.max_eval_batches``); otherwise
  ``custom`` (from ``lra``) or ``<protocol>-custom``. A custom record never shares a table with
  the published rows. A record run with ``quirks=lra`` (the original pipeline's behaviours,
  :mod:`lra.quirks`) gets ``+quirks`` appended: its own table, compared with the recipe under
  the same switch.
* ``row``: the row label, the method and what differs, e.g. ``performer · lr=0.001``.

Reads config files only (omegaconf, Hydra's compose); no torch.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pandas as pd

from lra.config import compose, group_options
from lra.identity import config_fingerprint, configuration

BUILT_IN_PACKAGE = "lra"  # models.external.BUILT_IN_PACKAGE (not imported: no torch here)

DEFAULT_PROTOCOL = "lra"
CUSTOM = "custom"
UNKNOWN = "config unknown"
_ABSENT = object()
# dotted prefixes dropped from labels, longest first (``task.optim.lr`` reads ``lr``)
SHORT_PREFIXES = ("task.optim.", "task.backbone.", "task.", "trainer.", "model.")


def declared_protocol(config: Any) -> str:
    """The ``protocol`` key of a record's config (``lra`` when absent)."""
    if isinstance(config, dict) and config.get("protocol"):
        return str(config["protocol"])
    return DEFAULT_PROTOCOL


@functools.cache
def reference(
    task: str, model: str, protocol: str, quirks: str = "none", target: str | None = None
) -> str | None:
    """The configuration (as JSON) that ``protocol`` prescribes for ``task`` and ``model``
    (under the ``quirks`` switch); for a method from outside ``conf/model`` (``target``, its
    import path) the class's own option defaults, which needs the class importable."""
    if task not in group_options("task"):
        return None
    overrides = [f"task={task}"]
    if target:
        from models.external import MethodError, external_class  # imports torch

        try:
            external_class(target)
        except MethodError:  # not importable here: its option defaults are unknown
            return None
        overrides += ["model=external", f"model.target={target}", f"model.name={model}"]
    elif model in group_options("model"):
        overrides.append(f"model={model}")
    if protocol != DEFAULT_PROTOCOL and protocol in group_options("experiment"):
        overrides.append(f"experiment={protocol}")
    if quirks != "none":
        overrides.append(f"quirks={quirks}")
    try:
        return json.dumps(configuration(compose("train", overrides)))
    except Exception:  # noqa: BLE001 - e.g. an experiment that does not fit this task
        return None


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out |= (
            flatten(value, f"{prefix}{key}.")
            if isinstance(value, dict)
            else {f"{prefix}{key}": value}
        )
    return out


def value_text(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def config_diff(config: dict[str, Any], task: str, model: str, protocol: str) -> list[str] | None:
    """``["task.optim.lr=0.001", ...]``: keys whose value differs from the protocol's recipe
    (sorted); None when there is no recipe to compare with."""
    ref = reference(task, model, protocol, quirks_of(config), target_of(config))
    if ref is None:
        return None
    ours, theirs = flatten(configuration(config)), flatten(json.loads(ref))
    keys = sorted(set(ours) | set(theirs))
    return [
        f"{k}={value_text(ours.get(k, _ABSENT))}"
        for k in keys
        if ours.get(k, _ABSENT) != theirs.get(k, _ABSENT)
    ]


def quirks_of(config: Any) -> str:
    """The ``quirks`` switch of a record's config (``none`` when absent)."""
    return str(config.get("quirks") or "none") if isinstance(config, dict) else "none"


def target_of(config: Any) -> str | None:
    """``model.target`` of a record's config: the import path of a method from outside
    ``conf/model`` (``model=external`` or an installed entry point), else None."""
    model = config.get("model") if isinstance(config, dict) else None
    target = model.get("target") if isinstance(model, dict) else None
    return str(target) if target else None


def method_title(run: Any) -> str:
    """The method as a row shows it: its name, and for a method from outside this repository
    the distribution and version that held it (or its import path when no installed
    distribution did), e.g. ``sigmoid [lra-sigmoid-attention 0.1.0]``."""
    model, target = str(run["model"]), run.get("method_target")
    package, version = run.get("method_package"), run.get("method_version")
    if not isinstance(target, str) or package == BUILT_IN_PACKAGE:
        return model
    if isinstance(package, str):
        return (
            f"{model} [{package} {version}]" if isinstance(version, str) else f"{model} [{package}]"
        )
    return f"{model} [{target}]"


def short_labels(diff: list[str]) -> list[str]:
    """``task.optim.lr=0.001`` -> ``lr=0.001``, unless two keys would then read the same."""
    keys = [d.split("=", 1)[0] for d in diff]
    short = [next((k[len(p) :] for p in SHORT_PREFIXES if k.startswith(p)), k) for k in keys]
    return [
        (s if short.count(s) == 1 else k) + "=" + d.split("=", 1)[1]
        for s, k, d in zip(short, keys, diff, strict=True)
    ]


def annotate(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``declared_protocol``, ``fingerprint``, ``diff``, ``protocol`` and ``row``."""
    runs = runs.copy()
    columns: dict[str, list[Any]] = {k: [] for k in ("declared", "fp", "diff", "proto", "row")}
    for _, run in runs.iterrows():
        config = run.get("config")
        declared = declared_protocol(config)
        if not isinstance(config, dict) or not all(k in config for k in ("task", "model")):
            diff, fp, custom = None, None, True
        else:
            diff = config_diff(config, run["task"], run["model"], declared)
            fp = config_fingerprint(config)
            capped = (config.get("trainer") or {}).get("max_eval_batches") is not None
            custom = diff is None or capped or any(d.startswith("task.") for d in diff)
        if diff is None:  # still one row per configuration, never pooled across them
            label = UNKNOWN if fp is None else f"{UNKNOWN} {fp}"
        else:
            label = ", ".join(short_labels(diff))
        columns["declared"].append(declared)
        columns["fp"].append(fp)
        columns["diff"].append(diff)
        protocol = (
            (CUSTOM if declared == DEFAULT_PROTOCOL else f"{declared}-{CUSTOM}")
            if custom
            else declared
        )
        quirks = quirks_of(config)
        columns["proto"].append(protocol if quirks == "none" else f"{protocol}+quirks")
        title = method_title(run)
        columns["row"].append(f"{title} · {label}" if label else title)
    return runs.assign(
        declared_protocol=columns["declared"],
        fingerprint=columns["fp"],
        diff=columns["diff"],
        protocol=columns["proto"],
        row=columns["row"],
    )
