"""Plots for ``lra-report``: benchmark scaling, the LRA bubble chart and learning curves.

Every figure is a pivot of the two tidy stores: the run records (:func:`lra.records.records_frame`)
and the benchmark rows (``results/bench/*.csv``, columns in :data:`lra.records.BENCH_COLUMNS`). Each
figure is written as PNG and PDF under ``<out_dir>/plots/``:

* ``bench_time_<group>`` / ``bench_memory_<group>``: step time and peak memory against sequence
  length, log-log, one line per method; the legend gives the least-squares slope of
  ``log y`` on ``log n`` over the ok points, so O(n) (slope ~1) and O(n^2) (slope ~2) methods
  are told apart at a glance. One figure per bench group (task, mode, batch, device, dtype,
  threads); points that are not ``ok`` (oom, timeout, skipped, error) are left out and named in
  the legend.
* ``lra_bubble_<protocol>_<group>``: the chart of LRA (Tay et al. 2021, Fig. 3): x = speed
  (steps/s at the longest length every plotted method ran, relative to ``transformer`` when it
  is there), y = accuracy averaged over the tasks a model has ok runs for, bubble area
  proportional to peak memory at that length.
* ``learning_<protocol>_<task>``: validation accuracy against step from each run's ``history``,
  one line per (model, seed).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter  # noqa: E402

from lra.records import BENCH_GROUP, latest_rows  # noqa: E402
from lra.report.tables import protocol_of  # noqa: E402

REFERENCE = "transformer"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "figure.dpi": 110,
    "savefig.dpi": 150,
}


def loglog_slope(lengths: np.ndarray, values: np.ndarray) -> float | None:
    """Least-squares slope of ``log(values)`` on ``log(lengths)``; None with < 2 distinct lengths.

    Non-positive values and lengths are dropped (their log is undefined).
    """
    n = np.asarray(lengths, dtype=float)
    y = np.asarray(values, dtype=float)
    keep = (n > 0) & (y > 0) & np.isfinite(n) & np.isfinite(y)
    n, y = n[keep], y[keep]
    if len(np.unique(n)) < 2:
        return None
    return float(np.polyfit(np.log(n), np.log(y), 1)[0])


def write_plots(runs: pd.DataFrame, bench: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write every plot the inputs allow into ``<out_dir>/plots/``; return the written paths.

    ``runs``: one row per run (``records_frame``); ``bench``: benchmark rows. Either may be
    empty (or lack the needed columns): the figures that need it are then skipped.
    """
    plots = Path(out_dir) / "plots"
    written: list[Path] = []
    with plt.rc_context(STYLE):
        written += _bench_scaling(bench, plots)
        written += _bubble_charts(runs, bench, plots)
        written += _learning_curves(runs, plots)
    return written


# ----------------------------------------------------------------------------- helpers


def _slug(*parts: object) -> str:
    """File-name safe: parts joined by ``_``, other odd characters replaced by ``-``."""
    clean = [re.sub(r"[^A-Za-z0-9.\-]+", "-", str(p)).strip("-") for p in parts]
    return "_".join(c for c in clean if c and c != "nan")


def _group_slug(keys: dict) -> str:
    prefix = {"batch": "b", "threads": "t"}
    return _slug(*(f"{prefix.get(k, '')}{v}" for k, v in keys.items()))


def _save(fig: plt.Figure, plots: Path, stem: str) -> list[Path]:
    plots.mkdir(parents=True, exist_ok=True)
    paths = [plots / f"{stem}.png", plots / f"{stem}.pdf"]
    for path in paths:
        fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return paths


