"""The numbers behind ``lra-report``: per-cell summaries, the two LRA averages, published rows.

Everything here is numeric (percent accuracies, steps/s, GB); :mod:`lra.report.formats` turns
it into Markdown, LaTeX and HTML.

Averages (both conventions of the literature):

* ``avg5``: mean over ListOps, Text, Retrieval, Image, Pathfinder (LRA Table 1, Tay et al.
  2021: Path-X excluded).
* ``avg6``: mean over the six tasks, where a Path-X cell that was attempted and failed (every
  run ``failed``/``diverged``, or a published ``FAIL``/``✗``) counts as 50 % (chance), as in the
  S4 tables (Gu et al. 2022). A Path-X cell with no run at all is missing, not 50.

A missing or failed task never counts as 0: an average over fewer tasks than its convention
needs is *incomplete* (``avg5_tasks < 5``) and is printed as such, never as a full average.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from lra.config import REPO_ROOT

LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
TASK_TITLES = {
    "listops": "ListOps",
    "text": "Text",
    "retrieval": "Retrieval",
    "image": "Image",
    "pathfinder": "Pathfinder",
    "pathx": "Path-X",
}
AVG5_TASKS = LRA_TASKS[:5]
AVG6_TASKS = LRA_TASKS
FAILED_PATHX = 50.0  # chance accuracy: what a failed Path-X counts as in the 6-task average
PUBLISHED_FAIL = ("FAIL", "✗")  # printed marks of an attempted, failed task
OURS = "ours"
REFERENCE_DIR = REPO_ROOT / "results" / "reference"
PUBLISHED_CSV = REFERENCE_DIR / "published.csv"
PUBLISHED_EFFICIENCY_CSV = REFERENCE_DIR / "published_efficiency.csv"
DEFAULT_PROTOCOL = "lra"


def protocol_of(config: Any) -> str:
    """The ``protocol`` key of a record's resolved config (``lra`` when absent)."""
    if isinstance(config, dict) and config.get("protocol"):
        return str(config["protocol"])
    return DEFAULT_PROTOCOL


