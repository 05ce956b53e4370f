"""Seeded re-implementation of the LRA Pathfinder generator (docs/GENERATORS.md §2).

One image (§2.9): draw the label, a margin, then build the two target snakes (§2.7, repeated
until an attempt succeeds), add distractor snakes (§2.8), put one marker on an end of target
snake ``o`` and the other on the far end of the same snake (label 1) or of the other one
(label 0), and save ``max(paddles, markers)`` min-max normalised to an 8-bit PNG. Snakes are
chains of short paddles (§2.5 seeding, §2.6 extension) that avoid a soft occupancy map ``M``.

Distribution-preserving speed-ups (§2.12): stamps, seed kernels, candidate sets and
continuity weights are cached per angle (``tasks.pathfinder_draw.Geometry``); the first target
seed's availability depends only on its angle (its banned map is fixed) and is cached; the
disk(m) dilation of §2.6 is evaluated only at the <= 49 candidate pixels; paddle images are
rendered only once an attempt has succeeded; ``M`` is copied only after both seeds succeed.

Determinism independent of the worker count: images are made in batches; batch ``k`` uses
its own ``random.Random`` seeded by a stable hash of ``(gen_seed, resolution, difficulty,
distractor rule, k)``, so a batch's files are the same whichever process makes them.

Files (§2.10): ``<out>/<folder>/imgs/<k>/sample_<i>.png`` (8-bit 'L') and
``<out>/<folder>/metadata/<k>.npy``: text despite the suffix, one line of 11 fields per image.
A batch is written into ``<folder>/.partial/`` and moved into place when complete; its
metadata file is written last and marks it done, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from tasks import files
from tasks import pathfinder_draw as draw
from tasks.pathfinder_draw import Geometry, Params, flip, translate
from tasks.seeding import stable_seed

GENERATOR = "pathfinder-gen-v1"  # bump when the output of a seed changes
BATCH_SIZE = 100  # images per batch (one imgs/<k> folder, one metadata file, one seed)
MAX_ATTEMPTS = 1_000_000  # safety net only: the original retries without a cap
OVERLAP_LIMIT = 1.8  # a new paddle is refused where M + its mask reaches this (§2.6 step 6)
FREE_LEVEL = 0.3  # a seed tail needs D <= this (§2.5 step 3)
SEED_TRIALS = 3
PIVOT_TRIALS = 3

Paddle = tuple[int, int, int]  # (orientation id, tail row, tail column)


@dataclass
class Snake:
    """A growing snake: its last pivot and orientation, its paddles and its two ends."""

    pivot: tuple[int, int]
    oid: int
    paddles: list[Paddle]
    origin: tuple[int, int]
    tip: tuple[int, int] = (-1, -1)


@dataclass
class ImageResult:
    """One generated image and how it was made.

    ``image`` [H, W] uint8; ``ends`` the (origin, terminal) tips of target snakes 1 and 2;
    ``markers`` the two marker centres (origin of snake ``o``, terminal of snake ``t``).
    """

    image: np.ndarray
    label: int
    margin: int
    attempts: int
    distractors: int
    ends: list[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=list)
    markers: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))


def _window(cy: int, cx: int, r: int, n: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Canvas and stamp slices of a (2r+1)^2 stamp centred on (cy, cx), clipped to n x n."""
    y0, x0 = cy - r, cx - r
    if y0 >= 0 and x0 >= 0 and cy + r < n and cx + r < n:
        return (slice(y0, cy + r + 1), slice(x0, cx + r + 1)), (slice(None), slice(None))
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = max(ys, min(n, cy + r + 1)), max(xs, min(n, cx + r + 1))
    return (slice(ys, ye), slice(xs, xe)), (slice(ys - y0, ye - y0), slice(xs - x0, xe - x0))


