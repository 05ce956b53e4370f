"""Pathfinder / Path-X tasks: release reader (text and NumPy metadata, nested layout, skipped
PNGs, clear errors), raw-pixel tokens without padding, seeded 80/10/10 split, generated source,
cache reuse, recipes and ``lra-data``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lra.config import build_task, compose
from lra.run import prepare as data_cli
from tasks import MissingDataError
from tasks.pathfinder import Pathfinder, read_metadata_file

FOLDER = "curv_contour_length_14"


def _write_release(root, count=20, size=32, layout="flat", empty=(), corrupt=(), npy=False):
    """A release-format ``pathfinder<size>/<FOLDER>``: two batches, text metadata (or np.save).

    Returns ``{relative png path: (pixels [size, size] uint8, label)}`` of the readable images.
    """
    base = root / "lra_release" if layout == "nested" else root
    folder = base / f"pathfinder{size}" / FOLDER
    rng = np.random.default_rng(0)
    images, rows = {}, {0: [], 1: []}
    for i in range(count):
        batch, index = i % 2, i // 2
        label = int(rng.integers(2))
        rel = f"imgs/{batch}/sample_{index}.png"
        (folder / f"imgs/{batch}").mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
        pixels[0, :4] = 0  # black pixels are real tokens
        if i in empty:
            (folder / rel).write_bytes(b"")
        elif i in corrupt:
            (folder / rel).write_bytes(b"\x89PNG not really")
        else:
            Image.fromarray(pixels, mode="L").save(folder / rel)
            images[rel] = (pixels, label)
        rows[batch].append(
            [f"imgs/{batch}", f"sample_{index}.png", str(index), str(label), "1.0", "14", "4",
             "2", "0.5", "1", "1"]
        )  # fmt: skip
    (folder / "metadata").mkdir(parents=True)
    for batch, lines in rows.items():
        path = folder / "metadata" / f"{batch}.npy"
        if npy:
            with open(path, "wb") as f:
                np.save(f, np.array(lines))
        else:
            path.write_text("".join(" ".join(r) + "\n" for r in lines))
    return images


def _release_task(root, **kw):
    task = build_task("pathfinder", data_dir=root, release_dir=str(root), **kw)
    task.progress = False
    return task


def test_release_tokens_labels_and_split(tmp_path):
    images = _write_release(tmp_path, count=40, empty={3}, corrupt={8})
    task = _release_task(tmp_path)
    with pytest.warns(UserWarning, match="1 empty, 1 unreadable"):
        task.prepare()
    summary = task.summary()
    sizes = summary["sizes"]  # 39 non-empty split 33/3/3, then 1 undecodable dropped
    assert sum(sizes.values()) == 38 and sizes["train"] >= 32 and sizes["val"] + sizes["test"] >= 5
    assert summary["skipped"] == {"empty": 1, "missing": 0, "unreadable": 1}
    assert summary["skipped_examples"]["empty"] == ["imgs/1/sample_1.png"]
    spec = task.spec
    assert (spec.vocab_size, spec.max_len, spec.num_classes) == (256, 1024, 2)
    assert task.cfg.backbone.pooling == "mean"
    by_pixels = {p.tobytes(): y for p, y in images.values()}
    seen = []
    for split in ("train", "val", "test"):
        data = task.split(split)
        batch = data.get_batch(np.arange(len(data)))
        assert batch["mask"].all()  # no padding: pixel 0 is a real token
        assert batch["input_ids"].dtype == torch.long and (batch["input_ids"][:, :4] == 0).all()
        for ids, label in zip(batch["input_ids"], batch["label"].tolist(), strict=True):
            key = ids.numpy().astype(np.uint8).tobytes()  # row-major flattening
            assert by_pixels[key] == label
            seen.append(key)
    assert sorted(seen) == sorted(by_pixels)  # every readable image exactly once
    assert summary["mean_pixel"] == pytest.approx(
        np.mean([p for p, _ in images.values()]), abs=1e-3
    )


def test_split_is_seeded(tmp_path):
    _write_release(tmp_path, count=30)
    first = _release_task(tmp_path)
    first.prepare()
    again = _release_task(tmp_path)
    assert again.cache_dir == first.cache_dir
    other = _release_task(tmp_path, split_seed=1)
    other.prepare()
    assert other.cache_dir != first.cache_dir
    a = first.split("val").get_batch(np.arange(3))["input_ids"]
    b = other.split("val").get_batch(np.arange(3))["input_ids"]
    assert not torch.equal(a, b)


def test_nested_layout_and_numpy_metadata(tmp_path):
    _write_release(tmp_path, count=10, layout="nested", npy=True)
    task = _release_task(tmp_path)
    assert task.image_dir() == tmp_path / "lra_release" / "pathfinder32" / FOLDER
    task.prepare()
    assert task.summary()["sizes"] == {"train": 8, "val": 1, "test": 1}
    rows = read_metadata_file(task.image_dir() / "metadata" / "0.npy")
    assert rows[0] == ("imgs/0", "sample_0.png", rows[0][2]) and len(rows) == 5


def test_bad_metadata_names_file_and_line(tmp_path):
    _write_release(tmp_path, count=6)
    meta = tmp_path / "pathfinder32" / FOLDER / "metadata" / "1.npy"
    lines = meta.read_text().splitlines()
    meta.write_text(lines[0] + "\n" + lines[1].rsplit(" ", 1)[0] + "\n")
    with pytest.raises(ValueError, match=r"1\.npy:2: expected 11 .*got 10"):
        _release_task(tmp_path).prepare()
    meta.write_text("imgs/1 sample_0.png 0 7 1.0 14 4 2 0.5 1 1\n")
    with pytest.raises(ValueError, match=r"1\.npy:1: label"):
        read_metadata_file(meta)


def test_missing_data_says_how_to_get_it(tmp_path):
    task = _release_task(tmp_path)
    with pytest.raises(MissingDataError) as err:
        task.prepare()
    message = str(err.value)
    assert "not found" in message and FOLDER in message
    assert "lra-data task=pathfinder task.source=generate" in message
    assert "scripts/fetch_lra_release.sh" in message
    (tmp_path / "pathfinder32" / FOLDER / "imgs").mkdir(parents=True)
    with pytest.raises(MissingDataError, match="metadata"):
        _release_task(tmp_path).prepare()
    pathx = build_task("pathx", data_dir=tmp_path)
    with pytest.raises(
        MissingDataError, match="task=pathx task.source=generate task.resolution=128"
    ):
        pathx.prepare()


def test_bad_options_list_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="32, 64, 128, 256"):
        build_task("pathfinder", data_dir=tmp_path, resolution=48).data_spec()
    with pytest.raises(ValueError, match="intermediate"):
        build_task("pathfinder", data_dir=tmp_path, difficulty="medium").image_dir()
    with pytest.raises(ValueError, match="release"):
        build_task("pathfinder", data_dir=tmp_path, source="download").image_dir()
    with pytest.raises(ValueError, match="baseline"):
        build_task("pathfinder", data_dir=tmp_path, source="generate", distractors="x").data_spec()


def test_generated_source_end_to_end(tmp_path, monkeypatch):
    task = build_task("pathfinder", source="generate", num_images=20, data_dir=tmp_path)
    task.progress, task.workers = False, 1
    task.prepare()
    assert task.summary()["sizes"] == {"train": 16, "val": 2, "test": 2}
    folder = task.image_dir()
    assert folder.parent.parent == tmp_path / "generated"
    assert folder.parent.name.startswith("pathfinder32-") and folder.name == FOLDER
    assert len(list(folder.glob("imgs/0/sample_*.png"))) == 20
    gen_summary = task.summary()["generation"]
    assert gen_summary["images"] == 20 and gen_summary["difficulty"] == "hard"
    ids = task.split("train").get_batch(np.arange(16))["input_ids"]
    assert ids.shape == (16, 1024) and int(ids.max()) == 255 and int(ids.min()) == 0
    # a second task with the same spec reuses the cache; another difficulty shares the root
    monkeypatch.setattr(Pathfinder, "build_splits", lambda self: pytest.fail("re-decoded"))
    same = build_task("pathfinder", source="generate", num_images=20, data_dir=tmp_path)
    assert same.prepare() == task.cache_dir
    easy = build_task("pathfinder", source="generate", num_images=20, data_dir=tmp_path,
                      difficulty="easy")  # fmt: skip
    assert easy.root_dir() == task.root_dir() and easy.cache_dir != task.cache_dir


def test_pathx_defaults_and_sequence_length(tmp_path):
    task = build_task("pathx", data_dir=tmp_path)
    assert (task.resolution, task.difficulty, task.folder_name) == (128, "hard", FOLDER)
    assert task.spec.max_len == 16384 and task.spec.name == "pathx"
    easy = build_task(
        "pathx", data_dir=tmp_path, source="generate", difficulty="easy", num_images=10
    )  # fmt: skip  (80/10/10: no split may be empty)
    easy.progress, easy.workers = False, 1
    easy.prepare()
    item = easy.split("train")[0]
    assert item["input_ids"].shape == (16384,) and item["mask"].all()


def test_recipes_are_the_lra_ones():
    # pathfinder32/transformer_base.py after the maintainers' change of 2021-08-29 (ee6649e)
    cfg = compose("train", ["task=pathfinder", "model=transformer"])
    b, o = cfg.task.backbone, cfg.task.optim
    assert (b.layers, b.heads, b.dim, b.qkv_dim, b.mlp_dim) == (4, 4, 32, 16, 32)
    assert (b.dropout, b.attn_dropout, b.pos, b.pooling) == (0.2, 0.1, "sinusoidal", "mean")
    assert (o.batch_size, o.steps, o.lr, o.schedule, o.warmup) == (512, 62400, 1e-3, "cosine", 312)
    assert o.weight_decay == 0 and o.grad_clip is None and o.eval_every == 312
    assert (cfg.task.resolution, cfg.task.difficulty, cfg.task.source) == (32, "hard", "release")
    cfg = compose("train", ["task=pathx", "model=transformer"])
    b, o = cfg.task.backbone, cfg.task.optim
    assert (b.layers, b.heads, b.dim, b.qkv_dim, b.mlp_dim) == (1, 2, 32, 16, 32)
    assert (b.dropout, b.attn_dropout, b.pos, b.pooling) == (0.1, 0.1, "learned", "mean")
    assert (o.batch_size, o.steps, o.warmup, o.grad_clip, o.weight_decay) == (
        64,
        500000,
        2500,
        1.0,
        0,
    )
    assert (cfg.task.resolution, cfg.task.difficulty) == (128, "hard")


def test_lra_data_cli(tmp_path, capsys):
    argv = ["task=pathfinder", "task.source=generate", "task.num_images=10", "task.difficulty=easy"]
    assert (
        data_cli.main([*argv, f"data_dir={tmp_path}", "workers=1", "trainer.progress=false"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"pathfinder: {tmp_path}/cache/pathfinder-")
    assert out[1] == "sizes: train=8, val=1, test=1"
    assert data_cli.main(["task=pathx", f"data_dir={tmp_path}"]) == 1
    assert "fetch_lra_release.sh" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(("task", "tokens"), [("pathfinder", 1024), ("pathx", 16384)])
def test_smoke_preset_runs_end_to_end(task, tokens, tmp_path):
    """``experiment=smoke`` on generated Pathfinder and Path-X (shrunk to one step): data made
    here, a record with the preset's configuration."""
    from lra.run import train

    overrides = [
        "experiment=smoke", f"task={task}", "model=local", f"data_dir={tmp_path / 'data'}",
        f"results_dir={tmp_path / 'results'}", "task.num_images=20", "task.optim.steps=1",
        "task.optim.warmup=1", "task.optim.eval_every=1", "task.optim.batch_size=2",
        "trainer.progress=false",
    ]  # fmt: skip
    record = train.run(compose("train", overrides), tmp_path / "run")
    assert record["status"] == "ok" and record["config"]["protocol"] == "smoke"
    assert record["data_spec"]["source"] == "generate" and record["n_test"] == 2
    assert record["tokens_per_s"] > 0 and record["config"]["task"]["difficulty"] == "easy"
    assert compose("train", overrides).task.backbone.attn_dropout == 0.0
    assert tokens == compose("train", overrides).task.resolution ** 2