def with_protocol(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a ``protocol`` column read from each record's config."""
    if "protocol" in runs.columns:
        return runs
    return runs.assign(protocol=[protocol_of(c) for c in runs.get("config", [None] * len(runs))])


def summarise_cell(accs: list[Any], statuses: list[str]) -> dict[str, Any]:
    """One leaderboard cell from its runs' ``test_acc`` (fractions) and ``status``.

    Returns ``mean``, ``std`` (percent; sample std, NaN for one run), ``n`` (ok runs with an
    accuracy), ``n_runs`` and ``state``: ``ok`` (at least one usable run), ``missing`` (no
    run) or the failure statuses joined by ``/`` (e.g. ``failed/diverged``).
    """
    ok = [
        100.0 * float(a)
        for a, s in zip(accs, statuses, strict=True)
        if s == "ok" and a is not None and not (isinstance(a, float) and math.isnan(a))
    ]
    cell: dict[str, Any] = {"mean": math.nan, "std": math.nan, "n": len(ok)}
    cell["n_runs"] = len(statuses)
    if ok:
        cell["mean"] = sum(ok) / len(ok)
        if len(ok) > 1:
            cell["std"] = math.sqrt(sum((a - cell["mean"]) ** 2 for a in ok) / (len(ok) - 1))
        cell["state"] = "ok"
    elif not statuses:
        cell["state"] = "missing"
    else:
        cell["state"] = "/".join(sorted({s for s in statuses if s != "ok"}) or ["no test acc"])
    return cell


def average(values: dict[str, float], tasks: tuple[str, ...]) -> tuple[float, int]:
    """Mean of the non-NaN ``values`` over ``tasks`` and how many tasks it covers."""
    got = [values[t] for t in tasks if t in values and not math.isnan(values[t])]
    return (sum(got) / len(got) if got else math.nan), len(got)


def add_averages(row: dict[str, Any], failed_pathx: bool) -> dict[str, Any]:
    """Add ``avg5``/``avg5_tasks`` and ``avg6``/``avg6_tasks`` to a wide row (see module doc)."""
    values = {t: row.get(f"{t}_mean", math.nan) for t in LRA_TASKS}
    row["avg5"], row["avg5_tasks"] = average(values, AVG5_TASKS)
    if failed_pathx and math.isnan(values["pathx"]):
        values["pathx"] = FAILED_PATHX
    row["avg6"], row["avg6_tasks"] = average(values, AVG6_TASKS)
    return row


def task_columns(tasks: list[str], present: set[str]) -> list[str]:
    """Column order: ``tasks`` first, then any other task found in the records (sorted)."""
    return list(tasks) + sorted(present - set(tasks))


def leaderboard_frame(runs: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """One wide numeric row per (protocol, configuration row) of our runs.

    ``runs`` carries ``protocol`` and ``row`` (:func:`lra.report.configs.annotate`); seeds are
    pooled within one row only, so runs of different configurations are never averaged.
    Columns: ``protocol, source ("ours"), model`` (the row label), ``method``, then per task
    ``<task>_mean``, ``_std``, ``_n``, ``_n_runs``, ``_state``, then ``avg5, avg5_tasks, avg6,
    avg6_tasks``.
    """
    if runs.empty:
        return pd.DataFrame()
    runs = with_protocol(runs)
    if "row" not in runs.columns:
        runs = runs.assign(row=runs["model"])
    columns = task_columns(tasks, set(runs["task"]))
    rows = []
    for (protocol, label), by_row in runs.groupby(["protocol", "row"], sort=True):
        row: dict[str, Any] = {"protocol": protocol, "source": OURS, "model": label}
        row["method"] = by_row["model"].iloc[0]
        for task in columns:
            sel = by_row[by_row["task"] == task]
            cell = summarise_cell(list(sel["test_acc"]), list(sel["status"]))
            row.update({f"{task}_{k}": v for k, v in cell.items()})
        pathx_state = row.get("pathx_state", "missing")
        rows.append(add_averages(row, pathx_state not in ("ok", "missing")))
    return pd.DataFrame(rows)


SELECTED = "selected on val"


def best_on_val(runs: pd.DataFrame) -> tuple[str, pd.DataFrame] | None:
    """The configuration row with the highest mean val accuracy over its ok runs, and its runs;
    None when no row has an ok run with a val accuracy. Ties go to the first label in order."""
    best: tuple[float, str, pd.DataFrame] | None = None
    for label, group in runs.groupby("row", sort=True):
        ok = group[(group["status"] == "ok") & group["val_acc"].notna()]
        if ok.empty:
            continue
        score = float(ok["val_acc"].astype(float).mean())
        if best is None or score > best[0]:
            best = (score, label, group)
    return None if best is None else (best[1], best[2])


def selected_frame(runs: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """Model selection on validation, never on test: per declared protocol, task and method,
    the configuration with the best mean val accuracy (:func:`best_on_val`, over every
    configuration of that method there, custom ones included), reported by its test accuracy
    over seeds. Wide rows per (protocol, method) like :func:`leaderboard_frame`, with
    ``<task>_choice`` naming the chosen configuration's row label; protocols are named
    ``<declared>, selected on val``."""
    if runs.empty or "row" not in runs.columns:
        return pd.DataFrame()
    columns = task_columns(tasks, set(runs["task"]))
    rows = []
    for (declared, method), by_method in runs.groupby(["declared_protocol", "model"], sort=True):
        row: dict[str, Any] = {"protocol": f"{declared}, {SELECTED}", "source": OURS}
        row |= {"model": method, "method": method}
        for task in columns:
            sel = by_method[by_method["task"] == task]
            chosen = best_on_val(sel)
            group = sel if chosen is None else chosen[1]
            cell = summarise_cell(list(group["test_acc"]), list(group["status"]))
            row.update({f"{task}_{k}": v for k, v in cell.items()})
            row[f"{task}_choice"] = None if chosen is None else chosen[0]
        pathx_state = row.get("pathx_state", "missing")
        rows.append(add_averages(row, pathx_state not in ("ok", "missing")))
    return pd.DataFrame(rows)


def val_is_test(runs: pd.DataFrame) -> list[str]:
    """Tasks among ``runs`` whose val split was the test split (Text's ``val_policy: test``)."""
    tasks = set()
    for _, run in runs.iterrows():
        config = run.get("config")
        if isinstance(config, dict) and (config.get("task") or {}).get("val_policy") == "test":
            tasks.add(run["task"])
    return sorted(tasks)


def read_published(path: str | Path = PUBLISHED_CSV) -> pd.DataFrame:
    """The published accuracy rows (``results/reference/published.csv``), all as text."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    needed = ["source", "model", *LRA_TASKS, "avg", "citation", "note"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; needs {needed}")
    return frame


def published_frame(published: pd.DataFrame, sources: list[str]) -> pd.DataFrame:
    """Published rows of ``sources`` (in that order) in the wide layout of our rows.

    A printed number becomes ``<task>_mean`` (state ``ok``); ``FAIL``/``✗`` is state ``FAIL``
    (counts as 50 in ``avg6``); anything else (``NA``, empty) is ``missing``. The printed
    average is kept as ``avg_printed``; ``avg5``/``avg6`` are recomputed by our rules.
    """
    unknown = [s for s in sources if s not in set(published["source"])]
    if unknown:
        raise ValueError(
            f"unknown published source(s) {unknown}; valid: {sorted(set(published['source']))}"
        )
    rows = []
    for source in sources:
        for _, pub in published[published["source"] == source].iterrows():
            row: dict[str, Any] = {"source": source, "model": pub["model"]}
            failed_pathx = False
            for task in LRA_TASKS:
                text = pub[task].strip()
                try:
                    mean, state = float(text), "ok"
                except ValueError:
                    mean, state = math.nan, (text if text in PUBLISHED_FAIL else "missing")
                row.update({f"{task}_mean": mean, f"{task}_state": state, f"{task}_printed": text})
                failed_pathx |= task == "pathx" and state in PUBLISHED_FAIL
            row = add_averages(row, failed_pathx)
            row.update(avg_printed=pub["avg"], citation=pub["citation"], note=pub["note"])
            rows.append(row)
    return pd.DataFrame(rows)


def best_models(frame: pd.DataFrame, column: str, digits: int, complete: int = 0) -> set[str]:
    """Models with the highest ``column`` (rounded to ``digits``; ties all win).

    With ``complete`` > 0 only rows whose ``<column>_tasks`` equals it compete (a best average
    must be a complete one).
    """
    if column not in frame.columns:
        return set()
    rows = frame
    if complete:
        rows = frame[frame[f"{column}_tasks"] == complete]
    values = rows[column].dropna().round(digits)
    if values.empty:
        return set()
    return set(rows.loc[values[values == values.max()].index, "model"])


# --------------------------------------------------------------------------- published efficiency
def read_published_efficiency(path: str | Path = PUBLISHED_EFFICIENCY_CSV) -> pd.DataFrame:
    """LRA Table 2 as published (``results/reference/published_efficiency.csv``), as text."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    needed = ["source", "model", "length", "steps_per_s", "speed_rel", "peak_gb", "citation"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; needs {needed}")
    return frame
