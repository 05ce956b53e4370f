"""Plots for ``lra-report``: benchmark scaling, the LRA bubble chart and learning curves.

Every figure is a pivot of the two tidy stores: the run records (:func:`lra.records.records_frame`)
and the benchmark rows (``results/bench/*.csv``, columns in :data:`lra.records.BENCH_COLUMNS`). Each
figure is written as PNG and PDF under ``<out_dir>/plots/``:

* ``bench_time_<group>`` / ``bench_memory_<group>``: step time and peak memory against sequence
  length, log-log, one line per method; the legend gives the least-squares slope of
  ``log y`` on ``log n`` over the ok points, so O(n) (slope ~1) and O(n^2) (slope ~2) methods
  are told apart at a glance. One figure per bench group (:data:`lra.records.BENCH_GROUP`:
  task, mode, batch, device, dtype, threads and the ``lra-bench`` invocation ``bench_id``), so
  lines of two invocations never share a figure; the title names the invocation and its
  machine. Colour = method family (:data:`FAMILIES`), marker = method within its family; the
  legend, outside the axes, lists methods under their family. Points that are not ``ok`` (oom,
  timeout, skipped, error) are left out and named in the legend.
* ``lra_bubble_<protocol>_<setting>``: the chart of LRA (Tay et al. 2021, Fig. 3), one per
  protocol and bench setting (:data:`lra.records.BENCH_SETTINGS`). Speed and memory come from
  ONE invocation: the one whose ok rows cover the most plotted models (ties: the latest).
  x = steps/s at the longest length every plotted method ran ok, relative to ``transformer``
  when it is there; bubble area proportional to peak memory at that length; y = test accuracy
  (mean over ok seeds per task) averaged over the SAME tasks for every point: the tasks every
  plotted point has an ok run for, named in the title. When no task is common to all of them
  the chart is skipped with a printed reason (an average over different tasks is not
  comparable). One point per ``row`` of the runs frame when it has that column (a label per
  configuration, e.g. ``performer · lr=1e-3``), else per ``model``; a point's speed is its
  model's.
* ``learning_<protocol>_<task>``: validation accuracy against step from each run's ``history``:
  a panel per method family, a colour per configuration, seeds as thin lines around their
  mean (thick, with markers).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import LogFormatterSciNotation, MaxNLocator, NullFormatter  # noqa: E402

from lra.records import BENCH_GROUP, BENCH_SETTINGS, latest_rows  # noqa: E402
from lra.report.bench_tables import invocations, with_bench_ids  # noqa: E402
from lra.report.tables import TASK_TITLES, protocol_of  # noqa: E402

REFERENCE = "transformer"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
FAMILIES = {
    "full attention": ("transformer", "transformer_naive"),
    "fixed / local patterns": (
        "local", "sparse", "longformer", "bigbird", "htransformer", "random_decay",
        "adaptive_span",
    ),
    "learned patterns": ("reformer", "sinkhorn"),
    "low rank": ("linformer", "nystrom", "skyformer", "longshort"),
    "kernels": ("performer", "linear", "cosformer"),
    "synthesized": ("synthesizer",),
    "recurrence / memory": ("xl", "compressive"),
    "no attention": ("fnet", "s4d"),
}  # fmt: skip
"""Method families of the plots' colours (after LRA's taxonomy); other methods: ``other``."""
FAMILY_COLORS = dict(
    zip([*FAMILIES, "other"], plt.get_cmap("tab10").colors[: len(FAMILIES) + 1], strict=True)
)
STYLE = {
    "font.size": 11,
    "axes.titlesize": 11,
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

    ``runs``: one row per run (``records_frame``; optional ``row`` label column); ``bench``:
    benchmark rows (rows without ``bench_id`` get legacy ids). Either may be empty (or lack the
    needed columns): the figures that need it are then skipped.
    """
    plots = Path(out_dir) / "plots"
    written: list[Path] = []
    if _has(bench, ("method", "length", "status")):
        bench = with_bench_ids(bench)
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
    parts = [f"{prefix.get(k, '')}{v}" for k, v in keys.items() if k != "compile"]
    return _slug(*parts, *(["compiled"] if keys.get("compile") else []))


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


def family_of(method: str) -> str:
    """The family of ``method`` in :data:`FAMILIES` (``other`` when not listed)."""
    return next((f for f, names in FAMILIES.items() if method in names), "other")


def _family_styles(methods: list[str]) -> dict[str, dict]:
    """``{method: color, marker}``: colour by family, markers distinct within a family."""
    styles, count = {}, {}
    for method in sorted(methods, key=_family_order):
        family = family_of(method)
        i = count.get(family, 0)
        count[family] = i + 1
        styles[method] = {"color": FAMILY_COLORS[family], "marker": MARKERS[i % len(MARKERS)]}
    return styles


