"""The result store and its schemas, shared by the runs that write it and the reports that read it.

* Run records: one JSON file per run, ``<results_dir>/runs/<run_id>.json``. Keys: schema,
  run_id, created, task, model, method_target (import path of the attention class),
  method_package and method_version (the installed distribution holding it; ``lra`` for the
  built-in methods), seed, status (ok|failed|diverged), val_acc, test_acc,
  test_acc_last, n_val, n_test (examples evaluated), best_step, steps, params, train_s,
  steps_per_s, tokens_per_s (over the steps that did not compile), compile_s, peak_mem_mb, device, dtype, torch, git_sha, data_spec, config;
  plus ``history`` (eval curve), ``error`` and ``attempts`` (earlier attempts of the same run
  id: created, status, error, steps, git_sha). A failed or diverged attempt never replaces an
  ``ok`` record: it is added to that record's ``attempts`` instead.
* Benchmark rows: tidy CSV rows of ``lra-bench`` (``BENCH_COLUMNS``), one per measured point,
  under ``<results_dir>/bench/``; a point is identified by ``BENCH_KEY``.

Missing values are null, never 0. When the same run or point was written more than once, the
latest row wins (:func:`latest_rows`). Only pandas and the standard library are imported here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

RECORD_SCHEMA = 2  # 1: before schema, n_val, n_test, attempts
RECORD_KEYS = (
    "schema",
    "run_id",
    "created",
    "task",
    "model",
    "method_target",
    "method_package",
    "method_version",
    "seed",
    "status",
    "val_acc",
    "test_acc",
    "test_acc_last",
    "n_val",
    "n_test",
    "best_step",
    "steps",
    "params",
    "train_s",
    "steps_per_s",
    "tokens_per_s",
    "compile_s",
    "peak_mem_mb",
    "device",
    "dtype",
    "torch",
    "git_sha",
    "data_spec",
    "config",
)
EXTRA_KEYS = ("history", "error", "attempts")
REQUIRED_KEYS = ("run_id", "task", "model", "seed", "status")  # what a readable record needs
STATUSES = ("ok", "failed", "diverged")
ATTEMPT_KEYS = ("created", "status", "error", "steps", "git_sha")

BENCH_SETTINGS = ("task", "mode", "batch", "device", "dtype", "threads", "compile")
"""Benchmark settings under which points can be compared at all."""
BENCH_GROUP = BENCH_SETTINGS + ("bench_id",)
"""The points of one table (compared with each other): one setting within one ``lra-bench``
invocation, so ratios never mix rows of two invocations (or two machines)."""
BENCH_KEY = ("bench_id", "method", "length") + BENCH_SETTINGS
"""What identifies one benchmark point: a point re-measured within one invocation keeps its
latest row; points of different invocations (``bench_id``) never supersede each other."""
BENCH_LEGACY_COLUMNS = (
    ("method", "mode", "task", "length", "batch", "device", "dtype", "threads")
    + ("step_ms", "step_ms_iqr", "steps_per_s", "tokens_per_s", "peak_mb", "mem_kind", "params")
    + ("status", "error", "warmup", "repeats", "git_sha", "torch", "created")
)
"""The header of bench CSVs written before ``bench_id`` and ``machine`` (upgraded on append)."""
BENCH_COLUMNS = BENCH_LEGACY_COLUMNS + (
    "bench_id",
    "machine",
    "compile",
    "compile_s",
    "sdpa_backend",
)
"""``bench_id``: one id per ``lra-bench`` call (UTC start time + random suffix; legacy rows:
``legacy-...``, see :func:`lra.report.bench_tables.legacy_bench_ids`); ``machine``: a
fingerprint of the host (CPU model, logical cores, RAM, GPUs, torch), no host or user names;
``compile``: the point ran under ``torch.compile`` (older rows: false), ``compile_s`` its first
call's time less a timed step's; ``sdpa_backend``: the fused attention kernels of
``scaled_dot_product_attention`` that ran (``flash``, ``efficient``, ``cudnn``, ``math``,
joined by ``+``; empty when the method calls none)."""
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
    """Write JSON so that a reader never sees a half-written file; a failed write (a full
    disk) removes its temporary file instead of leaving it to keep the disk full."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(obj, indent=2, default=str))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def record_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / "runs" / f"{run_id}.json"


