"""The loop: learning, checkpoints and resume, divergence, failures, and the result record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from lra import identity
from lra.config import compose
from lra.records import RECORD_KEYS, read_records
from lra.run import train

# Fields that legitimately differ between two runs of the same config.
TIMING_KEYS = {"created", "train_s", "steps_per_s", "tokens_per_s", "peak_mem_mb", "git_sha"}


def comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}


def test_record_has_schema_and_provenance(tiny_overrides, tmp_path):
    cfg = compose("train", tiny_overrides + ["seed=3"])
    record = train.run(cfg, tmp_path / "run")
    assert set(RECORD_KEYS) <= set(record)
    assert record["status"] == "ok"
    assert record["task"] == "listops" and record["model"] == "transformer" and record["seed"] == 3
    assert record["steps"] == 30 and record["best_step"] in (10, 20, 30)
    assert [h["step"] for h in record["history"]] == [10, 20, 30]
    assert 0.0 <= record["test_acc"] <= 1.0 and 0.0 <= record["test_acc_last"] <= 1.0
    assert record["val_acc"] == max(h["val_acc"] for h in record["history"])
    assert record["data_spec"]["hash"] and record["data_spec"]["num_train"] == 320
    assert record["config"]["task"]["optim"]["steps"] == 30
    assert record["device"].startswith("cpu") and record["dtype"] == "float32"
    assert record["params"] > 0 and record["peak_mem_mb"] > 0
    assert record["n_val"] == 64 and record["n_test"] == 64 and record["schema"] == 2
    on_disk = read_records(tmp_path / "results")
    assert [r["run_id"] for r in on_disk] == [record["run_id"]]
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()


def test_run_id_depends_on_config_not_on_paths(tiny_overrides):
    base = compose("train", tiny_overrides)
    moved = compose("train", tiny_overrides + ["results_dir=elsewhere", "data_dir=x"])
    other_lr = compose("train", tiny_overrides + ["task.optim.lr=0.01"])
    assert identity.make_run_id(base) == identity.make_run_id(moved)
    assert identity.make_run_id(base) != identity.make_run_id(other_lr)
    assert identity.make_run_id(base).startswith("listops-transformer-s0-")


def test_same_seed_same_record_on_cpu(tiny_overrides, tmp_path):
    cfg = compose("train", tiny_overrides)
    first = train.run(cfg, tmp_path / "a")
    second = train.run(cfg, tmp_path / "b")
    assert comparable(first) == comparable(second)


def test_resume_after_interruption_equals_uninterrupted(tiny_overrides, tmp_path, monkeypatch):
    overrides = tiny_overrides + ["trainer.ckpt_every=5"]
    cfg = compose("train", overrides)
    reference = train.run(cfg, tmp_path / "ref")

    real_step = train.Trainer.train_step

    def interrupted(self, batch):
        if self.state.step == 17:  # killed mid-way between checkpoints (last one at 15)
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(train.Trainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train.run(cfg, tmp_path / "killed")
    ckpt = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)
    assert ckpt["state"]["step"] == 15
    monkeypatch.setattr(train.Trainer, "train_step", real_step)
    resumed = train.run(cfg, tmp_path / "killed")
    assert comparable(resumed) == comparable(reference)


def test_resume_refuses_checkpoint_of_another_config(tiny_overrides, tmp_path):
    train.run(compose("train", tiny_overrides), tmp_path / "run")
    other = compose("train", tiny_overrides + ["task.optim.lr=0.01"])
    with pytest.raises(RuntimeError, match="another config"):
        train.run(other, tmp_path / "run")
    fresh = compose("train", tiny_overrides + ["task.optim.lr=0.01", "trainer.resume=false"])
    assert train.run(fresh, tmp_path / "run")["status"] == "ok"


def test_nan_loss_stops_run_as_diverged(tiny_overrides, tmp_path):
    cfg = compose("train", tiny_overrides + ["task.optim.lr=1e30", "task.optim.warmup=0"])
    record = train.run(cfg, tmp_path / "run")
    assert record["status"] == "diverged"
    assert record["steps"] < 30 and record["test_acc"] is None
    assert read_records(tmp_path / "results")[0]["status"] == "diverged"


def test_failing_run_writes_failed_record_and_raises(tiny_overrides, tmp_path, monkeypatch):
    def broken(self, batch):
        raise RuntimeError("boom")

    monkeypatch.setattr(train.Trainer, "train_step", broken)
    cfg = compose("train", tiny_overrides)
    with pytest.raises(RuntimeError, match="boom"):
        train.run(cfg, tmp_path / "run")
    (record,) = read_records(tmp_path / "results")
    assert record["status"] == "failed" and "boom" in record["error"]
    assert record["test_acc"] is None and record["val_acc"] is None


def test_grad_accumulation_matches_full_batch(tiny_overrides, tmp_path):
    # Without dropout, 2 micro-batches of 16 give the same update as one batch of 32.
    no_dropout = ["task.backbone.dropout=0.0", "task.backbone.attn_dropout=0.0"]
    full = train.run(compose("train", tiny_overrides + no_dropout), tmp_path / "a")
    accum = train.run(
        compose("train", tiny_overrides + no_dropout + ["trainer.grad_accum=2"]),
        tmp_path / "b",
    )
    full_loss = [h["train_loss"] for h in full["history"]]
    accum_loss = [h["train_loss"] for h in accum["history"]]
    np.testing.assert_allclose(full_loss, accum_loss, rtol=1e-4)


@pytest.mark.slow
def test_smoke_run_learns_beyond_majority_class(data_dir, tmp_path):
    cfg = compose(
        "train",
        [
            "experiment=smoke",
            f"data_dir={data_dir}",
            f"results_dir={tmp_path}",
            "trainer.progress=false",
        ],
    )
    record = train.run(cfg, tmp_path / "run")
    labels = train.task_from_config(cfg.task, cfg.data_dir).split("test").labels
    majority = np.bincount(labels).max() / len(labels)
    losses = [h["train_loss"] for h in record["history"]]
    assert losses[-1] < losses[0]
    assert record["test_acc"] > majority + 0.05, (record["test_acc"], majority)


@pytest.mark.slow
def test_killed_process_resumes_to_same_record(tiny_overrides, tmp_path):
    """SIGKILL a real ``lra-train`` process mid-run, start it again, compare with a clean run."""
    overrides = tiny_overrides + [
        "trainer.ckpt_every=5",
        "task.optim.steps=150",
        "task.optim.eval_every=100",
        "task.backbone.dim=64",
    ]
    cmd = [sys.executable, "-m", "lra.run.train", *overrides]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    clean = subprocess.run(cmd + [f"hydra.run.dir={tmp_path / 'clean'}"], env=env, check=True)
    assert clean.returncode == 0
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(cmd + [f"hydra.run.dir={run_dir}"], env=env)
    deadline = time.time() + 120
    while not (run_dir / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "record.json").exists(), "run finished before it could be killed"
    subprocess.run(cmd + [f"hydra.run.dir={run_dir}"], env=env, check=True)
    first, second = (
        json.loads((d / "record.json").read_text()) for d in (tmp_path / "clean", run_dir)
    )
    assert comparable(first) == comparable(second)


def test_worker_processes_and_low_precision_paths(tiny_overrides, tmp_path):
    reference = train.run(compose("train", tiny_overrides), tmp_path / "a")
    workers = train.run(
        compose("train", tiny_overrides + ["trainer.num_workers=1"]), tmp_path / "b"
    )
    # same batches in the same order; only the recorded config differs
    assert comparable(workers) | {"config": None} == comparable(reference) | {"config": None}
    for precision, dtype in [("bf16", "bfloat16"), ("fp16", "float16")]:
        record = train.run(
            compose("train", tiny_overrides + [f"trainer.precision={precision}"]),
            tmp_path / precision,
        )
        assert record["status"] == "ok" and record["dtype"] == dtype


def test_cli_missing_release_data_says_how_to_get_it(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lra.run.train",
            "task.source=release",
            f"data_dir={tmp_path}",
            f"results_dir={tmp_path}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "lra-data" in result.stderr and "Traceback" not in result.stderr
    (record,) = read_records(tmp_path)  # the failure before training is recorded too
    assert record["status"] == "failed" and "MissingDataError" in record["error"]
    assert record["steps"] is None and record["test_acc"] is None


@pytest.mark.parametrize(("model", "full_length"), [("transformer", False), ("bigbird", True)])
def test_batches_are_trimmed_unless_the_pattern_depends_on_length(
    tiny_overrides, tmp_path, monkeypatch, model, full_length
):
    widths = []
    real_step = train.Trainer.train_step

    def spy(self, batch):
        widths.append(batch["input_ids"].shape[1])
        return real_step(self, batch)

    monkeypatch.setattr(train.Trainer, "train_step", spy)
    overrides = [f"model={model}", "task.optim.steps=4", "task.optim.eval_every=4"]
    cfg = compose("train", tiny_overrides + overrides)
    train.run(cfg, tmp_path / "run")
    seq_len = cfg.task.seq_len  # smoke: 128; generated sequences are at most 127 tokens
    assert (set(widths) == {seq_len}) == full_length, widths


def test_capped_evaluation_is_counted_in_the_record(tiny_overrides, tmp_path):
    cfg = compose("train", tiny_overrides + ["trainer.max_eval_batches=1"])
    record = train.run(cfg, tmp_path / "run")
    assert record["n_val"] == record["n_test"] == 32  # one batch of the smoke batch size


def test_start_summary_and_time_projection_are_printed(tiny_overrides, tmp_path, capsys):
    """Before training: task, model, parameters, steps, batch, data sizes, device and the
    record's path; after a few steps: seconds per step and the projected rest."""
    record = train.run(compose("train", tiny_overrides), tmp_path / "run")
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"run {record['run_id']}: task listops, model transformer" in text
    assert f"{record['params']:,} parameters" in text and "30 steps of batch 32" in text
    assert "train 320, val 64, test 64" in text and "device cpu" in text
    assert str(tmp_path / "results" / "runs" / f"{record['run_id']}.json") in text
    assert "s/step; the remaining 25 steps take about" in text
    assert "long for a CPU" not in text


