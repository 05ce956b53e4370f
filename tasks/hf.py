"""Loading a split of a Hugging Face ``datasets`` dataset: the hub id or a local copy of it.

``hf_path`` (a task key) is passed to ``datasets.load_dataset(hf_path, split=...)`` unchanged,
so a hub id (``stanfordnlp/imdb``) and a local folder in the hub's layout go through the same
code path. A local copy is what ``hf download <id> --repo-type dataset --local-dir DIR``
writes (``README.md`` + ``plain_text/<split>-00000-of-00001.parquet``); a folder of parquet
files whose names start with the split name loads too. Downloads and Arrow files go to
``<data_dir>/hf`` (``cache_dir``), never to a global cache.

Revision: a task's ``hf_revision`` key (a commit sha of the dataset repo on the hub, passed to
``load_dataset(revision=...)``) pins what a hub id downloads and enters the cache key.
``null`` (the default; ``conf/task/*.yaml`` does not declare the key yet, so set it with
``+task.hf_revision=<sha>``) means *not pinned*: the hub's current main is read, and the
summary records ``hf_revision: unpinned``. A local copy is keyed by its files instead.

Without a network, a hub id fails with ``MissingDataError`` saying what to do; tests set
``HF_DATASETS_OFFLINE=1`` so that failure is immediate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.base import MissingDataError

if TYPE_CHECKING:  # datasets is imported lazily: `import tasks` stays quick
    import datasets

    from tasks.base import Task


def local_folder(hf_path: str) -> Path | None:
    """The folder ``hf_path`` names, or None for a hub id.

    A path is anything that exists on disk, is absolute, starts with ``.`` or ``~``, or has
    more than one ``/`` (hub ids are ``name`` or ``owner/name``).
    """
    path = Path(hf_path).expanduser()
    if path.exists() or hf_path.startswith(("/", ".", "~")) or hf_path.count("/") > 1:
        return path
    return None


def source_fingerprint(hf_path: str, revision: str | None = None) -> str:
    """What identifies the data for the cache key: the hub id, or the local files' sizes.

    A local folder is keyed by its files' relative names and sizes (not its location), so
    moving a copy keeps the cache and another copy gets its own.
    """
    folder = local_folder(hf_path)
    if folder is None:  # the unpinned key is unchanged, so existing caches stay valid
        return f"hub:{hf_path}@{revision}" if revision else f"hub:{hf_path}"
    if not folder.is_dir():
        return f"local:missing:{folder}"
    files = sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size)
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    return "local:" + hashlib.sha1(repr(files).encode()).hexdigest()[:12]


def how_to_get(hf_path: str, task: str) -> str:
    return (
        f"Connect to the internet once (`lra-data task={task}` downloads {hf_path} into "
        f"<data_dir>/hf and later runs read it from there), or download a copy elsewhere "
        f"with `hf download {hf_path} --repo-type dataset --local-dir DIR` and pass "
        f"`task.hf_path=DIR` (lra-data and lra-train)."
    )


def load_split(
    hf_path: str,
    split: str,
    columns: Sequence[str],
    cache_dir: Path,
    task: str,
    hub_id: str,
    revision: str | None = None,
) -> datasets.Dataset:
    """``datasets.load_dataset(hf_path, split=split)``, with errors that say what to do.

    Args:
        hf_path: hub id or local folder (see the module docstring).
        split: split name in the dataset (``train``, ``test``).
        columns: columns the task reads; a dataset without them raises ``ValueError``.
        cache_dir: where ``datasets`` keeps downloads and Arrow files.
        task: task name, for messages.
        hub_id: the official hub id, for messages about local copies.
        revision: commit of a hub dataset to read (None: not pinned); ignored for a folder.

    Raises:
        MissingDataError: a missing folder, a folder without ``split``, or a hub id that
            cannot be reached (no network, offline mode).
        ValueError: the dataset lacks one of ``columns``.
    """
    import datasets

    folder = local_folder(hf_path)
    if folder is not None and not folder.is_dir():
        raise MissingDataError(
            f"{task}: hf_path={hf_path} is not a folder. Point it at a copy of {hub_id} in "
            f"the hub's layout, or use the hub id. " + how_to_get(hub_id, task)
        )
    try:
        pin = {"revision": revision} if revision and folder is None else {}
        ds = datasets.load_dataset(
            str(folder or hf_path), split=split, cache_dir=str(cache_dir), **pin
        )
    except ValueError as err:
        if "split" not in str(err).lower():
            raise
        raise MissingDataError(
            f"{task}: {hf_path} has no split {split!r} ({err}). A copy of {hub_id} holds "
            f"plain_text/{split}-00000-of-00001.parquet (or another parquet file whose name "
            f"starts with '{split}')."
        ) from None
    except OSError as err:  # ConnectionError, FileNotFoundError, DatasetNotFoundError
        where = f"folder {folder}" if folder is not None else f"the hub id {hf_path}"
        raise MissingDataError(
            f"{task}: could not load {where} ({type(err).__name__}: {err}). "
            + how_to_get(hub_id, task)
        ) from None
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise ValueError(
            f"{task}: {hf_path} split {split!r} lacks column(s) {missing}; it has "
            f"{ds.column_names}, the task reads {list(columns)} (the schema of {hub_id})"
        )
    return ds


def task_source(task: Task) -> str:
    """:func:`source_fingerprint` of a hub task's ``hf_path`` and ``hf_revision``."""
    return source_fingerprint(str(task.cfg.hf_path), task.cfg.get("hf_revision"))


def load_task_split(
    task: Task, split: str, columns: Sequence[str], hub_id: str
) -> datasets.Dataset:
    """:func:`load_split` with a hub task's ``hf_path``, ``hf_revision`` and cache folder
    (``<data_dir>/hf``)."""
    return load_split(
        str(task.cfg.hf_path),
        split,
        columns,
        task.data_dir / "hf",
        task.name,
        hub_id,
        revision=task.cfg.get("hf_revision"),
    )
