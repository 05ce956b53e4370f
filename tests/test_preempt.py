"""Preemption: a signal checkpoints at the next step boundary; a restart ends with the same record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from lra.config import compose
from lra.records import read_records
from lra.run import train
from lra.run.preempt import Preempted, PreemptGuard

TIMING_KEYS = {"created", "train_s", "steps_per_s", "tokens_per_s", "peak_mem_mb", "git_sha"}


def comparable(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k not in TIMING_KEYS}
    out["config"] = {k: v for k, v in record["config"].items() if k != "results_dir"}
    return out


def test_guard_turns_signals_into_a_flag_and_restores_handlers():
    before = signal.getsignal(signal.SIGUSR1)
    with PreemptGuard() as guard:
        assert not guard.requested
        os.kill(os.getpid(), signal.SIGUSR1)  # would kill the process without the guard
        assert guard.requested and guard.signum == signal.SIGUSR1
        with pytest.raises(Preempted) as stop:
            guard.stop(step=7)
    assert stop.value.exit_code == 128 + signal.SIGUSR1 and stop.value.step == 7
    assert signal.getsignal(signal.SIGUSR1) == before


def test_guard_hands_over_to_the_previous_handler():
    """Under submitit the previous handler requeues the job; it must run after our checkpoint."""
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        with PreemptGuard() as guard:
            os.kill(os.getpid(), signal.SIGUSR2)
            assert calls == []  # nothing happens until the loop reaches a step boundary
            with pytest.raises(Preempted):
                guard.stop(step=3)
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_signal_mid_run_checkpoints_and_restart_gives_same_record(
    tiny_overrides, tmp_path, monkeypatch
):
    short = ["trainer.ckpt_every=10", "task.optim.steps=20"]
    cfg = compose("train", tiny_overrides + short)
    reference = train.run(cfg, tmp_path / "ref")

    real_step = train.Trainer.train_step

    def signalled(self, batch):
        if self.state.step == 12:  # SIGTERM arrives during step 13 (checkpoints at 10, 20)
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(self, batch)

    monkeypatch.setattr(train.Trainer, "train_step", signalled)
    results = tmp_path / "results2"
    cfg2 = compose("train", tiny_overrides + short + [f"results_dir={results}"])
    with pytest.raises(Preempted) as stop:
        train.run(cfg2, tmp_path / "preempted")
    assert stop.value.signum == signal.SIGTERM and stop.value.step == 13
    ckpt = torch.load(tmp_path / "preempted" / "last.pt", weights_only=True)
    assert ckpt["state"]["step"] == 13  # saved at the step boundary, not at the last checkpoint
    assert read_records(results) == []  # a preempted run is not a failed run
    monkeypatch.setattr(train.Trainer, "train_step", real_step)
    resumed = train.run(cfg2, tmp_path / "preempted")
    assert comparable(resumed) == comparable(reference)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_to_real_process_then_restart_gives_same_record(tiny_overrides, tmp_path, signum):
    overrides = tiny_overrides + ["task.optim.steps=150", "task.optim.eval_every=50"]
    cmd = [sys.executable, "-m", "lra.run.train", *overrides]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(cmd + [f"hydra.run.dir={tmp_path / 'clean'}"], env=env, check=True)
    run_dir = tmp_path / "stopped"
    proc = subprocess.Popen(
        cmd + [f"hydra.run.dir={run_dir}"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while not (run_dir / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signum)
    assert proc.wait() == 128 + signum
    err = proc.stderr.read()
    assert "Traceback" not in err and "last.pt saved" in err
    assert not (run_dir / "record.json").exists(), "run finished before the signal"
    step = torch.load(run_dir / "last.pt", weights_only=True)["state"]["step"]
    assert 0 < step < 150
    subprocess.run(cmd + [f"hydra.run.dir={run_dir}"], env=env, check=True)
    first, second = (
        json.loads((d / "record.json").read_text()) for d in (tmp_path / "clean", run_dir)
    )
    assert comparable(first) == comparable(second)


def test_a_second_ctrl_c_aborts_at_once():
    with PreemptGuard() as guard:
        os.kill(os.getpid(), signal.SIGINT)  # first: a flag, saved and stopped at the next step
        assert guard.signum == signal.SIGINT and guard.chained_handler() is None
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
