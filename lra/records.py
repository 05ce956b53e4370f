"""The result store and its schemas, shared by the runs that write it and the reports that read it.

* Run records: one JSON file per run, ``<results_dir>/runs/<run_id>.json``. Keys: run_id,
  created, task, model, seed, status (ok|failed|diverged), val_acc, test_acc, test_acc_last,
  best_step, steps, params, train_s, steps_per_s, tokens_per_s, peak_mem_mb, device, dtype,
  torch, git_sha, data_spec, config; plus ``history`` (eval curve) and ``error``.
* Benchmark rows: tidy CSV rows of ``lra-bench`` (``BENCH_COLUMNS``), one per measured point,
  under ``<results_dir>/bench/``; a point is identified by ``BENCH_KEY``.

Missing values are null, never 0. When the same run or point was written more than once, the
latest row wins (:func:`latest_rows`). Only pandas and the standard library are imported here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

RECORD_KEYS = (
    "run_id",
    "created",
    "task",
    "model",
    "seed",
    "status",
    "val_acc",
    "test_acc",
    "test_acc_last",
    "best_step",
    "steps",
    "params",
    "train_s",
    "steps_per_s",
    "tokens_per_s",
    "peak_mem_mb",
    "device",
    "dtype",
    "torch",
    "git_sha",
    "data_spec",
    "config",
)
STATUSES = ("ok", "failed", "diverged")

BENCH_GROUP = ("task", "mode", "batch", "device", "dtype", "threads")
"""Benchmark settings whose points form one table (compared with each other)."""
BENCH_KEY = ("task", "method", "mode", "length", "batch", "device", "dtype", "threads")
"""What identifies one benchmark point: a re-measured point supersedes its older rows."""
BENCH_COLUMNS = (
    ("method", "mode", "task", "length", "batch", "device", "dtype", "threads")
    + ("step_ms", "step_ms_iqr", "steps_per_s", "tokens_per_s", "peak_mb", "mem_kind", "params")
    + ("status", "error", "warmup", "repeats", "git_sha", "torch", "created")
)
BENCH_STATUSES = ("ok", "oom", "timeout", "error", "skipped")


def latest_rows(frame: pd.DataFrame, key: str | list[str] | tuple[str, ...]) -> pd.DataFrame:
    """One row per ``key``: the one created last (``created`` column, else the last in order).

    The sort is stable, so rows with equal ``created`` keep their order and the later one wins;
    a row without ``created`` counts as older than any dated row.
    """
    if frame.empty:
        return frame.reset_index(drop=True)
    if "created" in frame.columns:
        frame = frame.sort_values("created", kind="stable", na_position="first")
    columns = [key] if isinstance(key, str) else list(key)
    return frame.drop_duplicates(columns, keep="last").reset_index(drop=True)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON so that a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def record_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / "runs" / f"{run_id}.json"


def write_record(results_dir: str | Path, record: dict[str, Any]) -> Path:
    """Validate and store one record; return its path."""
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise ValueError(f"result record lacks keys: {', '.join(missing)}")
    if record["status"] not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {record['status']!r}")
    path = record_path(results_dir, record["run_id"])
    write_json_atomic(path, record)
    return path


def read_records(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every record under ``<results_dir>/runs/*.json``, sorted by file name."""
    runs = Path(results_dir) / "runs"
    return [json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))]


def records_frame(results_dir: str | Path) -> pd.DataFrame:
    """All records as one DataFrame (one row per run id, the latest ``created`` wins)."""
    rows = read_records(results_dir)
    frame = pd.DataFrame(rows, columns=list(RECORD_KEYS) + ["history", "error"])
    return latest_rows(frame, "run_id")
