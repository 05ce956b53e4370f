"""Faults of a run: crafted, truncated or foreign checkpoints, two copies of one run, bad
numbers. Each is a real fault; nothing is lost and the message names the cause."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time

import pytest
import torch

from lra.config import compose
from lra.records import read_records
from lra.run import train
from lra.run.checkpoint import CheckpointError
from lra.run.checks import ConfigError
from lra.run.lock import RunLocked


class Exploit:
    """Unpickling this would create the file ``path`` (code execution)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_crafted_checkpoint_cannot_run_code(tiny_overrides, tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "pwned"
    run_dir.mkdir()
    with open(run_dir / "last.pt", "wb") as f:
        pickle.dump({"config_hash": Exploit(str(marker))}, f)
    with pytest.raises(CheckpointError, match="last.pt cannot be read"):
        train.run(compose("train", tiny_overrides), run_dir)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "not_a_checkpoint"])
def test_damaged_checkpoint_names_the_file_and_the_way_out(tiny_overrides, tmp_path, damage):
    cfg = compose("train", tiny_overrides + ["task.optim.steps=10", "task.optim.eval_every=10"])
    run_dir = tmp_path / "run"
    train.run(cfg, run_dir)
    last = run_dir / "last.pt"
    (run_dir / "record.json").unlink()  # as if the run had been killed before its end
    if damage == "truncate":
        last.write_bytes(last.read_bytes()[:1000])
    else:
        torch.save({"model": {}}, last)
    with pytest.raises(CheckpointError) as err:
        train.run(cfg, run_dir)
    assert str(last) in str(err.value) and "trainer.resume=false" in str(err.value)
    (record,) = read_records(tmp_path / "results")  # the ok record of the first run is kept
    assert record["status"] == "ok" and record["attempts"][-1]["status"] == "failed"
    fresh = compose("train", tiny_overrides + ["task.optim.steps=10", "trainer.resume=false"])
    assert train.run(fresh, run_dir)["status"] == "ok"


def test_a_second_copy_of_a_run_exits_at_once_naming_the_first(tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from lra.run.lock import RunLock\n"
            "with RunLock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)",
            str(run_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(RunLocked, match=f"pid {holder.pid}"):
            train.run(compose("train", tiny_overrides), run_dir)
        assert time.monotonic() - start < 10  # at once: no data preparation, no model
        assert read_records(tmp_path / "results") == []  # and no failed record
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its process: the run starts now
    quick = ["task.optim.steps=2", "task.optim.eval_every=2"]
    assert train.run(compose("train", tiny_overrides + quick), run_dir)["status"] == "ok"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("task.optim.batch_size=0", "task.optim.batch_size=0"),
        ("task.optim.batch_size=-4", "task.optim.batch_size=-4"),
        ("task.optim.eval_every=0", "task.optim.eval_every=0"),
        ("trainer.grad_accum=0", "trainer.grad_accum=0"),
        ("task.optim.lr=-1", "task.optim.lr=-1"),
        ("task.optim.steps=0", "task.optim.steps=0"),
        ("seed=abc", "seed='abc'"),
        ("trainer.grad_accum=3", "not divisible"),
        ("task.optim.betas=[0.9,1.5]", "task.optim.betas"),
    ],
)
def test_bad_numbers_are_refused_before_anything_starts(tiny_overrides, tmp_path, override, key):
    with pytest.raises(ConfigError) as err:
        train.run(compose("train", tiny_overrides + [override]), tmp_path / "run")
    assert key in str(err.value)
    assert read_records(tmp_path / "results") == []


def test_cli_bad_number_is_one_line_and_exit_2(tiny_overrides, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lra.run.train", *tiny_overrides, "task.optim.steps=0",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: task.optim.steps=0")
    assert "Traceback" not in done.stderr


def test_the_same_command_after_the_end_skips_the_finished_run(tiny_overrides, tmp_path):
    quick = ["task.optim.steps=4", "task.optim.eval_every=2"]
    cfg = compose("train", tiny_overrides + quick)
    first = train.run(cfg, tmp_path / "run")
    (tmp_path / "run" / "best.pt").unlink()  # a retraining would need and rewrite it
    again = train.run(cfg, tmp_path / "run")
    assert again == first and not (tmp_path / "run" / "best.pt").exists()
    moved = compose("train", tiny_overrides + quick + [f"results_dir={tmp_path / 'other'}"])
    assert train.run(moved, tmp_path / "run") == first  # the record reaches the new results_dir
    assert read_records(tmp_path / "other")[0]["run_id"] == first["run_id"]
    restart = compose("train", tiny_overrides + quick + ["trainer.resume=false"])
    assert train.run(restart, tmp_path / "run")["created"] >= first["created"]
    assert (tmp_path / "run" / "best.pt").exists()  # resume=false trains again


def test_disk_full_while_saving_keeps_the_old_files_and_leaves_no_partial(tmp_path, monkeypatch):
    import errno

    from lra.records import write_json_atomic
    from lra.run.checkpoint import save_atomic

    def full(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"x" * 1000)  # part of the file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    last = tmp_path / "last.pt"
    save_atomic({"step": 1}, last)
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match="No space left"):
        save_atomic({"step": 2}, last)
    monkeypatch.undo()
    assert torch.load(last, weights_only=True) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]

    record = tmp_path / "runs" / "r.json"
    write_json_atomic(record, {"a": 1})
    monkeypatch.setattr(
        type(record), "write_text", lambda self, text: full(None, self) if "b" in text else None
    )
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(record, {"b": 2})
    monkeypatch.undo()
    assert record.read_text().strip().startswith("{") and '"a": 1' in record.read_text()
    assert sorted(p.name for p in record.parent.iterdir()) == ["r.json"]