def _style(i: int) -> dict:
    colors = plt.get_cmap("tab20").colors
    return {"color": colors[(2 * i) % 20 + (2 * i // 20) % 2], "marker": MARKERS[i % len(MARKERS)]}


def _has(frame: pd.DataFrame | None, columns: tuple[str, ...] | list[str]) -> bool:
    return frame is not None and not frame.empty and all(c in frame.columns for c in columns)


def _group_columns(bench: pd.DataFrame) -> list[str]:
    return [c for c in BENCH_GROUP if c in bench.columns]


def _group_title(keys: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in keys.items())


# ----------------------------------------------------------------------------- bench scaling


def _bench_scaling(bench: pd.DataFrame, plots: Path) -> list[Path]:
    if not _has(bench, ("method", "length", "status")):
        return []
    group_cols = _group_columns(bench)
    bench = latest_rows(bench, [*group_cols, "method", "length"])
    written = []
    groups = bench.groupby(group_cols, sort=True, dropna=False) if group_cols else [((), bench)]
    for key, rows in groups:
        keys = dict(zip(group_cols, key if isinstance(key, tuple) else (key,), strict=True))
        slug = _group_slug(keys)
        for column, stem, ylabel in (
            ("step_ms", "bench_time", "time per step (ms)"),
            ("peak_mb", "bench_memory", _memory_label(rows)),
        ):
            if column in rows.columns and rows.loc[rows["status"] == "ok", column].notna().any():
                fig = _scaling_figure(rows, column, ylabel, _group_title(keys))
                written += _save(fig, plots, f"{stem}_{slug}")
    return written


def _memory_label(rows: pd.DataFrame) -> str:
    kinds = sorted(set(rows.get("mem_kind", pd.Series(dtype=object)).dropna()))
    return "peak memory (MB" + (f", {'/'.join(kinds)})" if kinds else ")")


def _scaling_figure(rows: pd.DataFrame, column: str, ylabel: str, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, (method, sel) in enumerate(rows.groupby("method", sort=True)):
        sel = sel.sort_values("length")
        ok = sel[(sel["status"] == "ok") & sel[column].notna() & (sel[column] > 0)]
        label = _scaling_label(method, ok, sel, column)
        if ok.empty:
            ax.plot([], [], label=label, linestyle="none", **_style(i))
            continue
        ax.plot(ok["length"], ok[column], label=label, linewidth=1.6, markersize=5, **_style(i))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    lengths = sorted({int(n) for n in rows["length"].dropna()})
    if 0 < len(lengths) <= 12:
        ax.set_xticks(lengths, [str(n) for n in lengths])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("sequence length n")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def _scaling_label(method: str, ok: pd.DataFrame, sel: pd.DataFrame, column: str) -> str:
    slope = loglog_slope(ok["length"].to_numpy(), ok[column].to_numpy())
    parts = [f"slope {slope:.2f}" if slope is not None else f"{len(ok)} pt"]
    bad = sel[sel["status"] != "ok"]
    if not bad.empty:
        first = bad.iloc[0]
        parts.append(f"{first['status']} from n={int(first['length'])}")
    return f"{method} ({', '.join(parts)})"


# ----------------------------------------------------------------------------- bubble chart


def _accuracy_by_model(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{protocol: frame(model, acc, n_tasks)}``: mean over tasks of the mean over ok seeds."""
    if not _has(runs, ("model", "task", "status", "test_acc")):
        return {}
    ok = runs[(runs["status"] == "ok") & runs["test_acc"].notna()].copy()
    if ok.empty:
        return {}
    configs = ok["config"] if "config" in ok.columns else [None] * len(ok)
    ok["protocol"] = [protocol_of(c) for c in configs]
    out = {}
    for protocol, sel in ok.groupby("protocol", sort=True):
        per_task = sel.groupby(["model", "task"])["test_acc"].mean().reset_index()
        acc = per_task.groupby("model")["test_acc"].agg(["mean", "count"])
        out[protocol] = acc.rename(columns={"mean": "acc", "count": "n_tasks"})
    return out


def _bubble_charts(runs: pd.DataFrame, bench: pd.DataFrame, plots: Path) -> list[Path]:
    accuracy = _accuracy_by_model(runs)
    if not accuracy or not _has(bench, ("method", "length", "status", "steps_per_s")):
        return []
    group_cols = _group_columns(bench)
    bench = latest_rows(bench, [*group_cols, "method", "length"])
    written = []
    groups = (
        list(bench.groupby(group_cols, sort=True, dropna=False)) if group_cols else [((), bench)]
    )
    for protocol, acc in accuracy.items():
        for key, rows in groups:
            keys = dict(zip(group_cols, key if isinstance(key, tuple) else (key,), strict=True))
            points = _bubble_points(rows, acc)
            if points is None:
                continue
            fig = _bubble_figure(points, protocol, _group_title(keys))
            slug = f"{_slug(protocol)}_{_group_slug(keys)}"
            written += _save(fig, plots, f"lra_bubble_{slug}")
    return written


def _bubble_points(rows: pd.DataFrame, acc: pd.DataFrame) -> pd.DataFrame | None:
    """One row per plotted method at the longest length they all ran ok; None if no overlap."""
    ok = rows[(rows["status"] == "ok") & rows["steps_per_s"].notna()]
    methods = sorted(set(ok["method"]) & set(acc.index))
    if not methods:
        return None
    common = set.intersection(*(set(ok.loc[ok["method"] == m, "length"]) for m in methods))
    if not common:
        return None
    length = max(common)
    at = latest_rows(ok[ok["length"] == length], "method").set_index("method")
    points = pd.DataFrame(
        {
            "speed": at.loc[methods, "steps_per_s"].astype(float),
            "peak_mb": at.loc[methods, "peak_mb"] if "peak_mb" in at.columns else np.nan,
            "acc": acc.loc[methods, "acc"],
            "n_tasks": acc.loc[methods, "n_tasks"],
        },
        index=methods,
    )
    points.attrs["length"] = int(length)
    points.attrs["relative"] = REFERENCE in at.index
    if points.attrs["relative"]:
        points["speed"] = points["speed"] / float(at.loc[REFERENCE, "steps_per_s"])
    return points


def _bubble_figure(points: pd.DataFrame, protocol: str, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    mem = points["peak_mb"].astype(float)
    known = mem.notna() & (mem > 0)
    scale = 2500.0 / float(mem[known].max()) if known.any() else 0.0
    sizes = np.where(known, mem * scale, 60.0)
    varied_tasks = points["n_tasks"].nunique() > 1
    for i, (model, row) in enumerate(points.iterrows()):
        style = _style(i)
        ax.scatter(
            row["speed"], 100 * row["acc"], s=sizes[i], color=style["color"], alpha=0.55,
            edgecolors="black", linewidths=0.8,
        )  # fmt: skip
        text = model + (
            f" ({int(row['n_tasks'])} task{'s' if row['n_tasks'] != 1 else ''})"
            if varied_tasks
            else ""
        )
        if known.iloc[i]:
            text += f"\n{mem.iloc[i]:.0f} MB"
        ax.annotate(text, (row["speed"], 100 * row["acc"]), ha="center", va="center", fontsize=9)
    relative = points.attrs.get("relative", False)
    length = points.attrs.get("length")
    ax.set_xlabel(
        f"speed at n={length}: " + (f"steps/s relative to {REFERENCE}" if relative else "steps/s")
    )
    ax.set_ylabel(f"average test accuracy (%), protocol {protocol}")
    ax.set_title(f"accuracy vs speed; bubble area ∝ peak memory\n{title}")
    ax.grid(True, alpha=0.3)
    ax.margins(0.25)
    return fig


# ----------------------------------------------------------------------------- learning curves


def _learning_curves(runs: pd.DataFrame, plots: Path) -> list[Path]:
    if not _has(runs, ("task", "model", "history")):
        return []
    curves = []
    for _, run in runs.iterrows():
        history = run["history"] if isinstance(run["history"], list) else []
        pts = [
            (h["step"], h["val_acc"])
            for h in history
            if isinstance(h, dict) and h.get("step") is not None and h.get("val_acc") is not None
        ]
        if pts:
            config = run["config"] if "config" in runs.columns else None
            curves.append(
                (protocol_of(config), run["task"], run["model"], run.get("seed"), run, pts)
            )
    written = []
    for protocol, task in sorted({(c[0], c[1]) for c in curves}, key=str):
        sel = sorted((c for c in curves if c[:2] == (protocol, task)), key=lambda c: str(c[2:4]))
        models = sorted({c[2] for c in sel})
        fig, ax = plt.subplots(figsize=(8, 5))
        for _, _, model, seed, run, pts in sel:
            steps, accs = zip(*sorted(pts), strict=True)
            status = run.get("status")
            seed_text = "" if seed is None or _isnan(seed) else f" s{int(seed)}"
            ax.plot(
                steps, [100 * a for a in accs], label=f"{model}{seed_text}"
                + ("" if status == "ok" else f" ({status})"),
                linestyle="-" if status == "ok" else "--", linewidth=1.6, markersize=4,
                **_style(models.index(model)),
            )  # fmt: skip
        ax.set_xlabel("training step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(f"learning curves: {task} (protocol {protocol})")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        written += _save(fig, plots, f"learning_{_slug(protocol, task)}")
    return written


def _isnan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)
