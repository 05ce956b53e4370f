"""``lra-train``: train one attention method on one LRA task and write its result record.

    lra-train task=listops model=transformer seed=1
    lra-train experiment=smoke                    # the tiny CPU recipe of the demo and tests
    lra-train -m task=listops model=transformer,transformer_naive seed=0,1,2
    lra-train -m +sweep=lra_table hydra/launcher=slurm_gpu   # a named sweep on SLURM
    torchrun --nproc_per_node=2 -m lra.run.train task=text        # DDP; batch_size stays global

The loop (:mod:`lra.run.loop`): AdamW with the task's LRA schedule, gradient clipping and
accumulation, AMP on CUDA, evaluation on val every ``task.optim.eval_every`` steps, a best-val
checkpoint, test accuracy at the best-val step and at the last step. ``<run dir>/last.pt`` is written every
``trainer.ckpt_every`` steps; starting the same command again resumes from it. On
``SIGTERM``/``SIGUSR1``/``SIGUSR2`` (SLURM and submitit preemption, time limits) the loop saves
``last.pt`` at the next step boundary and stops (:mod:`lra.run.preempt`). Under ``torchrun`` it is
data-parallel (:mod:`lra.run.distributed`); rank 0 writes checkpoints and the record.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from lra.config import CONF_DIR
from lra.identity import make_run_id
from lra.method_configs import register_method_configs
from lra.records import record_path, write_json_atomic, write_record
from lra.run import distributed, supervise, sweep
from lra.run.checkpoint import CheckpointError
from lra.run.checks import ConfigError, validate_run_config
from lra.run.lock import RunLock, RunLocked
from lra.run.loggers import Loggers, NullLogger
from lra.run.loop import Trainer
from lra.run.overrides import check_overrides
from lra.run.preempt import Preempted, PreemptGuard
from lra.run.record import base_record, plain_config, summary_line, trainer_record
from lra.runtime import resolve_device
from tasks import MissingDataError, task_from_config
from tasks.errors import DataError
from tasks.files import pid_alive


def run(cfg: DictConfig, run_dir: str | Path) -> dict[str, Any]:
    """Prepare the data, train, test and write the result record; return the record.

    A run that raises (data preparation included) still writes a record with ``status=failed``
    and the error, then re-raises; a failed attempt never replaces an ``ok`` record of the
    same run id (:func:`lra.records.write_record` keeps it in ``attempts``).
    A signal (SIGTERM/SIGUSR1/SIGUSR2, Ctrl-C) saves ``last.pt`` and raises :class:`Preempted`
    without a record. Under ``torchrun`` every rank trains; rank 0 alone writes the record.
    Before anything starts, the config values are checked (:class:`ConfigError`) and the run
    folder is locked (:class:`RunLocked` if another process holds it); neither writes a record.
    """
    validate_run_config(cfg)  # a bad value is a usage error: no record, nothing started
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    info = distributed.from_env()
    with RunLock(run_dir) if info.is_main else contextlib.nullcontext():
        finished = finished_record(cfg, run_dir)
        if finished is not None and not info.enabled:
            return finished
        return _run(cfg, run_dir, info)


def finished_record(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """The ``ok`` record of this very run if its folder already holds one (and resuming is on):
    the same command again, or a re-started sweep, skips a finished run. Its record is written
    to ``results_dir`` too if it is not there (e.g. another ``results_dir``)."""
    path = run_dir / "record.json"
    if not (cfg.trainer.resume and path.is_file()):
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") != "ok":
        return None
    if record.get("run_id") != make_run_id(cfg):
        return None
    if not record_path(cfg.results_dir, record["run_id"]).is_file():
        write_record(cfg.results_dir, record)
    print(f"{record['run_id']} already finished ({path}); trainer.resume=false runs it again")
    return record


def _run(cfg: DictConfig, run_dir: Path, info: distributed.DistInfo) -> dict[str, Any]:
    is_main = info.is_main
    if info.enabled:
        distributed.setup(info, resolve_device(cfg.trainer.device, info.local_rank))
    task = trainer = logger = None
    try:
        with PreemptGuard() as guard:
            task = task_from_config(cfg.task, cfg.data_dir)
            if is_main:  # rank 0 prepares (generates, caches); the others then find the cache
                task.prepare()
            distributed.barrier()
            if not is_main:
                task.prepare()
            trainer = Trainer(cfg, run_dir, task)
            if is_main:
                print(trainer.start_summary(record_path(cfg.results_dir, trainer.run_id)))
            if trainer.maybe_resume() and is_main:
                print(
                    f"resuming {trainer.run_id} from step {trainer.state.step} ({trainer.last_path})"
                )
            logger = (
                Loggers(cfg.logger, plain_config(cfg), trainer.run_id, run_dir)
                if is_main
                else NullLogger()
            )
            status = trainer.fit(logger, guard)
            test_acc, test_last = trainer.test() if status == "ok" else (None, None)
            record = trainer_record(trainer, status, test_acc, test_last)
    except Exception as err:
        error = f"{type(err).__name__}: {err}"
        record = (
            trainer_record(trainer, "failed", None, None, error)
            if trainer
            else base_record(cfg, task, "failed", error)
        )
        if is_main:
            write_record(cfg.results_dir, record)
        if logger:
            logger.finish(record)
        distributed.teardown()
        raise
    except Preempted:
        distributed.teardown()
        raise
    distributed.teardown()
    if not is_main:
        return record
    path = write_record(cfg.results_dir, record)
    write_json_atomic(run_dir / "record.json", record)
    logger.finish(record)
    print(summary_line(record, path))
    return record


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    """One run. In a multirun (``-m``) a failing job has written its ``status=failed`` record
    and returns normally, so the sweep goes on; a single run exits non-zero. A preempted run
    exits with 128 + the signal number (under submitit, after requeueing itself). Jobs of a
    local sweep (basic, joblib launchers) run in a child process (:mod:`lra.run.supervise`): a
    job killed by the operating system gets a ``failed`` record and the sweep goes on."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    num = hydra_cfg.job.num if multirun else 0  # job numbers exist in multiruns only
    if not (multirun and supervise.is_local(hydra_cfg.launcher._target_)):
        _job(cfg, hydra_cfg.runtime.output_dir, multirun, num)
        return
    watch = supervise.sweep_pid()
    if watch and not pid_alive(watch):
        print(f"job {num} not started: its sweep (pid {watch}) has ended", file=sys.stderr)
        return
    job = lambda: _job(cfg, hydra_cfg.runtime.output_dir, multirun, num)  # noqa: E731
    code = supervise.run_isolated(job, watch)
    if code is not None and code < 0:
        message = supervise.death_message(code)
        write_record(cfg.results_dir, base_record(cfg, None, "failed", message))
        print(f"job {num} failed (record written): {message}", file=sys.stderr)
    elif code:
        sys.exit(code)  # preempted: the sweep stops as it would in one process