class _Canvas:
    """Occupancy ``M`` [n, n] of one image inside a zero frame of width m (``padded``), so the
    disk(m) taps of a candidate pixel never leave the array; values 0..1, the frame of width
    ``padding`` starts at 1 (§2.7 step 2)."""

    def __init__(self, g: Geometry):
        self.g, self.n, self.pad = g, g.size, g.m
        self.padded = np.zeros((g.padded_width, g.padded_width))
        self.M = self.padded[self.pad : self.pad + self.n, self.pad : self.pad + self.n]
        self.M[:] = g.frame
        self.flat = self.padded.ravel()

    def copy(self) -> _Canvas:
        other = object.__new__(_Canvas)
        other.__dict__.update(self.__dict__)
        other.padded = self.padded.copy()
        other.M = other.padded[self.pad : self.pad + self.n, self.pad : self.pad + self.n]
        other.flat = other.padded.ravel()
        return other

    def fits(self, paddle: Paddle) -> bool:
        """max(M + S) < 1.8 over the canvas (§2.6 step 6)."""
        cw, sw = _window(paddle[1], paddle[2], self.g.R, self.n)
        region = self.M[cw]
        if region.size == 0:
            return True
        return float((region + self.g.mask[paddle[0]][sw]).max()) < OVERLAP_LIMIT

    def commit(self, paddle: Paddle) -> None:
        """M <- max(M, S) for the paddle's mask."""
        cw, sw = _window(paddle[1], paddle[2], self.g.R, self.n)
        np.maximum(self.M[cw], self.g.mask[paddle[0]][sw], out=self.M[cw])


def _inside(pt: tuple[int, int], n: int) -> bool:
    return 0 <= pt[0] < n and 0 <= pt[1] < n


def _seed_end(g: Geometry, oid: int, tail: tuple[int, int]) -> tuple[int, int] | None:
    """Pivot of a seed paddle (one margin behind the tail), or None if head or pivot is out."""
    p, theta = g.p, float(g.angle[oid])
    head = translate(tail, theta, p.paddle_length)
    pivot = translate(head, flip(theta), p.paddle_length + g.m)
    return pivot if _inside(head, g.size) and _inside(pivot, g.size) else None


def _available(canvas: _Canvas, kernel: np.ndarray) -> np.ndarray:
    """Flat indices q where no in-canvas tap q + o of ``kernel`` is blocked (M or frame > 0.3)."""
    blocked = canvas.M > FREE_LEVEL
    blocked[0, :] = blocked[-1, :] = blocked[:, 0] = blocked[:, -1] = True  # 1-pixel outer frame
    return np.flatnonzero(~draw.any_tap(blocked, kernel))


def _seed(rng: random.Random, canvas: _Canvas, first_target: bool) -> Snake | None:
    """Seed a snake (§2.5): the first target (fixed banned map) or a distractor (current M)."""
    g = canvas.g
    if not first_target and np.count_nonzero(canvas.M <= FREE_LEVEL) < 0.01 * canvas.M.size:
        return None
    for _ in range(SEED_TRIALS):
        oid = rng.randrange(360)
        if not g.usable(oid):
            return None  # some pixel has no kernel tap inside the canvas: fails at once
        avail = g.seed1_available(oid) if first_target else _available(canvas, g.kernels[oid])
        if len(avail) == 0:
            return None
        tail = divmod(int(avail[rng.randrange(len(avail))]), g.size)
        pivot = _seed_end(g, oid, tail)
        if pivot is not None:
            return Snake(pivot, oid, [(oid, *tail)], tail)
    return None


def _seed_second(rng: random.Random, g: Geometry, tail1: tuple[int, int]) -> Snake | None:
    """Seed target 2 at distance seed_distance from tail 1, no availability test (§2.7 step 4)."""
    sd = g.p.seed_distance
    for _ in range(SEED_TRIALS):
        oid = rng.randrange(360)
        alpha = math.radians(rng.randrange(360))
        tail = (round(tail1[0] + sd * math.sin(alpha)), round(tail1[1] + sd * math.cos(alpha)))
        pivot = _seed_end(g, oid, tail)
        if pivot is not None:
            return Snake(pivot, oid, [(oid, *tail)], tail)
    return None


