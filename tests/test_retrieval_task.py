"""Retrieval (AAN) task: release TSV reader, byte ids of both documents, errors, a tiny run.

Fixtures are written exactly like ``lra_release/tsv_data/new_aan_pairs.<split>.tsv``: no
header, five tab-separated columns ``label id1 id2 text1 text2``, labels as floats or ints.
"""

from __future__ import annotations

import numpy as np
import pytest

from lra.config import build_task, compose
from lra.run import prepare as data_cli
from lra.run import train
from tasks import MissingDataError
from tasks.retrieval import Retrieval, read_rows, tokenize_file, tsv_name

SIZES = {"train": 40, "val": 12, "test": 12}


def make_rows(split: str, n: int, seed: int = 0) -> list[tuple[int, str, str, str, str]]:
    rng = np.random.default_rng([seed, len(split)])
    rows = []
    for i in range(n):
        label = int(rng.integers(2))
        text1 = f"{split} paper {i} on parsing " + "é" * int(rng.integers(0, 30))
        text2 = f"cited {i}? " + "lattice " * int(rng.integers(0, 8))
        rows.append((label, f"P{i:02d}-1", f"Q{i:02d}-2", text1, text2))
    return rows


def write_release(root, seed: int = 0, sizes=SIZES) -> dict:
    """``root/tsv_data/new_aan_pairs.{train,eval,test}.tsv``; labels as '1.0' or '0' alternately."""
    folder = root / "tsv_data"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in sizes.items():
        rows = make_rows(split, n, seed)
        lines = [
            f"{float(y) if i % 2 else y}\t{a}\t{b}\t{t1}\t{t2}\n"
            for i, (y, a, b, t1, t2) in enumerate(rows)
        ]
        (folder / tsv_name(split)).write_bytes("".join(lines).encode("utf-8"))
        out[split] = rows
    return out


def expected_ids(text: str, seq_len: int) -> list[int]:
    data = text.encode("utf-8")[:seq_len]
    return [b + 1 for b in data] + [0] * (seq_len - len(data))


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel")
    rows = write_release(root / "lra_release")  # the archive's nested layout
    return root, rows


@pytest.fixture(scope="module")
def prepared(release, tmp_path_factory):
    root, rows = release
    task = build_task(
        "retrieval", data_dir=tmp_path_factory.mktemp("data"), release_dir=str(root), seq_len=40
    )
    task.progress = False
    task.prepare()
    return task, rows


def test_spec(prepared):
    spec = prepared[0].spec
    assert (spec.name, spec.vocab_size, spec.max_len, spec.num_classes) == ("retrieval", 257, 40, 2)
    assert spec.pair and spec.pad_id == 0
    assert build_task("retrieval").spec.max_len == 4000


def test_pairs_ids_lengths_labels(prepared):
    task, rows = prepared
    assert task.summary()["sizes"] == SIZES
    for split in SIZES:
        data = task.split(split)
        batch = data.get_batch(np.arange(len(data)))
        assert set(batch) == {"input_ids", "mask", "input_ids_2", "mask_2", "label"}
        assert batch["label"].tolist() == [r[0] for r in rows[split]]
        for i, (_, _, _, text1, text2) in enumerate(rows[split]):
            assert batch["input_ids"][i].tolist() == expected_ids(text1, 40)
            assert batch["input_ids_2"][i].tolist() == expected_ids(text2, 40)
            assert int(batch["mask"][i].sum()) == min(len(text1.encode()), 40)
            assert int(batch["mask_2"][i].sum()) == min(len(text2.encode()), 40)
    facts = task.summary()["splits"]["train"]
    long1 = sum(len(r[3].encode()) > 40 for r in rows["train"])
    long2 = sum(len(r[4].encode()) > 40 for r in rows["train"])
    assert 0 < long1 < 40 and 0 < long2 < 40
    assert (facts["truncated"], facts["truncated_2"]) == (long1, long2)
    assert not list(task.cache_dir.parent.glob(".retrieval-*"))  # scratch arrays removed


