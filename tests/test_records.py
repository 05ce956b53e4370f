"""The result store: attempts are kept, an ok record is never replaced by a failure, and
unreadable files are skipped with a warning naming them."""

from __future__ import annotations

import json
import os
import time

import pytest

from lra.records import (
    RECORD_KEYS,
    RECORD_SCHEMA,
    read_records,
    record_path,
    records_frame,
    write_record,
)


def record(status: str, created: str, acc: float | None = None, error: str | None = None):
    return dict.fromkeys(RECORD_KEYS) | {
        "schema": RECORD_SCHEMA, "run_id": "listops-linear-s0-abc", "task": "listops",
        "model": "linear", "seed": 0, "status": status, "created": created,
        "test_acc": acc, "error": error, "steps": 10,
    }  # fmt: skip


def test_failed_attempt_never_replaces_an_ok_record(tmp_path):
    write_record(tmp_path, record("ok", "2026-01-01", 0.4))
    write_record(tmp_path, record("failed", "2026-01-02", error="RuntimeError: broken last.pt"))
    write_record(tmp_path, record("diverged", "2026-01-03"))
    (kept,) = read_records(tmp_path)
    assert kept["status"] == "ok" and kept["test_acc"] == 0.4
    assert [a["status"] for a in kept["attempts"]] == ["failed", "diverged"]
    assert "broken last.pt" in kept["attempts"][0]["error"]


def test_a_new_ok_record_replaces_and_keeps_the_earlier_attempts(tmp_path):
    write_record(tmp_path, record("failed", "2026-01-01", error="OSError: disk full"))
    write_record(tmp_path, record("ok", "2026-01-02", 0.5))
    write_record(tmp_path, record("ok", "2026-01-03", 0.6))
    (latest,) = read_records(tmp_path)
    assert latest["test_acc"] == 0.6
    assert [(a["status"], a["created"]) for a in latest["attempts"]] == [
        ("failed", "2026-01-01"),
        ("ok", "2026-01-02"),
    ]


def test_unreadable_and_invalid_files_are_skipped_with_one_line_each(tmp_path, capsys):
    write_record(tmp_path, record("ok", "2026-01-01", 0.4))
    runs = tmp_path / "runs"
    (runs / "truncated.json").write_text('{"run_id": "x", "task": ')
    (runs / "list.json").write_text("[1, 2]")
    (runs / "old.json").write_text(json.dumps({"run_id": "y", "task": "text"}))
    future = record("ok", "2026-01-01") | {"run_id": "z", "schema": RECORD_SCHEMA + 1}
    (runs / "future.json").write_text(json.dumps(future))
    frame = records_frame(tmp_path)
    assert list(frame["run_id"]) == ["listops-linear-s0-abc"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4
    for name, why in [
        ("truncated.json", "not valid JSON"),
        ("list.json", "not a JSON object"),
        ("old.json", "lacks required field(s) ['model', 'seed', 'status']"),
        ("future.json", "newer than this lra reads"),
    ]:
        assert any(str(runs / name) in line and why in line for line in lines), (name, lines)


def test_an_older_schema_record_reads_with_nulls(tmp_path):
    old = {k: v for k, v in record("ok", "2026-01-01", 0.3).items() if k not in ("schema",)}
    del old["n_val"], old["n_test"]
    record_path(tmp_path, old["run_id"]).parent.mkdir(parents=True)
    record_path(tmp_path, old["run_id"]).write_text(json.dumps(old))
    frame = records_frame(tmp_path)
    assert frame["test_acc"].iloc[0] == 0.3 and frame["n_val"].isna().all()


def test_write_record_still_validates(tmp_path):
    with pytest.raises(ValueError, match="lacks keys"):
        write_record(tmp_path, {"run_id": "x"})
    with pytest.raises(ValueError, match="status"):
        write_record(tmp_path, record("maybe", "2026-01-01"))


def test_leftover_temporary_files_are_swept_when_stale(tmp_path):
    write_record(tmp_path, record("ok", "2026-01-01", 0.4))
    runs = tmp_path / "runs"
    old, fresh = runs / "x.json.tmp123", runs / "y.json.tmp456"
    for path in (old, fresh):
        path.write_text("{")
    hour_ago = time.time() - 2 * 3600
    os.utime(old, (hour_ago, hour_ago))
    write_record(tmp_path, record("ok", "2026-01-02", 0.5))
    assert not old.exists() and fresh.exists()  # a fresh one may be another writer's
