"""Seeded re-implementation of the LRA ListOps generator (docs/GENERATORS.md §1).

ListOps (Nangia & Bowman 2018) is a language of nested lists of single digits under the
operators ``[MIN``, ``[MAX``, ``[MED`` (median, floored) and ``[SM`` (sum mod 10); the label is
the value of the root. LRA (Tay et al. 2021) raised the arity to 10, lowered the depth to 10
and kept only trees of 501..1999 tokens (parentheses excluded).

Sampling (§1.3): ``sample(depth)`` is a leaf (uniform digit) with probability 0.75 and always at
``depth == max_depth``; otherwise an operator node with ``n ~ U{2..max_args}`` children sampled
in order, the operator drawn *after* the children; the root is ``sample(1)``. One uniform draw
``r`` per node decides leaf/operator and is re-scaled to pick the digit or the arity (the
conditional of a uniform on a sub-interval is uniform, so the distribution is that of §1.3 with
one draw instead of two). A tree is abandoned once its running length reaches ``max_length``
(checked whenever a list's children are complete, so at most ~100 tokens late): it would be
rejected anyway, and every attempt uses fresh draws, so the accepted trees keep their
distribution. This makes the LRA default (~8.3 % of sampled trees accepted) take ~40 s per
100 000 accepted trees on one core.

Determinism independent of the worker count: trees are produced in chunks of ``chunk_size``
*accepted* trees, chunk ``i`` from its own ``random.Random`` seeded by a stable hash of
``(seed, i)``; chunks are concatenated in order, exact duplicates are dropped (first kept), the
first ``N`` unique trees are shuffled with a seeded RNG and sliced into train/val/test.

A tree is kept in a compact form, ``bytes`` of codes in prefix order: digits ``0..9``, an
operator with ``n`` children ``10 + 4 (n - 2) + op``, the closing ``]`` 255. ``to_source``
expands it to the release string of §1.5 with one table lookup per token.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from tasks import files
from tasks.seeding import stable_seed

P_BRANCH = 0.25  # probability that a node (above max_depth) is an operator (source: VALUE_P)
OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE = "]"
SPLITS = ("train", "val", "test")
CHUNK_SIZE = 1000  # accepted trees per chunk; part of the output's identity (see module doc)
MAX_ARGS_LIMIT = 60  # operator codes must fit in a byte below CLOSE_CODE
CLOSE_CODE = 255
FIRST_OP_CODE = 10

Tree = int | tuple[str, list["Tree"]]
"""A hand-built tree: a digit, or ``(operator, children)`` with operator in ``OPERATORS``."""


# ---------------------------------------------------------------------------------------------
# Semantics and the exact string grammar (§1.2, §1.5)


def apply_op(op: str, values: Sequence[int]) -> int:
    """Value of a list: MIN, MAX, MED (median, mean of the two middles floored) or SM (sum % 10)."""
    if op == "[MIN":
        return min(values)
    if op == "[MAX":
        return max(values)
    if op == "[MED":
        s = sorted(values)
        h = len(s) // 2
        return s[h] if len(s) % 2 else (s[h - 1] + s[h]) // 2
    if op == "[SM":
        return sum(values) % 10
    raise ValueError(f"unknown operator {op!r}")


def serialize(tree: Tree) -> str:
    """The LRA source string of ``tree``: left-nested binary pairs, single spaces (§1.5).

    ``S(op; c1..cn) = "( " * (n+1) + op + "".join(" " + S(ck) + " )") + " ] )"``.
    """
    if isinstance(tree, int):
        if not 0 <= tree <= 9:
            raise ValueError(f"leaf must be a digit 0..9, got {tree}")
        return str(tree)
    op, children = tree
    if op not in OPERATORS or len(children) < 1:
        raise ValueError(f"bad operator node {tree!r}")
    inner = "".join(" " + serialize(c) + " )" for c in children)
    return "( " * (len(children) + 1) + op + inner + " ] )"


def parse(source: str) -> Tree:
    """Parse a release source string back into a tree; strict about the §1.5 grammar.

    Raises ``ValueError`` on anything that ``serialize`` would not have produced.
    """
    tokens = source.split(" ")
    pos = 0

    def item():  # a pair "( x y )" or an atom
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("unexpected end of string")
        tok = tokens[pos]
        pos += 1
        if tok != "(":
            return tok
        left, right = item(), item()
        if pos >= len(tokens) or tokens[pos] != ")":
            raise ValueError(f"expected ')' at token {pos}")
        pos += 1
        return (left, right)

    def to_tree(x) -> Tree:
        if isinstance(x, str):
            if len(x) == 1 and x.isdigit():
                return int(x)
            raise ValueError(f"unexpected token {x!r}")
        chain, end = x
        if end != CLOSE:
            raise ValueError("a list must end with ']'")
        children = []
        while isinstance(chain, tuple):
            chain, child = chain
            children.append(to_tree(child))
        if chain not in OPERATORS or not children:
            raise ValueError(f"bad list head {chain!r}")
        return (chain, children[::-1])

    tree = to_tree(item())
    if pos != len(tokens):
        raise ValueError(f"trailing tokens after position {pos}")
    return tree


def evaluate_tree(tree: Tree) -> int:
    if isinstance(tree, int):
        return tree
    op, children = tree
    return apply_op(op, [evaluate_tree(c) for c in children])


def evaluate(source: str) -> int:
    """Parse a release source string (§1.5) and return its value 0..9."""
    return evaluate_tree(parse(source))


def lra_tokens(source: str) -> list[str]:
    """The tokens an LRA model sees (§1.7): parentheses dropped, whitespace split; ``]`` kept."""
    return source.replace("(", " ").replace(")", " ").split()


# ---------------------------------------------------------------------------------------------
# Compact codes <-> strings


def _code_table() -> tuple[str, ...]:
    table = [""] * 256
    for d in range(10):
        table[d] = f" {d} )"
    for n in range(2, MAX_ARGS_LIMIT + 1):
        for k, op in enumerate(OPERATORS):
            table[FIRST_OP_CODE + 4 * (n - 2) + k] = " " + "( " * (n + 1) + op
    table[CLOSE_CODE] = " ] ) )"
    return tuple(table)


# Every token is written as a child of its parent: " " + S(child) + " )" split over its tokens;
# the root drops the leading space and the trailing " )".
_TABLE = _code_table()


def to_source(codes: bytes) -> str:
    """Release string (§1.5) of a tree in compact code form."""
    return "".join(map(_TABLE.__getitem__, codes))[1:-2]


# ---------------------------------------------------------------------------------------------
# Sampling


class _TooLong(Exception):
    pass


def _sample_chunk(
    chunk_seed: int, count: int, min_length: int, max_length: int, max_depth: int, max_args: int
) -> tuple[list[tuple[bytes, int]], int]:
    """Sample trees until ``count`` are accepted; return them (code form, label) and #attempts."""
    rand = random.Random(chunk_seed).random
    leaf_scale = 10.0 / (1.0 - P_BRANCH)
    args_scale = (max_args - 1) / P_BRANCH
    buf = bytearray()
    put = buf.append
    length = 0

    def op_node(r: float, depth: int) -> int:  # r < P_BRANCH already drawn for this node
        nonlocal length
        n = 2 + int(r * args_scale)
        length += 2
        slot = len(buf)
        put(0)  # operator code, filled in after the children
        child_depth = depth + 1
        if child_depth >= max_depth:  # forced leaves
            length += n
            if length >= max_length:
                raise _TooLong
            values = [int(rand() * 10) for _ in range(n)]
            buf.extend(values)
        else:
            values = []
            keep = values.append
            for _ in range(n):
                r = rand()
                if r >= P_BRANCH:
                    d = int((r - P_BRANCH) * leaf_scale)
                    length += 1
                    put(d)
                    keep(d)
                else:
                    keep(op_node(r, child_depth))
            if length >= max_length:
                raise _TooLong
        op = int(rand() * 4)
        buf[slot] = FIRST_OP_CODE + 4 * (n - 2) + op
        put(CLOSE_CODE)
        if op == 0:
            return min(values)
        if op == 1:
            return max(values)
        if op == 2:
            values.sort()
            h = n // 2
            return values[h] if n % 2 else (values[h - 1] + values[h]) // 2
        return sum(values) % 10

    accepted: list[tuple[bytes, int]] = []
    attempts = 0
    while len(accepted) < count:
        attempts += 1
        r = rand()
        if max_depth <= 1 or r >= P_BRANCH:  # the root is a leaf: length 1
            if min_length < 1 < max_length:
                d = int(r * 10) if max_depth <= 1 else int((r - P_BRANCH) * leaf_scale)
                accepted.append((bytes([d]), d))
            continue
        buf.clear()
        length = 0
        try:
            value = op_node(r, 1)
        except _TooLong:
            continue
        if min_length < length:
            accepted.append((bytes(buf), value))
    return accepted, attempts


