"""The efficiency table's numbers and rendering from hand-made benchmark rows (report side),
invocations (``bench_id``) kept apart, and the legacy-id rule on the committed CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lra.config import REPO_ROOT
from lra.records import BENCH_COLUMNS
from lra.report.bench_tables import (
    efficiency_frame,
    legacy_bench_ids,
    params_table,
    read_bench_csv,
    relative_table,
    with_bench_ids,
)
from lra.report.formats import efficiency_tables, markdown

COMMITTED = Path(REPO_ROOT) / "results" / "bench" / "cpu_text.csv"

REFS = ["transformer_naive", "transformer"]


def row(method, length, sps=None, mb=None, status="ok", created="2026-01-02", **extra):
    base = dict.fromkeys(BENCH_COLUMNS)
    return base | {
        "task": "text", "mode": "step", "batch": 32, "device": "cpu:x", "dtype": "float32",
        "threads": 1, "method": method, "length": length, "steps_per_s": sps,
        "peak_mb": mb, "status": status, "created": created, "bench_id": "run1",
    } | extra  # fmt: skip


FRAME = pd.DataFrame(
    [
        row("linear", 1024, 99.0, 999.0, created="2026-01-01"),  # superseded below
        row("transformer_naive", 1024, 2.0, 1024.0, params=1000),
        row("transformer", 1024, 4.0, 512.0, params=1000),
        row("linear", 1024, 8.0, 256.0, params=1101),
        row("transformer_naive", 2048, status="oom"),
        row("transformer", 2048, 1.0, 4096.0, params=1000),
        row("linear", 2048, status="timeout"),
    ]
)


def test_relative_table_ratios_from_hand_made_rows():
    table = relative_table(FRAME, REFS).set_index(["method", "length"])
    assert len(table) == 6
    linear = table.loc[("linear", 1024)]
    assert linear["speed_vs_transformer_naive"] == 4.0
    assert linear["mem_vs_transformer_naive"] == 0.25
    assert linear["speed_vs_transformer"] == 2.0 and linear["mem_vs_transformer"] == 0.5
    assert table.loc[("transformer", 1024), "mem_vs_transformer"] == 1.0
    # reference not ok -> no ratio; point not ok -> no ratio
    assert pd.isna(table.loc[("transformer", 2048), "speed_vs_transformer_naive"])
    assert table.loc[("transformer", 2048), "speed_vs_transformer"] == 1.0
    assert pd.isna(table.loc[("linear", 2048), "speed_vs_transformer"])


def test_efficiency_table_renders_ratios_statuses_and_the_10_percent_rule():
    (table,) = efficiency_tables(efficiency_frame(FRAME, REFS), REFS)
    text = markdown(table)
    assert "| linear | 8 (4.00×, 2.00×) | timeout | 0.25 (0.25×, 0.50×) | timeout |" in text
    assert "| transformer_naive | 2 (1.00×, 0.50×) | oom | 1.00 (1.00×, 2.00×) | oom |" in text
    assert text.rstrip().endswith("| 1,101 | 1.101× | **no** |")


def test_params_table_flags_methods_over_the_lra_10_percent_rule():
    frame = pd.DataFrame(
        [
            row("transformer", 4096, params=1000),
            row("linformer", 4096, params=1100),  # exactly +10%: allowed
            row("synthesizer", 4096, params=1101),  # just over
            row("synthesizer", 4096, params=5000, mode="attention"),  # attention rows ignored
        ]
    )
    table = params_table(frame).set_index("method")
    assert list(table["over_10pct"]) == [False, False, True]
    assert table.loc["synthesizer", "params_vs_transformer"] == pytest.approx(1.101)


# --------------------------------------------------------------------------- invocations
# Two invocations of the same setting; the reference drifted 2x between them. Mixing them (the
# latest naive row for every method) would give local 8 / 1 = 8x; within run A it is 4x.
TWO_RUNS = pd.DataFrame(
    [
        row("transformer_naive", 1024, 2.0, 1000.0, created="2026-01-01T10:00", bench_id="A"),
        row("local", 1024, 8.0, 250.0, created="2026-01-01T10:01", bench_id="A"),
        row("transformer_naive", 1024, 1.0, 2000.0, created="2026-01-02T10:00", bench_id="B"),
        row("performer", 1024, 3.0, 500.0, created="2026-01-02T10:01", bench_id="B"),
    ]
)


def test_two_invocations_never_mix_in_ratios():
    table = relative_table(TWO_RUNS, REFS).set_index(["bench_id", "method"])
    assert len(table) == 4  # the naive row of A is not superseded by B's
    assert table.loc[("A", "local"), "speed_vs_transformer_naive"] == 4.0  # not 8.0
    assert table.loc[("A", "local"), "mem_vs_transformer_naive"] == 0.25  # not 0.125
    assert table.loc[("B", "performer"), "speed_vs_transformer_naive"] == 3.0  # not 1.5
    assert table.loc[("A", "transformer_naive"), "speed_vs_transformer_naive"] == 1.0
    frame = efficiency_frame(TWO_RUNS.assign(machine=["m1", "m1", "m2", "m2"]), REFS)
    first, second = efficiency_tables(frame, REFS)
    assert "invocation A, started 2026-01-01 10:00 UTC · machine: m1" in first.title
    assert "invocation B, started 2026-01-02 10:00 UTC · machine: m2" in second.title
    assert first.label != second.label
    assert "| local | 8 (4.00×, —) |" in markdown(first)
    assert "local" not in markdown(second) and "| performer | 3 (3.00×, —) |" in markdown(second)


def test_a_point_re_measured_within_one_invocation_keeps_its_latest_row():
    again = row("local", 1024, 6.0, 250.0, created="2026-01-01T10:05", bench_id="A")
    table = relative_table(pd.concat([TWO_RUNS, pd.DataFrame([again])]), REFS)
    local = table[table["method"] == "local"]
    assert len(local) == 1 and local["speed_vs_transformer_naive"].iloc[0] == 3.0


def legacy(method, length, sha="s1", created="2026-11-23T20:16:45+00:00", **extra):
    return row(method, length, 1.0, 100.0, created=created, git_sha=sha, bench_id=None) | extra


def test_legacy_ids_split_where_the_commit_changes_or_a_point_repeats():
    frame = pd.DataFrame(
        [
            legacy("transformer", 1024),
            legacy("local", 1024, created="2026-11-23T20:17:00+00:00"),
            # the commit changes: a new invocation
            legacy("local", 2048, sha="s2", created="2026-11-23T21:00:00+00:00"),
            # local 2048 again at the same commit: a new invocation
            legacy("local", 2048, sha="s2", created="2026-11-23T21:05:00+00:00"),
            # a repeat starting in the same second as the last start; then a row without a date
            legacy("local", 2048, sha="s2", created="2026-11-23T21:05:00+00:00"),
            legacy("transformer", 1024, sha="s3", created=None),
        ]
    )
    ids = list(legacy_bench_ids(frame))
    assert ids == [
        "legacy-20261123T201645Z",
        "legacy-20261123T201645Z",
        "legacy-20261123T210000Z",
        "legacy-20261123T210500Z",
        "legacy-20261123T210500Z-2",
        "legacy-row6",
    ]
    assert list(legacy_bench_ids(frame.astype(str).replace("None", ""))) == ids  # text read
    # rows that have an id keep it; only the others get legacy ids
    mixed = with_bench_ids(frame.assign(bench_id=["x", None, None, None, None, None]))
    assert list(mixed["bench_id"]) == ["x", *legacy_bench_ids(frame.iloc[1:])]


def test_committed_cpu_text_csv_splits_into_its_runs():
    frame = read_bench_csv(COMMITTED)
    runs = list(dict.fromkeys(frame["bench_id"]))
    assert runs[:2] == ["legacy-20261123T201645Z", "legacy-20261123T205026Z"]
    # every later call measured every method at once, with its own id and the host's
    # fingerprint, at one commit
    assert len(runs) >= 3
    for run in runs[2:]:
        later = frame[frame["bench_id"] == run]
        assert not run.startswith("legacy-")
        assert later["method"].nunique() == 23 and len(later) == 92
        assert later["machine"].nunique() == 1 and later["git_sha"].nunique() == 1
    measured_local = frame.loc[frame["method"] == "local", "bench_id"].nunique()
    frame = frame[frame["bench_id"].isin(runs[:2])]
    first, second = (frame[frame["bench_id"] == r] for r in runs[:2])
    assert len(first) == 48 and len(second) == 52
    assert first["method"].nunique() == 12 and second["method"].nunique() == 13
    # zoo II re-measured both references as its own; every other method is in one run only
    both = set(first["method"]) & set(second["method"])
    assert both == {"transformer", "transformer_naive"}
    # the boundary is where git_sha changes and where transformer_naive 1024 repeats
    assert first["git_sha"].nunique() == second["git_sha"].nunique() == 1
    assert second.iloc[0][["method", "length"]].tolist() == ["transformer_naive", 1024]
    # ratios within the first run: local at 4K is 12.0x transformer_naive (13.74x mixed)
    eff = efficiency_frame(read_bench_csv(COMMITTED), REFS)
    local = eff[(eff["method"] == "local") & (eff["length"] == 4096)]
    assert len(local) == measured_local  # a row per call measuring it: ratios never mix calls
    local = local[local["bench_id"] == runs[0]]
    assert local["speed_vs_transformer_naive"].iloc[0] == pytest.approx(12.0, abs=0.005)
    assert local["bench_id"].iloc[0] == runs[0]


def test_a_setting_without_a_value_still_gets_its_table():
    rows = FRAME.assign(threads=None)  # e.g. rows of a device whose thread count was not set
    tables = efficiency_tables(efficiency_frame(rows, REFS), REFS)
    assert len(tables) == 1 and "linear" in markdown(tables[0])
