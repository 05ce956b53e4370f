"""ListOps task: fixed ids, TSV reader, generate/release sources, cache reuse, split items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lra.config import build_task
from tasks import EmptySplitError, MissingDataError
from tasks import listops_gen as gen
from tasks.listops import VOCAB, ListOps, read_tsv, tokenize

TINY = dict(
    num_train=120,
    num_val=30,
    num_test=30,
    min_length=10,
    max_length=100,
    max_depth=4,
    seq_len=128,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    task = build_task("listops", data_dir=tmp_path_factory.mktemp("data"), **TINY)
    task.progress = False
    task.prepare()
    return task


def test_fixed_id_map():
    assert VOCAB == {
        "<pad>": 0, "<unk>": 1, "0": 2, "1": 3, "2": 4, "3": 5, "4": 6, "5": 7, "6": 8,
        "7": 9, "8": 10, "9": 11, "[MIN": 12, "[MAX": 13, "[MED": 14, "[SM": 15, "]": 16,
    }  # fmt: skip
    ids, lengths, truncated = tokenize(["( ( ( [MAX 2 ) 9 ) ] )", "( [FIRST 7 X ) )"], 6)
    assert ids.tolist() == [[13, 4, 11, 16, 0, 0], [1, 9, 16, 0, 0, 0]]  # unknown -> <unk>
    assert lengths.tolist() == [4, 3] and truncated == 0
    ids, lengths, truncated = tokenize(["( ( ( ( [SM 7 ) 8 ) 9 ) ] )"], 3)
    assert ids.tolist() == [[15, 9, 10]] and lengths.tolist() == [3] and truncated == 1


def test_spec(tiny):
    spec = tiny.spec
    assert (spec.name, spec.vocab_size, spec.max_len, spec.num_classes) == ("listops", 17, 128, 10)
    assert (spec.pair, spec.pad_id) == (False, 0)
    assert not hasattr(spec, "pooling")  # pooling belongs to the recipe: backbone.pooling
    assert tiny.cfg.backbone.pooling == "cls"


def test_split_items_and_ids(tiny):
    train = tiny.split("train")
    assert len(train) == 120 and len(tiny.split("val")) == 30 and len(tiny.split("test")) == 30
    item = train[0]
    assert item["input_ids"].shape == (128,) and item["input_ids"].dtype == torch.long
    assert item["mask"].shape == (128,) and item["mask"].dtype == torch.bool
    assert item["label"].dtype == torch.long and 0 <= int(item["label"]) <= 9
    batch = train.get_batch(np.arange(len(train)))
    ids, mask = batch["input_ids"], batch["mask"]
    assert ((ids >= 1) & (ids <= 16))[mask].all() and (ids[~mask] == 0).all()
    assert (ids[mask] != 1).all()  # generated data has no unknown tokens
    lengths = mask.sum(1)
    assert (lengths > 10).all() and (lengths < 100).all()


def test_cache_matches_tsv(tiny):
    sources, labels = read_tsv(tiny.tsv_paths()["val"])
    val = tiny.split("val").get_batch(np.arange(30))
    assert val["label"].tolist() == labels.tolist()
    for row, source, label in zip(val["input_ids"].tolist(), sources, labels.tolist(), strict=True):
        tokens = gen.lra_tokens(source)
        assert row[: len(tokens)] == [VOCAB[t] for t in tokens]
        assert gen.evaluate(source) == label
    summary = tiny.summary()
    assert summary["sizes"] == {"train": 120, "val": 30, "test": 30}
    assert summary["splits"]["train"]["truncated"] == 0
    assert summary["generation"]["accepted"] >= 180


def test_prepare_is_idempotent_and_keyed(tiny, monkeypatch):
    tsv_mtime = tiny.tsv_paths()["train"].stat().st_mtime_ns
    monkeypatch.setattr(ListOps, "build_splits", lambda self: pytest.fail("re-tokenised"))
    again = build_task("listops", data_dir=tiny.data_dir, **TINY)
    assert again.prepare() == tiny.cache_dir
    assert again.generate(progress=False) == tiny.tsv_dir()  # files exist: nothing rewritten
    assert tiny.tsv_paths()["train"].stat().st_mtime_ns == tsv_mtime
    other = build_task("listops", data_dir=tiny.data_dir, **{**TINY, "gen_seed": 1})
    assert other.cache_dir != tiny.cache_dir and other.tsv_dir() != tiny.tsv_dir()
    shorter = build_task("listops", data_dir=tiny.data_dir, **{**TINY, "seq_len": 64})
    assert shorter.cache_dir != tiny.cache_dir and shorter.tsv_dir() == tiny.tsv_dir()


def test_generate_leaves_no_temp_files(tiny):
    names = sorted(p.name for p in tiny.tsv_dir().iterdir())
    assert names == ["basic_test.tsv", "basic_train.tsv", "basic_val.tsv", "generation.json"]


def test_truncation_is_counted(tiny):
    short = build_task("listops", data_dir=tiny.data_dir, **{**TINY, "seq_len": 20})
    short.prepare()
    assert short.summary()["splits"]["train"]["truncated"] > 0
    assert short.split("train").get_batch(np.arange(5))["input_ids"].shape == (5, 20)


# --- TSV reader -------------------------------------------------------------------------------

ROWS = [("( ( ( [MAX 2 ) 9 ) ] )", 9), ("( ( ( [MED 2 ) 5 ) ] )", 3)]


def _write(path, text: str, newline: str = "\r\n"):
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def test_reader_accepts_lf_and_crlf(tmp_path):
    text = "Source\tTarget\n" + "".join(f"{s}\t{y}\n" for s, y in ROWS)
    crlf = read_tsv(_write(tmp_path / "a.tsv", text, "\r\n"))
    lf = read_tsv(_write(tmp_path / "b.tsv", text, "\n"))
    no_final_newline = read_tsv(_write(tmp_path / "c.tsv", text.rstrip("\n"), "\n"))
    for got in (lf, no_final_newline):
        assert got[0] == crlf[0] and got[1].tolist() == crlf[1].tolist()
    assert crlf[0] == [s for s, _ in ROWS] and crlf[1].tolist() == [9, 3]


@pytest.mark.parametrize(
    "bad_line",
    ["( ( ( [MAX 2 ) 9 ) ] )\t9\textra", "( ( ( [MAX 2 ) 9 ) ] )\tnine", "( ( ( [MAX 2 ) 9 ) ] ) 9"]
    + ["( ( ( [MAX 2 ) 9 ) ] )\t10", ""],
)
def test_reader_names_file_and_line(tmp_path, bad_line):
    text = f"Source\tTarget\n{ROWS[0][0]}\t9\n{bad_line}\n{ROWS[1][0]}\t3\n"
    path = _write(tmp_path / "bad.tsv", text)
    with pytest.raises(ValueError, match=r"bad\.tsv:3:"):
        read_tsv(path)


def test_reader_requires_header(tmp_path):
    path = _write(tmp_path / "nohead.tsv", "".join(f"{s}\t{y}\n" for s, y in ROWS))
    with pytest.raises(ValueError, match=r"nohead\.tsv:1: expected header"):
        read_tsv(path)
    with pytest.raises(ValueError, match="empty file"):
        read_tsv(_write(tmp_path / "empty.tsv", ""))


# --- release source ---------------------------------------------------------------------------


def _write_release(folder, seed: int = 0):
    splits = gen.generate_listops(40, 8, 8, 10, 100, 4, 10, seed=seed, workers=1)
    gen.write_release_files(folder, splits)
    return splits


def test_release_source(tmp_path):
    splits = _write_release(tmp_path / "lra_release" / "listops-1000")
    task = build_task("listops", data_dir=tmp_path, source="release", seq_len=128)
    assert set(task.data_spec()) == {"name", "source", "seq_len", "format", "file_sizes"}
    task.prepare()
    assert task.summary()["sizes"] == {"train": 40, "val": 8, "test": 8}
    assert task.split("test").labels.tolist() == [y for _, y in splits["test"]]
    first_cache = task.cache_dir
    _write_release(tmp_path / "lra_release" / "listops-1000", seed=1)  # another copy
    assert task.cache_dir != first_cache


def test_release_dir_option_and_archive_layout(tmp_path):
    _write_release(tmp_path / "elsewhere" / "lra_release" / "listops-1000")  # as extracted
    task = build_task(
        "listops",
        data_dir=tmp_path / "d",
        source="release",
        release_dir=str(tmp_path / "elsewhere"),
    )
    assert task.tsv_dir() == tmp_path / "elsewhere" / "lra_release" / "listops-1000"
    task.prepare()
    assert len(task.split("train")) == 40


def test_missing_release_says_how_to_get_it(tmp_path):
    task = build_task("listops", data_dir=tmp_path, source="release")
    with pytest.raises(MissingDataError, match="lra-data") as err:
        task.prepare()
    assert str(tmp_path / "lra_release" / "listops-1000") in str(err.value)
    with pytest.raises(MissingDataError):
        task.split("train")


def test_header_only_split_is_an_error_naming_the_file(tmp_path):
    folder = tmp_path / "lra_release" / "listops-1000"
    _write_release(folder)
    (folder / "basic_val.tsv").write_text("Source\tTarget\r\n")  # header, no example
    task = build_task("listops", data_dir=tmp_path, source="release", seq_len=128)
    with pytest.raises(EmptySplitError, match="val split has no examples") as err:
        task.prepare()
    assert str(folder / "basic_val.tsv") in str(err.value)
    assert not task.is_prepared()  # nothing cached, so no run can score the empty split