def chunk_seed(seed: int, index: int) -> int:
    """Stable 64-bit seed of chunk ``index`` (independent of process, platform and hash seed)."""
    return stable_seed("lra-listops", seed, index)


def _check_args(min_length: int, max_length: int, max_depth: int, max_args: int) -> None:
    if not 2 <= max_args <= MAX_ARGS_LIMIT:
        raise ValueError(f"max_args must be in 2..{MAX_ARGS_LIMIT}, got {max_args}")
    if max_depth < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth}")
    if max_length - min_length < 2:
        raise ValueError(f"empty length window ({min_length}, {max_length}) (both bounds strict)")
    longest = 1
    for _ in range(max_depth - 1):
        longest = min(2 + max_args * longest, 10**9)
    if min_length >= longest:
        raise ValueError(
            f"min_length {min_length} unreachable: trees of depth {max_depth} with "
            f"{max_args} args have at most {longest} tokens"
        )


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def generate_codes(
    num_train: int,
    num_val: int,
    num_test: int,
    min_length: int = 500,
    max_length: int = 2000,
    max_depth: int = 10,
    max_args: int = 10,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[dict[str, list[tuple[bytes, int]]], dict[str, int]]:
    """Generate unique trees in compact form and split them (§1.4).

    Returns ``(splits, stats)``: ``splits[split]`` is a list of ``(codes, label)``; ``stats``
    holds ``attempts`` (trees sampled in the chunks used), ``accepted`` and ``duplicates``.
    The output depends on the arguments and ``chunk_size`` only, never on ``workers``.
    """
    _check_args(min_length, max_length, max_depth, max_args)
    total = num_train + num_val + num_test
    workers = default_workers() if workers is None else max(1, int(workers))
    params = (min_length, max_length, max_depth, max_args)
    unique: dict[bytes, int] = {}
    stats = {"attempts": 0, "accepted": 0, "duplicates": 0}
    bar = tqdm(total=total, unit="tree", desc="listops", disable=not progress)

    def consume(result: tuple[list[tuple[bytes, int]], int]) -> None:
        rows, attempts = result
        before = len(unique)
        for codes, label in rows:
            if len(unique) == total:
                break
            stats["accepted"] += 1
            if codes in unique:
                stats["duplicates"] += 1
            else:
                unique[codes] = label
        stats["attempts"] += attempts
        bar.update(len(unique) - before)
        bar.set_postfix(accept=f"{stats['accepted'] / max(stats['attempts'], 1):.3f}")

    index = 0
    if workers == 1:
        while len(unique) < total:
            consume(_sample_chunk(chunk_seed(seed, index), chunk_size, *params))
            index += 1
    else:
        pool = ProcessPoolExecutor(
            workers, initializer=files.die_with_parent, initargs=(os.getpid(),)
        )
        with pool:
            pending: list[Future] = []
            while len(unique) < total:
                # keep up to 2 chunks per worker in flight, but no more than could be needed
                while (
                    len(pending) < 2 * workers and len(unique) + chunk_size * len(pending) < total
                ):
                    job = pool.submit(_sample_chunk, chunk_seed(seed, index), chunk_size, *params)
                    pending.append(job)
                    index += 1
                consume(pending.pop(0).result())
            for job in pending:
                job.cancel()
    bar.close()

    items = list(unique.items())
    random.Random(chunk_seed(seed, -1)).shuffle(items)
    bounds = (0, num_train, num_train + num_val, total)
    splits = {s: items[bounds[i] : bounds[i + 1]] for i, s in enumerate(SPLITS)}
    return splits, stats


def generate_listops(
    num_train: int,
    num_val: int,
    num_test: int,
    min_length: int = 500,
    max_length: int = 2000,
    max_depth: int = 10,
    max_args: int = 10,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, list[tuple[str, int]]]:
    """Generate the LRA ListOps splits as ``{split: [(source string, label), ...]}``.

    Defaults are the LRA flags except the split sizes (LRA: 96 000 / 2 000 / 2 000). Strings
    of the full default take ~660 MB; ``generate_codes`` + ``to_source`` stream instead.
    """
    args = (min_length, max_length, max_depth, max_args, seed, workers, progress, chunk_size)
    splits, _ = generate_codes(num_train, num_val, num_test, *args)
    return {s: [(to_source(c), y) for c, y in rows] for s, rows in splits.items()}


# ---------------------------------------------------------------------------------------------
# Release files (§1.6)


def write_tsv(path: str | Path, rows: Iterable[tuple[str, int]]) -> int:
    """Write rows as the release does: ``csv.writer(delimiter='\\t')``, header, CRLF; return #rows."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["Source", "Target"])
        for source, label in rows:
            writer.writerow([source, int(label)])
            count += 1
    return count


def write_release_files(
    out_dir: str | Path, splits: dict[str, Iterable[tuple[str, int]]]
) -> dict[str, Path]:
    """Write ``basic_{train,val,test}.tsv`` into ``out_dir``; return the paths by split.

    Each file is written under a temporary name and renamed when complete, so a killed run
    never leaves a truncated file under the final name; a failed write removes its temporary
    file and the next call sweeps those of killed writers.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files.sweep(out)  # temp files of killed writers
    paths = {}
    for split in SPLITS:
        path = out / f"basic_{split}.tsv"
        with files.temp_path(path) as tmp:  # removed on failure (e.g. disk full)
            write_tsv(tmp, splits[split])
        paths[split] = path
    return paths
