"""Preemption, time limits and Ctrl-C: checkpoint on a signal at the next step boundary, then
stop (and requeue under submitit).

SLURM (``--signal``) and submitit warn a job before killing it: submitit's SLURM executor
sends ``SIGUSR2`` (``$SUBMITIT_PREEMPT_SIGNAL``) ``signal_delay_s`` before the time limit and on
preemption; plain SLURM and ``torchrun`` send ``SIGTERM``; ``SIGUSR1`` is the usual
``sbatch --signal=USR1@120`` choice. :class:`PreemptGuard` turns any of them into a flag; the
loop (:mod:`lra.run.loop`) checks it after every optimiser step, writes ``last.pt`` and raises
:class:`Preempted`. If another handler was installed before ours (submitit's
``checkpoint_and_try_requeue``), it is then called, so submitit requeues the job (the Hydra
submitit launcher's ``checkpoint`` resubmits the same job with the same config and run folder)
and the new job resumes from ``last.pt`` to the same final record.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGUSR1", "SIGUSR2", "SIGINT")
    if hasattr(signal, name)
)


class Preempted(BaseException):
    """The run stopped on a signal after saving ``last.pt``; starting it again resumes.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that ``except Exception`` blocks, which
    record failures, let it through: a preempted run is not a failed run.
    """

    def __init__(self, signum: int, step: int):
        super().__init__(
            f"stopped by {signal.Signals(signum).name} after step {step}; last.pt saved"
        )
        self.signum, self.step = signum, step

    @property
    def exit_code(self) -> int:
        """The shell convention for death by signal: 128 + signal number."""
        return 128 + self.signum


class PreemptGuard:
    """Context manager: while active, ``SIGTERM``/``SIGUSR1``/``SIGUSR2``/``SIGINT`` only set a
    flag, so the loop saves ``last.pt`` at the next step boundary and stops.

    Ctrl-C (``SIGINT``) behaves the same; a second Ctrl-C while the first is pending aborts at
    once (``KeyboardInterrupt``, nothing saved beyond the last checkpoint). Outside the main
    thread (where Python cannot install handlers) it does nothing.
    """

    def __init__(self, signals: tuple[int, ...] = SIGNALS):
        self.signals = signals
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            if signum == signal.SIGINT:
                print(
                    "interrupt: saving last.pt after this step, then stopping "
                    "(Ctrl-C again aborts without saving)",
                    file=sys.stderr,
                )
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> PreemptGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def chained_handler(self) -> Callable[[int, FrameType | None], Any] | None:
        """The handler that was installed for the received signal before ours, if a callable.

        Under submitit this is its checkpoint-and-requeue handler (for ``SIGUSR2``) or its
        ``bypass`` (for ``SIGTERM``); in a plain process it is ``None`` (default handler).
        """
        if self.signum is None or self.signum == signal.SIGINT:  # Ctrl-C: nothing to chain
            return None
        previous = self._previous.get(self.signum)
        return previous if callable(previous) else None

    def stop(self, step: int) -> None:
        """After ``last.pt`` is saved: hand over to the chained handler, then raise."""
        assert self.signum is not None
        chained = self.chained_handler()
        if chained is not None:
            chained(self.signum, None)  # submitit: requeue, then sys.exit
        raise Preempted(self.signum, step)