def test_reader_line_ends_labels_and_bytes(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_bytes(b"1.0\ta\tb\tcaf\xc3\xa9\t\xff\r\n0\ta\tb\t\tz\n\n1\ta\tb\tq\tr")
    rows = list(read_rows(path))
    assert [(n, y) for n, y, _, _ in rows] == [(1, 1), (2, 0), (4, 1)]  # the empty line is skipped
    assert rows[0][2:] == (b"caf\xc3\xa9", b"\xff") and rows[1][2:] == (b"", b"z")
    arrays, facts = tokenize_file(path, 3)
    assert arrays["input_ids"].tolist() == [[100, 98, 103], [0, 0, 0], [114, 0, 0]]
    assert arrays["input_ids_2"].tolist() == [[256, 0, 0], [123, 0, 0], [115, 0, 0]]
    assert arrays["lengths"].tolist() == [3, 0, 1] and arrays["labels"].tolist() == [1, 0, 1]
    assert facts == {"truncated": 1, "truncated_2": 0}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("1\ta\tb\tc", "expected 5 tab-separated columns .* got 4"),
        ("1\ta\tb\tc\td\te", "expected 5 tab-separated columns .* got 6"),
        ("yes\ta\tb\tc\td", "label must be 0 or 1"),
        ("2.0\ta\tb\tc\td", "label must be 0 or 1"),
        ("0.5\ta\tb\tc\td", "label must be 0 or 1"),
    ],
)
def test_reader_names_file_and_line(tmp_path, bad, message):
    path = tmp_path / "new_aan_pairs.eval.tsv"
    path.write_text(f"1\ta\tb\tc\td\n{bad}\n0\ta\tb\tc\td\n")
    with pytest.raises(ValueError, match=rf"new_aan_pairs\.eval\.tsv:2: {message}"):
        tokenize_file(path, 8)
    path.write_text("")
    with pytest.raises(ValueError, match="no rows"):
        tokenize_file(path, 8)


def test_prepare_is_idempotent_and_keyed(prepared, release, tmp_path, monkeypatch):
    task, _ = prepared
    root, _ = release
    monkeypatch.setattr(Retrieval, "build_splits", lambda self: pytest.fail("re-tokenised"))
    again = build_task("retrieval", data_dir=task.data_dir, release_dir=str(root), seq_len=40)
    assert again.prepare() == task.cache_dir
    other = build_task("retrieval", data_dir=task.data_dir, release_dir=str(root), seq_len=20)
    assert other.cache_dir != task.cache_dir
    write_release(tmp_path / "copy", seed=1, sizes={"train": 41, "val": 12, "test": 12})
    copy = build_task(
        "retrieval", data_dir=task.data_dir, release_dir=str(tmp_path / "copy"), seq_len=40
    )
    assert copy.cache_dir != task.cache_dir  # another copy of the files: another cache


def test_default_release_dir_flat_layout(tmp_path):
    rows = write_release(tmp_path / "lra_release", sizes={"train": 8, "val": 2, "test": 3})
    task = build_task("retrieval", data_dir=tmp_path, seq_len=16)
    assert task.tsv_dir() == tmp_path / "lra_release" / "tsv_data"
    task.progress = False
    task.prepare()
    assert task.split("test").labels.tolist() == [r[0] for r in rows["test"]]


def test_missing_release_says_how_to_get_it(tmp_path, capsys):
    task = build_task("retrieval", data_dir=tmp_path)
    with pytest.raises(MissingDataError, match="fetch_lra_release.sh") as err:
        task.prepare()
    assert str(tmp_path / "lra_release" / "tsv_data") in str(err.value)
    write_release(tmp_path / "lra_release", sizes={"train": 4, "val": 2, "test": 2})
    (tmp_path / "lra_release" / "tsv_data" / "new_aan_pairs.eval.tsv").unlink()
    with pytest.raises(MissingDataError, match=r"missing: new_aan_pairs\.eval\.tsv"):
        build_task("retrieval", data_dir=tmp_path).prepare()
    code = data_cli.main(
        ["task=retrieval", f"data_dir={tmp_path}", f"task.release_dir={tmp_path}/r"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "new_aan_pairs.train.tsv" in err and "release_dir=" in err and "Traceback" not in err


def test_tiny_training_run_on_the_pair_path(release, tmp_path):
    root, _ = release
    cfg = compose(
        "train",
        [
            "task=retrieval",
            f"data_dir={tmp_path / 'data'}",
            f"results_dir={tmp_path / 'results'}",
            f"task.release_dir={root}",
            "task.seq_len=24",
            "task.backbone.layers=1",
            "task.backbone.heads=2",
            "task.backbone.dim=16",
            "task.backbone.mlp_dim=32",
            "task.optim.batch_size=8",
            "task.optim.steps=4",
            "task.optim.eval_every=2",
            "task.optim.warmup=2",
            "trainer.device=cpu",
            "trainer.progress=false",
        ],
    )
    record = train.run(cfg, tmp_path / "run")
    assert record["status"] == "ok" and record["task"] == "retrieval" and record["steps"] == 4
    assert 0.0 <= record["test_acc"] <= 1.0 and record["data_spec"]["seq_len"] == 24
    assert record["data_spec"]["file_sizes"]["train"] > 0
