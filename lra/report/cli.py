"""``lra-report``: leaderboard and efficiency tables from the result records and benchmark rows.

    lra-report [results_dir=results] [out_dir=results] [plots=true] [source=files|wandb]

Reads every run record (``<results_dir>/runs/*.json``, or wandb with ``source=wandb``) and every
benchmark row (``<results_dir>/bench/*.csv``) into pandas, de-duplicating re-runs (run id;
bench point), and writes to ``out_dir``:

* ``runs.csv`` (and ``runs.parquet`` when pyarrow is importable): the long-form frame, one row
  per run (``kind=run``) or benchmark point (``kind=bench``);
* ``leaderboard.{md,csv,tex,html}``: per protocol (the ``protocol`` key of each record's
  config; ``smoke`` never mixes with ``lra``), models x tasks, test accuracy at the best-val
  step as mean ± std over seeds with n, the 5-task and 6-task averages
  (:mod:`lra.report.tables`), the best value per column marked, and the published rows of
  ``results/reference/published.csv`` below ours (protocols in ``published_protocols``);
* ``efficiency.{md,csv,tex,html}``: LRA Table 2 (Tay et al. 2021, §3.4): steps/s and peak
  memory per length relative to ``references``, parameters with the 10 % rule
  (:mod:`lra.report.bench_tables`), and the published
  Table 2;
* ``plots/`` (:mod:`lra.report.plots`) when ``plots=true``.

Missing values never count as 0. Reporting reads files only: it imports pandas and matplotlib,
never torch, ``models`` or ``tasks``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from lra.config import CONF_DIR
from lra.records import BENCH_KEY, RECORD_KEYS, latest_rows, records_frame
from lra.report.bench_tables import efficiency_frame
from lra.report.configs import CUSTOM, annotate
from lra.report.formats import (
    MISSING,
    Table,
    accuracy_text,
    efficiency_tables,
    html_page,
    latex,
    leaderboard_table,
    markdown,
    published_efficiency_table,
    to_markdown,
)
from lra.report.tables import (
    LRA_TASKS,
    PUBLISHED_CSV,
    PUBLISHED_EFFICIENCY_CSV,
    SELECTED,
    TASK_TITLES,
    leaderboard_frame,
    published_frame,
    read_published,
    read_published_efficiency,
    selected_frame,
    summarise_cell,
    val_is_test,
)

__all__ = ["MISSING", "format_cell", "leaderboard", "to_markdown", "write_report", "main"]
SOURCES = ("files", "wandb")
SELECTS = ("none", "val")
ANNOTATIONS = ("declared_protocol", "fingerprint", "diff", "protocol", "row")
DEFAULT_PUBLISHED = ("lra_table1", "s4", "mega")


class ReportError(ValueError):
    """A bad ``lra-report`` option; the message names it and the valid values."""


# --------------------------------------------------------------------------- kept API
def format_cell(accs: list[float], statuses: list[str], digits: int = 2) -> str:
    """``mean ± std (n=k)`` in percent over the ok runs; says ``failed``/``diverged`` otherwise."""
    return accuracy_text(summarise_cell(list(accs), list(statuses)), digits)


def leaderboard(frame: pd.DataFrame, tasks: list[str], digits: int = 2) -> dict[str, pd.DataFrame]:
    """``{protocol: table}`` of plain cell texts: one row per model, one column per task."""
    wide = leaderboard_frame(frame, tasks)
    tables = {}
    for protocol, rows in wide.groupby("protocol", sort=True) if not wide.empty else []:
        table = leaderboard_table(protocol, rows, None, _tasks_of(rows, tasks), digits)
        cells = table.cells.drop(columns="source").set_index("model")
        cells.columns = _tasks_of(rows, tasks) + ["avg5", "avg6"]
        tables[protocol] = cells
    return tables


def _tasks_of(rows: pd.DataFrame, tasks: list[str]) -> list[str]:
    """``tasks`` then any other task that has columns in the wide frame ``rows``."""
    found = [c.removesuffix("_state") for c in rows.columns if c.endswith("_state")]
    return list(tasks) + [t for t in found if t not in tasks and rows[f"{t}_state"].notna().any()]


# --------------------------------------------------------------------------- loading
def load_runs(
    results_dir: str | Path, source: str = "files", project: str | None = None, entity=None
) -> pd.DataFrame:
    """Run records (one row per run id, the latest ``created`` wins), annotated with their
    configuration: ``fingerprint``, ``diff``, ``protocol`` and ``row``
    (:func:`lra.report.configs.annotate`)."""
    if source not in SOURCES:
        raise ReportError(f"source={source!r} is not valid; use one of {', '.join(SOURCES)}")
    if source == "files":
        runs = records_frame(results_dir)
    else:
        try:
            from lra.report.wandb_import import records_from_wandb
        except ImportError as err:
            raise ReportError(f"source=wandb needs lra.report.wandb_import ({err})") from None
        if not project:
            raise ReportError("source=wandb needs wandb_project=<project>")
        try:
            records = records_from_wandb(project, entity)
        except (ValueError, RuntimeError) as err:  # wandb_import: bad name, network, auth
            raise ReportError(f"source=wandb: {err}") from None
        runs = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
        runs = runs.reindex(columns=list(dict.fromkeys([*RECORD_KEYS, *runs.columns])))
        runs = latest_rows(runs, "run_id")
    if runs.empty:
        return runs.assign(**{c: pd.Series(dtype=object) for c in ANNOTATIONS})
    return annotate(runs)


def load_bench(results_dir: str | Path) -> pd.DataFrame:
    """Every ``lra-bench`` row under ``<results_dir>/bench/*.csv`` (not the ``_relative`` files)
    with its invocation (``bench_id``; rows of CSVs written before that column get theirs by
    :func:`lra.report.bench_tables.legacy_bench_ids`) and ``machine``; a point re-measured
    within one invocation keeps its latest row; a ``source_file`` column names the CSV."""
    from lra.report.bench_tables import with_bench_ids

    frames = []
    for path in sorted((Path(results_dir) / "bench").glob("*.csv")):
        if path.stem.endswith("_relative"):
            continue
        frame = pd.read_csv(path)
        if not {"step_ms", "mem_kind"} <= set(frame.columns):
            continue
        frames.append(with_bench_ids(frame).assign(source_file=path.name))
    if not frames:
        return pd.DataFrame()
    return latest_rows(pd.concat(frames, ignore_index=True), BENCH_KEY)


def long_frame(runs: pd.DataFrame, bench: pd.DataFrame) -> pd.DataFrame:
    """One long-form frame: runs (``kind=run``; dict fields as JSON, no history) and benchmark
    points (``kind=bench``; ``model`` = the benchmarked method)."""
    parts = []
    if not runs.empty:
        flat = runs.drop(columns=[c for c in ("history",) if c in runs.columns]).copy()
        for col in ("config", "data_spec"):
            if col in flat.columns:
                flat[col] = [
                    None if v is None else json.dumps(v, sort_keys=True) for v in flat[col]
                ]
        parts.append(flat.assign(kind="run"))
    if not bench.empty:
        parts.append(bench.assign(kind="bench", model=bench["method"]))
    if not parts:
        return pd.DataFrame(columns=["kind"])
    frame = pd.concat(parts, ignore_index=True)
    return frame[["kind"] + [c for c in frame.columns if c != "kind"]]


# --------------------------------------------------------------------------- writing
def _write_all(out: Path, stem: str, tables: list[Table], heading: str, empty: str) -> str:
    parts = [f"# {heading}\n"]
    for table in tables:
        notes = "".join(f"\n{n}\n" for n in table.notes)
        parts.append(f"## {table.title}\n\n{markdown(table)}\n{notes}")
    text = "\n".join(parts) if tables else f"{empty}\n"
    (out / f"{stem}.md").write_text(text)
    tex = "\n\n".join(latex(t) for t in tables) if tables else f"% {empty}"
    (out / f"{stem}.tex").write_text(f"% {heading} (written by lra-report)\n{tex}\n")
    (out / f"{stem}.html").write_text(html_page(heading, tables, empty))
    return text


def write_report(
    results_dir: str | Path,
    out_dir: str | Path,
    tasks: list[str],
    digits: int = 2,
    *,
    published_csv: str | Path | None = PUBLISHED_CSV,
    published_sources: list[str] = DEFAULT_PUBLISHED,
    published_protocols: list[str] = ("lra",),
    published_efficiency_csv: str | Path | None = PUBLISHED_EFFICIENCY_CSV,
    references: list[str] = ("transformer_naive", "transformer"),
    runs: pd.DataFrame | None = None,
    plots: bool = False,
    select: str = "none",
) -> str:
    """Write every table to ``out_dir`` (see the module doc); return the leaderboard Markdown.

    ``runs`` overrides the records read from ``results_dir`` (e.g. from wandb).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs(results_dir) if runs is None else runs
    bench = load_bench(results_dir)

    long = long_frame(runs, bench)
    long.to_csv(out / "runs.csv", index=False)
    try:
        import pyarrow  # noqa: F401

        long.astype({c: "string" for c in long.columns if long[c].dtype == object}).to_parquet(
            out / "runs.parquet", index=False
        )
    except ImportError:
        pass

    # accuracy leaderboard: one table per protocol; with select=val also the chosen configurations
    if select not in SELECTS:
        raise ReportError(f"select={select!r} is not valid; use one of {', '.join(SELECTS)}")
    wide = leaderboard_frame(runs, list(tasks))
    if select == "val":
        wide = pd.concat([wide, selected_frame(runs, list(tasks))], ignore_index=True)
    published = None
    if published_csv and published_sources:
        published = published_frame(read_published(published_csv), list(published_sources))
    tables, csv_parts = [], []
    for protocol, rows in wide.groupby("protocol", sort=True) if not wide.empty else []:
        pub = published if protocol in published_protocols else None
        table = leaderboard_table(protocol, rows, pub, _tasks_of(rows, list(tasks)), digits)
        table.notes = protocol_notes(protocol, runs) + table.notes
        tables.append(table)
        csv_parts.append(rows)
        if pub is not None:
            csv_parts.append(pub.assign(protocol=protocol))
    board = pd.concat(csv_parts, ignore_index=True) if csv_parts else pd.DataFrame()
    board.to_csv(out / "leaderboard.csv", index=False)
    heading = "Leaderboard: test accuracy (%) at the best-val step, mean ± std over seeds"
    text = _write_all(out, "leaderboard", tables, heading, "No result records found.")

    # efficiency
    refs = list(references)
    eff = efficiency_frame(bench, refs)
    eff.to_csv(out / "efficiency.csv", index=False)
    eff_tables = efficiency_tables(eff, refs) if not eff.empty else []
    if published_efficiency_csv and eff_tables:
        eff_tables.append(
            published_efficiency_table(read_published_efficiency(published_efficiency_csv))
        )
    _write_all(
        out,
        "efficiency",
        eff_tables,
        "Efficiency (LRA Table 2 format): training steps/s and peak memory per length",
        "No benchmark rows found (run lra-bench).",
    )

    if plots:
        from lra.report.plots import write_plots

        write_plots(runs, bench, out)
    return text


def protocol_notes(protocol: str, runs: pd.DataFrame) -> list[str]:
    """What a table's protocol means, written above its cells' notes."""
    if protocol.endswith(SELECTED):
        declared = protocol.removesuffix(f", {SELECTED}")
        notes = [
            f"Model selection on validation: per task and method, the configuration (among "
            f"every `{declared}` run of that method, custom ones included) with the best mean "
            "val accuracy; the cell is its test accuracy over seeds and [brackets] name how it "
            "differs from the recipe. No published rows: they were not tuned the same way."
        ]
        from_runs = (
            runs[runs["declared_protocol"] == declared] if "declared_protocol" in runs else runs
        )
        same = val_is_test(from_runs)
        if same:
            notes.append(
                f"{', '.join(TASK_TITLES.get(t, t) for t in same)}: val is the test split "
                "(`val_policy: test`, as in LRA), so choosing on val there is choosing on test."
            )
        return notes
    if protocol == CUSTOM or protocol.endswith(f"-{CUSTOM}"):
        base = "lra" if protocol == CUSTOM else protocol.removesuffix(f"-{CUSTOM}")
        return [
            f"Custom: runs whose recipe (`task.*`) differs from the `{base}` protocol's or whose "
            "evaluation was capped (`trainer.max_eval_batches`); each row names what differs. "
            "Not comparable with published numbers."
        ]
    return []


def _list(value: Any) -> list:
    value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return [] if value is None else ([value] if isinstance(value, str) else list(value))


def run(cfg: DictConfig) -> str:
    """``lra-report`` with a composed ``conf/report.yaml``."""
    source = str(cfg.source)
    runs = load_runs(cfg.results_dir, source, cfg.wandb_project, cfg.wandb_entity)
    unknown = [t for t in _list(cfg.tasks) if t not in LRA_TASKS]
    if unknown:
        print(f"note: tasks {unknown} are not LRA tasks ({', '.join(LRA_TASKS)})", file=sys.stderr)
    text = write_report(
        cfg.results_dir,
        cfg.out_dir,
        _list(cfg.tasks),
        int(cfg.digits),
        published_csv=cfg.published_csv or PUBLISHED_CSV,
        published_sources=_list(cfg.published_sources),
        published_protocols=_list(cfg.published_protocols),
        published_efficiency_csv=cfg.published_efficiency_csv or PUBLISHED_EFFICIENCY_CSV,
        references=_list(cfg.references),
        runs=runs,
        plots=bool(cfg.plots),
        select=str(cfg.select),
    )
    return text


@hydra.main(config_path=str(CONF_DIR), config_name="report", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        text = run(cfg)
    except (ReportError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    print(text)
    out = Path(cfg.out_dir)
    print(
        f"written to {out}/: leaderboard.{{md,csv,tex,html}}, efficiency.{{md,csv,tex,html}}, runs.csv"
    )


def main() -> None:
    """Console entry point ``lra-report``."""
    _hydra_main()


if __name__ == "__main__":
    main()
