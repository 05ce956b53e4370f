"""Base class of an LRA task: a data spec, an idempotent ``prepare()`` and memory-mapped splits."""

from __future__ import annotations

import abc
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from omegaconf import DictConfig, OmegaConf

from tasks import cache, files
from tasks.errors import CacheCorruptError, EmptySplitError, MissingDataError
from tasks.spec import TaskSpec

# Keys of conf/task/<name>.yaml that describe training, not data; they never enter the data spec.
RECIPE_KEYS = ("backbone", "optim")

# Above these fractions of a split, preparing warns (the fractions are kept in the summary).
WARN_TRUNCATED_FRACTION = 0.9  # examples cut to seq_len
WARN_UNKNOWN_FRACTION = 0.01  # tokens mapped to <unk>

# name -> Task subclass; filled by ``Task.__init_subclass__`` when a task module is imported.
TASKS: dict[str, type[Task]] = {}


def warn_thresholds(
    task: str,
    summary: dict[str, Any],
    splits: dict[str, dict[str, np.ndarray]],
    truncation_expected: bool = False,
) -> None:
    """Warn when a split is mostly truncated; record counts and thresholds in ``summary``.

    Reads ``summary["splits"][split]["truncated"]`` (and ``truncated_2`` for pairs) where the
    task counted them; adds ``truncated_fraction`` and ``summary["thresholds"]``. A task whose
    protocol truncates nearly every example by design records the fractions without warning.
    """
    summary["thresholds"] = {
        "warn_truncated_fraction": WARN_TRUNCATED_FRACTION,
        "warn_unknown_fraction": WARN_UNKNOWN_FRACTION,
    }
    for split, facts in (summary.get("splits") or {}).items():
        count = len(splits[split]["labels"]) if split in splits else facts.get("count", 0)
        if not isinstance(facts, dict) or not count:
            continue
        for key in ("truncated", "truncated_2"):
            if key not in facts:
                continue
            fraction = int(facts[key]) / count
            facts[f"{key}_fraction"] = round(fraction, 4)
            if fraction > WARN_TRUNCATED_FRACTION and not truncation_expected:
                warnings.warn(
                    f"{task}: {facts[key]} of {count} {split} examples ({fraction:.0%}) are longer "
                    f"than seq_len and truncated (warning above {WARN_TRUNCATED_FRACTION:.0%}); "
                    "is task.seq_len too small?",
                    stacklevel=3,
                )