def test_long_cpu_projection_names_the_fix(tiny_overrides, tmp_path, capsys, monkeypatch):
    from lra.run import loop

    monkeypatch.setattr(loop, "LONG_CPU_RUN_S", 0.0)
    train.run(compose("train", tiny_overrides), tmp_path / "run")
    out = capsys.readouterr()
    text = out.out + out.err
    assert "long for a CPU: experiment=smoke" in text and "task.optim.steps=N" in text


@pytest.mark.slow
def test_compiled_training_matches_eager_and_reports_compile_time(tiny_overrides, tmp_path):
    """trainer.compile=true: the same losses as eager (no dropout, whose random masks differ
    between eager and compiled code); the steps that compiled are timed apart."""
    no_dropout = [*tiny_overrides, "task.backbone.dropout=0", "task.backbone.attn_dropout=0"]
    eager = train.run(compose("train", no_dropout), tmp_path / "eager")
    compiled = train.run(compose("train", [*no_dropout, "trainer.compile=true"]), tmp_path / "c")
    assert compiled["status"] == "ok" and compiled["run_id"] == eager["run_id"]
    losses = [[h["train_loss"] for h in r["history"]] for r in (eager, compiled)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert [h["val_acc"] for h in compiled["history"]] == [h["val_acc"] for h in eager["history"]]
    assert eager["compile_s"] == 0 and compiled["compile_s"] > 0
    assert compiled["steps_per_s"] is not None


def test_a_checkpoint_from_before_timed_steps_counts_all_its_steps_as_timed():
    from dataclasses import asdict

    from lra.run.loop import LoopState

    saved = asdict(LoopState(step=40, train_s=8.0, tokens=1000, timed_steps=35, compile_s=3.0))
    assert LoopState.from_checkpoint(saved).timed_steps == 35
    older = {k: v for k, v in saved.items() if k not in ("timed_steps", "compile_s")}
    restored = LoopState.from_checkpoint(older)
    assert (restored.timed_steps, restored.compile_s, restored.train_s) == (40, 0.0, 8.0)
