"""The efficiency table's numbers and rendering from hand-made benchmark rows (report side)."""

from __future__ import annotations

import pandas as pd
import pytest

from lra.records import BENCH_COLUMNS
from lra.report.bench_tables import efficiency_frame, params_table, relative_table
from lra.report.formats import efficiency_tables, markdown

REFS = ["transformer_naive", "transformer"]


def row(method, length, sps=None, mb=None, status="ok", created="2026-01-02", **extra):
    base = dict.fromkeys(BENCH_COLUMNS)
    return base | {
        "task": "text", "mode": "step", "batch": 32, "device": "cpu:x", "dtype": "float32",
        "threads": 1, "method": method, "length": length, "steps_per_s": sps,
        "peak_mb": mb, "status": status, "created": created,
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
