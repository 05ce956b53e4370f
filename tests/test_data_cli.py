"""``lra-data`` in-process: tiny generation, experiment overrides, exit codes and messages."""

from __future__ import annotations

import json

from omegaconf import OmegaConf

from lra.config import CONF_DIR
from lra.run import prepare as data_cli

TINY = [f"task.{kv}" for kv in ("num_train=60", "num_val=10", "num_test=10", "min_length=10")]
TINY += ["task.max_length=100"]


def _spec(cache_line: str) -> dict:
    folder = cache_line.split(": ", 1)[1]
    return json.loads(open(f"{folder}/spec.json").read())


def test_generates_and_prepares(tmp_path, capsys):
    argv = ["task=listops", f"data_dir={tmp_path}", *TINY, "task.max_depth=4", "workers=1"]
    assert data_cli.main([*argv, "trainer.progress=false"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"listops: {tmp_path}/cache/listops-")
    assert out[1] == "sizes: train=60, val=10, test=10"
    assert out[2] == "cache: built"
    assert out[3].startswith("took ")
    meta = _spec(out[0])
    assert meta["data_spec"]["max_depth"] == 4 and meta["data_spec"]["min_length"] == 10
    assert len(list((tmp_path / "generated").glob("listops-*/basic_*.tsv"))) == 3
    # the same command again reuses the cache (task=listops is the default)
    assert data_cli.main(["task.max_depth=4", f"data_dir={tmp_path}", *TINY]) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[0] == out[0] and again[2] == "cache: verified"


def test_experiment_overrides_then_command_line(tmp_path, capsys):
    smoke = OmegaConf.load(CONF_DIR / "preset" / "smoke_listops.yaml")
    argv = ["experiment=smoke", f"data_dir={tmp_path}", "task.num_train=50", "task.num_val=5"]
    assert data_cli.main([*argv, "task.num_test=5", "trainer.progress=false"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "sizes: train=50, val=5, test=5"
    data_spec = _spec(out[0])["data_spec"]
    for key in ("seq_len", "max_depth", "min_length", "max_length"):
        assert data_spec[key] == smoke[key]


def test_unknown_task_exits_2(capsys):
    assert data_cli.main(["task=nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "listops" in err


def test_unknown_key_exits_2(tmp_path, capsys):
    assert data_cli.main([f"data_dir={tmp_path}", "task.num_trian=5"]) == 2
    assert "num_trian" in capsys.readouterr().err
    assert data_cli.main(["experiment=nope"]) == 2
    assert "unknown experiment 'nope'; choices: " in capsys.readouterr().err
    assert data_cli.main(["num_train"]) == 2
    assert data_cli.main(["task=listops", "workers=2", "trainer.progress=false", "nope=1"]) == 2


def test_same_keys_as_lra_train(tmp_path, capsys):
    """A task key without ``task.`` is refused with the spelling that lra-train also takes."""
    assert data_cli.main(["task=text", "seq_len=1000"]) == 2
    err = capsys.readouterr().err
    assert "task.seq_len=1000" in err and "lra-train" in err
    from lra.config import compose

    prepared = compose("data", ["task=text", "task.seq_len=1000", "trainer.device=cpu"])
    trained = compose("train", ["task=text", "task.seq_len=1000", "trainer.device=cpu"])
    assert prepared.task == trained.task and prepared.data_dir == trained.data_dir


def test_smoke_for_a_task_without_preset_exits_2(tmp_path, capsys):
    assert data_cli.main(["task=text", "experiment=smoke", f"data_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "experiment=smoke is not defined for task=text" in err and "pathfinder" in err
    assert not any(tmp_path.iterdir())  # refused before any work


def test_workers_refused_for_a_task_that_generates_nothing(tmp_path, capsys):
    argv = ["task=image", f"data_dir={tmp_path}", "workers=2"]
    assert data_cli.main(argv) == 2
    assert "workers" in capsys.readouterr().err


def test_missing_release_exits_1(tmp_path, capsys):
    code = data_cli.main(
        ["task.source=release", f"data_dir={tmp_path}", f"task.release_dir={tmp_path / 'rel'}"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert str(tmp_path / "rel" / "listops-1000") in err and "Traceback" not in err


def test_help_lists_tasks(capsys):
    assert data_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "lra-data task=" in out and "listops" in out.split("tasks: ")[1].strip().split(", ")
