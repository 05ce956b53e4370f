"""``lra-eval``: a run's best or last checkpoint on val/test, found from the run's overrides;
the run's record is never changed."""

from __future__ import annotations

import json

from omegaconf import OmegaConf

from lra.config import compose
from lra.run import evaluate, train


def test_best_and_last_checkpoints_reproduce_the_record(tiny_overrides, tmp_path, capsys):
    cfg = compose("train", tiny_overrides)
    run_dir = tmp_path / "outputs" / "some" / "run"
    record = train.run(cfg, run_dir)
    record_file = tmp_path / "results" / "runs" / f"{record['run_id']}.json"
    before = record_file.read_bytes()
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")  # what Hydra saves in a run folder
    assert evaluate.find_run_dir(cfg, roots=(str(tmp_path / "outputs"),)) == run_dir
    other = compose("train", [*tiny_overrides, "seed=5"])
    assert evaluate.find_run_dir(other, roots=(str(tmp_path / "outputs"),)) is None

    best = evaluate.evaluate_run(cfg, run_dir, "best", ["val", "test"])
    assert best["test_acc"] == record["test_acc"] and best["val_acc"] == record["val_acc"]
    assert best["n_test"] == record["n_test"] == 64
    last = evaluate.evaluate_run(cfg, run_dir, "last", ["test"])
    assert last["test_acc"] == record["test_acc_last"] and last["step"] == record["steps"]

    argv = [*tiny_overrides, f"run_dir={run_dir}", "--checkpoint", "last", "--splits", "test"]
    assert evaluate.main(argv) == 0
    assert f"{record['run_id']} last.pt: test {100 * record['test_acc_last']:.2f}%" in (
        capsys.readouterr().out
    )
    assert not (run_dir / "eval_last.json").exists()
    assert evaluate.main([*argv, "--write"]) == 0
    written = json.loads((run_dir / "eval_last.json").read_text())
    assert written["test_acc"] == record["test_acc_last"] and written["checkpoint"] == "last"
    assert record_file.read_bytes() == before  # the record is untouched


def test_missing_run_and_bad_options(tiny_overrides, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no outputs/ or multirun/ here
    assert evaluate.main(tiny_overrides) == 1
    assert "no run folder of listops-transformer-s0-" in capsys.readouterr().err
    assert evaluate.main([*tiny_overrides, "--checkpoint", "middle"]) == 2
    assert "--checkpoint must be best or last" in capsys.readouterr().err
    assert evaluate.main([*tiny_overrides, f"run_dir={tmp_path}"]) == 1
    assert "best.pt does not exist" in capsys.readouterr().err
    assert evaluate.main([*tiny_overrides, "task.optim.stpes=1"]) == 2
