"""lra-bench: rows and their schema, the relative table, failures recorded as statuses."""

from __future__ import annotations

import csv
import getpass
import re
import socket
import subprocess
import sys
from datetime import datetime, timezone

import pandas as pd
import pytest
import torch

import models
from lra.bench import cli as bench
from lra.config import compose
from lra.records import BENCH_COLUMNS, BENCH_LEGACY_COLUMNS
from lra.report.bench_tables import legacy_bench_ids

TINY = [
    "task=listops",
    "task.backbone.layers=1",
    "task.backbone.heads=4",
    "task.backbone.dim=32",
    "task.backbone.mlp_dim=64",
    "methods=[transformer,transformer_naive]",
    "lengths=[64,128]",
    "batch_sizes=[2]",
    "warmup=1",
    "repeats=2",
    "progress=false",
]


def bench_cfg(tmp_path, *extra: str):
    return compose("bench", TINY + [f"out_dir={tmp_path}", *extra])


def test_rows_schema_and_relative_speed_in_process(tmp_path):
    rows, table = bench.run(bench_cfg(tmp_path, "isolate=false", "mode=both"))
    with open(tmp_path / "cpu_listops.csv", newline="") as f:
        written = list(csv.DictReader(f))
    assert tuple(written[0]) == BENCH_COLUMNS
    assert len(written) == len(rows) == 2 * 2 * 2  # methods x modes x lengths
    assert {(r["method"], r["mode"], int(r["length"])) for r in written} == {
        (m, mode, n)
        for m in ("transformer", "transformer_naive")
        for mode in ("step", "attention")
        for n in (64, 128)
    }
    assert all(r["status"] == "ok" and r["error"] == "" for r in written)
    assert all(
        r["batch"] == "2" and r["threads"] == "1" and r["dtype"] == "float32" for r in written
    )
    assert all(float(r["step_ms"]) > 0 and int(r["params"]) > 0 for r in written)
    assert rows["torch"].notna().all() and rows["device"].str.startswith("cpu:").all()
    # one invocation id for every row of the call, and the machine's fingerprint
    assert len({r["bench_id"] for r in written}) == 1
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", written[0]["bench_id"])
    assert {r["machine"] for r in written} == {bench.machine_fingerprint()}
    # tokens/s is batch x length / step time
    r = rows.iloc[0]
    assert r["tokens_per_s"] == pytest.approx(2 * r["length"] * 1000 / r["step_ms"], rel=1e-3)
    # in-process CPU points measure no memory (null, not 0)
    assert rows["peak_mb"].isna().all() and table["mem_vs_transformer"].isna().all()
    # eager points; the SDPA kernel that ran is named, none for the written-out softmax
    assert not rows["compile"].any() and rows["compile_s"].isna().all()
    kernels = rows.groupby("method")["sdpa_backend"].agg(set).to_dict()
    assert kernels["transformer_naive"] == {""}
    assert len(kernels["transformer"]) == 1 and kernels["transformer"] <= {
        "flash", "efficient", "cudnn", "math"
    }  # fmt: skip

    frame = pd.read_csv(tmp_path / "cpu_listops.csv")
    relative = pd.read_csv(tmp_path / "cpu_listops_relative.csv")
    assert len(relative) == 8
    for _, rel in relative.iterrows():
        same = (frame["mode"] == rel["mode"]) & (frame["length"] == rel["length"])
        speed = frame[same].set_index("method")["steps_per_s"]
        expected = speed[rel["method"]] / speed["transformer_naive"]
        assert rel["speed_vs_transformer_naive"] == pytest.approx(expected, rel=1e-3)
        expected = speed[rel["method"]] / speed["transformer"]
        assert rel["speed_vs_transformer"] == pytest.approx(expected, rel=1e-3)
    naive = relative[relative["method"] == "transformer_naive"]
    assert (naive["speed_vs_transformer_naive"] == 1.0).all()
    markdown = (tmp_path / "cpu_listops_relative.md").read_text()
    assert "| transformer_naive |" in markdown and "1.00×" in markdown
    # render_only rewrites the same tables from the CSV without measuring
    (tmp_path / "cpu_listops_relative.md").unlink()
    assert bench.render_only(bench_cfg(tmp_path, "render_only=true")) == markdown
    assert len(pd.read_csv(tmp_path / "cpu_listops.csv")) == len(frame)