def attempt_of(record: dict[str, Any]) -> dict[str, Any]:
    """The short form of a record kept in another record's ``attempts``."""
    return {key: record.get(key) for key in ATTEMPT_KEYS}


def write_record(results_dir: str | Path, record: dict[str, Any]) -> Path:
    """Validate and store one record; return its path.

    The record of an earlier attempt of the same run id is kept in ``attempts``; an ``ok``
    record is never replaced by a failed or diverged one: the new attempt is added to its
    ``attempts`` instead.
    """
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise ValueError(f"result record lacks keys: {', '.join(missing)}")
    if record["status"] not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {record['status']!r}")
    path = record_path(results_dir, record["run_id"])
    sweep_stale_temps(path.parent)
    previous = _read_record(path)
    if previous is not None:
        attempts = list(previous.get("attempts") or [])
        if previous.get("status") == "ok" and record["status"] != "ok":
            write_json_atomic(path, previous | {"attempts": attempts + [attempt_of(record)]})
            return path
        record = record | {"attempts": attempts + [attempt_of(previous)]}
    write_json_atomic(path, record)
    return path


STALE_TEMP_S = 3600  # a record's temporary file lives milliseconds; an hour-old one is a leftover


def sweep_stale_temps(folder: Path, now: float | None = None) -> list[Path]:
    """Remove ``*.json.tmp<pid>`` files older than ``STALE_TEMP_S`` (left by a process killed
    mid-write). Age, not pid, decides: on a shared file system a pid says nothing about
    another machine's writer, and a live write is never an hour old."""
    now = time.time() if now is None else now
    removed = []
    for tmp in folder.glob("*.json.tmp*") if folder.is_dir() else []:
        try:
            if now - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:
            continue
    return removed


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None if it is absent or unreadable."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def check_record(record: Any) -> str | None:
    """Why a parsed record cannot be reported (None when it can)."""
    if not isinstance(record, dict):
        return f"not a JSON object but {type(record).__name__}"
    missing = [key for key in REQUIRED_KEYS if record.get(key) is None]
    if missing:
        return f"lacks required field(s) {missing}"
    schema = record.get("schema") or 1
    if not isinstance(schema, int) or schema > RECORD_SCHEMA:
        return f"schema {schema!r} is newer than this lra reads ({RECORD_SCHEMA}); update lra"
    if record["status"] not in STATUSES:
        return f"status {record['status']!r} is not one of {STATUSES}"
    return None


def read_records(
    results_dir: str | Path, warn: Callable[[str], None] = _warn
) -> list[dict[str, Any]]:
    """Every readable record under ``<results_dir>/runs/*.json``, sorted by file name.

    A file that is not valid JSON or not a record (:func:`check_record`) is skipped with one
    ``warn`` line naming it and why; reading goes on.
    """
    records = []
    for path in sorted((Path(results_dir) / "runs").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as err:
            warn(f"skipping {path}: cannot read it ({err})")
            continue
        except ValueError as err:
            warn(f"skipping {path}: not valid JSON ({err})")
            continue
        problem = check_record(record)
        if problem:
            warn(f"skipping {path}: {problem}")
            continue
        records.append(record)
    return records


def records_frame(results_dir: str | Path) -> pd.DataFrame:
    """All readable records as one DataFrame (one row per run id, the latest ``created``
    wins); a record of an older schema gets null for the fields it lacks."""
    rows = read_records(results_dir)
    frame = pd.DataFrame(rows, columns=list(RECORD_KEYS) + list(EXTRA_KEYS))
    return latest_rows(frame, "run_id")
