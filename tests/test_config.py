"""Config tree: every group option composes; bad names and keys fail with useful errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from lra.config import CONF_DIR, compose, group_options, load_group
from lra.identity import config_hash
from lra.run.checks import ConfigError, validate_run_config


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


def _leaf_keys(node, prefix=""):
    out = set()
    for key, value in node.items():
        out |= _leaf_keys(value, f"{prefix}{key}.") if hasattr(value, "items") else {prefix + key}
    return out


@pytest.mark.parametrize("preset", group_options("preset"))
def test_each_preset_sets_only_keys_its_task_has(preset):
    """A preset that named a key of another task (ListOps' max_depth on Pathfinder) would
    silently add it; every preset key must already exist in its task's YAML."""
    experiment, task = preset.split("_", 1)
    assert experiment in group_options("experiment") and task in group_options("task")
    preset_keys = _leaf_keys(OmegaConf.load(CONF_DIR / "preset" / f"{preset}.yaml"))
    assert preset_keys and preset_keys <= _leaf_keys(load_group("task", task)), preset_keys
    cfg = compose("train", [f"experiment={experiment}", f"task={task}"])
    for key in preset_keys:  # and the composed config has the preset's values
        assert OmegaConf.select(cfg.task, key) == OmegaConf.select(
            OmegaConf.load(CONF_DIR / "preset" / f"{preset}.yaml"), key
        ), key
    validate_run_config(cfg)


def test_smoke_listops_is_the_demo_configuration():
    """Moving the ListOps part of the smoke recipe into its preset kept the committed demo's
    configuration (its run id)."""
    demo = sorted((CONF_DIR.parent / "results" / "runs").glob("listops-transformer-s0-*.json"))
    assert demo, "the committed demo record is missing"
    cfg = compose("train", ["experiment=smoke"])
    assert demo[0].stem.endswith(config_hash(cfg))
    assert cfg.task.max_depth == 4 and cfg.trainer.device == "cpu"


def test_smoke_pathfinder_mixes_in_no_listops_key():
    cfg = compose("train", ["experiment=smoke", "task=pathfinder"])
    assert "max_depth" not in cfg.task and "num_train" not in cfg.task
    assert (cfg.task.source, cfg.task.num_images, cfg.task.resolution) == ("generate", 4000, 32)


@pytest.mark.parametrize("task", ["text", "retrieval", "image"])
def test_smoke_is_refused_for_a_task_without_preset(task):
    cfg = compose("train", ["experiment=smoke", f"task={task}"])
    with pytest.raises(ConfigError, match=f"experiment=smoke is not defined for task={task}"):
        validate_run_config(cfg)


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


def test_cli_misspelled_key_gets_the_closest_one():
    result = _cli("task.optim.stpes=10")
    assert result.returncode == 2
    assert "unknown key task.optim.stpes; did you mean task.optim.steps=10?" in result.stderr
    added = _cli("+task.optim.stpes=10")  # Hydra's own advice: would run with the typo ignored
    assert added.returncode == 2
    assert "+task.optim.stpes=10 adds a key that nothing reads" in added.stderr
    assert "task.optim.steps=10" in added.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "+sweep=lr_search", "task.optim.lr=1e-3,1e-2", "seed=0,1"],
        ["task=text", "task.seq_len=1000", "task.val_policy=holdout"],
        ["model=performer", "model.nb_features=64", "trainer.precision=bf16"],
        ["experiment=smoke", "task=pathfinder", "task.num_images=100", "quirks=lra"],
        ["hydra.run.dir=somewhere", "hydra/launcher=joblib", "~logger", "seed=3"],
    ],
)
def test_valid_overrides_pass_the_key_check(argv):
    from lra.run.overrides import check_overrides

    assert check_overrides(argv) is None


@pytest.mark.parametrize(
    ("argv", "suggested"),
    [
        (["task=text", "task.seq_lne=1000"], "task.seq_len=1000"),
        (["model=performer", "model.nb_featurs=64"], "model.nb_features=64"),
        (["sed=3"], "seed=3"),
        (["experiment=smoke", "task=pathfinder", "task.num_image=9"], "task.num_images=9"),
    ],
)
def test_misspelled_keys_of_any_section_are_caught(argv, suggested):
    from lra.run.overrides import check_overrides

    assert check_overrides(argv).endswith(f"did you mean {suggested}?")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["model=linformr"], "unknown model 'linformr'; did you mean model=linformer? choices:"),
        (["task=listop"], "unknown task 'listop'; did you mean task=listops? choices:"),
        (["model=transformer,perfomer"], "did you mean model=performer?"),
        (["+sweep=lra_tabel"], "unknown sweep 'lra_tabel'; did you mean sweep=lra_table?"),
        (["experiment=nothing_like_it"], "unknown experiment 'nothing_like_it'; choices: "),
    ],
)
def test_a_misspelled_choice_gets_the_closest_one(argv, says):
    from lra.run.overrides import check_overrides

    assert says in check_overrides(argv)


def test_valid_choices_pass_the_choice_check():
    from lra.run.overrides import check_overrides

    argv = ["model=transformer,performer", "task=text", "experiment=smoke", "task=listops"]
    assert check_overrides(argv) is None
    assert check_overrides(["model=external"]) == (
        "model=external needs model.target=package.module:ClassName"
    )


def test_smoke_all_sweep_lists_every_registered_method():
    from models import REGISTRY

    params = OmegaConf.load(CONF_DIR / "sweep" / "smoke_all.yaml").hydra.sweeper.params
    methods = params.model.split(",")
    assert sorted(methods) == sorted(REGISTRY) and len(methods) == len(set(methods))
    assert (params.experiment, params.task, params.seed) == ("smoke", "listops", "0,1,2")


def test_an_unread_key_under_an_existing_section_gets_no_far_fetched_suggestion():
    from lra.run.overrides import check_overrides

    problem = check_overrides(["model=performer", "+model.bogus=1"])
    assert "adds a key that nothing reads" in problem and "did you mean" not in problem
    assert check_overrides(["task.optm.lr=1"]).endswith("did you mean task.optim.lr=1?")