def test_injected_failure_is_a_status_and_the_run_goes_on(tmp_path, monkeypatch):
    from lra.bench import worker

    build_step = worker.build_step

    def failing(point, device):  # transformer_naive's points fail while being built
        if point["method"] == "transformer_naive":
            raise RuntimeError("injected failure")
        return build_step(point, device)

    monkeypatch.setattr(worker, "build_step", failing)
    rows, table = bench.run(bench_cfg(tmp_path, "isolate=false"))
    by_method = rows.groupby("method")["status"].agg(set).to_dict()
    assert by_method == {"transformer": {"ok"}, "transformer_naive": {"error"}}
    errors = rows.loc[rows["method"] == "transformer_naive", "error"]
    assert errors.str.contains("injected failure").all()
    assert rows.loc[rows["status"] != "ok", "step_ms"].isna().all()
    assert table["speed_vs_transformer_naive"].isna().all()
    assert (table.loc[table["method"] == "transformer", "speed_vs_transformer"] == 1.0).all()


def test_an_option_a_method_rejects_is_refused_before_measuring(tmp_path):
    # qkv_dim is an option the method takes but the backbone sets
    with pytest.raises(bench.BenchError, match="^transformer_naive: .*qkv_dim.* backbone recipe"):
        bench.plan(bench_cfg(tmp_path, "+options.transformer_naive.qkv_dim=8"))


def test_two_invocations_never_supersede_each_other(tmp_path):
    cfg = bench_cfg(tmp_path, "isolate=false", "methods=[transformer]", "lengths=[64]")
    first, _ = bench.run(cfg)
    second, table = bench.run(cfg)
    frame = pd.read_csv(tmp_path / "cpu_listops.csv")
    assert len(frame) == 2 and frame["bench_id"].nunique() == 2
    assert list(frame["bench_id"]) == [first["bench_id"].iloc[0], second["bench_id"].iloc[0]]
    # the same point, measured by two calls: one row per invocation in the relative table
    assert len(table) == 2 and set(table["bench_id"]) == set(frame["bench_id"])
    assert (table["speed_vs_transformer"] == 1.0).all()
    assert (tmp_path / "cpu_listops_relative.md").read_text().count("### listops") == 2
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(bench.BenchError, match="other columns"):
        bench.run(bench_cfg(tmp_path, "isolate=false", "out=other"))


def test_bench_id_and_machine_fingerprint():
    now = datetime(2026, 11, 23, 20, 16, 45, tzinfo=timezone.utc)
    ids = {bench.new_bench_id(now) for _ in range(20)}
    assert len(ids) == 20 and all(i.startswith("20261123T201645Z-") for i in ids)
    machine = bench.machine_fingerprint()
    assert machine == bench.machine_fingerprint()  # stable
    assert "cores" in machine and "GiB" in machine and f"torch {torch.__version__}" in machine
    assert ("no GPU" in machine) != torch.cuda.is_available()
    for secret in (socket.gethostname(), getpass.getuser()):
        if len(secret) >= 4:
            assert secret not in machine


def legacy_row(method, length, sha, created, sps="1.5", **extra):
    row = dict.fromkeys(BENCH_LEGACY_COLUMNS, "")
    return row | {
        "method": method, "mode": "step", "task": "text", "length": str(length), "batch": "1",
        "device": "cpu:x", "dtype": "float32", "threads": "1", "steps_per_s": sps,
        "step_ms": "666.667", "status": "ok", "warmup": "1", "repeats": "3", "git_sha": sha,
        "torch": "2.13.0+cpu", "created": created,
    } | extra  # fmt: skip


