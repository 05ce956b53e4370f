"""Display tables of ``lra-report`` and their Markdown, LaTeX (booktabs) and HTML renderings.

A :class:`Table` holds text cells, a same-shaped mask of cells to mark as best (bold in
Markdown/HTML, ``\\textbf`` in LaTeX) and a group label per row (our runs vs each published
source), so that every format separates the groups the same way.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lra.records import BENCH_GROUP
from lra.report.tables import (
    AVG5_TASKS,
    AVG6_TASKS,
    OURS,
    TASK_TITLES,
    best_models,
)

MISSING = "—"
SOURCE_TITLES = {
    OURS: "ours",
    "lra_table1": "LRA Table 1",
    "lra_readme": "LRA README",
    "lra_table2": "LRA Table 2",
    "s4": "S4 paper",
    "mega": "Mega paper",
    "nystromformer": "Nyströmformer repo",
    "skyformer": "Skyformer paper",
    "spt": "Never Train from Scratch",
    "transformer_ls": "Transformer-LS paper",
    "cosformer": "cosFormer paper",
}
PUBLISHED_SEPARATOR = "published (other code, data and hardware)"
AVG5, AVG6 = "Avg-5", "Avg-6"
LEADERBOARD_NOTES = (
    "Cells: test accuracy (%) at the best-val step, mean ± std over seeds, n = seeds with a result; "
    "`, k not ok` = k more runs failed or diverged (never averaged in); "
    f"`{MISSING}` = no run; `failed`/`diverged` = every run of the cell did.",
    f"{AVG5}: mean over ListOps, Text, Retrieval, Image, Pathfinder (LRA Table 1). "
    f"{AVG6}: mean over all six tasks, a Path-X whose runs all failed or diverged (published: "
    "FAIL/✗) counting as 50 (the S4 tables' convention); a Path-X with no run is missing. "
    f"`(x, k/N)`: incomplete, over only k of the N tasks; `{MISSING}`: no task.",
    "Bold: best of our rows per column (averages: complete ones only). Published rows show the "
    "printed per-task numbers; their averages are recomputed by the same rules (printed "
    "averages, citations and [UNVERIFIED] marks in results/reference/published.csv).",
)


@dataclass
class Table:
    """Text cells with best marks and row groups; ``title`` is the heading / caption."""

    title: str
    cells: pd.DataFrame
    bold: pd.DataFrame
    groups: list[str]
    notes: list[str] = field(default_factory=list)
    label: str = ""


def accuracy_text(cell: dict[str, Any], digits: int = 2) -> str:
    """``mean ± std (n=k)[, j not ok]``, ``failed (n=j)`` or ``—`` from a summarised cell."""
    state, n, n_runs = cell["state"], int(cell["n"]), int(cell["n_runs"])
    if state == "missing":
        return MISSING
    if state != "ok":
        return f"{state} (n={n_runs})"
    text = f"{cell['mean']:.{digits}f}"
    if n > 1:
        text += f" ± {cell['std']:.{digits}f}"
    text += f" (n={n})"
    if n_runs > n:
        text += f", {n_runs - n} not ok"
    return text


def average_text(value: float, tasks: int, needed: int, digits: int = 2) -> str:
    """A complete average as a number; an incomplete one as ``(x, k/N)``; none as ``—``."""
    if not tasks or math.isnan(value):
        return MISSING
    if tasks < needed:
        return f"({value:.{digits}f}, {tasks}/{needed})"
    return f"{value:.{digits}f}"


def leaderboard_table(
    protocol: str,
    ours: pd.DataFrame,
    published: pd.DataFrame | None,
    tasks: list[str],
    digits: int = 2,
) -> Table:
    """The display table of one protocol: our rows, then published rows (if any)."""
    columns = ["source", "model"] + [TASK_TITLES.get(t, t) for t in tasks] + [AVG5, AVG6]
    best = {t: best_models(ours, f"{t}_mean", digits) for t in tasks}
    best[AVG5] = best_models(ours, "avg5", digits, complete=len(AVG5_TASKS))
    best[AVG6] = best_models(ours, "avg6", digits, complete=len(AVG6_TASKS))
    cells, bold, groups = [], [], []
    for _, row in ours.iterrows():
        texts, marks = [SOURCE_TITLES[OURS], row["model"]], [False, False]
        for task in tasks:
            cell = {k: row.get(f"{task}_{k}") for k in ("mean", "std", "n", "n_runs", "state")}
            if pd.isna(cell["state"]):
                cell = {"state": "missing", "n": 0, "n_runs": 0}
            text = accuracy_text(cell, digits)
            choice = row.get(f"{task}_choice")
            if isinstance(choice, str) and choice != row["model"]:
                text += f" [{choice.removeprefix(str(row['model'])).lstrip(' ·')}]"
            texts.append(text)
            marks.append(cell["state"] == "ok" and row["model"] in best[task])
        for name, col, need in ((AVG5, "avg5", 5), (AVG6, "avg6", 6)):
            texts.append(average_text(row[col], row[f"{col}_tasks"], need, digits))
            marks.append(row["model"] in best[name] and row[f"{col}_tasks"] == need)
        cells.append(texts)
        bold.append(marks)
        groups.append(OURS)
    if published is not None:
        for _, row in published.iterrows():
            texts = [SOURCE_TITLES.get(row["source"], row["source"]), row["model"]]
            for task in tasks:
                printed = row.get(f"{task}_printed", "")
                texts.append(printed if isinstance(printed, str) and printed else MISSING)
            texts.append(average_text(row["avg5"], row["avg5_tasks"], 5, digits))
            texts.append(average_text(row["avg6"], row["avg6_tasks"], 6, digits))
            cells.append(texts)
            bold.append([False] * len(texts))
            groups.append(row["source"])
    return Table(
        title=f"protocol: {protocol}",
        cells=pd.DataFrame(cells, columns=columns),
        bold=pd.DataFrame(bold, columns=columns),
        groups=groups,
        notes=list(LEADERBOARD_NOTES),
        label=f"tab:lra-leaderboard-{protocol}",
    )


def length_label(length: int) -> str:
    """``4096`` -> ``4K``; a length that is not a multiple of 1024 as is."""
    return f"{length // 1024}K" if length % 1024 == 0 else str(length)


def _invocation_text(rows: pd.DataFrame) -> str:
    """``invocation <bench_id>, started <UTC time> · machine: <fingerprint>`` of one table."""
    bench_id = rows["bench_id"].iloc[0]
    text = f"invocation {bench_id}"
    started = rows["bench_started"].dropna() if "bench_started" in rows.columns else []
    if len(started):
        stamp = pd.to_datetime(started.iloc[0], utc=True, errors="coerce")
        if not pd.isna(stamp):
            text += f", started {stamp:%Y-%m-%d %H:%M} UTC"
    machines = rows["machine"].dropna() if "machine" in rows.columns else []
    machines = [m for m in machines if str(m).strip()]
    text += f" · machine: {machines[0]}" if machines else " · machine: not recorded"
    return text


def efficiency_tables(frame: pd.DataFrame, references: list[str]) -> list[Table]:
    """LRA Table 2 layout, one table per benchmark setting and ``lra-bench`` invocation
    (:data:`lra.records.BENCH_GROUP`): steps/s and peak GB per length (with the ratios to each
    reference, computed within the invocation, in parentheses), then parameters and the 10 %
    rule. The title names the setting, the invocation (id, start) and its machine; tables
    come in the order of ``frame`` (:func:`lra.report.bench_tables.efficiency_frame` sorts
    invocations by start)."""
    tables = []
    refs = ", ".join(references)
    for group, rows in frame.groupby(list(BENCH_GROUP), sort=False, dropna=False):
        task, mode, batch, device, dtype, threads, compiled, bench_id = group
        lengths = sorted(int(n) for n in rows["length"].unique())
        order = [m for m in references if m in set(rows["method"])]
        order += sorted(set(rows["method"]) - set(order))
        columns = ["method"]
        columns += [f"steps/s {length_label(n)}" for n in lengths]
        columns += [f"peak GB {length_label(n)}" for n in lengths]
        columns += ["params", "× transformer", "≤ 10 %"]
        cells, bold = [], []
        for method in order:
            by_len = {int(r["length"]): r for _, r in rows[rows["method"] == method].iterrows()}
            texts, marks = [method], [False]
            for kind, col, fmt in (("speed", "steps_per_s", ".3g"), ("mem", "peak_gb", ".2f")):
                for n in lengths:
                    r = by_len.get(n)
                    if r is None:
                        texts.append(MISSING)
                    elif r["status"] != "ok" or pd.isna(r[col]):
                        texts.append(str(r["status"]) if r["status"] != "ok" else "n/a")
                    else:
                        ratios = [r.get(f"{kind}_vs_{ref}") for ref in references]
                        shown = ", ".join(MISSING if pd.isna(x) else f"{x:.2f}×" for x in ratios)
                        texts.append(f"{r[col]:{fmt}} ({shown})")
                    marks.append(False)
            longest = [r for n, r in sorted(by_len.items()) if not pd.isna(r.get("params"))]
            if longest:
                r = longest[-1]
                ratio = r.get("params_vs_transformer")
                over = bool(r.get("over_10pct")) if not pd.isna(ratio) else None
                texts += [
                    f"{int(r['params']):,}",
                    MISSING if pd.isna(ratio) else f"{ratio:.3f}×",
                    MISSING if over is None else ("no" if over else "yes"),
                ]
                marks += [False, False, bool(over)]
            else:
                texts += [MISSING] * 3
                marks += [False] * 3
            cells.append(texts)
            bold.append(marks)
        title = (
            f"{task} · {mode} · batch {batch} · {device} · {threads} thread(s) · {dtype} · "
            + ("torch.compile · " if compiled else "")
            + _invocation_text(rows)
        )
        slug = re.sub(r"[^A-Za-z0-9]+", "-", str(bench_id)).strip("-")
        tables.append(
            Table(
                title=title,
                cells=pd.DataFrame(cells, columns=columns),
                bold=pd.DataFrame(bold, columns=columns),
                groups=[OURS] * len(cells),
                notes=[
                    f"steps/s: training steps per second (ratios × {refs}: > 1 is faster); "
                    f"peak GB: peak memory (ratios × {refs}: < 1 is less). "
                    "Ratios compare rows of this one lra-bench invocation only. "
                    "params at the longest length, ratio to `transformer`; bold `no` breaks "
                    "LRA's rule of at most 10 % more parameters."
                ],
                label=f"tab:lra-efficiency-{task}-{mode}-b{batch}{'-compiled' * compiled}-{slug}",
            )
        )
    return tables


def published_efficiency_table(frame: pd.DataFrame) -> Table:
    """LRA Table 2 as printed (steps/s with the printed ratio, peak memory in GB)."""
    lengths = sorted(int(n) for n in frame["length"].unique())
    columns = ["model"] + [f"steps/s {length_label(n)}" for n in lengths]
    columns += [f"peak GB {length_label(n)}" for n in lengths]
    cells = []
    for model, rows in frame.groupby("model", sort=False):
        by_len = {int(r["length"]): r for _, r in rows.iterrows()}
        texts = [model]
        for n in lengths:
            r = by_len.get(n)
            rel = f" ({r['speed_rel']})" if r is not None and r["speed_rel"] else ""
            texts.append(MISSING if r is None else f"{r['steps_per_s']}{rel}")
        texts += [MISSING if n not in by_len else by_len[n]["peak_gb"] for n in lengths]
        cells.append(texts)
    citation = frame["citation"].iloc[0] if len(frame) else ""
    return Table(
        title=f"published: {citation}",
        cells=pd.DataFrame(cells, columns=columns),
        bold=pd.DataFrame(False, index=range(len(cells)), columns=columns),
        groups=["lra_table2"] * len(cells),
        notes=["As printed (ratios × Transformer); hardware and code differ from ours."],
        label="tab:lra-table2-published",
    )


# --------------------------------------------------------------------------- renderers
def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a plain DataFrame (index first)."""
    header = [table.index.name or ""] + list(table.columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.iterrows():
        lines.append("| " + " | ".join([str(index)] + [str(v) for v in row]) + " |")
    return "\n".join(lines)


def _rows_with_separators(table: Table, mark) -> list[list[str]]:
    """Marked cell texts, with one separator row where our rows end and published rows begin."""
    out: list[list[str]] = []
    width = len(table.cells.columns)
    for i, (texts, marks) in enumerate(
        zip(table.cells.itertuples(index=False), table.bold.itertuples(index=False), strict=True)
    ):
        if i and table.groups[i] != OURS and table.groups[i - 1] == OURS:
            out.append([mark(PUBLISHED_SEPARATOR, True)] + [""] * (width - 1))
        out.append([mark(str(t), bool(b)) for t, b in zip(texts, marks, strict=True)])
    return out


def markdown(table: Table) -> str:
    """GitHub-flavoured Markdown; best cells in ``**bold**``."""

    def mark(text: str, bold: bool) -> str:
        text = text.replace("|", "\\|")
        return f"**{text}**" if bold and text else text

    header = list(table.cells.columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in _rows_with_separators(table, mark):
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


LATEX_CHARS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "×": r"$\times$",
    "✗": r"$\times$",
    "‡": r"$^{\ddagger}$",
    "≤": r"$\leq$",
    "—": "---",
    "–": "--",
    "·": r"$\cdot$",
    "ö": r"\"{o}",
    "↓": r"$\downarrow$",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials (``_ % & # $ { } ~ ^ \\``) and map ``± × — ‡ ö`` to LaTeX."""
    return "".join(LATEX_CHARS.get(ch, ch) for ch in text)


def latex(table: Table) -> str:
    """A booktabs ``table`` float (``\\usepackage{booktabs}``), ready to ``\\input``; best
    cells in ``\\textbf``; a ``\\midrule`` between our rows and each published source."""
    cols = list(table.cells.columns)
    text_cols = sum(1 for c in cols if c in ("source", "model", "method"))
    spec = "l" * text_cols + "r" * (len(cols) - text_cols)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\caption{" + latex_escape(table.title) + "}",
        r"\label{" + table.label + "}",
        r"\begin{tabular}{" + spec + "}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in cols) + r" \\",
        r"\midrule",
    ]
    for i, (texts, marks) in enumerate(
        zip(table.cells.itertuples(index=False), table.bold.itertuples(index=False), strict=True)
    ):
        if i and table.groups[i] != table.groups[i - 1]:
            lines.append(r"\midrule")
        cells = [latex_escape(str(t)) for t in texts]
        cells = [r"\textbf{" + c + "}" if b else c for c, b in zip(cells, marks, strict=True)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines.append(r"\par\footnotesize " + latex_escape(" ".join(table.notes)))
    lines.append(r"\end{table}")
    return "\n".join(lines)


def html_table(table: Table) -> str:
    """An escaped ``<h2>`` + ``<table>`` (pandas ``to_html``); best cells in ``<strong>``."""

    def mark(text: str, bold: bool) -> str:
        text = html.escape(text)
        return f"<strong>{text}</strong>" if bold and text else text

    rows = _rows_with_separators(table, mark)
    frame = pd.DataFrame(rows, columns=[html.escape(c) for c in table.cells.columns])
    body = frame.to_html(index=False, escape=False, border=0, classes="lra-table")
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>\n" for n in table.notes)
    return f"<h2>{html.escape(table.title)}</h2>\n{body}\n{notes}"


def html_page(title: str, tables: list[Table], empty: str) -> str:
    """A standalone HTML page with every table (or ``empty`` when there is none)."""
    body = "\n".join(html_table(t) for t in tables) or f"<p>{html.escape(empty)}</p>"
    style = (
        "table.lra-table{border-collapse:collapse}"
        "table.lra-table td,table.lra-table th{padding:2px 8px;border-bottom:1px solid #ddd}"
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n"
        "</body></html>\n"
    )
