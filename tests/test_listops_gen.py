"""ListOps generator: exact grammar (docs/GENERATORS.md §1.5), labels, window, splits, determinism."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tasks import listops_gen as gen
from tasks.listops import read_tsv

# §1.5 test vectors: (source, label, hand-built tree, LRA-tokenised form or None)
VECTORS = [
    ("( ( ( [MAX 2 ) 9 ) ] )", 9, ("[MAX", [2, 9]), "[MAX 2 9 X"),
    ("( ( ( [MED 2 ) 5 ) ] )", 3, ("[MED", [2, 5]), "[MED 2 5 X"),
    ("( ( ( ( [SM 7 ) 8 ) 9 ) ] )", 4, ("[SM", [7, 8, 9]), "[SM 7 8 9 X"),
    (
        "( ( ( ( [MIN 4 ) ( ( ( [MAX 1 ) 7 ) ] ) ) 6 ) ] )",
        4,
        ("[MIN", [4, ("[MAX", [1, 7]), 6]),
        "[MIN 4 [MAX 1 7 X 6 X",
    ),
    (
        "( ( ( ( ( [MED 0 ) 9 ) ( ( ( [SM 5 ) 6 ) ] ) ) 3 ) ] )",
        2,
        ("[MED", [0, 9, ("[SM", [5, 6]), 3]),
        None,
    ),
    (
        "( ( ( ( ( ( ( [MAX 4 ) 3 ) ( ( ( [MIN 2 ) 3 ) ] ) ) 1 ) 0 ) "
        "( ( ( ( ( ( [MED 1 ) 5 ) 8 ) 9 ) 2 ) ] ) ) ] )",
        5,
        ("[MAX", [4, 3, ("[MIN", [2, 3]), 1, 0, ("[MED", [1, 5, 8, 9, 2])]),
        None,
    ),
    ("( ( ( ( ( [MIN 0 ) 3 ) 8 ) 2 ) ] )", 0, ("[MIN", [0, 3, 8, 2]), None),
]

SMALL = dict(min_length=10, max_length=100, max_depth=5, max_args=10)


@pytest.mark.parametrize("source,label,tree,lra", VECTORS)
def test_spec_vectors(source, label, tree, lra):
    assert gen.serialize(tree) == source
    assert gen.parse(source) == tree
    assert gen.evaluate(source) == label
    if lra is not None:
        assert " ".join(gen.lra_tokens(source)).replace("]", "X") == lra


def test_operator_semantics():
    assert gen.apply_op("[MED", [2, 5]) == 3  # 3.5 floored
    assert gen.apply_op("[MED", [0, 9, 1, 3]) == 2
    assert gen.apply_op("[MED", [7, 1, 4]) == 4
    assert gen.apply_op("[SM", [9, 9, 9]) == 7
    assert gen.apply_op("[MIN", [3, 1, 2]) == 1 and gen.apply_op("[MAX", [3, 1, 2]) == 3


@pytest.mark.parametrize(
    "bad",
    [
        "( ( ( [MAX 2 ) 9 ) ] ) ",  # trailing space
        "( ( ( [MAX 2 )  9 ) ] )",  # double space
        "( ( [MAX 2 ) 9 ) ] )",  # missing "("
        "( ( ( [MAX 2 ) 9 ) ] ) )",  # extra ")"
        "( ( ( [FIRST 2 ) 9 ) ] )",  # disabled operator
        "( ( ( [MAX 2 ) 19 ) ] )",  # not a digit
    ],
)
def test_parse_is_strict(bad):
    with pytest.raises(ValueError):
        gen.parse(bad)


def test_generated_rows_are_valid_and_split():
    splits = gen.generate_listops(400, 60, 60, **SMALL, seed=3, workers=1)
    assert [len(splits[s]) for s in gen.SPLITS] == [400, 60, 60]
    seen = set()
    for rows in splits.values():
        for source, label in rows:
            assert gen.serialize(gen.parse(source)) == source  # exact grammar
            assert gen.evaluate(source) == label
            assert 10 < len(gen.lra_tokens(source)) < 100
            assert "\t" not in source and "  " not in source
        sources = {s for s, _ in rows}
        assert len(sources) == len(rows)  # no duplicates within a split
        assert not sources & seen  # disjoint splits
        seen |= sources
    # depth convention: forced leaves at depth max_depth => at most max_depth - 1 nested lists
    depths = [_depth(gen.parse(s)) for s, _ in splits["train"]]
    assert max(depths) == SMALL["max_depth"] - 1
    assert {gen.parse(s)[0] for s, _ in splits["train"]} == set(gen.OPERATORS)  # root ops


def _depth(tree) -> int:
    return 0 if isinstance(tree, int) else 1 + max(_depth(c) for c in tree[1])


def test_deterministic_and_seeded():
    a = gen.generate_listops(100, 10, 10, **SMALL, seed=0, workers=1)
    b = gen.generate_listops(100, 10, 10, **SMALL, seed=0, workers=1)
    c = gen.generate_listops(100, 10, 10, **SMALL, seed=1, workers=1)
    assert a == b
    assert a["train"] != c["train"]


def test_independent_of_worker_count():
    kw = dict(**SMALL, seed=5, chunk_size=40)
    assert gen.generate_listops(200, 30, 30, **kw, workers=1) == gen.generate_listops(
        200, 30, 30, **kw, workers=2
    )


def test_duplicates_are_dropped_and_refilled():
    # 4 operators x 100 digit pairs = 400 distinct trees of length 4: duplicates are certain
    kw = dict(min_length=3, max_length=5, max_depth=2, max_args=2, seed=0, chunk_size=50)
    splits, stats = gen.generate_codes(250, 25, 25, **kw, workers=1)
    codes = [c for rows in splits.values() for c, _ in rows]
    assert len(codes) == len(set(codes)) == 300
    assert stats["duplicates"] > 0 and stats["accepted"] == 300 + stats["duplicates"]
    assert gen.generate_codes(250, 25, 25, **kw, workers=2)[0] == splits


def test_impossible_window_is_rejected():
    with pytest.raises(ValueError, match="unreachable"):
        gen.generate_listops(1, 0, 0, min_length=500, max_length=2000, max_depth=3, max_args=10)
    with pytest.raises(ValueError, match="max_args"):
        gen.generate_listops(1, 0, 0, max_args=1)


def test_release_file_bytes(tmp_path):
    splits = gen.generate_listops(30, 5, 5, **SMALL, seed=2, workers=1)
    paths = gen.write_release_files(tmp_path, splits)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "basic_test.tsv",
        "basic_train.tsv",
        "basic_val.tsv",
    ]
    data = paths["train"].read_bytes()
    assert data.startswith(b"Source\tTarget\r\n")
    lines = data.split(b"\r\n")
    assert lines[-1] == b"" and len(lines) == 1 + 30 + 1
    for line in lines[1:-1]:
        assert line.count(b"\t") == 1 and b"\n" not in line and b"\r" not in line
        assert line[-2:-1] == b"\t" and line[-1:].isdigit()
    sources, labels = read_tsv(paths["train"])
    assert list(zip(sources, labels.tolist(), strict=True)) == splits["train"]


def test_label_histogram_fast():
    # even a small window shows the LRA skew: 0 and 9 are the two most frequent labels
    splits = gen.generate_listops(2000, 0, 0, min_length=10, max_length=100, max_depth=4, seed=0)
    counts = Counter(label for _, label in splits["train"])
    assert {label for label, _ in counts.most_common(2)} == {0, 9}
    assert all(counts[k] > 0 for k in range(10))


def _reference_sample(rng: random.Random, depth: int, max_depth: int, max_args: int):
    """Straight from §1.3: two draws per node, no early abort."""
    r = rng.random() if depth < max_depth else 1.0
    if r > gen.P_BRANCH:
        d = rng.randrange(10)
        return d, 1
    n = rng.randint(2, max_args)
    children = [_reference_sample(rng, depth + 1, max_depth, max_args) for _ in range(n)]
    op = rng.choice(gen.OPERATORS)
    return gen.apply_op(op, [v for v, _ in children]), 2 + sum(n for _, n in children)


def test_matches_reference_sampler_statistically():
    """The one-draw-per-node trick and the early abort do not change the distribution."""
    lo, hi, depth, count = 10, 100, 5, 3000
    rng = random.Random(123)
    ref = []
    while len(ref) < count:
        value, length = _reference_sample(rng, 1, depth, 10)
        if lo < length < hi:
            ref.append((value, length))
    ours = gen.generate_listops(count, 0, 0, lo, hi, depth, 10, seed=7, workers=1)["train"]
    ours = [(y, len(gen.lra_tokens(s))) for s, y in ours]
    assert abs(sum(n for _, n in ref) / count - sum(n for _, n in ours) / count) < 2.5
    h_ref, h_ours = Counter(v for v, _ in ref), Counter(v for v, _ in ours)
    assert all(abs(h_ref[k] - h_ours[k]) / count < 0.04 for k in range(10))


# §1.8 label distribution (percent) of the LRA defaults
LRA_LABELS = [16.9, 9.2, 7.4, 8.1, 8.9, 8.7, 7.9, 7.4, 8.6, 17.0]


@pytest.mark.slow
def test_label_histogram_matches_spec():
    n = 10_000
    splits = gen.generate_listops(n, 0, 0, seed=11, workers=2)
    counts = Counter(label for _, label in splits["train"])
    for k in range(10):
        assert abs(100 * counts[k] / n - LRA_LABELS[k]) < 1.5, (k, counts)
    lengths = [len(gen.lra_tokens(s)) for s, _ in splits["train"]]
    assert min(lengths) > 500 and max(lengths) < 2000
    assert abs(sum(lengths) / n - 1034) < 20