def write_legacy(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=BENCH_LEGACY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


LEGACY = [
    legacy_row("transformer_naive", 1024, "aaa", "2026-11-23T20:16:45+00:00", sps="0.0629"),
    legacy_row("local", 1024, "aaa", "2026-11-23T20:17:00+00:00", sps="0.754748"),
    legacy_row("transformer_naive", 1024, "bbb", "2026-11-23T20:50:26+00:00", sps="0.0549"),
]


def test_legacy_csv_is_upgraded_once_then_appended(tmp_path, capsys):
    path = tmp_path / "cpu_text.csv"
    write_legacy(path, LEGACY)
    before = list(csv.DictReader(path.read_text().splitlines()))
    new = {k: None for k in BENCH_COLUMNS} | {
        "method": "transformer", "mode": "step", "task": "text", "length": 1024, "batch": 1,
        "status": "ok", "steps_per_s": 0.1, "bench_id": "20261201T000000Z-abcdef",
        "machine": "cpu x · 2 cores · 8 GiB · no GPU · torch 2.13.0+cpu",
    }  # fmt: skip
    bench.append_rows(path, [new])
    assert "rewrote its 3 rows" in capsys.readouterr().err
    with open(path, newline="") as f:
        after = list(csv.DictReader(f))
    assert tuple(after[0]) == BENCH_COLUMNS and len(after) == 4
    # legacy rows: every cell kept as written, ids by the documented rule, machine empty
    for old, up in zip(before, after[:3], strict=True):
        assert {k: up[k] for k in BENCH_LEGACY_COLUMNS} == old and up["machine"] == ""
    assert [r["bench_id"] for r in after] == [
        "legacy-20261123T201645Z",
        "legacy-20261123T201645Z",
        "legacy-20261123T205026Z",
        "20261201T000000Z-abcdef",
    ]
    # the ids equal those a reader assigns to the legacy file on load (same rule)
    assert list(legacy_bench_ids(pd.DataFrame(before))) == [r["bench_id"] for r in after[:3]]
    # a second append does not rewrite again
    bench.append_rows(path, [new | {"length": 2048}])
    assert "rewrote" not in capsys.readouterr().err
    assert len(pd.read_csv(path)) == 5


def test_csv_from_before_compile_is_upgraded_with_eager_rows(tmp_path, capsys):
    path = tmp_path / "cpu_text.csv"
    header = [c for c in BENCH_COLUMNS if c not in ("compile", "compile_s", "sdpa_backend")]
    row = legacy_row("local", 1024, "aaa", "2026-11-23T20:17:00+00:00")
    row |= {"bench_id": "20261123T201700Z-0a0b0c", "machine": "cpu x"}
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerow(row)
    new = {k: None for k in BENCH_COLUMNS} | {
        "method": "local", "mode": "step", "task": "text", "length": 1024, "batch": 1,
        "status": "ok", "steps_per_s": 0.1, "bench_id": "20261201T000000Z-abcdef",
        "compile": True, "compile_s": 12.5,
    }  # fmt: skip
    bench.append_rows(path, [new])
    assert "rewrote its 1 rows" in capsys.readouterr().err
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert tuple(frame.columns) == BENCH_COLUMNS
    old, added = frame.iloc[0], frame.iloc[1]
    assert {k: old[k] for k in header} == row  # every cell kept
    assert old["compile"] == "False" and old["compile_s"] == ""
    assert added["compile"] == "True" and added["compile_s"] == "12.5"


@pytest.mark.slow
def test_compiled_and_eager_points_form_separate_tables(tmp_path):
    rows, table = bench.run(
        bench_cfg(tmp_path, "isolate=false", "compile=[false,true]", "lengths=[64]")
    )
    assert set(rows["status"]) == {"ok"} and len(rows) == 4
    compiled = rows[rows["compile"]]
    assert len(compiled) == 2 and (compiled["compile_s"] > 0).all()
    assert rows.loc[~rows["compile"], "compile_s"].isna().all()
    # each method's ratio to transformer is taken against the point of the same compile
    ref = table[table["method"] == "transformer"]
    assert len(ref) == 2 and (ref["speed_vs_transformer"] == 1.0).all()
    markdown = (tmp_path / "cpu_listops_relative.md").read_text()
    assert markdown.count("torch.compile") == 1  # one of the two tables is the compiled one


def test_render_only_of_a_legacy_csv_keeps_invocations_apart(tmp_path):
    write_legacy(tmp_path / "cpu_text.csv", LEGACY)
    text = bench.render_only(
        compose("bench", ["render_only=true", "out=cpu_text", "device=cpu", f"out_dir={tmp_path}"])
    )
    first, second = text.split("### ")[1:]
    assert "legacy-20261123T201645Z" in first and "legacy-20261123T205026Z" in second
    # local vs the naive reference of its own invocation: 0.754748 / 0.0629 = 12.0x, not the
    # 13.74x that the later invocation's reference (0.0549) would give
    assert "| local | 0.755 (12.00×, —) |" in first
    assert "local" not in second
    rel = pd.read_csv(tmp_path / "cpu_text_relative.csv")
    assert rel["bench_id"].nunique() == 2
    # rendering reads the legacy file as it is: no rewrite
    header = (tmp_path / "cpu_text.csv").read_text().splitlines()[0]
    assert header == ",".join(BENCH_LEGACY_COLUMNS)


def test_default_out_dir_is_not_the_committed_results(monkeypatch):
    monkeypatch.delenv("LRA_RESULTS_DIR", raising=False)
    assert compose("bench", []).out_dir == "outputs/results/bench"
    monkeypatch.setenv("LRA_RESULTS_DIR", "/somewhere/res")
    assert compose("bench", []).out_dir == "/somewhere/res/bench"
    assert compose("bench", ["out_dir=results/bench"]).out_dir == "results/bench"


def test_isolated_point_measures_peak_rss(tmp_path):
    rows, _ = bench.run(
        bench_cfg(tmp_path, "methods=[transformer]", "lengths=[128]", "task.backbone.dim=64")
    )
    row = rows.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["mem_kind"] == "rss_peak_minus_baseline"
    # at least the weights, their gradients and two AdamW moments (4 x params x 4 bytes)
    assert 4 * row["params"] * 4 / 2**20 < row["peak_mb"] < 1000


def test_killed_points_are_oom_or_timeout_and_larger_lengths_skipped(tmp_path):
    rows, _ = bench.run(bench_cfg(tmp_path, "methods=[transformer]", "mem_limit_mb=1"))
    assert list(rows["status"]) == ["oom", "skipped"]
    assert "mem_limit_mb" in rows["error"].iloc[0] and "oom at length 64" in rows["error"].iloc[1]
    rows, _ = bench.run(
        bench_cfg(tmp_path, "methods=[transformer]", "lengths=[64]", "timeout_s=0.2")
    )
    assert list(rows["status"]) == ["timeout"]


def test_worker_killed_by_sigkill_is_oom_and_crash_is_error(tmp_path, monkeypatch):
    script = tmp_path / "die.sh"
    script.write_text("#!/bin/sh\nkill -9 $$\n")
    script.chmod(0o755)
    monkeypatch.setattr(bench, "worker_command", lambda result: [str(script)])
    rows, _ = bench.run(bench_cfg(tmp_path, "methods=[transformer]", "lengths=[64]"))
    assert list(rows["status"]) == ["oom"] and "SIGKILL" in rows["error"].iloc[0]
    monkeypatch.setattr(bench, "worker_command", lambda result: ["sh", "-c", "echo boom; exit 3"])
    rows, _ = bench.run(bench_cfg(tmp_path, "methods=[transformer]", "lengths=[64]"))
    assert list(rows["status"]) == ["error"] and "code 3: boom" in rows["error"].iloc[0]


def test_unknown_method_or_option_lists_valid_names(tmp_path):
    with pytest.raises(bench.BenchError, match="nope") as err:
        bench.run(bench_cfg(tmp_path, "methods=[transformer,nope]"))
    assert all(name in str(err.value) for name in models.REGISTRY)
    with pytest.raises(bench.BenchError, match=r"bogus.*accepted"):
        bench.run(bench_cfg(tmp_path, "+options.transformer.bogus=1"))
    with pytest.raises(bench.BenchError, match="mode"):
        bench.run(bench_cfg(tmp_path, "mode=forward"))
    assert bench.resolve_methods("all") == sorted(models.REGISTRY)
    assert not list(tmp_path.glob("*.csv"))


def test_bf16_and_attention_mode_in_process(tmp_path):
    rows, _ = bench.run(
        bench_cfg(tmp_path, "isolate=false", "dtype=bf16", "mode=attention", "lengths=[64]")
    )
    assert set(rows["status"]) == {"ok"} and set(rows["dtype"]) == {"bfloat16"}
    # attention mode: one layer's parameters (q/k/v and output projections) only
    assert set(rows["params"]) == {32 * 3 * 32 + 3 * 32 + 32 * 32 + 32}


def test_every_registered_method_benchmarks_in_both_modes(tmp_path):
    rows, table = bench.run(
        bench_cfg(
            tmp_path, "isolate=false", "methods=all", "mode=both", "lengths=[128]", "warmup=0"
        )
    )
    assert sorted(set(rows["method"])) == sorted(models.REGISTRY)
    failed = rows[rows["status"] != "ok"]
    assert failed.empty, failed[["method", "mode", "error"]].to_string()
    assert table["speed_vs_transformer"].notna().all()


@pytest.mark.slow
def test_cli_writes_tables_and_reports_bad_method(tmp_path):
    cmd = [sys.executable, "-m", "lra.bench", *TINY, f"out_dir={tmp_path}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| method | steps/s 64 | steps/s 128 |" in done.stdout
    frame = pd.read_csv(tmp_path / "cpu_listops.csv")
    assert len(frame) == 4 and set(frame["status"]) == {"ok"}
    assert (frame["peak_mb"] > 0).all()
    bad = subprocess.run(cmd + ["methods=[nope]"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "unknown method" in bad.stderr
    assert "Traceback" not in bad.stderr
