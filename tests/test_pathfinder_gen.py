"""Pathfinder generator: primitives and stamps against docs/GENERATORS.md §2, files, determinism,
worker-count independence, resume, the marker rule, and (slow) the §2.13 / §3 statistics."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tasks import pathfinder_draw as draw
from tasks import pathfinder_gen as gen
from tasks.pathfinder import read_metadata, read_metadata_file

REPO = Path(__file__).resolve().parents[1]


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), stats and summary excluded."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.parent.name != "stats" and p.name != "generation.json"
    }


# --------------------------------------------------------------------------- primitives (§2.3)
def test_translate_rounds_up_and_flip_stays_in_range():
    assert draw.translate((10, 10), 0.0, 2) == (10, 12)
    assert draw.translate((10, 10), math.radians(45), 2) == (12, 12)  # ceil(11.41)
    assert draw.translate((10, 10), math.radians(-135), 2) == (9, 9)  # ceil(8.59)
    assert draw.flip(math.radians(-30)) == pytest.approx(math.radians(150))
    assert draw.flip(math.radians(30)) == pytest.approx(math.radians(-150))
    assert draw.flip(0.0) == pytest.approx(-math.pi)


def test_dilate_is_opencv_convention_with_minus_inf_border():
    a = np.zeros((4, 5))
    a[1, 2] = 1.0
    right = np.array([[0, 1]])  # one tap: out(p) = a(p + (0, 1)), the kernel is not reflected
    out = draw.dilate(a, right)
    assert out[1, 1] == 1.0 and out[1, 2] == 0.0
    assert np.isneginf(out[:, 4]).all() and np.isfinite(out[:, :4]).all()
    assert (draw.any_tap(a > 0.5, right) == (out > 0.5)).all()
    disk = draw.dilate(a, draw.kernel_offsets(draw.disk(1)))
    assert disk.sum() == 5 and np.isfinite(disk).all()


def test_to_u8_is_min_max_rounded_half_up():
    assert draw.to_u8(np.array([[0.0, 0.5, 1.0]])).tolist() == [[0, 128, 255]]
    assert draw.to_u8(np.array([[0.0, 0.25, 2.0]])).tolist() == [[0, 32, 255]]  # 31.875
    assert draw.to_u8(np.zeros((2, 2))).max() == 0  # max = min: divisor 1
    u8 = np.array([[3, 7]], dtype=np.uint8)
    assert draw.to_u8(u8) is u8


# --------------------------------------------------------------------------- stamps (§2.4, §2.5)
def test_pf32_paddle_stamp_reference_values():
    p = draw.make_params(32, "hard")
    image, mask = draw.paddle_stamps(p, 1, 0.0)
    assert image.shape == mask.shape == (9, 9)
    assert np.rint(image[4] * 255).astype(int).tolist() == [0, 0, 2, 0, 102, 135, 116, 0, 0]
    assert np.rint(mask[3:6] * 255).astype(int).tolist() == [
        [0, 1, 2, 20, 173, 204, 186, 28, 0],
        [0, 3, 0, 155, 255, 255, 255, 183, 3],
        [0, 1, 2, 20, 173, 204, 186, 28, 0],
    ]


def test_pf128_paddle_stamp_reference_values():
    image, _ = draw.paddle_stamps(draw.make_params(128, "hard"), 2, 0.0)
    r = image.shape[0] // 2
    row = np.rint(image[r] * 255).astype(int).tolist()
    assert row[r - 1 : r + 7] == [0, 217, 255, 255, 255, 255, 249, 0]
    for neighbour in (image[r - 1], image[r + 1]):
        assert 45 <= round(neighbour[r + 2] * 255) <= 70


@pytest.mark.parametrize(
    "resolution,margin,usable",
    [
        (32, 1, set(range(-150, -120))),
        (64, 1, set(range(-180, -84)) - {-135}),
        (128, 2, set(range(-180, 180)) - set(range(-59, -53))),
        (128, 3, set(range(-180, 180))),
    ],
)
def test_usable_seed_angles_follow_the_border_quirk(resolution, margin, usable):
    g = draw.geometry(draw.make_params(resolution, "hard"), margin)
    assert all(len(k) for k in g.kernels)  # K_theta never empty
    assert {i - 180 for i in range(360) if g.usable(i)} == usable


def test_extension_candidates():
    pf32 = draw.extension_offsets(3).tolist()
    assert pf32 == [
        [-3, -2], [-3, -1], [-3, 0], [-3, 1], [-2, -3], [-2, 2], [-1, -3], [-1, 2], [0, -3],
        [0, 2], [0, 3], [1, -3], [1, 2], [2, -3], [2, -2], [2, -1], [2, 0], [2, 1],
    ]  # fmt: skip
    assert [len(draw.extension_offsets(r)) for r in (6, 7, 8)] == [38, 41, 49]
    g = draw.geometry(draw.make_params(32, "hard"), 1)
    # continuity 1.0 in pf32: turns of 90 degrees or more get weight 0
    straight = g.weights[180]  # theta = 0
    assert straight[pf32.index([0, 3])] == pytest.approx(1.0)
    assert straight[pf32.index([-3, 0])] == pytest.approx(0.0, abs=1e-12)


def test_parameters_per_difficulty():
    counts = {
        res: [draw.make_params(res, d).num_distractor_snakes for d in draw.DIFFICULTIES]
        for res in draw.RESOLUTIONS
    }
    assert counts == {32: [10, 6, 5], 64: [11, 7, 5], 128: [17, 11, 8], 256: [15, 10, 7]}
    assert [
        draw.make_params(32, d, "baseline").num_distractor_snakes for d in draw.DIFFICULTIES
    ] == [10] * 3
    p = draw.make_params(32, "curv_contour_length_9")  # folder names are aliases
    assert (p.contour_length, p.distractor_length, p.target_contrast) == (9, 3, 1.5)
    with pytest.raises(ValueError, match="easy"):
        draw.make_params(32, "medium")
    with pytest.raises(ValueError, match="128"):
        draw.make_params(100, "hard")


def test_metadata_line_matches_the_release():
    p = draw.make_params(32, "easy")
    assert gen.metadata_line(0, 0, 0, 1, p) == "imgs/0 sample_0.png 0 0 1.0 6 2 2 0.5 1 1"
    q = draw.make_params(128, "hard")
    assert gen.metadata_line(7, 12, 1, 3, q) == "imgs/7 sample_12.png 12 1 1.8 14 4 5 1.5 3 1"


# --------------------------------------------------------------------------- images
def test_images_and_marker_rule():
    p = draw.make_params(32, "hard")
    results = gen.make_batch(p, seed=11, count=12)
    assert {r.label for r in results} == {0, 1}
    centre_box = range(p.seed_distance - 1, 32 - p.seed_distance + 1)  # tail 1 +- sd
    for r in results:
        assert r.image.dtype == np.uint8 and r.image.shape == (32, 32)
        assert r.image.max() == 255 and r.image.min() == 0
        gen.check_markers(r.label, r.markers, r.ends)
        same = any(r.markers == (o, t) for o, t in r.ends)
        origins = [o for o, _ in r.ends]
        assert r.markers[0] in origins and same == (r.label == 1)
        for y, x in r.markers:  # markers are drawn where the rule says
            assert r.image[y, x] >= 128
        for y, x in origins:  # both origin tips lie near the central square (§2.13)
            assert y in centre_box and x in centre_box
    with pytest.raises(AssertionError, match="marker rule"):
        r = results[0]
        gen.check_markers(1 - r.label, r.markers, r.ends)


def test_batches_are_deterministic_and_seeded():
    p = draw.make_params(32, "easy")
    a, b = gen.make_batch(p, 5, 4), gen.make_batch(p, 5, 4)
    assert all((x.image == y.image).all() and x.label == y.label for x, y in zip(a, b, strict=True))
    c = gen.make_batch(p, 6, 4)
    assert any((x.image != y.image).any() for x, y in zip(a, c, strict=True))
    assert gen.batch_seed(0, p, "per_difficulty", 1) != gen.batch_seed(0, p, "per_difficulty", 2)
    assert gen.batch_seed(0, p, "per_difficulty", 1) != gen.batch_seed(1, p, "per_difficulty", 1)


# --------------------------------------------------------------------------- files
def _generate(out: Path, workers: int = 1, **kw):
    args = dict(resolution=32, difficulty="easy", num_images=7, gen_seed=3, batch_size=3)
    return gen.generate(out, workers=workers, **{**args, **kw})


def test_release_layout_and_png_format(tmp_path):
    summary = _generate(tmp_path)
    folder = tmp_path / "curv_baseline"
    assert sorted(p.name for p in (folder / "metadata").iterdir()) == ["0.npy", "1.npy", "2.npy"]
    assert [len(read_metadata_file(folder / "metadata" / f"{k}.npy")) for k in range(3)] == [
        3,
        3,
        1,
    ]
    text = (folder / "metadata" / "1.npy").read_text()
    assert text.endswith("\n") and text.splitlines()[0].startswith("imgs/1 sample_0.png 0 ")
    entries = read_metadata(folder)
    assert len(entries) == 7 and not (folder / ".partial").exists()
    for path, label in entries:
        img = Image.open(path)
        assert img.format == "PNG" and img.mode == "L" and img.size == (32, 32)
        assert img.getextrema() == (0, 255) and label in (0, 1)
    assert summary["images"] == 7 and summary["attempts_per_image"] >= 1


def test_output_is_independent_of_the_worker_count(tmp_path):
    _generate(tmp_path / "one", workers=1)
    _generate(tmp_path / "two", workers=2)
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert len(one) == 7 + 3 and one == two
    _generate(tmp_path / "other", gen_seed=4)
    assert _files(tmp_path / "other") != one


def test_resume_after_a_simulated_kill(tmp_path, monkeypatch):
    fresh = tmp_path / "fresh"
    _generate(fresh)
    out = tmp_path / "killed"
    made = []
    original = gen.make_image

    def dies_on_fifth(rng, p):
        made.append(1)
        if len(made) == 5:
            raise KeyboardInterrupt  # the process is stopped inside batch 1
        return original(rng, p)

    monkeypatch.setattr(gen, "make_image", dies_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        _generate(out)
    folder = out / "curv_baseline"
    assert (folder / "metadata" / "0.npy").is_file() and not (
        folder / "metadata" / "1.npy"
    ).exists()
    partial = folder / ".partial"
    assert not partial.exists() or not any(partial.iterdir())  # removed on failure
    # a crash between moving imgs/<k> and writing its metadata leaves an unmarked folder
    (folder / "imgs" / "2").mkdir(parents=True)
    (folder / "imgs" / "2" / "sample_0.png").write_bytes(b"junk")

    calls = []
    monkeypatch.setattr(gen, "make_image", lambda rng, p: calls.append(1) or original(rng, p))
    _generate(out)
    assert len(calls) == 4  # batches 1 and 2 only: batch 0 was finished
    assert _files(out) == _files(fresh)


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path):
    """A real SIGKILL in the middle of a run; the restart completes it to the same files."""
    code = (
        "from tasks import pathfinder_gen as g; import sys; "
        "g.generate(sys.argv[1], 32, 'hard', 200, 1, workers=1, batch_size=4)"
    )
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=REPO)
    meta = out / "curv_contour_length_14" / "metadata"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(meta.glob("*.npy"))) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(meta.glob("*.npy")))
    assert 2 <= done < 50
    gen.generate(out, 32, "hard", 200, 1, workers=1, batch_size=4)
    gen.generate(tmp_path / "fresh", 32, "hard", 200, 1, workers=2, batch_size=4)
    assert _files(out) == _files(tmp_path / "fresh")


# --------------------------------------------------------------------------- statistics (slow)
# docs/GENERATORS.md §2.13 / §3: original code with LRA parameters (mean px, frac > 0, frac >= 128,
# distractor snakes placed per image, target attempts per image).
REFERENCE = {
    (32, "easy"): (12.9, 0.225, 0.052, 3.21, 22.2),
    (32, "intermediate"): (15.6, 0.269, 0.064, 1.86, 69.9),
    (32, "hard"): (20.2, 0.342, 0.086, 1.18, 336),
    (64, "hard"): (13.6, 0.264, 0.047, 2.7, 4000),
    (128, "easy"): (6.24, 0.109, 0.024, 17.0, 1.5),
    (128, "intermediate"): (6.88, 0.120, 0.026, 11.0, 12.9),
    (128, "hard"): (7.95, 0.139, 0.031, 7.76, 629),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "resolution,difficulty,count",
    [(32, "easy", 600), (32, "intermediate", 600), (32, "hard", 600), (64, "hard", 60),
     (128, "easy", 60), (128, "intermediate", 60), (128, "hard", 60)],
)  # fmt: skip
def test_statistics_match_the_original(resolution, difficulty, count):
    p = draw.make_params(resolution, difficulty)
    seed = gen.batch_seed(0, p, "per_difficulty", 0)
    results = gen.make_batch(p, seed, count)
    pixels = np.stack([r.image for r in results]).astype(np.float64)
    mean_px, nonzero, bright, distractors, attempts = REFERENCE[(resolution, difficulty)]
    assert pixels.mean() == pytest.approx(mean_px, rel=0.1)
    assert (pixels > 0).mean() == pytest.approx(nonzero, rel=0.1)
    assert (pixels >= 128).mean() == pytest.approx(bright, rel=0.1)
    assert np.mean([r.distractors for r in results]) == pytest.approx(distractors, rel=0.1)
    # attempts are heavy-tailed (the spec's own re-implementation: 303 vs 336, 453 vs 629)
    assert np.mean([r.attempts for r in results]) == pytest.approx(attempts, rel=0.5)
    if count >= 600:
        assert np.mean([r.label for r in results]) == pytest.approx(0.5, abs=0.05)
    for label in (0, 1):  # no brightness leak between the classes
        same = [r.image.mean() for r in results if r.label == label]
        assert np.mean(same) == pytest.approx(pixels.mean(), rel=0.1)
