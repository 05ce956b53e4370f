"""Where the config tree lives and small helpers to load parts of it outside Hydra apps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"


def default_data_dir() -> Path:
    """``$LRA_DATA_DIR`` if set, else ``./data`` (the same default as ``conf/train.yaml``)."""
    return Path(os.environ.get("LRA_DATA_DIR", "data"))


def default_results_dir() -> Path:
    """The runs' default ``results_dir``: ``conf/train.yaml``'s (``$LRA_RESULTS_DIR`` if set,
    else ``outputs/results``), read from the config, its one owner."""
    return Path(compose("train", []).results_dir)


def group_options(group: str) -> list[str]:
    """Names of the YAML files in ``conf/<group>/`` (the valid choices of that group)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def load_group(group: str, name: str, overrides: dict[str, Any] | None = None) -> DictConfig:
    """Load ``conf/<group>/<name>.yaml`` and merge ``overrides`` into it.

    Keys are checked: an override of a key the file does not have raises ``KeyError``
    naming it and the valid keys. Values may be nested dicts (``optim={"lr": 1e-3}``).
    """
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(f"unknown {group} {name!r}; valid: {', '.join(group_options(group))}")
    cfg = OmegaConf.load(path)
    OmegaConf.set_struct(cfg, True)
    try:
        return OmegaConf.merge(cfg, OmegaConf.create(overrides or {}))
    except ConfigKeyError as err:
        raise KeyError(
            f"{group}/{name} has no key {err.key!r} ({err.full_key}); valid keys: "
            f"{', '.join(cfg.keys())}"
        ) from None


def compose(
    config_name: str = "train",
    overrides: list[str] | None = None,
    return_hydra_config: bool = False,
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with command-line style overrides, as the apps do
    (with ``return_hydra_config`` the ``hydra`` node too, e.g. a sweep file's sweeper params).

    >>> cfg = compose("train", ["experiment=smoke", "model=transformer_naive"])
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from lra.method_configs import register_method_configs

    register_method_configs(overrides or [])  # model=external, installed entry points
    kwargs = {"overrides": overrides or [], "return_hydra_config": return_hydra_config}
    if GlobalHydra.instance().is_initialized():  # inside one of our Hydra apps: its tree
        return hydra_compose(config_name, **kwargs)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name, **kwargs)


def build_task(name: str, data_dir: str | Path | None = None, **overrides: Any):
    """Compose ``conf/task/<name>.yaml`` with ``overrides`` and build that task.

    >>> task = build_task("listops", data_dir="data", num_train=1000)

    Args:
        name: task name (a key of ``tasks.TASKS``).
        data_dir: root of raw, generated and cached data (default ``$LRA_DATA_DIR`` or ``data``).
        **overrides: keys of the task's YAML, e.g. ``source="release"``, ``num_train=1000``.
    """
    import tasks

    cls = tasks.task_class(name)
    cfg = load_group("task", name, overrides)
    return cls(cfg, data_dir if data_dir is not None else default_data_dir())