class Task(abc.ABC):
    """One LRA task built from ``cfg`` (the composed ``conf/task/<name>.yaml``).

    Subclasses declare ``name`` (which registers them in ``TASKS``), build ``spec`` and implement ``data_spec()`` (every field that
    changes the prepared arrays) and ``build_splits()`` (read or generate, then tokenise).
    """

    name: ClassVar[str]
    # True where the LRA protocol cuts nearly every example at seq_len (no truncation warning)
    truncation_expected: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = vars(cls).get("name")
        if name:  # abstract intermediate classes declare no name
            if name in TASKS and TASKS[name] is not cls:
                raise ValueError(f"task {name!r} defined twice: {TASKS[name]} and {cls}")
            TASKS[name] = cls

    def __init__(self, cfg: DictConfig | dict[str, Any], data_dir: str | Path = "data"):
        self.cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        self.data_dir = Path(data_dir)

    @property
    @abc.abstractmethod
    def spec(self) -> TaskSpec:
        """The task's contract (vocab, length, classes, pair, pad id)."""

    @abc.abstractmethod
    def data_spec(self) -> dict[str, Any]:
        """JSON-serialisable description of the prepared data; its hash keys the cache."""

    @abc.abstractmethod
    def build_splits(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """Read or generate the raw data and tokenise it.

        Returns ``(splits, summary)`` where ``splits[split]`` holds ``input_ids`` [N, L],
        ``lengths`` [N] and ``labels`` [N] (pairs add ``input_ids_2``, ``lengths_2``) and
        ``summary`` holds facts worth keeping (counts, skipped files).
        """

    @property
    def release_dir(self) -> Path:
        """Root of the extracted LRA release (``release_dir``, default ``<data_dir>/lra_release``)."""
        folder = self.cfg.get("release_dir")
        return Path(folder).expanduser() if folder else self.data_dir / "lra_release"

    def release_path(self, subdir: str) -> Path:
        """``<release_dir>/lra_release/<subdir>`` when it exists, else ``<release_dir>/<subdir>``.

        The archive's top folder ``lra_release/`` holds a complete copy in a nested
        ``lra_release/`` (listops-1000, tsv_data, pathfinder32..256) and, beside it, a second
        ``listops-1000`` and ``pathfinder128``. The nested copy is the one LRA's own
        ``dataset_setup.sh`` moves into place and S4-derived code reads for Path-X (LRA issue
        #38 reports a Path-X copy that cannot be learned), so it wins where both exist.
        ``release_dir`` may name the top folder or the nested one.
        """
        primary = self.release_dir / subdir
        nested = self.release_dir / "lra_release" / subdir
        return nested if nested.is_dir() else primary

    @property
    def spec_hash(self) -> str:
        return cache.spec_hash(self.data_spec())

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache" / f"{self.name}-{self.spec_hash}"

    def is_prepared(self) -> bool:
        return cache.is_complete(self.cache_dir)

    def source_of(self, split: str) -> str:
        """Where the examples of ``split`` come from (a file, folder or dataset), for errors."""
        return f"source {self.data_spec().get('source', '?')}"

    def prepare(self, verify: str = "quick", rebuild: bool = False) -> Path:
        """Make the cached arrays exist (idempotent); return the cache folder.

        An existing cache is checked first (``verify``: ``"quick"`` sizes/shapes/dtypes of every
        split, ``"full"`` also each file's CRC-32, ``"none"``); a corrupt one raises
        :class:`CacheCorruptError` naming the file, or with ``rebuild`` is removed, reported as
        a warning and prepared again (what ``lra-data`` does). The outcome is
        ``self.cache_status``: ``built``, ``verified``, ``unverified`` (a cache written before
        integrity records) or ``rebuilt``.

        Raises :class:`EmptySplitError` naming the source when a split has no example: an
        empty split would otherwise be scored as an accuracy.
        """
        if verify not in ("quick", "full", "none"):
            raise ValueError(f"verify must be quick, full or none, got {verify!r}")
        self.cache_status = "built"
        if self.is_prepared():
            if verify == "none":
                self.cache_status = "unchecked"
                return self.cache_dir
            try:
                self.cache_status = cache.verify_cache(self.cache_dir, full=verify == "full")
                return self.cache_dir
            except CacheCorruptError as err:
                if not rebuild:
                    raise
                warnings.warn(f"corrupt cache, rebuilding: {err}", stacklevel=2)
                (self.cache_dir / "spec.json").unlink(missing_ok=True)
            self.cache_status = "rebuilt"
        files.sweep(self.cache_dir.parent)  # leftovers of killed writers
        splits, summary = self.build_splits()
        for split, arrays in splits.items():
            if len(arrays["labels"]) == 0:
                raise EmptySplitError(
                    f"{self.name}: the {split} split has no examples ({self.source_of(split)})"
                )
        warn_thresholds(self.name, summary, splits, self.truncation_expected)
        cache.write_cache(self.cache_dir, splits, self.spec, self.data_spec(), summary)
        return self.cache_dir

    def split(self, name: str) -> cache.ArraySplit:
        """The prepared split ``train``, ``val`` or ``test`` (call ``prepare()`` first)."""
        if name not in cache.SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(cache.SPLITS)}")
        if not self.is_prepared():
            raise MissingDataError(
                f"{self.name} is not prepared under {self.cache_dir}; "
                f"run `lra-data task={self.name}` (or call .prepare())"
            )
        return cache.ArraySplit(self.cache_dir / name, pair=self.spec.pair)

    def summary(self) -> dict[str, Any]:
        """What ``prepare()`` recorded: split sizes and the preparation summary."""
        meta = cache.read_meta(self.cache_dir)
        return {"sizes": meta["sizes"], **meta["summary"]}