def _job(cfg: DictConfig, output_dir: str, multirun: bool, num: int) -> None:
    """One job with the exits of the single-run and multirun cases."""
    try:
        run(cfg, output_dir)
    except Preempted as stop:
        print(f"preempted: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    except (ConfigError, RunLocked) as err:  # refused before starting: no record
        print(f"error: {err}", file=sys.stderr)
        if multirun:
            return
        sys.exit(2 if isinstance(err, ConfigError) else 1)
    except Exception as err:
        if multirun:
            print(f"job {num} failed (record written): {err!r}", file=sys.stderr)
            return
        if isinstance(err, MissingDataError | DataError | CheckpointError):
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)
        raise


def main() -> None:
    """Console entry point ``lra-train``: misspelled or unread keys are refused first (with
    the closest valid key), then Hydra runs."""
    argv = sys.argv[1:]
    problem = check_overrides([a for a in argv if a != "--dry-run"])
    if problem:
        print(f"lra-train: {problem}", file=sys.stderr)
        sys.exit(2)
    if "--dry-run" in argv:  # list the jobs of the command, launch nothing
        sys.exit(sweep.dry_run([a for a in argv if a != "--dry-run"]))
    supervise.claim_sweep()  # joblib workers stop when this process ends
    register_method_configs(argv)  # model=external and installed entry points
    _hydra_main()


if __name__ == "__main__":
    main()
