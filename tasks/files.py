"""Files that are never left half-written, leftovers that are swept, workers that die with us.

Every temporary file or folder of ``tasks`` is named ``<final name>.tmp<pid>@<host>`` (the
writing process and its machine) next to its final path:

* ``temp_path(path)`` yields that name, renames it onto ``path`` on success and removes it on
  any failure (including ``OSError(ENOSPC)``, so a disk-full error does not keep the disk full);
* ``sweep(folder)`` removes the ``*.tmp<pid>`` entries of this machine whose process is no
  longer running (a ``kill -9`` skips every ``finally``); the writers call it before they start.
  Entries of another host are left alone: on a shared file system (a cluster's data folder)
  a pid says nothing about another machine's processes;
* ``die_with_parent`` is the initializer of every generator process pool: the worker gets
  ``SIGKILL`` when the process that started it dies (Linux ``prctl(PR_SET_PDEATHSIG)``), and a
  watchdog thread ends it on other systems, so a killed ``lra-data`` leaves no worker writing
  into the dataset beside its re-run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

_TMP = re.compile(r"\.tmp(\d+)(?:@([A-Za-z0-9_.-]+))?$")
PR_SET_PDEATHSIG = 1


def host_tag() -> str:
    """This machine's name as it appears in temporary names (safe characters only)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "localhost"


def tmp_name(path: str | Path, pid: int | None = None) -> Path:
    """``<path>.tmp<pid>@<host>``: the temporary name of ``path`` for process ``pid`` (default:
    this one) on this machine."""
    path = Path(path)
    return path.with_name(f"{path.name}.tmp{os.getpid() if pid is None else pid}@{host_tag()}")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) writes nothing any more
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def remove(path: str | Path) -> None:
    """Remove a file or folder if it exists; never raises for a missing path."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep(folder: str | Path) -> list[Path]:
    """Remove ``*.tmp<pid>`` files and folders in ``folder`` whose process is dead; return them."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TMP.search(entry.name)
        if not match or match.group(2) not in (None, host_tag()):  # another machine's writer
            continue
        if int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            remove(entry)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def temp_path(path: str | Path) -> Iterator[Path]:
    """Yield ``<path>.tmp<pid>``; on success rename it onto ``path``, on failure remove it."""
    path = Path(path)
    tmp = tmp_name(path)
    remove(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        remove(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary name (never half-written)."""
    with temp_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _watch(parent: int, interval: float, signum: int) -> None:
    while pid_alive(parent):
        time.sleep(interval)
    os.kill(os.getpid(), signum)


def die_with_parent(parent: int, interval: float = 0.5, signum: int = signal.SIGKILL) -> None:
    """Worker initializer: send this process ``signum`` when process ``parent`` ends
    (``SIGKILL``: it ends at once; ``SIGTERM``: its handler may save and stop first).

    Linux: ``prctl(PR_SET_PDEATHSIG, signum)``, then a check that the parent did not die before
    the call (if it did, exit at once). Everywhere: a daemon thread that polls ``parent`` every
    ``interval`` seconds (the direct parent may be a fork server rather than ``parent``).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if not pid_alive(parent):
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, interval, signum), daemon=True).start()