def _family_order(method: str) -> tuple[int, str]:
    return ([*FAMILIES, "other"].index(family_of(method)), method)


class _PlainLogFormatter(LogFormatterSciNotation):
    """matplotlib's choice of labelled log ticks, written as plain numbers (``600``, ``4000``)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def _has(frame: pd.DataFrame | None, columns: tuple[str, ...] | list[str]) -> bool:
    return frame is not None and not frame.empty and all(c in frame.columns for c in columns)


def _group_columns(bench: pd.DataFrame, columns=BENCH_GROUP) -> list[str]:
    return [c for c in columns if c in bench.columns]


def _setting_title(keys: dict) -> str:
    """``text · step · batch 1 · cpu:AMD EPYC · float32 · 1 thread`` (without the invocation)."""
    parts = []
    for k, v in keys.items():
        if k == "bench_id" or (k == "compile" and not v):
            continue
        labels = {"batch": f"batch {v}", "threads": f"{v} thread(s)", "compile": "torch.compile"}
        parts.append(labels.get(k, str(v)))
    return " · ".join(parts)


def _invocation_title(bench_id: str, runs: pd.DataFrame) -> str:
    """``invocation <id> (started <UTC>) · <machine>`` from :func:`invocations`."""
    text = f"invocation {bench_id}"
    if bench_id in runs.index:
        info = runs.loc[bench_id]
        stamp = pd.to_datetime(info["started"], utc=True, errors="coerce")
        if not pd.isna(stamp):
            text += f" ({stamp:%Y-%m-%d %H:%M} UTC)"
        if isinstance(info["machine"], str) and info["machine"].strip():
            text += f"\n{info['machine']}"
    return text


# ----------------------------------------------------------------------------- bench scaling


def _bench_scaling(bench: pd.DataFrame, plots: Path) -> list[Path]:
    if not _has(bench, ("method", "length", "status")):
        return []
    group_cols = _group_columns(bench)
    bench = latest_rows(bench, [*group_cols, "method", "length"])
    runs = invocations(bench)
    written = []
    groups = bench.groupby(group_cols, sort=True, dropna=False) if group_cols else [((), bench)]
    for key, rows in groups:
        keys = dict(zip(group_cols, key if isinstance(key, tuple) else (key,), strict=True))
        slug = _group_slug(keys)
        title = _setting_title(keys)
        if "bench_id" in keys:
            title += "\n" + _invocation_title(keys["bench_id"], runs)
        for column, stem, ylabel in (
            ("step_ms", "bench_time", "time per step (ms)"),
            ("peak_mb", "bench_memory", _memory_label(rows)),
        ):
            if column in rows.columns and rows.loc[rows["status"] == "ok", column].notna().any():
                fig = _scaling_figure(rows, column, ylabel, title)
                written += _save(fig, plots, f"{stem}_{slug}")
    return written


def save_scaling_figures(rows: pd.DataFrame, out: Path, stem: str, title: str) -> list[Path]:
    """Time and memory against length for the methods of ``rows`` (one bench setting):
    ``<out>/<stem>_time.png`` and ``<stem>_memory.png`` (and PDFs); the paths written."""
    written = []
    for column, suffix, ylabel in (
        ("step_ms", "time", "time per step (ms)"),
        ("peak_mb", "memory", _memory_label(rows)),
    ):
        if rows.loc[rows["status"] == "ok", column].notna().any():
            fig = _scaling_figure(rows, column, ylabel, title)
            written += _save(fig, out, f"{stem}_{suffix}")
    return written


def _memory_label(rows: pd.DataFrame) -> str:
    kinds = sorted(set(rows.get("mem_kind", pd.Series(dtype=object)).dropna()))
    return "peak memory (MB" + (f", {'/'.join(kinds)})" if kinds else ")")


def _scaling_figure(rows: pd.DataFrame, column: str, ylabel: str, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7.5, 5))
    methods = sorted(set(rows["method"]), key=_family_order)
    styles = _family_styles(methods)
    family = None
    for method in methods:
        if family_of(method) != family:  # a legend heading per family (an empty handle)
            family = family_of(method)
            ax.plot([], [], linestyle="none", marker="none", label=f"— {family} —")
        sel = rows[rows["method"] == method].sort_values("length")
        ok = sel[(sel["status"] == "ok") & sel[column].notna() & (sel[column] > 0)]
        label = _scaling_label(method, ok, sel, column)
        if ok.empty:
            ax.plot([], [], label=label, linestyle="none", **styles[method])
            continue
        ax.plot(
            ok["length"], ok[column], label=label, linewidth=1.5, markersize=6, alpha=0.9,
            **styles[method],
        )  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PlainLogFormatter())
    ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.6)))
    lengths = sorted({int(n) for n in rows["length"].dropna()})
    if 0 < len(lengths) <= 12:
        ax.set_xticks(lengths, [str(n) for n in lengths])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("sequence length n")
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, handlelength=2.5)
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


def _protocols(runs: pd.DataFrame) -> list[str]:
    """Each run's protocol: the report's (``protocol`` column: ``custom`` when the recipe
    differs, :mod:`lra.report.configs`), else the one its config declares."""
    if "protocol" in runs.columns:
        return [str(p) for p in runs["protocol"]]
    configs = runs["config"] if "config" in runs.columns else [None] * len(runs)
    return [protocol_of(c) for c in configs]


def _accuracy_by_task(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{protocol: frame(label, model, task, acc)}``: per point label (``row`` when the frame
    has that column, else ``model``) and task, the mean test accuracy over the ok seeds."""
    if not _has(runs, ("model", "task", "status", "test_acc")):
        return {}
    ok = runs[(runs["status"] == "ok") & runs["test_acc"].notna()].copy()
    if ok.empty:
        return {}
    ok["protocol"] = _protocols(ok)
    if "row" in ok.columns:
        pairs = zip(ok["row"], ok["model"], strict=True)
        ok["label"] = [r if isinstance(r, str) and r else m for r, m in pairs]
    else:
        ok["label"] = ok["model"]
    out = {}
    for protocol, sel in ok.groupby("protocol", sort=True):
        per_task = sel.groupby(["label", "model", "task"])["test_acc"].mean().reset_index()
        out[protocol] = per_task.rename(columns={"test_acc": "acc"})
    return out


