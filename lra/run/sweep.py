"""The jobs of a sweep: listed before it runs (``lra-train -m ... --dry-run``) and summarised
when it ends (:class:`SweepSummary`, a Hydra callback installed by ``conf/train.yaml``).

The job list is Hydra's basic sweeper expansion: the sweep file's ``hydra.sweeper.params``
(``+sweep=<name>``), then the command line, as a cartesian product of every comma list. Each
job's run id is computed from its composed config, so its record in ``results_dir`` is found
whatever the launcher (local, joblib, SLURM).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lra.config import compose
from lra.identity import make_run_id
from lra.records import record_path

FLAGS = ("-m", "--multirun")


def job_overrides(argv: list[str]) -> list[list[str]]:
    """The overrides of each job ``lra-train -m <argv>`` launches, in launch order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in argv if not a.startswith("-")]
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(args)
    fixed = [a for a, o in zip(args, parsed, strict=True) if not o.is_sweep_override()]
    cfg = compose("train", fixed, return_hydra_config=True)
    params = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.get("params") or {}).items()]
    overrides = parser.parse_overrides(params + args)
    return BasicSweeper.split_arguments(overrides, None)[0]


def job_table(argv: list[str]) -> list[dict[str, Any]]:
    """One row per job: its overrides, run id and the record in ``results_dir`` (if any)."""
    rows = []
    for number, overrides in enumerate(job_overrides(argv)):
        cfg = compose("train", [o for o in overrides if not o.startswith("hydra")])
        run_id = make_run_id(cfg)
        path = record_path(cfg.results_dir, run_id)
        try:
            record = json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            record = None
        rows.append(
            {
                "job": number,
                "overrides": overrides,
                "run_id": run_id,
                "path": path,
                "record": record,
            }
        )
    return rows


def _percent(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.2f}"


def summary_lines(rows: list[dict[str, Any]], title: str) -> list[str]:
    """A Markdown table of the jobs: status, val/test accuracy, training time, record path."""
    lines = [title, "", "| job | overrides | status | val % | test % | train s | record |"]
    lines.append("|---|---|---|---|---|---|---|")
    for row in rows:
        record = row["record"] or {}
        status = record.get("status", "no record")
        seconds = record.get("train_s")
        lines.append(
            f"| {row['job']} | {' '.join(row['overrides'])} | {status} | "
            f"{_percent(record.get('val_acc'))} | {_percent(record.get('test_acc'))} | "
            f"{'—' if seconds is None else f'{seconds:.0f}'} | {row['path']} |"
        )
    return lines


def dry_run(argv: list[str]) -> int:
    """Print the jobs ``lra-train -m <argv>`` would launch and what each has on record."""
    try:
        rows = job_table([a for a in argv if a not in FLAGS])
    except Exception as err:  # noqa: BLE001 - a bad override: one line, as Hydra would refuse
        print(f"lra-train: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    done = sum(1 for r in rows if (r["record"] or {}).get("status") == "ok")
    title = (
        f"dry run: {len(rows)} job(s), nothing launched; {done} already have an ok record "
        "(a job whose run folder holds its record is skipped when the sweep runs)"
    )
    print("\n".join(summary_lines(rows, title)))
    return 0


class SweepSummary(Callback):
    """At the end of a multirun: a table of its jobs read from their records."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            rows = job_table(list(config.hydra.overrides.task))
        except Exception as err:  # noqa: BLE001 - a summary must never fail a finished sweep
            print(f"sweep summary unavailable: {err}", file=sys.stderr)
            return
        ok = sum(1 for r in rows if (r["record"] or {}).get("status") == "ok")
        print("\n".join(summary_lines(rows, f"sweep finished: {ok} of {len(rows)} job(s) ok")))
