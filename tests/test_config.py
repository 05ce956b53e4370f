"""Config tree: every group option composes; bad names and keys fail with useful errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from lra.config import compose, group_options, load_group


@pytest.mark.parametrize("task", group_options("task"))
@pytest.mark.parametrize("model", group_options("model"))
def test_every_task_and_model_composes(task, model):
    cfg = compose("train", [f"task={task}", f"model={model}"])
    OmegaConf.resolve(cfg)
    assert cfg.task.name == task and cfg.model.name == model
    for key in ("layers", "heads", "dim", "mlp_dim", "dropout", "attn_dropout", "pos", "pooling"):
        assert key in cfg.task.backbone, (task, key)
    for key in ("batch_size", "steps", "lr", "schedule", "warmup", "eval_every"):
        assert key in cfg.task.optim, (task, key)


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes(experiment):
    cfg = compose("train", [f"experiment={experiment}"])
    assert cfg.protocol == experiment


def test_listops_recipe_is_the_lra_one():
    cfg = compose("train", ["task=listops", "model=transformer"])
    b, o = cfg.task.backbone, cfg.task.optim
    assert (b.layers, b.heads, b.dim, b.mlp_dim, b.pooling) == (4, 8, 512, 1024, "cls")
    assert (o.batch_size, o.steps, o.lr, o.warmup, o.weight_decay) == (32, 5000, 0.05, 1000, 0.1)
    assert list(o.betas) == [0.9, 0.98] and o.eps == 1e-9 and o.schedule == "rsqrt"
    assert cfg.task.seq_len == 2000 and o.eval_every == 50


def test_every_value_is_an_override():
    cfg = compose("train", ["task.optim.lr=0.1", "task.backbone.layers=2", "seed=7"])
    assert cfg.task.optim.lr == 0.1 and cfg.task.backbone.layers == 2 and cfg.seed == 7


def test_unknown_key_is_rejected():
    with pytest.raises(Exception, match="nope"):
        compose("train", ["task.optim.nope=1"])
    with pytest.raises(KeyError, match="nope.*valid keys"):
        load_group("task", "listops", {"nope": 1})


def test_load_group_unknown_name_lists_options():
    with pytest.raises(KeyError, match="transformer_naive"):
        load_group("model", "nonexistent")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lra.run.train", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_unknown_model_exits_nonzero_listing_models():
    result = _cli("model=nonexistent")
    assert result.returncode != 0
    assert "transformer_naive" in result.stderr and "Traceback" not in result.stderr


def test_cli_unknown_override_key_is_hydra_error_not_traceback():
    result = _cli("task.optim.nope=1")
    assert result.returncode != 0
    assert "nope" in result.stderr and "Traceback" not in result.stderr
