"""Read runs back from Weights & Biases as result records (the inverse of ``logger=wandb``).

:class:`lra.run.loggers.WandbLogger` names each wandb run by our ``run_id``, stores the resolved
config as the wandb config, every eval event (``val_acc``, ``train_loss``, ``lr`` at a step) in
the history, and the record without ``config``/``history`` as the summary. This module turns
such runs back into records with the keys of :data:`lra.records.RECORD_KEYS` plus ``history``
and ``error``, so runs that only exist in wandb (e.g. trained on a cluster) can be written with
:func:`lra.records.write_record` and reported like local ones. A key the run lacks is None,
never 0; wandb's NaN is None too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from lra.records import RECORD_KEYS

HISTORY_KEYS = ("train_loss", "val_acc", "lr")


class WandbImportError(RuntimeError):
    """wandb is missing, not logged in, or the project cannot be read."""


def records_from_wandb(project: str, entity: str | None = None, api=None) -> list[dict[str, Any]]:
    """Every run of ``entity/project`` (or the default entity's ``project``) as a record.

    ``api`` is a ``wandb.Api``-like object (``.runs(path)`` returning runs with ``.summary``,
    ``.config``, ``.name``, ``.id`` and ``.scan_history()``/``.history()``); by default a
    ``wandb.Api()`` is made, which needs ``wandb login`` or ``WANDB_API_KEY``.
    """
    if not project:
        raise ValueError(f"project must be a non-empty wandb project name, got {project!r}")
    path = f"{entity}/{project}" if entity else project
    if api is None:
        api = _default_api()
    try:
        runs = list(api.runs(path))
    except Exception as err:  # noqa: BLE001 - network, auth and lookup errors all end here
        raise WandbImportError(f"cannot read wandb runs of {path!r}: {err}") from err
    return [run_to_record(run) for run in runs]


def run_to_record(run: Any) -> dict[str, Any]:
    """One wandb run as a record: summary fields, config, and the eval history."""
    summary = _plain(dict(_items(getattr(run, "summary", None) or {})))
    record = {key: summary.get(key) for key in RECORD_KEYS if key != "config"}
    record["run_id"] = summary.get("run_id") or getattr(run, "name", None) or run.id
    config = _plain(dict(_items(getattr(run, "config", None) or {})))
    record["config"] = {k: v for k, v in config.items() if not str(k).startswith("_wandb")} or None
    record["history"] = _history(run)
    record["error"] = summary.get("error")
    return record


def _default_api():
    try:
        import wandb
    except ImportError as err:
        raise WandbImportError("wandb is not installed: pip install wandb") from err
    try:
        return wandb.Api()
    except Exception as err:  # noqa: BLE001 - UsageError when no API key, network errors
        raise WandbImportError(
            f"cannot open the wandb API ({err}); run `wandb login` or set WANDB_API_KEY, "
            "and check that api.wandb.ai (or WANDB_BASE_URL) is reachable"
        ) from err


def _history(run: Any) -> list[dict[str, Any]]:
    """Eval rows (those with ``val_acc``), ``{step, train_loss, val_acc, lr}``, sorted by step."""
    if hasattr(run, "scan_history"):
        rows: Iterable[Any] = run.scan_history()
    elif hasattr(run, "history"):
        rows = run.history(pandas=False)
    else:
        return []
    out = []
    for row in rows:
        row = _plain(dict(_items(row)))
        if row.get("val_acc") is None:
            continue
        step = row.get("step", row.get("_step"))
        out.append({"step": step, **{k: row.get(k) for k in HISTORY_KEYS}})
    return sorted(out, key=lambda r: (r["step"] is None, r["step"] or 0))


def _items(obj: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(obj, Mapping) or hasattr(obj, "items"):
        return obj.items()
    raise TypeError(f"expected a dict-like wandb object, got {type(obj).__name__}")


def _plain(value: Any) -> Any:
    """wandb summary/config objects to plain JSON values; NaN to None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping) or (hasattr(value, "items") and hasattr(value, "keys")):
        return {str(k): _plain(v) for k, v in _items(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
