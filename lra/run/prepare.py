"""``lra-data``: generate or read a task's raw data and write its tokenised cache.

    lra-data task=listops [experiment=NAME] [data_dir=DIR] [workers=N] [trainer.progress=false]
    lra-data task=listops task.source=release task.release_dir=DIR

The config is ``lra-train``'s (``conf/data.yaml`` composes ``conf/train.yaml``), so an
override means the same in both commands: ``lra-data task=text task.seq_len=1000`` prepares
exactly the data that ``lra-train task=text task.seq_len=1000`` reads. ``workers`` (generator
processes) is ``lra-data``'s own key. Exit codes: 0 done, 1 source data missing, 2 usage error.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lra.config import CONF_DIR, compose, group_options

USAGE = __doc__.split("\n\n")[1].strip()


def prepare(cfg: DictConfig) -> Path:
    """Prepare ``cfg.task`` under ``cfg.data_dir`` (idempotent); return the cache folder."""
    import tasks

    task = tasks.task_from_config(cfg.task, cfg.data_dir)
    if hasattr(task, "workers"):
        task.workers = cfg.workers
    elif cfg.workers is not None:
        raise ValueError(f"task {task.name} generates nothing; workers= does not apply")
    if hasattr(task, "progress"):
        task.progress = bool(cfg.trainer.progress)
    start = time.perf_counter()
    cache_dir = task.prepare()
    sizes = task.summary()["sizes"]
    print(f"{task.name}: {cache_dir}")
    print("sizes: " + ", ".join(f"{s}={n}" for s, n in sizes.items()))
    print(f"took {time.perf_counter() - start:.1f} s")
    return cache_dir


def _task_key_hint(argv: list[str]) -> str | None:
    """For ``num_train=5`` (a task key without ``task.``), the spelling that works."""
    task = next((w.split("=", 1)[1] for w in argv if w.startswith("task=")), "listops")
    if task not in group_options("task"):
        return None
    keys = set(OmegaConf.load(CONF_DIR / "task" / f"{task}.yaml"))
    for word in argv:
        key, sep, value = word.partition("=")
        if sep and key in keys and key != "name":
            return f"{key!r} is a key of the task: write task.{key}={value} (as in lra-train)"
    return None


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``lra-data``; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print(f"usage: {USAGE}\n\ntasks: {', '.join(group_options('task'))}")
        return 0
    try:
        cfg = compose("data", argv)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        hint = _task_key_hint(argv)
        message = "; ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
        print(f"lra-data: {hint or message}", file=sys.stderr)
        return 2
    import tasks

    try:
        prepare(cfg)
    except tasks.MissingDataError as err:
        print(f"lra-data: {err}", file=sys.stderr)
        return 1
    except (KeyError, ValueError) as err:
        print(f"lra-data: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
