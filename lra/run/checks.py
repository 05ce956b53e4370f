"""The values a run starts from, checked before any work: each error names the key, the value
and the valid range (``ConfigError``), instead of a ``ZeroDivisionError`` mid-run or a run that
ends ``ok`` having learned nothing."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lra.config import group_options
from lra.method_configs import MISSING, NEEDS_TARGET
from lra.quirks import CHOICES


class ConfigError(ValueError):
    """A run config value out of range; the message names key, value and what is valid."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(key: str, value: Any, ok: bool, valid: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not valid: must be {valid}")


def _int_at_least(key: str, value: Any, low: int, nullable: bool = False) -> None:
    if nullable and value is None:
        return
    valid = f"an integer >= {low}" + (" or null" if nullable else "")
    _check(
        key, value, isinstance(value, int) and not isinstance(value, bool) and value >= low, valid
    )


def check_protocol_fits_task(cfg: DictConfig) -> None:
    """An experiment with per-task presets (``conf/preset/<protocol>_<task>.yaml``) is defined
    for those tasks only: ``experiment=smoke task=text`` is refused, not run with ListOps keys."""
    protocol, task = str(cfg.get("protocol", "lra")), str(cfg.task.name)
    prefix = f"{protocol}_"
    tasks = [p[len(prefix) :] for p in group_options("preset") if p.startswith(prefix)]
    if tasks and task not in tasks:
        raise ConfigError(
            f"experiment={protocol} is not defined for task={task}: it has presets for "
            f"task={'|'.join(tasks)} (conf/preset/{protocol}_<task>.yaml); drop experiment= to "
            f"run the task's LRA recipe"
        )


def check_method(cfg: DictConfig) -> None:
    """The run's attention method can be built at the task's recipe with its options: a
    target that does not import, is not an attention class, or rejects an option is refused
    here in one line, before any data is prepared."""
    import models

    model = cfg.model
    if "target" in model and OmegaConf.is_missing(model, "target"):
        raise ConfigError(NEEDS_TARGET)
    where = f"model.target={model.target}" if model.get("target") else f"model={model.name}"
    for key, value in models.attention_options(model).items():
        if value == MISSING:
            raise ConfigError(f"{where}: option {key} has no default; give model.{key}=...")
    try:
        backbone = OmegaConf.to_container(cfg.task.backbone, resolve=True)
        models.recipe_layer(model, backbone, int(cfg.task.get("seq_len") or 1024) + 1)
    except KeyError as err:
        raise ConfigError(f"{where}: {err.args[0]}") from None
    except (TypeError, ValueError) as err:  # models.external.MethodError is a ValueError
        text = str(err)
        raise ConfigError(
            text if text.startswith("attention target") else f"{where}: {text}"
        ) from None


def validate_run_config(cfg: DictConfig) -> None:
    """Check the protocol's task, the method and its options, the seed, the recipe's
    ``task.optim`` and the ``trainer`` values of a run."""
    check_protocol_fits_task(cfg)
    check_method(cfg)
    quirks = cfg.get("quirks", "none")
    _check("quirks", quirks, quirks in CHOICES, f"one of {list(CHOICES)}")
    _int_at_least("seed", cfg.seed, 0)
    o, t = cfg.task.optim, cfg.trainer
    for key in ("batch_size", "steps", "eval_every"):
        _int_at_least(f"task.optim.{key}", o[key], 1)
    _int_at_least("task.optim.warmup", o.warmup, 0)
    _check("task.optim.lr", o.lr, _number(o.lr) and o.lr > 0, "a number > 0")
    _check("task.optim.eps", o.eps, _number(o.eps) and o.eps > 0, "a number > 0")
    wd = o.weight_decay
    _check("task.optim.weight_decay", wd, _number(wd) and wd >= 0, "a number >= 0")
    betas = list(o.betas) if o.betas is not None else None
    _check(
        "task.optim.betas",
        betas,
        betas is not None and len(betas) == 2 and all(_number(b) and 0 <= b < 1 for b in betas),
        "two numbers in [0, 1)",
    )
    clip = o.grad_clip
    _check(
        "task.optim.grad_clip", clip, clip is None or (_number(clip) and clip > 0), "> 0 or null"
    )
    _int_at_least("trainer.grad_accum", t.grad_accum, 1)
    for key in ("ckpt_every", "eval_batch_size", "max_eval_batches"):
        _int_at_least(f"trainer.{key}", t[key], 1, nullable=True)
    _int_at_least("trainer.num_workers", t.num_workers, 0)
    _int_at_least("trainer.log_every", t.log_every, 0)
    if o.batch_size % t.grad_accum:
        raise ConfigError(
            f"task.optim.batch_size={o.batch_size} is not divisible by "
            f"trainer.grad_accum={t.grad_accum}"
        )
