"""wandb import: a fake API's runs become records; missing keys are None; errors are clear."""

from __future__ import annotations

import math

import pytest

from lra.records import RECORD_KEYS, write_record
from lra.report.wandb_import import WandbImportError, records_from_wandb


class FakeSummary:
    """Dict-like but not a dict, as wandb's ``HTTPSummary``."""

    def __init__(self, data):
        self._data = data

    def keys(self):
        return self._data.keys()

    def items(self):
        return self._data.items()

    def __getitem__(self, key):
        return self._data[key]


class FakeRun:
    def __init__(self, name, summary, config, rows):
        self.name = name
        self.id = name
        self.summary = FakeSummary(summary)
        self.config = config
        self._rows = rows

    def scan_history(self):
        return iter(self._rows)


class FakeApi:
    def __init__(self, runs):
        self._runs = runs
        self.paths = []

    def runs(self, path):
        self.paths.append(path)
        return self._runs


CONFIG = {"task": {"name": "listops"}, "model": {"name": "performer"}, "seed": 3}


def full_run() -> FakeRun:
    summary = {
        "run_id": "listops-performer-s3-abc",
        "task": "listops",
        "model": "performer",
        "seed": 3,
        "status": "ok",
        "val_acc": 0.36,
        "test_acc": 0.35,
        "best_step": 200,
        "steps": 300,
        "params": 1234,
        "data_spec": FakeSummary({"hash": "950f", "seq_len": 128}),
        "tokens_per_s": math.nan,
        "_runtime": 12.5,
        "_step": 300,
    }
    rows = [
        {"_step": 50, "train_loss": 2.0},  # a train-only log event: not in the eval history
        {"_step": 200, "train_loss": 1.5, "val_acc": 0.36, "lr": 1e-3},
        {"_step": 100, "train_loss": 1.8, "val_acc": 0.30, "lr": 2e-3},
    ]
    return FakeRun("listops-performer-s3-abc", summary, {**CONFIG, "_wandb": {"x": 1}}, rows)


def test_run_maps_to_record_with_none_for_missing():
    api = FakeApi([full_run()])
    [record] = records_from_wandb("lra", entity="me", api=api)
    assert api.paths == ["me/lra"]
    assert set(RECORD_KEYS) <= set(record)
    assert record["run_id"] == "listops-performer-s3-abc"
    assert (record["task"], record["model"], record["seed"]) == ("listops", "performer", 3)
    assert (record["status"], record["test_acc"], record["params"]) == ("ok", 0.35, 1234)
    assert record["data_spec"] == {"hash": "950f", "seq_len": 128}
    assert record["config"] == CONFIG
    for key in ("test_acc_last", "train_s", "steps_per_s", "peak_mem_mb", "git_sha", "error"):
        assert record[key] is None
    assert record["tokens_per_s"] is None  # wandb NaN is missing, not a number
    assert record["history"] == [
        {"step": 100, "train_loss": 1.8, "val_acc": 0.30, "lr": 2e-3},
        {"step": 200, "train_loss": 1.5, "val_acc": 0.36, "lr": 1e-3},
    ]
    assert "_runtime" not in record


def test_crashed_run_without_summary_and_default_entity(tmp_path):
    api = FakeApi([FakeRun("run-x", {}, {}, [])])
    [record] = records_from_wandb("lra", api=api)
    assert api.paths == ["lra"]
    assert record["run_id"] == "run-x"
    assert all(record[k] is None for k in RECORD_KEYS if k != "run_id")
    assert record["history"] == []
    with pytest.raises(ValueError, match="status"):  # not silently stored as a result
        write_record(tmp_path, record)


def test_imported_record_can_be_stored(tmp_path):
    [record] = records_from_wandb("lra", api=FakeApi([full_run()]))
    path = write_record(tmp_path, record)
    assert path.name == "listops-performer-s3-abc.json"


def test_unreachable_api_and_bad_project():
    class Offline:
        def runs(self, path):
            raise ConnectionError("api.wandb.ai unreachable")

    with pytest.raises(WandbImportError, match="me/lra.*unreachable"):
        records_from_wandb("lra", entity="me", api=Offline())
    with pytest.raises(ValueError, match="project"):
        records_from_wandb("", api=FakeApi([]))


def test_not_logged_in_is_a_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(WandbImportError, match="wandb login"):
        records_from_wandb("lra")
