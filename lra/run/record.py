"""The result record of a run (schema in :mod:`lra.records`): what is known before training,
then what the loop measured."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from lra.identity import make_run_id
from lra.provenance import device_name, git_sha
from lra.records import RECORD_KEYS, RECORD_SCHEMA
from lra.runtime import peak_memory_mb, precision_name
from tasks import Task


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain Python values, without ``hydra``."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return container


def data_spec_of(task: Task | None) -> dict[str, Any] | None:
    """The task's data spec with its hash; None when there is no task or the spec is invalid
    (the record of a run that failed on its data then still gets written)."""
    if task is None:
        return None
    try:
        return {"hash": task.spec_hash, **task.data_spec()}
    except Exception:  # noqa: BLE001 - the failure itself is what the record reports
        return None


def method_fields(cfg: DictConfig) -> dict[str, Any]:
    """``method_target``, ``method_package``, ``method_version`` of the run's attention class
    (null when it cannot be imported: the failed record says why)."""
    import models
    from models.external import method_source

    try:
        source = method_source(models.method_class(cfg.model))
    except Exception:  # noqa: BLE001 - the record of a run whose method failed still gets written
        return dict.fromkeys(("method_target", "method_package", "method_version"))
    return {f"method_{key}": value for key, value in source.items()}


def base_record(cfg: DictConfig, task: Task | None, status: str, error: str | None = None) -> dict:
    """A record with what is known before training; measured fields are null."""
    return dict.fromkeys(RECORD_KEYS) | {
        "schema": RECORD_SCHEMA,
        "run_id": make_run_id(cfg),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": cfg.task.name,
        "model": cfg.model.name,
        **method_fields(cfg),
        "seed": int(cfg.seed),
        "status": status,
        "torch": torch.__version__,
        "git_sha": git_sha(),
        "data_spec": data_spec_of(task),
        "config": plain_config(cfg),
        "history": [],
        "error": error,
    }


def trainer_record(trainer, status: str, test_acc, test_acc_last, error=None) -> dict:
    """The record of a run that built its :class:`lra.run.loop.Trainer`."""
    s = trainer.state
    return base_record(trainer.cfg, trainer.task, status, error) | {
        "val_acc": s.best_val_acc,
        "test_acc": test_acc,
        "test_acc_last": test_acc_last,
        "n_val": trainer.evaluated.get("val"),
        "n_test": trainer.evaluated.get("test"),
        "best_step": s.best_step,
        "steps": s.step,
        "params": trainer.model.num_params(),
        "train_s": round(s.train_s, 3),
        "steps_per_s": s.timed_steps / s.train_s if s.train_s > 0 else None,
        "tokens_per_s": s.tokens / s.train_s if s.train_s > 0 else None,
        "compile_s": round(s.compile_s, 3),
        "peak_mem_mb": round(peak_memory_mb(trainer.device), 1),
        "device": device_name(trainer.device),
        "dtype": precision_name(trainer.dtype),
        "history": s.history,
    }


def summary_line(record: dict[str, Any], path: Path) -> str:
    """One line for the terminal: status, test accuracy at best val, last-step test, time."""
    fmt = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    return (
        f"[{record['status']}] {record['run_id']}: test {fmt(record['test_acc'])} at best val "
        f"{fmt(record['val_acc'])} (step {record['best_step']}), last-step test "
        f"{fmt(record['test_acc_last'])}; {record['steps']} steps in {record['train_s']:.0f}s "
        f"on {record['device']} -> {path}"
    )
