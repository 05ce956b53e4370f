"""The numbers of the efficiency table (LRA Table 2) from ``lra-bench`` rows; pandas only.

Rows follow :data:`lra.records.BENCH_COLUMNS`. Ratios compare points of equal settings
(:data:`lra.records.BENCH_GROUP`) and length; a re-measured point counts with its latest row.
"""

from __future__ import annotations

import pandas as pd

from lra.records import BENCH_GROUP, BENCH_KEY, latest_rows

PARAM_TOLERANCE = 0.10  # LRA rule: a method may not add more than 10% parameters
PARAM_REFERENCE = "transformer"


def relative_table(frame: pd.DataFrame, references: list[str]) -> pd.DataFrame:
    """Speed and memory of each row relative to each reference method at the same point.

    ``speed_vs_<ref>`` = steps/s of the method / steps/s of ``ref`` (> 1: faster);
    ``mem_vs_<ref>`` = peak_mb of the method / peak_mb of ``ref`` (< 1: less memory); both
    compare equal task, mode, batch, device, dtype, threads and length, and are null unless
    both points are ``ok``. Older rows of a re-measured point are ignored.
    """
    frame = latest_rows(frame, BENCH_KEY)
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

    ``params_vs_<reference>`` is the ratio to the reference's count at the same point, and
    ``over_10pct`` flags a method with more than 10% extra parameters (LRA, Tay et al. 2021).
    """
    frame = latest_rows(frame, BENCH_KEY)
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
    :func:`relative_table`, the parameter columns of :func:`params_table` and ``peak_gb``."""
    if bench.empty:
        return pd.DataFrame()
    table = relative_table(bench, references)
    params = params_table(bench)
    where = list(BENCH_GROUP) + ["length", "method"]
    table = table.merge(params.drop_duplicates(where), on=where, how="left")
    table["peak_gb"] = table["peak_mb"] / 1024
    return table.sort_values(where, kind="stable").reset_index(drop=True)