def _extend(rng: random.Random, canvas: _Canvas, snake: Snake) -> bool:
    """Add one paddle to ``snake`` (§2.6); False on a dead end or three refused draws."""
    g, n = canvas.g, canvas.n
    qy = math.ceil(snake.pivot[0] + g.step_y[snake.oid])
    qx = math.ceil(snake.pivot[1] + g.step_x[snake.oid])
    r = g.p.paddle_length + g.m
    flat = (qy + canvas.pad) * g.padded_width + (qx + canvas.pad) + g.cand_flat
    weights = g.weights[snake.oid]
    if r <= qy < n - r and r <= qx < n - r:
        index = None
    else:  # drop candidates outside the canvas
        cy, cx = qy + g.offsets[:, 0], qx + g.offsets[:, 1]
        index = np.flatnonzero((cy >= 0) & (cy < n) & (cx >= 0) & (cx < n))
        flat, weights = flat[index], weights[index]
    occupied = canvas.flat[flat[:, None] + g.disk_flat[None, :]].max(axis=1)
    score = weights * (1.0 - occupied)
    cum = np.cumsum(score)
    total = float(cum[-1]) if len(cum) else 0.0
    if total < 1e-4:
        return False
    cum /= total
    for _ in range(PIVOT_TRIALS):
        k = int(np.searchsorted(cum, rng.random(), side="right"))
        if k == len(cum):  # u above a rounded-down total: the last candidate with weight
            k = int(np.flatnonzero(score)[-1])
        j = k if index is None else int(index[k])
        head = (qy + int(g.offsets[j, 0]), qx + int(g.offsets[j, 1]))
        paddle = (360 + j, *head)
        if canvas.fits(paddle):
            canvas.commit(snake.paddles[-1])  # the previous paddle enters M only now
            snake.pivot, snake.oid, snake.tip = (qy, qx), 360 + j, head
            snake.paddles.append(paddle)
            return True
    return False


def _targets(rng: random.Random, base: _Canvas) -> tuple[_Canvas, list[Snake]] | None:
    """One attempt at the two target snakes (§2.7); None if any step fails."""
    g = base.g
    first = _seed(rng, base, first_target=True)
    if first is None:
        return None
    second = _seed_second(rng, g, first.origin)
    if second is None:
        return None
    canvas = base.copy()
    snakes = [first, second]
    for _ in range(g.p.contour_length - 1):
        for snake in snakes:
            if not _extend(rng, canvas, snake):
                return None
    canvas.commit(second.paddles[-1])  # snake 1's last paddle never enters M (kept quirk)
    return canvas, snakes


def _distractors(rng: random.Random, canvas: _Canvas) -> tuple[_Canvas, list[Snake]]:
    """Add up to ``num_distractor_snakes`` snakes, 5 tries each (§2.8)."""
    p = canvas.g.p
    placed: list[Snake] = []
    for _ in range(p.num_distractor_snakes):
        for _ in range(p.max_distractor_retrial + 1):
            snake = _seed(rng, canvas, first_target=False)
            if snake is None:
                continue
            work = canvas.copy()
            if all(_extend(rng, work, snake) for _ in range(p.distractor_length - 1)):
                work.commit(snake.paddles[-1])
                canvas = work
                placed.append(snake)
                break
    return canvas, placed


def _render(g: Geometry, snakes: list[Snake], contrast: float, out: np.ndarray) -> None:
    """out <- max(out, contrast x image stamp) for every paddle of ``snakes``."""
    for snake in snakes:
        for oid, cy, cx in snake.paddles:
            cw, sw = _window(cy, cx, g.R, g.size)
            np.maximum(out[cw], g.image[oid][sw] * contrast, out=out[cw])


def check_markers(label: int, markers, ends) -> None:
    """Assert §5 (5): label 1 <=> the markers sit on the two ends of one target snake.

    ``markers`` = (first, second) centres; ``ends`` = [(origin, terminal)] per target snake.
    Some assignment must put the first marker on an origin of snake a and the second on the
    terminal of snake b with (a == b) == label.
    """
    first, second = markers
    ok = any(
        ends[a][0] == first and ends[b][1] == second and (a == b) == bool(label)
        for a in range(len(ends))
        for b in range(len(ends))
    )
    if not ok:
        raise AssertionError(f"marker rule broken: label {label}, markers {markers}, ends {ends}")


