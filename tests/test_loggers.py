"""Loggers: metrics.jsonl always; wandb mirrors offline and never fails the run."""

from __future__ import annotations

import json
import sys

import pytest
from omegaconf import OmegaConf

from lra.config import compose
from lra.run import train
from lra.run.loggers import Loggers


def test_metrics_jsonl_has_every_eval_and_train_steps(tiny_overrides, tmp_path):
    cfg = compose("train", tiny_overrides + ["trainer.log_every=4"])
    record = train.run(cfg, tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if "val_acc" in x]
    assert [x["step"] for x in evals] == [h["step"] for h in record["history"]]
    assert all({"train_loss", "val_acc", "lr"} <= set(x) for x in evals)
    steps = [x["step"] for x in lines if "val_acc" not in x]
    assert steps == [4, 8, 12, 16, 20, 24, 28]


def test_broken_wandb_only_warns(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")

    def broken_init(**kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(wandb, "init", broken_init)
    cfg = OmegaConf.create({"name": "wandb", "project": "lra"})
    with pytest.warns(UserWarning, match="wandb disabled"):
        loggers = Loggers(cfg, {}, "run-1", tmp_path)
    loggers.log({"val_acc": 0.5}, step=1)
    loggers.finish({"status": "ok"})
    assert (tmp_path / "metrics.jsonl").is_file()


def test_unknown_logger_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="valid: none, wandb"):
        Loggers(OmegaConf.create({"name": "tensorboard"}), {}, "r", tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="wandb service start-up")
def test_wandb_offline_run_mirrors_record(tiny_overrides, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    record = train.run(compose("train", tiny_overrides + ["logger=wandb"]), tmp_path / "run")
    assert record["status"] == "ok"
    (offline,) = (tmp_path / "run" / "wandb").glob(f"offline-run-*-{record['run_id']}")
    assert any(offline.glob("*.wandb"))