def _pick_invocation(rows: pd.DataFrame, models: set[str]) -> str | None:
    """The ``bench_id`` whose ok rows cover the most of ``models`` (ties: the latest start)."""
    ok = rows[(rows["status"] == "ok") & rows["steps_per_s"].notna()]
    best = None
    for bench_id, sel in ok.groupby("bench_id", sort=False):
        covered = len(set(sel["method"]) & models)
        started = str(sel["created"].min()) if "created" in sel.columns else ""
        score = (covered, started)
        if covered and (best is None or score > best[0]):
            best = (score, bench_id)
    return None if best is None else best[1]


def _bubble_charts(runs: pd.DataFrame, bench: pd.DataFrame, plots: Path) -> list[Path]:
    accuracy = _accuracy_by_task(runs)
    if not accuracy or not _has(bench, ("method", "length", "status", "steps_per_s", "bench_id")):
        return []
    setting_cols = _group_columns(bench, BENCH_SETTINGS)
    bench = latest_rows(bench, [*setting_cols, "bench_id", "method", "length"])
    runs_info = invocations(bench)
    written = []
    groups = (
        list(bench.groupby(setting_cols, sort=True, dropna=False))
        if setting_cols
        else [((), bench)]
    )
    for protocol, acc in accuracy.items():
        for key, rows in groups:
            keys = dict(zip(setting_cols, key if isinstance(key, tuple) else (key,), strict=True))
            stem = f"lra_bubble_{_slug(protocol)}_{_group_slug(keys)}"
            bench_id = _pick_invocation(rows, set(acc["model"]))
            if bench_id is None:
                continue
            points = _bubble_points(rows[rows["bench_id"] == bench_id], acc, stem)
            if points is None:
                continue
            title = f"{_setting_title(keys)}\n{_invocation_title(bench_id, runs_info)}"
            fig = _bubble_figure(points, protocol, title)
            written += _save(fig, plots, stem)
    return written


