"""Text (IMDb) task: byte ids, truncation, validation policies, HF loading and its errors.

The fixture is a tiny ``stanfordnlp/imdb`` in the hub's own layout (``README.md`` with the
hub's ``configs`` block + ``plain_text/<split>-00000-of-00001.parquet``, features ``text``
string and ``label`` ClassLabel(neg, pos)), loaded by ``datasets.load_dataset`` like the hub.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lra.config import build_task
from lra.run import prepare as data_cli
from tasks import MissingDataError
from tasks import bytes_tokens as bt
from tasks.text import Text, holdout_split

README = """---
dataset_info:
  config_name: plain_text
  features:
  - name: text
    dtype: string
  - name: label
    dtype:
      class_label:
        names:
          '0': neg
          '1': pos
configs:
- config_name: plain_text
  data_files:
  - split: train
    path: plain_text/train-*
  - split: test
    path: plain_text/test-*
  - split: unsupervised
    path: plain_text/unsupervised-*
  default: true
---
# tiny imdb fixture
"""


def review(split: str, i: int) -> str:
    """Distinct reviews of varied length, with multi-byte UTF-8 and a NUL byte."""
    return f"{split} review {i}: " + "café ✓ " * (i % 7) + ("\x00" if i % 5 == 0 else "")


def write_imdb(folder, n_train: int = 40, n_test: int = 24, readme: bool = True) -> dict:
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    rows = {}
    for split, n in (("train", n_train), ("test", n_test), ("unsupervised", 3)):
        texts = [review(split, i) for i in range(n)]
        labels = [(i * 7 + len(split)) % 2 if split != "unsupervised" else -1 for i in range(n)]
        rows[split] = (texts, labels)
        path = folder / "plain_text" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds = Dataset.from_dict({"text": texts, "label": labels}, features=features)
        ds.to_parquet(str(path))
    if readme:
        (folder / "README.md").write_text(README)
    return rows


@pytest.fixture(scope="module", autouse=True)
def offline():
    """No test may reach the network: the hub answers 'offline' at once."""
    import datasets.config
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="module")
def imdb(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imdb")
    return folder, write_imdb(folder)


@pytest.fixture(scope="module")
def prepared(imdb, tmp_path_factory):
    folder, rows = imdb
    task = build_task(
        "text", data_dir=tmp_path_factory.mktemp("data"), hf_path=str(folder), seq_len=32
    )
    task.progress = False
    task.prepare()
    return task, rows


def expected_ids(text: str, seq_len: int) -> list[int]:
    data = text.encode("utf-8")[:seq_len]
    return [b + 1 for b in data] + [0] * (seq_len - len(data))


def test_byte_ids():
    ids, lengths, truncated = bt.encode(["", "a\x00", "é", b"\xff\xfe"], 3)
    assert ids.dtype == np.uint16 and bt.VOCAB_SIZE == 257 and bt.PAD_ID == 0
    assert ids.tolist() == [[0, 0, 0], [98, 1, 0], [196, 170, 0], [256, 255, 0]]
    assert lengths.tolist() == [0, 2, 2, 2] and truncated == 0
    ids, lengths, truncated = bt.encode(["abcd", "abc"], 3)  # a 4-byte text is cut, 3 is not
    assert ids.tolist() == [[98, 99, 100]] * 2 and lengths.tolist() == [3, 3] and truncated == 1
    assert bt.decode(ids[0]) == b"abc" and bt.decode(np.array([98, 1, 0]), 2) == b"a\x00"


def test_spec_and_recipe_keys(prepared):
    task, _ = prepared
    spec = task.spec
    assert (spec.name, spec.vocab_size, spec.max_len, spec.num_classes) == ("text", 257, 32, 2)
    assert (spec.pair, spec.pad_id) == (False, 0)
    default = build_task("text")
    assert default.cfg.backbone.pooling == "cls"
    assert default.spec.max_len == 4096 and default.cfg.val_policy == "test"
    assert default.data_spec()["source"] == "hub:stanfordnlp/imdb"


def test_ids_lengths_labels_match_the_source(prepared):
    task, rows = prepared
    for split, source in (("train", "train"), ("test", "test")):
        texts, labels = rows[source]
        data = task.split(split)
        batch = data.get_batch(np.arange(len(data)))
        assert batch["label"].tolist() == labels
        for row, mask, text in zip(batch["input_ids"].tolist(), batch["mask"], texts, strict=True):
            assert row == expected_ids(text, 32)
            assert int(mask.sum()) == min(len(text.encode()), 32)
    item = task.split("train")[0]
    assert item["input_ids"].dtype == torch.long and item["mask"].dtype == torch.bool


def test_val_policy_test_is_the_test_split_and_truncation_is_counted(prepared):
    task, rows = prepared
    val, test = task.split("val"), task.split("test")
    assert np.array_equal(val.input_ids, test.input_ids) and np.array_equal(val.labels, test.labels)
    summary = task.summary()
    assert summary["sizes"] == {"train": 40, "val": 24, "test": 24}
    assert summary["val_policy"] == "test"
    long_train = sum(len(t.encode()) > 32 for t in rows["train"][0])
    assert 0 < long_train < 40 and summary["splits"]["train"]["truncated"] == long_train


def _holdout(data_dir, folder, **kw):
    task = build_task(
        "text", data_dir=data_dir, hf_path=str(folder), seq_len=32, val_policy="holdout", **kw
    )
    task.progress = False
    task.prepare()
    return task


def test_holdout_split_sizes_and_seeds(imdb, tmp_path):
    folder, rows = imdb
    a = _holdout(tmp_path, folder, val_size=10, split_seed=0)
    assert a.summary()["sizes"] == {"train": 30, "val": 10, "test": 24}

    def texts(task, split):
        data = task.split(split)
        return [bt.decode(data.input_ids[i], data.lengths[i]) for i in range(len(data))]

    train, val = texts(a, "train"), texts(a, "val")
    originals = [t.encode()[:32] for t in rows["train"][0]]
    assert not set(train) & set(val) and sorted(train + val) == sorted(originals)
    assert texts(a, "test") == [t.encode()[:32] for t in rows["test"][0]]
    same = _holdout(tmp_path / "again", folder, val_size=10, split_seed=0)
    other = _holdout(tmp_path, folder, val_size=10, split_seed=1)
    assert texts(same, "val") == val and texts(other, "val") != val
    assert other.cache_dir != a.cache_dir
    tr, va = holdout_split(10, 3, None)  # null seed: the last rows, like TFDS slicing
    assert tr.tolist() == list(range(7)) and va.tolist() == [7, 8, 9]


def test_bad_policy_and_sizes_name_the_value(imdb, tmp_path):
    folder, _ = imdb
    with pytest.raises(ValueError, match="val_policy must be one of.*'dev'"):
        build_task("text", data_dir=tmp_path, hf_path=str(folder), val_policy="dev")
    with pytest.raises(ValueError, match="val_size 40 leaves no training data"):
        _holdout(tmp_path, folder, val_size=40)
    with pytest.raises(ValueError, match="split_seed must be an int or null, got 'x'"):
        build_task("text", val_policy="holdout", split_seed="x")
    build_task("text", split_seed="x")  # the hold-out keys do not matter under val_policy=test


def test_prepare_is_idempotent_and_keyed(prepared, monkeypatch):
    task, _ = prepared
    monkeypatch.setattr(Text, "build_splits", lambda self: pytest.fail("re-tokenised"))
    again = build_task("text", data_dir=task.data_dir, hf_path=str(task.cfg.hf_path), seq_len=32)
    assert again.prepare() == task.cache_dir
    longer = build_task("text", data_dir=task.data_dir, hf_path=str(task.cfg.hf_path), seq_len=64)
    assert longer.cache_dir != task.cache_dir


def test_local_copy_without_readme_loads_by_file_names(tmp_path):
    rows = write_imdb(tmp_path / "copy", n_train=8, n_test=4, readme=False)
    task = build_task("text", data_dir=tmp_path, hf_path=str(tmp_path / "copy"), seq_len=16)
    task.progress = False
    task.prepare()
    assert task.split("test").labels.tolist() == rows["test"][1]


def test_missing_data_says_what_to_do(tmp_path):
    missing = build_task("text", data_dir=tmp_path, hf_path=str(tmp_path / "nope"))
    with pytest.raises(MissingDataError, match=r"is not a folder.*hf download stanfordnlp/imdb"):
        missing.prepare()
    hub = build_task("text", data_dir=tmp_path)  # the hub id, offline
    with pytest.raises(MissingDataError, match=r"hub id stanfordnlp/imdb.*hf_path=DIR"):
        hub.prepare()
    (tmp_path / "only_train" / "plain_text").mkdir(parents=True)
    write_imdb(tmp_path / "only_train", n_train=4, n_test=2, readme=False)
    (tmp_path / "only_train" / "plain_text" / "test-00000-of-00001.parquet").unlink()
    partial = build_task("text", data_dir=tmp_path, hf_path=str(tmp_path / "only_train"))
    with pytest.raises(MissingDataError, match="has no split 'test'"):
        partial.prepare()


def test_wrong_columns_are_named(tmp_path):
    from datasets import Dataset

    path = tmp_path / "bad" / "plain_text" / "train-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    for split in ("train", "test"):
        Dataset.from_dict({"review": ["x"], "label": [0]}).to_parquet(
            str(path.with_name(f"{split}-00000-of-00001.parquet"))
        )
    task = build_task("text", data_dir=tmp_path, hf_path=str(tmp_path / "bad"))
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['text'\]"):
        task.prepare()


def test_lra_data_cli(imdb, tmp_path, capsys):
    folder, _ = imdb
    argv = ["task=text", f"data_dir={tmp_path}", f"task.hf_path={folder}", "task.seq_len=16"]
    assert data_cli.main([*argv, "trainer.progress=false"]) == 0
    captured = capsys.readouterr()
    assert "text train" not in captured.err  # progress=false reaches the task's bars
    out = captured.out.splitlines()
    assert out[0].startswith(f"text: {tmp_path}/cache/text-")
    assert out[1] == "sizes: train=40, val=24, test=24"
    assert data_cli.main(argv) == 0 and capsys.readouterr().out.splitlines()[0] == out[0]
    assert data_cli.main(["task=text", f"data_dir={tmp_path}", f"task.hf_path={tmp_path}/x"]) == 1
    err = capsys.readouterr().err
    assert "hf_path=" in err and "hf download" in err and "Traceback" not in err
    assert data_cli.main(["task=text", "task.val_policy=dev"]) == 2
    assert "val_policy" in capsys.readouterr().err


def test_hf_revision_pins_the_hub_load_and_keys_the_cache(tmp_path, monkeypatch):
    import datasets

    from tasks import hf

    assert (
        hf.source_fingerprint("stanfordnlp/imdb") == "hub:stanfordnlp/imdb"
    )  # unpinned: as before
    assert hf.source_fingerprint("stanfordnlp/imdb", "abc") == "hub:stanfordnlp/imdb@abc"
    seen = {}

    def fake_load(path, split, cache_dir, **kw):
        seen.update(kw)
        raise FileNotFoundError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    with pytest.raises(hf.MissingDataError):
        hf.load_split("stanfordnlp/imdb", "train", ["text"], tmp_path, "text", "x", revision="abc")
    assert seen == {"revision": "abc"}
