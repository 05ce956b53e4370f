"""One job's death costs only that job: the jobs of a local sweep run in a child process.

Under Hydra's ``basic`` and ``joblib`` launchers every job of ``lra-train -m`` shares a process
with others (the sweep's own, or a joblib worker's); a job killed by the operating system (the
out-of-memory killer sends ``SIGKILL``) would take them down and leave no record. So each such
job runs in a forked child; the parent forwards SIGTERM/SIGINT/SIGUSR1/SIGUSR2 to it (the child
saves ``last.pt`` and stops as usual) and, if the child dies by a signal it could not handle,
writes the job's ``failed`` record saying so, and the sweep goes on.

A sweep killed alone (``kill <pid>``, ``SIGKILL``) must not leave its jobs running on. A job's
child gets ``SIGTERM`` when its parent dies (:func:`tasks.files.die_with_parent`), which
covers the basic launcher and ``n_jobs=1``, where the sweep process is the parent. A joblib
worker outlives the sweep process that feeds it, so ``lra-train`` names itself the sweep
(``LRA_SWEEP_PID``, inherited by the workers): a worker does not start a job whose sweep has
ended and stops a running one with ``SIGTERM``. Stopped this way, a job saves ``last.pt``; the
same command resumes it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable

from tasks.files import die_with_parent, pid_alive

LOCAL_LAUNCHERS = ("BasicLauncher", "JoblibLauncher")
FORWARDED = tuple(
    getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2") if hasattr(signal, n)
)


def is_local(launcher_target: str) -> bool:
    """Whether a Hydra launcher runs several jobs in one process (``basic``, ``joblib``)."""
    return str(launcher_target).rsplit(".", 1)[-1] in LOCAL_LAUNCHERS


SWEEP_PID_ENV = "LRA_SWEEP_PID"
POLL_S = 1.0  # how often a waiting job checks that its sweep process is alive


def claim_sweep() -> None:
    """Make this process the sweep whose end stops the jobs of its workers."""
    os.environ[SWEEP_PID_ENV] = str(os.getpid())


def sweep_pid() -> int | None:
    """The pid of the sweep process this job belongs to, if another process than this one."""
    pid = int(os.environ.get(SWEEP_PID_ENV) or 0)
    return pid if pid and pid != os.getpid() else None


def run_isolated(job: Callable[[], None], watch: int | None = None) -> int:
    """Run ``job()`` in a forked child and return its exit code (negative: killed by that
    signal). Signals that reach this process while it waits are passed on to the child; the
    child gets ``SIGTERM`` if this process dies or if process ``watch`` ends."""
    parent = os.getpid()

    def child_main() -> None:
        die_with_parent(parent, signum=signal.SIGTERM)  # saves last.pt, then stops
        job()

    child = multiprocessing.get_context("fork").Process(target=child_main)
    child.start()
    previous = {}

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):  # the child may have just ended
            os.kill(child.pid, signum)

    try:
        for sig in FORWARDED:
            previous[sig] = signal.signal(sig, forward)
        stopped = False
        while child.exitcode is None:
            child.join(POLL_S if watch else None)
            if watch and not stopped and child.exitcode is None and not pid_alive(watch):
                forward(signal.SIGTERM, None)
                stopped = True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return child.exitcode


def death_message(exit_code: int) -> str:
    """The ``error`` of a job whose process died by signal ``-exit_code``."""
    name = signal.Signals(-exit_code).name
    cause = " (the out-of-memory killer ends processes this way)" if name == "SIGKILL" else ""
    return f"Killed: the job's process died by {name}{cause}; its last.pt, if any, is kept"