def _bubble_points(rows: pd.DataFrame, acc: pd.DataFrame, stem: str = "") -> pd.DataFrame | None:
    """One row per plotted point (label) at the longest length all its methods ran ok, with
    accuracy averaged over the tasks common to every point; None (with a printed reason when
    only the tasks fail) if nothing can be plotted."""
    ok = rows[(rows["status"] == "ok") & rows["steps_per_s"].notna()]
    methods = sorted(set(ok["method"]) & set(acc["model"]))
    if not methods:
        return None
    common = set.intersection(*(set(ok.loc[ok["method"] == m, "length"]) for m in methods))
    if not common:
        return None
    acc = acc[acc["model"].isin(methods)]
    tasks_of = {label: set(sel["task"]) for label, sel in acc.groupby("label", sort=True)}
    tasks = set.intersection(*tasks_of.values())
    if not tasks:
        listed = "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in tasks_of.items())
        print(
            f"note: {stem or 'bubble chart'} skipped: no task has an ok run for every plotted "
            f"point, and averages over different tasks are not comparable ({listed})",
            file=sys.stderr,
        )
        return None
    tasks = [t for t in TASK_TITLES if t in tasks] + sorted(tasks - set(TASK_TITLES))
    mean = acc[acc["task"].isin(tasks)].groupby("label")["acc"].mean()
    model = acc.drop_duplicates("label").set_index("label")["model"]
    length = max(common)
    at = latest_rows(ok[ok["length"] == length], "method").set_index("method")
    labels = sorted(mean.index)
    speed = at.loc[model[labels], "steps_per_s"].astype(float).to_numpy()
    peak = at.loc[model[labels], "peak_mb"].to_numpy() if "peak_mb" in at.columns else np.nan
    points = pd.DataFrame(
        {"model": model[labels].to_numpy(), "speed": speed, "peak_mb": peak},
        index=pd.Index(labels, name="label"),
    )
    points["acc"] = mean[labels]
    points.attrs["length"] = int(length)
    points.attrs["tasks"] = tasks
    points.attrs["relative"] = REFERENCE in at.index
    if points.attrs["relative"]:
        points["speed"] = points["speed"] / float(at.loc[REFERENCE, "steps_per_s"])
    return points


def _place_labels(ax: plt.Axes, xs, ys, texts: list[str], fontsize: int = 9) -> None:
    """Each label centred on its point, unless it would overlap a label placed before (higher
    points first): then moved by whole label heights up or down (and, where that is not
    enough, sideways by half its width), with a thin leader line. Call it last: it measures
    the figure as drawn."""
    fig = ax.figure
    fig.canvas.draw()  # fixes the axes limits; gives the renderer that measures text
    renderer = fig.canvas.get_renderer()
    notes = [
        ax.annotate(
            text, (x, y), xytext=(0, 0), textcoords="offset points", ha="center", va="center",
            fontsize=fontsize,
            arrowprops={"arrowstyle": "-", "color": "0.35", "linewidth": 0.6, "shrinkA": 0},
        )
        for x, y, text in zip(xs, ys, texts, strict=True)
    ]  # fmt: skip

    def text_box(note):  # the text alone (an annotation's own extent includes its leader line)
        note.update_positions(renderer)  # apply the current offset
        return Text.get_window_extent(note, renderer)

    placed = []
    for i in sorted(range(len(texts)), key=lambda j: -ys[j]):
        note = notes[i]
        first = text_box(note)
        height, width = (v * 72 / fig.dpi for v in (first.height, first.width))  # in points
        steps = [0] + [s * k for k in range(1, 7) for s in (-1, 1)]
        candidates = [(dx, k) for dx in (0.0, -0.6, 0.6) for k in steps]
        for dx, k in candidates:
            note.set_position((dx * width, k * 1.05 * height))
            if not any(text_box(note).overlaps(other) for other in placed):
                break
        else:  # nowhere free: keep it on its point
            note.set_position((0, 0))
        placed.append(text_box(note))


def _bubble_figure(points: pd.DataFrame, protocol: str, title: str) -> plt.Figure:
    crowded = len(points) > 12
    fig, ax = plt.subplots(figsize=(9.5, 7.5) if crowded else (7.5, 5.5))
    mem = points["peak_mb"].astype(float)
    known = mem.notna() & (mem > 0)
    scale = 2500.0 / float(mem[known].max()) if known.any() else 0.0
    sizes = np.where(known, mem * scale, 60.0)
    styles = _family_styles(sorted(set(points["model"])))
    texts = []
    for i, (label, row) in enumerate(points.iterrows()):
        ax.scatter(
            row["speed"], 100 * row["acc"], s=sizes[i], color=styles[row["model"]]["color"],
            alpha=0.55, edgecolors="black", linewidths=0.8,
        )  # fmt: skip
        texts.append(str(label) + (f"\n{mem.iloc[i]:.0f} MB" if known.iloc[i] else ""))
    speeds = points["speed"].astype(float)
    if speeds.min() > 0 and speeds.max() / speeds.min() > 20:  # e.g. 0.5x to 240x
        ax.set_xscale("log")
    relative = points.attrs.get("relative", False)
    length = points.attrs.get("length")
    tasks = ", ".join(TASK_TITLES.get(t, t) for t in points.attrs.get("tasks", []))
    ax.set_xlabel(
        f"speed at n={length}: " + (f"steps/s relative to {REFERENCE}" if relative else "steps/s")
    )
    ax.set_ylabel("mean test accuracy (%)")
    ax.set_title(
        f"protocol {protocol}: accuracy (mean over {tasks}) vs speed; "
        f"bubble area ∝ peak memory\n{title}",
        loc="left",
    )
    ax.grid(True, alpha=0.3)
    ax.margins(0.25)
    xs, ys = points["speed"].to_numpy(), 100 * points["acc"].to_numpy()
    _place_labels(ax, xs, ys, texts, fontsize=8 if crowded else 9)
    return fig


