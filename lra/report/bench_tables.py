"""The numbers of the efficiency table (LRA Table 2) from ``lra-bench`` rows; pandas only.

Rows follow :data:`lra.records.BENCH_COLUMNS`. Ratios compare points of one table
(:data:`lra.records.BENCH_GROUP`: equal settings within one ``lra-bench`` invocation,
``bench_id``) at equal length, never rows of two invocations; a point re-measured within one
invocation counts with its latest row.

Rows without a ``bench_id`` (CSVs written before the column existed, or hand-made rows) get one
by :func:`legacy_bench_ids` whenever they are read (:func:`read_bench_csv`,
:func:`with_bench_ids`), so legacy files never need editing by hand.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lra.records import BENCH_GROUP, BENCH_KEY, BENCH_SETTINGS, latest_rows

PARAM_TOLERANCE = 0.10  # LRA rule: a method may not add more than 10% parameters
PARAM_REFERENCE = "transformer"
LEGACY_PREFIX = "legacy-"
INVOCATION_COLUMNS = ("task", "device", "dtype", "threads", "warmup", "repeats", "git_sha", "torch")
"""Columns that one ``lra-bench`` call writes with the same value into every row."""
POINT_COLUMNS = ("method", "mode", "length", "batch")
"""What one ``lra-bench`` call measures at most once (with the columns above)."""


# --------------------------------------------------------------------------- invocations
def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as comparable text (missing -> ``""``), or all ``""`` when it is absent."""
    if column not in frame.columns:
        return pd.Series("", index=frame.index)
    return frame[column].map(lambda v: "" if pd.isna(v) else str(v))


def _compact_utc(created: str) -> str | None:
    """``2026-11-23T20:16:45+00:00`` -> ``20261123T201645Z``; None when not a timestamp."""
    stamp = pd.to_datetime(created, utc=True, errors="coerce") if created else pd.NaT
    return None if pd.isna(stamp) else stamp.strftime("%Y%m%dT%H%M%SZ")


def legacy_bench_ids(frame: pd.DataFrame) -> pd.Series:
    """Invocation ids for rows written without one, from the rows alone (the legacy rule).

    Rows are read in file order (the order of ``frame``). A new invocation starts at the first
    row, and at every row where

    1. a column that one ``lra-bench`` call writes identically into all its rows
       (:data:`INVOCATION_COLUMNS`: task, device, dtype, threads, warmup, repeats, git_sha,
       torch) differs from the row before, or
    2. the point (:data:`POINT_COLUMNS`: method, mode, length, batch) already occurred in the
       current invocation (one call measures each point once; a repeat is a new call).

    An invocation's id is ``legacy-<created of its first row as YYYYMMDDTHHMMSSZ>`` (UTC), or
    ``legacy-row<N>`` (N = the first row's 1-based position) when that row has no timestamp;
    a second invocation with the same id gets ``-2`` appended, and so on. Two calls at the same
    commit that measured disjoint points back to back are indistinguishable and stay one.
    """
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    settings = list(zip(*(_text(frame, c) for c in INVOCATION_COLUMNS), strict=True))
    points = list(zip(*(_text(frame, c) for c in POINT_COLUMNS), strict=True))
    created = list(_text(frame, "created"))
    ids: list[str] = []
    used: dict[str, int] = {}
    seen: set[tuple] = set()
    current = ""
    for i, (setting, point) in enumerate(zip(settings, points, strict=True)):
        if i == 0 or setting != settings[i - 1] or point in seen:
            stamp = _compact_utc(created[i])
            base = LEGACY_PREFIX + (stamp if stamp else f"row{i + 1}")
            used[base] = used.get(base, 0) + 1
            current = base if used[base] == 1 else f"{base}-{used[base]}"
            seen = set()
        seen.add(point)
        ids.append(current)
    return pd.Series(ids, index=frame.index, dtype=object)


