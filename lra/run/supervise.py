"""One job's death costs only that job: the jobs of a local sweep run in a child process.

Under Hydra's ``basic`` and ``joblib`` launchers every job of ``lra-train -m`` shares a process
with others (the sweep's own, or a joblib worker's); a job killed by the operating system (the
out-of-memory killer sends ``SIGKILL``) would take them down and leave no record. So each such
job runs in a forked child; the parent forwards SIGTERM/SIGINT/SIGUSR1/SIGUSR2 to it (the child
saves ``last.pt`` and stops as usual) and, if the child dies by a signal it could not handle,
writes the job's ``failed`` record saying so, and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable

LOCAL_LAUNCHERS = ("BasicLauncher", "JoblibLauncher")
FORWARDED = tuple(
    getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2") if hasattr(signal, n)
)


def is_local(launcher_target: str) -> bool:
    """Whether a Hydra launcher runs several jobs in one process (``basic``, ``joblib``)."""
    return str(launcher_target).rsplit(".", 1)[-1] in LOCAL_LAUNCHERS


def run_isolated(job: Callable[[], None]) -> int:
    """Run ``job()`` in a forked child and return its exit code (negative: killed by that
    signal). Signals that reach this process while it waits are passed on to the child."""
    child = multiprocessing.get_context("fork").Process(target=job)
    child.start()
    previous = {}

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):  # the child may have just ended
            os.kill(child.pid, signum)

    try:
        for sig in FORWARDED:
            previous[sig] = signal.signal(sig, forward)
        child.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return child.exitcode


def death_message(exit_code: int) -> str:
    """The ``error`` of a job whose process died by signal ``-exit_code``."""
    name = signal.Signals(-exit_code).name
    cause = " (the out-of-memory killer ends processes this way)" if name == "SIGKILL" else ""
    return f"Killed: the job's process died by {name}{cause}; its last.pt, if any, is kept"
