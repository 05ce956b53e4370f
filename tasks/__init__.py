"""LRA tasks: one module per task, each a :class:`Task` registered in ``TASKS`` by its name.

``tasks`` is a library of its own: it reads a composed task config and never imports the
harness (``lra``). ``lra.config.build_task`` composes ``conf/task/<name>.yaml`` for you:

>>> task = task_from_config(cfg.task, data_dir="data")   # cfg: a composed lra-train config
>>> task.prepare(); batch = task.split("train").get_batch([0, 1])
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from omegaconf import DictConfig

from tasks.base import TASKS, EmptySplitError, MissingDataError, Task
from tasks.spec import TaskSpec

# every module of the folder is imported, so each Task subclass registers itself in TASKS
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "TASKS",
    "EmptySplitError",
    "MissingDataError",
    "Task",
    "TaskSpec",
    "task_class",
    "task_from_config",
]


def task_class(name: str) -> type[Task]:
    """The ``Task`` subclass registered as ``name``; ``KeyError`` lists the valid names."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def task_from_config(task_cfg: DictConfig, data_dir: str | Path) -> Task:
    """Build the task of a composed task config (``cfg.task`` of a run)."""
    return task_class(task_cfg.name)(task_cfg, data_dir)