def make_image(rng: random.Random, p: Params) -> ImageResult:
    """Generate one image (§2.9) with ``rng``."""
    label = rng.randrange(2)
    margin = p.margins[rng.randrange(len(p.margins))]
    g = draw.geometry(p, margin)
    base = _Canvas(g)
    attempts, found = 0, None
    while found is None:
        attempts += 1
        if attempts > MAX_ATTEMPTS:
            raise RuntimeError(f"no target pair after {MAX_ATTEMPTS} attempts ({p})")
        found = _targets(rng, base)
    canvas, targets = found
    _, distractors = _distractors(rng, canvas)
    image = np.zeros((g.size, g.size))
    _render(g, targets, p.target_contrast, image)
    _render(g, distractors, p.snake_contrast, image)
    o = rng.randrange(2)
    t = o if label == 1 else 1 - o
    ends = [(s.origin, s.tip) for s in targets]
    markers = (ends[o][0], ends[t][1])
    check_markers(label, markers, ends)
    for centre in markers:
        np.maximum(image, draw.marker_image(g.size, centre, p), out=image)
    return ImageResult(draw.to_u8(image), label, margin, attempts, len(distractors), ends, markers)


# --------------------------------------------------------------------------- batches and files
def batch_seed(gen_seed: int, p: Params, distractor_rule: str, batch_id: int) -> int:
    """Stable 64-bit seed of one batch (independent of process, platform and hash seed)."""
    return stable_seed(
        "lra-pathfinder", gen_seed, p.resolution, p.contour_length, distractor_rule, batch_id
    )


def make_batch(p: Params, seed: int, count: int) -> list[ImageResult]:
    """``count`` images from one batch seed (what ``write_batch`` saves)."""
    rng = random.Random(seed)
    return [make_image(rng, p) for _ in range(count)]


def metadata_line(batch_id: int, index: int, label: int, margin: int, p: Params) -> str:
    """The 11 space-separated fields of one image (§2.10), numbers printed with ``str()``."""
    fields = (
        f"imgs/{batch_id}", f"sample_{index}.png", index, label, p.continuity,
        p.contour_length, p.distractor_length, p.paddle_length, p.paddle_thickness, margin,
        1,  # len(paddle_contrast_list)
    )  # fmt: skip
    return " ".join(map(str, fields))


def batch_count(num_images: int, batch_id: int, batch_size: int = BATCH_SIZE) -> int:
    return max(0, min(batch_size, num_images - batch_id * batch_size))


def is_batch_done(folder: Path, batch_id: int, count: int) -> bool:
    """A batch is done when its metadata file exists with ``count`` lines."""
    meta = folder / "metadata" / f"{batch_id}.npy"
    if not meta.is_file():
        return False
    return meta.read_bytes().count(b"\n") == count


def write_batch(
    folder: str | Path, p: Params, batch_id: int, count: int, seed: int
) -> dict[str, Any]:
    """Make and save one batch into ``folder`` (= ``<out>/<difficulty folder>``); return stats.

    Written into ``folder/.partial/<batch>.<pid>/`` first; the images folder is moved into
    ``imgs/<batch>`` and then the metadata file is written (atomically): it marks completion.
    """
    folder = Path(folder)
    start = time.perf_counter()
    tmp = folder / ".partial" / f"{batch_id}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        return _write_batch(folder, tmp, p, batch_id, count, seed, start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # also on failure (disk full, interrupt)


