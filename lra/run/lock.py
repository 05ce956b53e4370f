"""One process per run folder: a second ``lra-train`` of the same run exits at once, naming
the process that holds it, instead of both writing the same ``last.pt``."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class RunLocked(RuntimeError):
    """Another process is running in this run folder."""


class RunLock:
    """An exclusive ``flock`` on ``<run dir>/.lock``, held while the context is open; the
    kernel releases it when the process dies, so a killed run never leaves a stale lock."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self._file = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunLocked(
                f"another lra-train (pid {holder}) is running in {self.path.parent}; wait for "
                "it to finish, stop it, or start this one with another hydra.run.dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
