"""``lra-data``: generate or read a task's raw data and write its tokenised cache.

    lra-data task=listops [experiment=NAME] [data_dir=DIR] [workers=N] [trainer.progress=false]
    lra-data task=listops task.source=release task.release_dir=DIR

The config is ``lra-train``'s (``conf/data.yaml`` composes ``conf/train.yaml``), so an
override means the same in both commands: ``lra-data task=text task.seq_len=1000`` prepares
exactly the data that ``lra-train task=text task.seq_len=1000`` reads. ``workers`` (generator
processes) is ``lra-data``'s own key.

An existing cache is verified in full (every array's size, shape, dtype and CRC-32 against
what was recorded when it was written); a corrupt one is reported and rebuilt from the source.
A cache written before integrity records is reported ``unverified``. Warnings (truncation,
unknown tokens, skipped images) are printed as ``lra-data: warning: ...`` lines.

Errors are one line ``lra-data: <cause>`` on stderr (file and line where there is one);
``--debug`` or ``LRA_DEBUG=1`` adds the traceback. Exit codes:

    0  done (the cache exists and verifies)
    1  source data missing (the message says how to get it)
    2  usage or config error (unknown task or key, bad value)
    3  bad data: undecodable or malformed source file, empty split, corrupt cache
    4  I/O error writing the data (disk full, permission denied); temporary files are removed
    5  internal error (a bug: please report it with the --debug traceback)
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from pathlib import Path

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lra.config import CONF_DIR, compose, group_options
from lra.run.checks import check_protocol_fits_task
from lra.run.overrides import check_overrides

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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache_dir = task.prepare(verify="full", rebuild=True)
    for warning in caught:
        print(f"lra-data: warning: {warning.message}", file=sys.stderr)
    sizes = task.summary()["sizes"]
    print(f"{task.name}: {cache_dir}")
    print("sizes: " + ", ".join(f"{s}={n}" for s, n in sizes.items()))
    status = getattr(task, "cache_status", "built")
    if status == "unverified":
        status += " (written before integrity records; delete the folder to rebuild it verified)"
    print(f"cache: {status}")
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
    debug = "--debug" in argv or os.environ.get("LRA_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if any(a in ("-h", "--help") for a in argv):
        print(f"usage: {USAGE}\n\ntasks: {', '.join(group_options('task'))}")
        return 0
    problem = _task_key_hint(argv) or check_overrides(argv, "data")
    if problem:
        print(f"lra-data: {problem}", file=sys.stderr)
        return 2
    try:
        cfg = compose("data", argv)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        hint = _task_key_hint(argv)
        message = "; ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
        print(f"lra-data: {hint or message}", file=sys.stderr)
        return 2

    try:
        check_protocol_fits_task(cfg)
        prepare(cfg)
    except Exception as err:  # every error becomes one line and an exit code
        code, message = classify(err)
        print(f"lra-data: {message}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        elif code == 5:
            print(
                "lra-data: rerun with --debug (or LRA_DEBUG=1) for the traceback", file=sys.stderr
            )
        return code
    return 0


def classify(err: BaseException) -> tuple[int, str]:
    """Exit code (see the module docstring) and one-line message of an error of ``prepare``."""
    import tasks
    from tasks.errors import DataError

    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    text = " ".join(text.split())
    if isinstance(err, tasks.MissingDataError):
        return 1, text
    if isinstance(err, DataError):
        return 3, text
    if isinstance(err, UnicodeDecodeError):
        return 3, f"undecodable input ({text})"
    if isinstance(err, (KeyError, ValueError)):
        return 2, text
    if isinstance(err, OSError):
        where = f" writing {err.filename}" if err.filename else ""
        return 4, f"I/O error{where}: {err.strerror or text} (temporary files were removed)"
    return 5, f"internal error: {type(err).__name__}: {text}"


if __name__ == "__main__":
    sys.exit(main())
