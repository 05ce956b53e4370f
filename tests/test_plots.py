"""Plots: files are written for real-format frames, slopes are right, one figure per bench
invocation, the bubble chart averages one common task set, empty inputs write nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from lra.report import plots
from lra.report.plots import loglog_slope, write_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LENGTHS = (256, 512, 1024, 2048)
GROUP = {"task": "text", "mode": "step", "batch": 4, "device": "cpu:test", "dtype": "float32"}


def bench_row(
    method: str, length: int, step_ms: float | None, status: str = "ok", bench_id: str = "run1"
) -> dict:
    """One row in the column layout of ``results/bench/*.csv``."""
    ok = status == "ok"
    return {
        "bench_id": bench_id,
        "method": method,
        **GROUP,
        "length": length,
        "threads": 2,
        "step_ms": step_ms if ok else None,
        "steps_per_s": 1000.0 / step_ms if ok else None,
        "peak_mb": step_ms / 10 if ok else None,
        "mem_kind": "rss_peak_minus_baseline",
        "status": status,
    }


@pytest.fixture
def bench() -> pd.DataFrame:
    rows = [bench_row("local", 256, 999.0)]  # an older measurement, superseded below
    rows += [bench_row("transformer", n, 1e-3 * n**2) for n in LENGTHS[:3]]
    rows.append(bench_row("transformer", LENGTHS[3], None, "oom"))
    rows += [bench_row("local", n, 0.5 * n) for n in LENGTHS]
    rows.append(bench_row("single", 256, 100.0))
    rows.append(bench_row("single", 512, None, "timeout"))
    rows += [bench_row("broken", n, None, "error") for n in LENGTHS[:2]]
    return pd.DataFrame(rows)


def run_row(
    task, model, seed, status, test_acc, curve=(0.3, 0.5, 0.6), protocol="lra", **extra
) -> dict:
    history = [{"step": 10 * (i + 1), "train_loss": 1.0, "val_acc": a} for i, a in enumerate(curve)]
    return {
        "run_id": f"{task}-{model}-s{seed}",
        "task": task,
        "model": model,
        "seed": seed,
        "status": status,
        "test_acc": test_acc,
        "history": history,
        "config": {"protocol": protocol},
    } | extra


@pytest.fixture
def runs() -> pd.DataFrame:
    return pd.DataFrame(
        [
            run_row("listops", "transformer", 0, "ok", 0.40),
            run_row("listops", "transformer", 1, "ok", 0.30),
            run_row("text", "transformer", 0, "ok", 0.60),
            run_row("listops", "local", 0, "ok", 0.20),
            run_row("listops", "local", 1, "diverged", None, curve=(0.1, 0.1)),
            run_row("text", "single", 0, "failed", None, curve=()),
        ]
    )


def capture_figures(monkeypatch) -> dict:
    """Record each figure's legend, labels and artists by file stem, instead of saving it."""
    seen = {}

    def spy(fig, where, stem):
        ax = fig.axes[0]
        legend = ax.get_legend()
        seen[stem] = {
            "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
            "xlabel": ax.get_xlabel(),
            "title": ax.get_title("left"),
            "lines": [line.get_label() for line in ax.get_lines() if len(line.get_xdata())],
            "texts": [t.get_text() for t in ax.texts],
            "offsets": [c.get_offsets().tolist() for c in ax.collections],
        }
        plots.plt.close(fig)
        return [where / f"{stem}.png"]

    monkeypatch.setattr(plots, "_save", spy)
    return seen


def test_every_plot_is_written_as_png_and_pdf(runs, bench, tmp_path):
    paths = write_plots(runs, bench, tmp_path)
    names = {p.name for p in paths}
    slug = "text_step_b4_cpu-test_float32_t2"
    for stem in (
        f"bench_time_{slug}_run1",
        f"bench_memory_{slug}_run1",
        f"lra_bubble_lra_{slug}",
        "learning_lra_listops",
        "learning_lra_text",
    ):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    assert len(paths) == 10
    for path in paths:
        assert path.parent == tmp_path / "plots"
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC if path.suffix == ".png" else data[:5] == b"%PDF-"
        assert len(data) > 5000


def test_slopes_in_legend_and_bad_points_left_out(runs, bench, tmp_path, monkeypatch):
    seen = capture_figures(monkeypatch)
    write_plots(runs, bench, tmp_path)
    legend = seen["bench_time_text_step_b4_cpu-test_float32_t2_run1"]["legend"]
    assert "transformer (slope 2.00, oom from n=2048)" in legend
    assert "local (slope 1.00)" in legend
    assert "single (1 pt, timeout from n=512)" in legend
    assert "broken (0 pt, error from n=256)" in legend


def test_loglog_slope():
    n = [128, 256, 1024, 4096]
    assert loglog_slope(n, [3 * x**2 for x in n]) == pytest.approx(2.0)
    assert loglog_slope(n, [7 * x**1.5 for x in n]) == pytest.approx(1.5)
    assert loglog_slope([512], [1.0]) is None
    assert loglog_slope([512, 512], [1.0, 2.0]) is None
    assert loglog_slope([256, 512, 1024], [0.0, 2.0, 4.0]) == pytest.approx(1.0)


def test_bubble_speed_relative_and_accuracy_over_the_common_tasks(
    runs, bench, tmp_path, monkeypatch
):
    seen = capture_figures(monkeypatch)
    write_plots(runs, bench, tmp_path)
    fig = seen["lra_bubble_lra_text_step_b4_cpu-test_float32_t2"]
    # longest length both transformer and local ran ok: 1024 (transformer is oom at 2048)
    assert "n=1024" in fig["xlabel"] and "relative to transformer" in fig["xlabel"]
    offsets = dict(zip([t.split()[0] for t in fig["texts"]], fig["offsets"], strict=True))
    assert set(offsets) == {"local", "transformer"}  # single: no ok run; broken: no bench point
    # local has only ListOps, so both average ListOps only: transformer mean(0.40, 0.30),
    # not mean(0.35, Text 0.60); local 0.20 (its diverged seed ignored)
    assert offsets["transformer"][0] == pytest.approx([1.0, 35.0])
    speedup = (1e-3 * 1024**2) / (0.5 * 1024)
    assert offsets["local"][0] == pytest.approx([speedup, 20.0])
    assert "mean over ListOps)" in fig["title"] and "invocation run1" in fig["title"]


def test_bubble_skipped_when_no_task_is_common(bench, tmp_path, capsys, monkeypatch):
    capture_figures(monkeypatch)
    runs = pd.DataFrame(
        [run_row("listops", "transformer", 0, "ok", 0.4), run_row("text", "local", 0, "ok", 0.6)]
    )
    names = {p.name for p in write_plots(runs, bench, tmp_path)}
    assert not any(n.startswith("lra_bubble") for n in names)
    err = capsys.readouterr().err
    assert "skipped" in err and "local: text" in err and "transformer: listops" in err


def test_bubble_points_per_row_label(bench, tmp_path, monkeypatch):
    seen = capture_figures(monkeypatch)
    runs = pd.DataFrame(
        [
            run_row("listops", "local", 0, "ok", 0.2, row="local · lr=1e-3"),
            run_row("listops", "local", 0, "ok", 0.3, row="local · lr=3e-3"),
            run_row("listops", "transformer", 0, "ok", 0.4, row="transformer"),
        ]
    )
    write_plots(runs, bench, tmp_path)
    fig = seen["lra_bubble_lra_text_step_b4_cpu-test_float32_t2"]
    labels = [t.split("\n")[0] for t in fig["texts"]]
    assert labels == ["local · lr=1e-3", "local · lr=3e-3", "transformer"]
    speedup = (1e-3 * 1024**2) / (0.5 * 1024)
    flat = [x for o in fig["offsets"] for x in o[0]]
    assert flat == pytest.approx([speedup, 20.0, speedup, 30.0, 1.0, 40.0])


def two_invocations() -> pd.DataFrame:
    """run1: transformer and local; run2 (later, 2x slower machine): transformer only."""
    rows = [bench_row("transformer", n, 1e-3 * n**2, bench_id="run1") for n in LENGTHS[:2]]
    rows += [bench_row("local", n, 0.5 * n, bench_id="run1") for n in LENGTHS[:2]]
    rows += [bench_row("transformer", n, 2e-3 * n**2, bench_id="run2") for n in LENGTHS[:2]]
    frame = pd.DataFrame(rows)
    frame["created"] = [f"2026-01-01T00:0{i}" for i in range(4)] + ["2026-01-02T00:00"] * 2
    return frame


def test_one_scaling_figure_per_invocation(runs, tmp_path, monkeypatch):
    seen = capture_figures(monkeypatch)
    write_plots(runs, two_invocations(), tmp_path)
    slug = "text_step_b4_cpu-test_float32_t2"
    time_figs = sorted(stem for stem in seen if stem.startswith("bench_time_"))
    assert time_figs == [f"bench_time_{slug}_run1", f"bench_time_{slug}_run2"]
    assert seen[f"bench_time_{slug}_run1"]["lines"] == [
        "transformer (slope 2.00)",
        "local (slope 1.00)",
    ]
    assert seen[f"bench_time_{slug}_run2"]["lines"] == ["transformer (slope 2.00)"]
    assert "invocation run2 (2026-01-02 00:00 UTC)" in seen[f"bench_time_{slug}_run2"]["title"]
    # the bubble chart takes speed and memory from one invocation: run1 covers both models
    bubble = seen[f"lra_bubble_lra_{slug}"]
    assert "invocation run1" in bubble["title"]
    offsets = dict(zip([t.split()[0] for t in bubble["texts"]], bubble["offsets"], strict=True))
    assert offsets["local"][0][0] == pytest.approx((1e-3 * 512**2) / (0.5 * 512))  # not 2x


def test_family_colours_and_distinct_markers():
    styles = plots._family_styles(["transformer", "transformer_naive", "local", "sparse", "new"])
    assert styles["transformer"]["color"] == styles["transformer_naive"]["color"]
    assert styles["transformer"]["marker"] != styles["transformer_naive"]["marker"]
    assert styles["local"]["color"] != styles["transformer"]["color"]
    assert plots.family_of("new") == "other"


def test_bubble_skipped_without_overlap(bench, tmp_path, monkeypatch):
    capture_figures(monkeypatch)
    runs = pd.DataFrame([run_row("text", "performer", 0, "ok", 0.6)])
    names = {p.name for p in write_plots(runs, bench, tmp_path)}
    assert not any(n.startswith("lra_bubble") for n in names)
    assert "learning_lra_text.png" in names


def test_empty_inputs_write_nothing(tmp_path):
    assert write_plots(pd.DataFrame(), pd.DataFrame(), tmp_path) == []
    assert not (tmp_path / "plots").exists()
    no_history = pd.DataFrame([run_row("text", "local", 0, "failed", None, curve=())])
    assert (
        write_plots(no_history, pd.DataFrame(columns=["method", "length", "status"]), tmp_path)
        == []
    )


def test_learning_curves_panel_per_family_seeds_around_their_mean():
    """Two seeds of one method become two thin lines and one thick mean line; a method of
    another family is in another panel; a failed run is dashed and not in the mean."""
    runs = [
        run_row("listops", "performer", 0, "ok", 0.5, curve=(0.2, 0.4, 0.6)),
        run_row("listops", "performer", 1, "ok", 0.5, curve=(0.4, 0.6, 0.8)),
        run_row("listops", "linear", 0, "failed", None, curve=(0.1, 0.1)),
        run_row("listops", "local", 0, "ok", 0.3, curve=(0.3, 0.3, 0.3)),
    ]
    by_label = {}
    for run in runs:
        pts = {h["step"]: 100 * h["val_acc"] for h in run["history"]}
        by_label.setdefault(run["model"], []).append((pd.Series(run), pts))
    fig = plots._learning_figure(by_label)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert sorted(ax.get_title() for ax in visible) == ["fixed / local patterns", "kernels"]
    kernels = next(ax for ax in visible if ax.get_title() == "kernels")
    means = [ln for ln in kernels.get_lines() if ln.get_linewidth() == 2.0]
    assert [ln.get_label() for ln in means] == ["performer (n=2)"]
    assert list(means[0].get_ydata()) == pytest.approx([30.0, 50.0, 70.0])
    dashed = [
        ln for ln in kernels.get_lines() if ln.get_linestyle() == "--" and len(ln.get_xdata())
    ]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == pytest.approx([10.0, 10.0])
    # the performer and linear lines differ in colour within the panel
    colors = {ln.get_label(): ln.get_color() for ln in kernels.get_lines()}
    assert colors["performer (n=2)"] != colors["linear (no ok run)"]
    plots.plt.close(fig)


def test_bubble_labels_of_coinciding_and_close_points_do_not_overlap():
    """Two methods at the same point (transformer and transformer_naive) and a third close by:
    every label stays readable, each tied to its point."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    xs, ys = [1.0, 1.0, 1.1, 8.0], [37.0, 37.0, 37.05, 39.0]
    ax.scatter(xs, ys)
    texts = ["transformer\n3952 MB", "transformer_naive\n3903 MB", "sparse\n1356 MB", "local"]
    plots._place_labels(ax, xs, ys, texts)
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    notes = list(ax.texts)
    fig.canvas.draw()
    boxes = [Text.get_window_extent(t, renderer) for t in notes]  # text only, no leader line
    assert len(boxes) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert [n.xy for n in notes if n.get_text() == "local"] == [(8.0, 39.0)]  # not moved
    assert notes[[n.get_text() for n in notes].index("local")].get_position() == (0, 0)
    plt.close(fig)
