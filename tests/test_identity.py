"""Run identity: one list of non-semantic keys drives both run folder names and the config hash."""

from __future__ import annotations

from omegaconf import OmegaConf

from lra.config import CONF_DIR, compose
from lra.identity import FOLDER_KEYS, config_hash, make_run_id, non_semantic_keys

BASE = ["experiment=smoke"]
# a value for every non-semantic key that differs from its default
CHANGED = {
    "results_dir": "elsewhere",
    "data_dir": "/tmp/other",
    "logger": "wandb",
    "trainer.progress": "false",
    "trainer.num_workers": "2",
    "trainer.resume": "false",
    "trainer.ckpt_every": "7",
    "trainer.log_every": "3",
    "trainer.compile": "true",
}


def test_non_semantic_keys_are_the_folder_exclude_list_less_the_folder_keys():
    train = OmegaConf.load(CONF_DIR / "train.yaml")
    excluded = list(train.hydra.job.config.override_dirname.exclude_keys)
    assert set(non_semantic_keys()) == {
        k for k in excluded if k not in FOLDER_KEYS and not k.startswith("hydra.")
    }
    assert set(non_semantic_keys()) == set(CHANGED), "update CHANGED with the new key"


def test_every_non_semantic_key_exists_and_leaves_the_hash_alone():
    base = compose("train", BASE)
    for key, value in CHANGED.items():
        node, *path = key.split(".")
        assert node in base and (not path or path[0] in base[node]), f"{key} is not a config key"
        changed = compose("train", [*BASE, f"{key}={value}"])
        assert changed != base, key  # the override took effect
        assert config_hash(changed) == config_hash(base), key


def test_semantic_keys_change_the_hash_and_the_id_names_task_model_seed():
    base = compose("train", BASE)
    for override in ("task.optim.lr=0.01", "model=linear", "seed=1", "trainer.grad_accum=2"):
        other = compose("train", [*BASE, override])
        assert make_run_id(other) != make_run_id(base), override
    assert make_run_id(base) == f"listops-transformer-s0-{config_hash(base)}"