def with_bench_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``bench_id`` and ``machine`` columns; rows lacking a ``bench_id`` get
    :func:`legacy_bench_ids` (computed over those rows, in order) and keep ``machine`` empty.
    Rows from before ``compile`` ran eagerly (``compile`` false)."""
    frame = frame.copy()
    for column in ("machine", "compile_s", "sdpa_backend"):
        if column not in frame.columns:
            frame[column] = None
    compiled = frame["compile"] if "compile" in frame.columns else pd.Series(False, frame.index)
    frame["compile"] = compiled.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
    if "bench_id" not in frame.columns:
        frame["bench_id"] = None
    frame["bench_id"] = frame["bench_id"].astype(object)
    missing = frame["bench_id"].isna() | frame["bench_id"].astype(str).str.strip().eq("")
    if missing.any():
        frame.loc[missing, "bench_id"] = legacy_bench_ids(frame[missing])
    return frame


def read_bench_csv(path: str | Path, **read_csv) -> pd.DataFrame:
    """The rows of one ``lra-bench`` CSV with ``bench_id`` and ``machine`` (legacy rows get
    their ids by :func:`legacy_bench_ids`); the file itself is not changed."""
    return with_bench_ids(pd.read_csv(path, **read_csv))


def invocations(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ``bench_id``: ``started`` (first ``created``), ``ended`` and ``machine``."""
    frame = with_bench_ids(frame)
    created = frame["created"] if "created" in frame.columns else pd.Series(None, frame.index)
    out = pd.DataFrame(
        {
            "bench_id": frame["bench_id"],
            "created": created.where(created.notna(), None),
            "machine": frame["machine"],
        }
    )
    return out.groupby("bench_id", sort=False).agg(
        started=("created", "min"), ended=("created", "max"), machine=("machine", "first")
    )


# --------------------------------------------------------------------------- ratios
def relative_table(frame: pd.DataFrame, references: list[str]) -> pd.DataFrame:
    """Speed and memory of each row relative to each reference method at the same point.

    ``speed_vs_<ref>`` = steps/s of the method / steps/s of ``ref`` (> 1: faster);
    ``mem_vs_<ref>`` = peak_mb of the method / peak_mb of ``ref`` (< 1: less memory); both
    compare equal task, mode, batch, device, dtype, threads, invocation (``bench_id``) and
    length, and are null unless both points are ``ok``. Older rows of a point re-measured
    within one invocation are ignored.
    """
    frame = latest_rows(with_bench_ids(frame), BENCH_KEY)
    where = list(BENCH_GROUP) + ["length"]
    table = frame[where + ["method", "status", "steps_per_s", "peak_mb"]].copy()
    for ref in references:
        base = frame[(frame["method"] == ref) & (frame["status"] == "ok")]
        base = base[where + ["steps_per_s", "peak_mb"]].rename(
            columns={"steps_per_s": "ref_speed", "peak_mb": "ref_mem"}
        )
        merged = table[where].merge(base, on=where, how="left")
        ok = table["status"].eq("ok")
        table[f"speed_vs_{ref}"] = (table["steps_per_s"] / merged["ref_speed"]).where(ok)
        table[f"mem_vs_{ref}"] = (table["peak_mb"] / merged["ref_mem"]).where(ok)
    return table


def params_table(frame: pd.DataFrame, reference: str = PARAM_REFERENCE) -> pd.DataFrame:
    """Parameters per method at each length of ``mode=step`` rows, with the LRA 10% rule.

    ``params_vs_<reference>`` is the ratio to the reference's count at the same point (same
    invocation), and ``over_10pct`` flags a method with more than 10% extra parameters (LRA,
    Tay et al. 2021).
    """
    frame = latest_rows(with_bench_ids(frame), BENCH_KEY)
    rows = frame[(frame["mode"] == "step") & frame["params"].notna()]
    where = list(BENCH_GROUP) + ["length"]
    base = rows[rows["method"] == reference][where + ["params"]].rename(
        columns={"params": "ref_params"}
    )
    table = rows[where + ["method", "params"]].merge(base, on=where, how="left")
    table[f"params_vs_{reference}"] = table["params"] / table["ref_params"]
    table["over_10pct"] = table[f"params_vs_{reference}"] > 1 + PARAM_TOLERANCE
    return table.drop(columns="ref_params")


def efficiency_frame(bench: pd.DataFrame, references: list[str]) -> pd.DataFrame:
    """LRA Table 2 numbers: one row per point with the speed/memory ratios of
    :func:`relative_table`, the parameter columns of :func:`params_table`, ``peak_gb``, and
    per invocation ``bench_started`` (its first ``created``) and ``machine``. Sorted by
    setting, then invocation start, then length and method."""
    if bench.empty:
        return pd.DataFrame()
    bench = with_bench_ids(bench)
    table = relative_table(bench, references)
    params = params_table(bench)
    where = list(BENCH_GROUP) + ["length", "method"]
    table = table.merge(params.drop_duplicates(where), on=where, how="left")
    table["peak_gb"] = table["peak_mb"] / 1024
    runs = invocations(bench)
    table["bench_started"] = table["bench_id"].map(runs["started"])
    table["machine"] = table["bench_id"].map(runs["machine"])
    order = [*BENCH_SETTINGS, "bench_started", "bench_id", "length", "method"]
    return table.sort_values(order, kind="stable", na_position="first").reset_index(drop=True)