def _write_batch(
    folder: Path, tmp: Path, p: Params, batch_id: int, count: int, seed: int, start: float
) -> dict[str, Any]:
    (tmp / "imgs").mkdir(parents=True)
    rng = random.Random(seed)
    lines, attempts, distractors, labels = [], 0, 0, 0
    for i in range(count):
        result = make_image(rng, p)
        Image.fromarray(result.image).save(tmp / "imgs" / f"sample_{i}.png")
        lines.append(metadata_line(batch_id, i, result.label, result.margin, p) + "\n")
        attempts += result.attempts
        distractors += result.distractors
        labels += result.label
    stats = {
        "batch": batch_id, "images": count, "attempts": attempts, "distractors": distractors,
        "label_1": labels, "seconds": round(time.perf_counter() - start, 3), "seed": seed,
    }  # fmt: skip
    (tmp / "stats.json").write_text(json.dumps(stats))
    for sub in ("imgs", "metadata", "stats"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    final_imgs = folder / "imgs" / str(batch_id)
    shutil.rmtree(final_imgs, ignore_errors=True)  # leftovers of a run killed mid-commit
    os.replace(tmp / "imgs", final_imgs)
    os.replace(tmp / "stats.json", folder / "stats" / f"{batch_id}.json")
    meta_tmp = tmp / "metadata.txt"
    meta_tmp.write_text("".join(lines))
    os.replace(meta_tmp, folder / "metadata" / f"{batch_id}.npy")
    return stats


def _clean_partials(folder: Path) -> None:
    """Remove temporary batch folders of processes that are no longer running."""
    partial = folder / ".partial"
    if not partial.is_dir():
        return
    for entry in partial.iterdir():
        pid = entry.name.rpartition(".")[2]
        if pid.isdigit() and int(pid) != os.getpid() and files.pid_alive(int(pid)):
            continue  # another generator may be writing it
        shutil.rmtree(entry, ignore_errors=True)
    if not any(partial.iterdir()):
        partial.rmdir()


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def generate(
    out_dir: str | Path,
    resolution: int = 32,
    difficulty: str = "hard",
    num_images: int = 200_000,
    gen_seed: int = 0,
    distractor_rule: str = "per_difficulty",
    workers: int | None = None,
    progress: bool = False,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Generate ``pathfinder<resolution>/<difficulty>`` in the release layout under ``out_dir``.

    Finished batches are skipped (resume); returns the summary also written to
    ``<out_dir>/<folder>/generation.json`` (images, attempts and distractors per image, label-1
    fraction, CPU seconds per image). The files depend on the arguments except ``workers`` and
    ``progress``.
    """
    if num_images < 1 or batch_size < 1:
        raise ValueError(f"num_images and batch_size must be >= 1, got {num_images}, {batch_size}")
    p = draw.make_params(resolution, difficulty, distractor_rule)
    folder = Path(out_dir) / draw.DIFFICULTIES[draw.difficulty_name(difficulty)][0]
    folder.mkdir(parents=True, exist_ok=True)
    _clean_partials(folder)
    files.sweep(folder)  # generation.json.tmp<pid> of killed runs
    num_batches = math.ceil(num_images / batch_size)
    jobs = []
    for k in range(num_batches):
        count = batch_count(num_images, k, batch_size)
        if not is_batch_done(folder, k, count):
            jobs.append((folder, p, k, count, batch_seed(gen_seed, p, distractor_rule, k)))
    workers = default_workers() if workers is None else max(1, int(workers))
    desc = f"pathfinder{resolution} {difficulty}"
    bar = tqdm(total=num_images, unit="img", desc=desc, disable=not progress)
    bar.update(num_images - sum(job[3] for job in jobs))
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            bar.update(write_batch(*job)["images"])
    else:
        pool = ProcessPoolExecutor(
            min(workers, len(jobs)), initializer=files.die_with_parent, initargs=(os.getpid(),)
        )
        with pool:
            for future in as_completed([pool.submit(write_batch, *job) for job in jobs]):
                bar.update(future.result()["images"])
    bar.close()
    _clean_partials(folder)
    summary = summarize(folder, num_batches)
    summary.update(
        generator=GENERATOR, resolution=resolution, difficulty=draw.difficulty_name(difficulty),
        num_images=num_images, gen_seed=gen_seed, distractor_rule=distractor_rule,
        batch_size=batch_size, num_distractor_snakes=p.num_distractor_snakes,
    )  # fmt: skip
    files.write_text_atomic(folder / "generation.json", json.dumps(summary, indent=2))
    return summary


def summarize(folder: Path, num_batches: int) -> dict[str, Any]:
    """Totals over the per-batch stats files of ``folder``."""
    totals = {"images": 0, "attempts": 0, "distractors": 0, "label_1": 0, "seconds": 0.0}
    for k in range(num_batches):
        path = folder / "stats" / f"{k}.json"
        if path.is_file():
            stats = json.loads(path.read_text())
            for key in totals:
                totals[key] += stats[key]
    n = max(totals["images"], 1)
    return {
        "images": totals["images"],
        "attempts_per_image": round(totals["attempts"] / n, 2),
        "distractors_per_image": round(totals["distractors"] / n, 3),
        "label_1_fraction": round(totals["label_1"] / n, 4),
        "cpu_seconds_per_image": round(totals["seconds"] / n, 5),
    }
