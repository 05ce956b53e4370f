"""Who a run is: its config hash, its run id, the keys that do not change what it computes, and
the configuration fingerprint that tells the seeds of one experiment from other experiments.

The non-semantic keys have one owner, ``hydra.job.config.override_dirname.exclude_keys`` in
``conf/train.yaml``: that list keeps keys out of the run folder's name, and the same keys (less
the choices that name the folder themselves: task, model, seed, sweep, hydra's own) stay out
of the config hash. So a restart that only changes, say, ``trainer.num_workers`` finds its
folder and checkpoint, and its record keeps its run id.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lra.config import CONF_DIR

FOLDER_KEYS = ("task", "model", "seed", "sweep")  # path parts of the run folder, not its name
# what two runs of one configuration may differ in: the seed, and the device it ran on
FINGERPRINT_IGNORES = ("seed", "trainer.device")
# top-level keys added after records existed: at their default they are left out of the hash,
# so the run ids of earlier records stay valid
DEFAULTS_LEFT_OUT = {"quirks": "none"}


@cache
def non_semantic_keys() -> tuple[str, ...]:
    """Dotted config keys left out of the config hash (read from ``conf/train.yaml``)."""
    train = OmegaConf.load(CONF_DIR / "train.yaml")
    excluded = train.hydra.job.config.override_dirname.exclude_keys
    return tuple(k for k in excluded if k not in FOLDER_KEYS and not k.startswith("hydra."))


def semantic_config(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """The resolved config without ``hydra`` and without :func:`non_semantic_keys`."""
    container = (
        OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    )
    container = json.loads(json.dumps(container, default=str))  # a deep copy of plain values
    container.pop("hydra", None)
    for key in non_semantic_keys():
        _drop(container, key)
    for key, default in DEFAULTS_LEFT_OUT.items():
        if container.get(key, default) == default:
            container.pop(key, None)
    return container


def config_hash(cfg: DictConfig | dict[str, Any]) -> str:
    """8 hex digits of the SHA-1 of :func:`semantic_config` (sorted-key JSON)."""
    blob = json.dumps(semantic_config(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:8]


def _drop(container: dict[str, Any], key: str) -> None:
    *parents, leaf = key.split(".")
    node = container
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def configuration(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """What a configuration is: :func:`semantic_config` without ``FINGERPRINT_IGNORES``.

    Runs with equal configurations are seeds of one experiment; any other difference (a recipe
    value, a method option, the precision) makes another configuration.
    """
    container = semantic_config(cfg)
    for key in FINGERPRINT_IGNORES:
        _drop(container, key)
    return container


def config_fingerprint(cfg: DictConfig | dict[str, Any]) -> str:
    """8 hex digits identifying the :func:`configuration` (equal for the seeds of one)."""
    blob = json.dumps(configuration(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:8]


def make_run_id(cfg: DictConfig) -> str:
    """``<task>-<model>-s<seed>-<config hash>``: equal configs give equal ids (re-runs dedupe)."""
    return f"{cfg.task.name}-{cfg.model.name}-s{cfg.seed}-{config_hash(cfg)}"
