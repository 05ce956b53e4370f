"""Run loggers. The result record is the source of truth; loggers only mirror it.

``metrics.jsonl`` in the run folder is always written. ``logger=wandb`` mirrors config,
metrics and the final record to Weights & Biases; any wandb error is turned into a warning.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig


class JsonlLogger:
    """Appends one JSON line per metrics event to ``<run_dir>/metrics.jsonl``."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics.jsonl"

    def log(self, metrics: dict[str, Any], step: int) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")


class WandbLogger:
    """Mirror of a run in wandb; never raises."""

    def __init__(self, cfg: DictConfig, run_config: dict[str, Any], run_id: str, run_dir: Path):
        self.run = None
        try:
            import wandb

            mode = cfg.get("mode") or os.environ.get("WANDB_MODE") or _default_mode(wandb)
            self.run = wandb.init(
                project=cfg.get("project", "lra"),
                entity=cfg.get("entity"),
                group=cfg.get("group") or _sweep_group(),
                tags=list(cfg.get("tags") or []),
                name=run_id,
                id=run_id,
                resume="allow",
                dir=str(run_dir),
                mode=mode,
                config=run_config,
            )
        except Exception as err:  # noqa: BLE001 - wandb must never fail the run
            warnings.warn(f"wandb disabled: {err}", stacklevel=2)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if self.run is not None:
            _guard(lambda: self.run.log(metrics, step=step))

    def finish(self, record: dict[str, Any]) -> None:
        if self.run is None:
            return
        summary = {k: v for k, v in record.items() if k not in ("config", "history")}
        _guard(lambda: self.run.summary.update(summary))
        _guard(lambda: self.run.finish(exit_code=0 if record["status"] == "ok" else 1))


def _sweep_group() -> str | None:
    """Inside a Hydra multirun, the named sweep (``+sweep=<name>``) names the group, else
    ``multirun``."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            return str(hydra_cfg.runtime.choices.get("sweep") or "multirun")
    except Exception:  # noqa: BLE001 - not under Hydra (tests, notebooks)
        pass
    return None


def _default_mode(wandb) -> str:
    """online if credentials exist, else offline."""
    try:
        return "online" if wandb.api.api_key else "offline"
    except Exception:  # noqa: BLE001
        return "offline"


def _guard(fn) -> None:
    try:
        fn()
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"wandb call failed: {err}", stacklevel=3)


class Loggers:
    """Fan-out to the run's loggers."""

    def __init__(self, cfg: DictConfig, run_config: dict[str, Any], run_id: str, run_dir: Path):
        self.jsonl = JsonlLogger(run_dir)
        name = cfg.get("name", "none")
        if name not in ("none", "wandb"):
            raise ValueError(f"unknown logger {name!r}; valid: none, wandb")
        self.wandb = WandbLogger(cfg, run_config, run_id, run_dir) if name == "wandb" else None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self.jsonl.log(metrics, step)
        if self.wandb:
            self.wandb.log(metrics, step)

    def finish(self, record: dict[str, Any]) -> None:
        if self.wandb:
            self.wandb.finish(record)


class NullLogger:
    """The logger of DDP ranks > 0: rank 0 alone logs."""

    def log(self, metrics: dict[str, Any], step: int) -> None:
        pass

    def finish(self, record: dict[str, Any]) -> None:
        pass
