"""LRA ListOps (Tay et al. 2021; Nangia & Bowman 2018): 10-way classification of nested lists.

Sources (``cfg.source``):

* ``generate`` (default): our seeded generator (``tasks.listops_gen``, docs/GENERATORS.md §1)
  writes release-format TSVs under ``<data_dir>/generated/listops-<hash>/``.
* ``release``: the LRA release files ``<release_dir>/listops-1000/basic_{train,val,test}.tsv``
  (``release_dir`` defaults to ``<data_dir>/lra_release``; the nested layout
  ``<release_dir>/lra_release/listops-1000`` of the extracted archive is accepted too).

Tokenisation (§1.7): drop ``(`` and ``)``, split on whitespace, map with the fixed ``VOCAB``
(LRA builds a set-ordered vocabulary instead; same size 17, same ids per token type up to a
permutation). Unknown tokens map to ``<unk>``; sequences are truncated to ``seq_len`` (as LRA
does; the generator never exceeds 1999 tokens) and padded with 0.
"""

from __future__ import annotations

import json
import warnings
from itertools import repeat
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tasks import cache, files
from tasks import listops_gen as gen
from tasks.base import WARN_UNKNOWN_FRACTION, MissingDataError, Task
from tasks.errors import DataError
from tasks.spec import TaskSpec

# Fixed id map (documented; never set-ordered). Changing it requires bumping FORMAT.
VOCAB: dict[str, int] = {
    "<pad>": 0,
    "<unk>": 1,
    **{str(d): 2 + d for d in range(10)},
    "[MIN": 12,
    "[MAX": 13,
    "[MED": 14,
    "[SM": 15,
    "]": 16,
}
PAD_ID, UNK_ID = 0, 1
VOCAB_SIZE = 17
NUM_CLASSES = 10
FORMAT = "listops-v1"  # tokeniser version: part of every data spec
GENERATOR = "listops-gen-v1"  # generator version (sampling, chunking, shuffle): part of its hash
RELEASE_SUBDIR = "listops-1000"
GEN_FIELDS = (
    "num_train",
    "num_val",
    "num_test",
    "min_length",
    "max_length",
    "max_depth",
    "max_args",
    "gen_seed",
)

# Token -> id for the tokeniser; LRA's ``X`` (its rewrite of ``]``) is accepted as an alias.
_TOKEN_IDS = {tok: i for tok, i in VOCAB.items() if not tok.startswith("<")} | {"X": 16}
_DROP_PARENS = str.maketrans("()", "  ")


def tsv_name(split: str) -> str:
    return f"basic_{split}.tsv"


def read_tsv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read a release-format TSV: header ``Source<TAB>Target``, CRLF or LF line ends.

    Returns ``(sources, labels [N] int64)``. Raises :class:`~tasks.errors.DataError` naming the
    file and the 1-based line number on a line that is not UTF-8, a bad header, a row without
    exactly two columns, or a label that is not an integer 0..9.
    """
    path = Path(path)
    sources: list[str] = []
    labels: list[int] = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path}:{lineno}: not UTF-8 (byte 0x{raw[err.start]:02x} at column "
                    f"{err.start + 1}); the release files are UTF-8 text"
                ) from None
            if lineno == 1:
                if line != "Source\tTarget":
                    raise DataError(
                        f"{path}:1: expected header 'Source<TAB>Target', got {line!r:.60}"
                    )
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(
                    f"{path}:{lineno}: expected 2 tab-separated columns, got {len(parts)}"
                )
            try:
                label = int(parts[1])
            except ValueError:
                label = -1
            if not 0 <= label < NUM_CLASSES:
                raise DataError(f"{path}:{lineno}: label must be an integer 0..9, got {parts[1]!r}")
            sources.append(parts[0])
            labels.append(label)
    if not sources and not path.stat().st_size:
        raise DataError(f"{path}:1: empty file (expected header 'Source<TAB>Target')")
    return sources, np.asarray(labels, dtype=np.int64)


def tokenize(sources: list[str], seq_len: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Map source strings to ids (§1.7).

    Returns ``(input_ids [N, seq_len] uint8, lengths [N] int32, truncated)`` where ``lengths``
    counts real tokens after truncation and ``truncated`` the rows longer than ``seq_len``.
    """
    ids = np.zeros((len(sources), seq_len), dtype=np.uint8)
    lengths = np.zeros(len(sources), dtype=np.int32)
    truncated = 0
    lookup = _TOKEN_IDS.get
    for i, source in enumerate(sources):
        tokens = source.translate(_DROP_PARENS).split()
        if len(tokens) > seq_len:
            truncated += 1
            tokens = tokens[:seq_len]
        n = len(tokens)
        ids[i, :n] = np.fromiter(map(lookup, tokens, repeat(UNK_ID)), dtype=np.uint8, count=n)
        lengths[i] = n
    return ids, lengths, truncated