# ----------------------------------------------------------------------------- learning curves


def _learning_curves(runs: pd.DataFrame, plots: Path) -> list[Path]:
    """One figure per (protocol, task): a panel per method family; in a panel each
    configuration has one colour, its seeds are thin lines and their mean a thick line with
    markers (``n`` = seeds in the mean; a run that did not end ``ok`` is dashed and left out
    of the mean)."""
    if not _has(runs, ("task", "model", "history")):
        return []
    curves = []
    runs = runs.assign(_protocol=_protocols(runs))
    for _, run in runs.iterrows():
        history = run["history"] if isinstance(run["history"], list) else []
        pts = {
            int(h["step"]): 100 * float(h["val_acc"])
            for h in history
            if isinstance(h, dict) and h.get("step") is not None and h.get("val_acc") is not None
        }
        if pts:
            label = run["row"] if isinstance(run.get("row"), str) else run["model"]
            curves.append((run["_protocol"], run["task"], label, run, pts))
    written = []
    for protocol, task in sorted({(c[0], c[1]) for c in curves}, key=str):
        by_label: dict[str, list[tuple[pd.Series, dict[int, float]]]] = {}
        for _, _, label, run, pts in (c for c in curves if c[:2] == (protocol, task)):
            by_label.setdefault(label, []).append((run, pts))
        fig = _learning_figure(by_label)
        fig.suptitle(
            f"learning curves: {TASK_TITLES.get(task, task)} (protocol {protocol}); thin: seeds,"
            " thick: their mean",
            x=0.01,
            ha="left",
        )
        written += _save(fig, plots, f"learning_{_slug(protocol, task)}")
    return written


def _learning_figure(by_label: dict[str, list[tuple[pd.Series, dict[int, float]]]]) -> plt.Figure:
    """Small multiples by method family (see :func:`_learning_curves`)."""
    model_of = {label: str(runs[0][0]["model"]) for label, runs in by_label.items()}
    families = sorted({family_of(m) for m in model_of.values()}, key=[*FAMILIES, "other"].index)
    ncols = min(len(families), 4)
    nrows = math.ceil(len(families) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.9 * ncols, 3.3 * nrows + 0.5), sharex=True, sharey=True,
        squeeze=False, layout="constrained",
    )  # fmt: skip
    for ax, family in zip(axes.flat, families, strict=False):
        labels = sorted((lb for lb, m in model_of.items() if family_of(m) == family), key=str)
        for j, label in enumerate(labels):
            color = plt.get_cmap("tab10").colors[j % 10]
            ok_curves = []
            for run, pts in by_label[label]:
                steps = sorted(pts)
                ok = run.get("status") == "ok"
                ax.plot(
                    steps, [pts[s] for s in steps], color=color, linewidth=0.7, alpha=0.45,
                    linestyle="-" if ok else "--",
                )  # fmt: skip
                if ok:
                    ok_curves.append(pts)
            common = sorted(set.intersection(*(set(p) for p in ok_curves))) if ok_curves else []
            if common:
                mean = [float(np.mean([p[s] for p in ok_curves])) for s in common]
                ax.plot(
                    common, mean, color=color, linewidth=2.0, marker=MARKERS[j % len(MARKERS)],
                    markersize=4, label=f"{label} (n={len(ok_curves)})",
                )  # fmt: skip
            else:
                ax.plot([], [], color=color, linestyle="--", label=f"{label} (no ok run)")
        ax.set_title(family, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    for i, ax in enumerate(axes.flat):
        if i >= len(families):
            ax.set_visible(False)
            continue
        ticks = i + ncols >= len(families)  # nothing visible below it: its x axis is labelled
        ax.xaxis.set_tick_params(labelbottom=ticks)
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.12 if ticks else -0.03), ncol=1,
            fontsize=8, frameon=False,
        )  # fmt: skip
    for ax in axes[:, 0]:
        ax.set_ylabel("val accuracy (%)")
    fig.supxlabel("training step", fontsize=10)
    return fig


def _isnan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)