def unknown_tokens(path: Path, ids: np.ndarray, lengths: np.ndarray) -> dict[str, Any]:
    """Count ``<unk>`` ids among real tokens; warn (naming the first line) above the threshold.

    Returns ``{"unknown_tokens": n, "unknown_fraction": f}`` for the split's summary.
    """
    unk = ids == UNK_ID  # padding is 0, never 1
    count, total = int(unk.sum()), int(lengths.sum())
    fraction = count / total if total else 0.0
    if fraction > WARN_UNKNOWN_FRACTION:
        first = int(np.flatnonzero(unk.any(axis=1))[0]) + 2  # +1 header, +1 1-based
        warnings.warn(
            f"{path}:{first}: {count} of {total} tokens ({fraction:.1%}) are not ListOps tokens "
            f"and map to <unk> (warning above {WARN_UNKNOWN_FRACTION:.0%}); is this a ListOps "
            "file?",
            stacklevel=3,
        )
    return {"unknown_tokens": count, "unknown_fraction": round(fraction, 6)}


class ListOps(Task):
    """ListOps task; ``workers`` and ``progress`` tune generation (no effect on the data)."""

    name: ClassVar[str] = "listops"
    workers: int | None = None
    progress: bool = True

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            vocab_size=VOCAB_SIZE,
            max_len=int(self.cfg.seq_len),
            num_classes=NUM_CLASSES,
            pair=False,
            pad_id=PAD_ID,
        )

    @property
    def source(self) -> str:
        source = self.cfg.source
        if source not in ("generate", "release"):
            raise ValueError(f"listops source must be 'generate' or 'release', got {source!r}")
        return source

    def generator_fields(self) -> dict[str, Any]:
        return {"generator": GENERATOR, **{k: int(self.cfg[k]) for k in GEN_FIELDS}}

    def tsv_dir(self) -> Path:
        """Folder of ``basic_{train,val,test}.tsv`` for the configured source."""
        if self.source == "generate":
            digest = cache.spec_hash(self.generator_fields())
            return self.data_dir / "generated" / f"listops-{digest}"
        return self.release_path(RELEASE_SUBDIR)

    def source_of(self, split: str) -> str:
        return str(self.tsv_paths()[split])

    def tsv_paths(self) -> dict[str, Path]:
        folder = self.tsv_dir()
        return {s: folder / tsv_name(s) for s in cache.SPLITS}

    def data_spec(self) -> dict[str, Any]:
        """Generate: the generator fields. Release: the TSV sizes (a different copy re-prepares)."""
        base = {"name": self.name, "source": self.source, "seq_len": int(self.cfg.seq_len)}
        base["format"] = FORMAT
        if self.source == "generate":
            return {**base, **self.generator_fields()}
        sizes = {
            s: (p.stat().st_size if p.is_file() else None) for s, p in self.tsv_paths().items()
        }
        return {**base, "file_sizes": sizes}

    def generate(self, progress: bool = True, workers: int | None = None) -> Path:
        """Write the generated TSVs unless all three exist; return their folder."""
        if self.source != "generate":
            raise ValueError("generate() needs source=generate")
        folder = self.tsv_dir()
        if all(p.is_file() for p in self.tsv_paths().values()):
            return folder
        c = {k: int(self.cfg[k]) for k in GEN_FIELDS}
        splits, stats = gen.generate_codes(
            c["num_train"], c["num_val"], c["num_test"], c["min_length"], c["max_length"],
            c["max_depth"], c["max_args"], seed=c["gen_seed"], workers=workers, progress=progress,
        )  # fmt: skip
        rows = {s: ((gen.to_source(codes), y) for codes, y in splits[s]) for s in splits}
        gen.write_release_files(folder, rows)
        meta = {**self.generator_fields(), **stats}
        files.write_text_atomic(folder / "generation.json", json.dumps(meta, indent=2))
        return folder

    def _check_release(self) -> None:
        for path in self.tsv_paths().values():
            if not path.is_file():
                raise MissingDataError(
                    f"ListOps release file {path} not found. `lra-data task=listops "
                    "task.source=release` needs the LRA release: download lra_release.gz from the "
                    "LRA repository (google-research/long-range-arena; see "
                    "scripts/fetch_lra_release.sh), extract it and pass "
                    "task.release_dir=<folder holding listops-1000>; or use task.source=generate."
                )

    def build_splits(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        if self.source == "generate":
            self.generate(progress=self.progress, workers=self.workers)
        else:
            self._check_release()
        seq_len = int(self.cfg.seq_len)
        splits: dict[str, dict[str, np.ndarray]] = {}
        summary: dict[str, Any] = {"tsv_dir": str(self.tsv_dir()), "splits": {}}
        for split, path in self.tsv_paths().items():
            sources, labels = read_tsv(path)
            ids, lengths, truncated = tokenize(sources, seq_len)
            del sources
            splits[split] = {"input_ids": ids, "lengths": lengths, "labels": labels}
            summary["splits"][split] = {
                "count": len(labels),
                "max_length": int(lengths.max(initial=0)),
                "mean_length": round(float(lengths.mean()), 1) if len(lengths) else None,
                "truncated": truncated,
                "label_counts": np.bincount(labels, minlength=NUM_CLASSES).tolist(),
                **unknown_tokens(path, ids, lengths),
            }
        meta = self.tsv_dir() / "generation.json"
        if self.source == "generate" and meta.is_file():
            summary["generation"] = json.loads(meta.read_text())
        return splits, summary
