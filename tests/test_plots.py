"""Plots: files are written for real-format frames, slopes are right, empty inputs write nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from lra.report import plots
from lra.report.plots import loglog_slope, write_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LENGTHS = (256, 512, 1024, 2048)
GROUP = {"task": "text", "mode": "step", "batch": 4, "device": "cpu:test", "dtype": "float32"}


def bench_row(method: str, length: int, step_ms: float | None, status: str = "ok") -> dict:
    """One row in the column layout of ``results/bench/*.csv``."""
    ok = status == "ok"
    return {
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


def run_row(task, model, seed, status, test_acc, curve=(0.3, 0.5, 0.6), protocol="lra") -> dict:
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
    }


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
    """Record each saved figure's legend labels and axis labels by file stem."""
    seen = {}
    save = plots._save

    def spy(fig, where, stem):
        ax = fig.axes[0]
        legend = ax.get_legend()
        seen[stem] = {
            "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
            "xlabel": ax.get_xlabel(),
            "texts": [t.get_text() for t in ax.texts],
            "offsets": [c.get_offsets().tolist() for c in ax.collections],
        }
        return save(fig, where, stem)

    monkeypatch.setattr(plots, "_save", spy)
    return seen


def test_every_plot_is_written_as_png_and_pdf(runs, bench, tmp_path):
    paths = write_plots(runs, bench, tmp_path)
    names = {p.name for p in paths}
    slug = "text_step_b4_cpu-test_float32_t2"
    for stem in (
        f"bench_time_{slug}",
        f"bench_memory_{slug}",
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
    legend = seen["bench_time_text_step_b4_cpu-test_float32_t2"]["legend"]
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


def test_bubble_speed_relative_and_accuracy_averaged_over_tasks(runs, bench, tmp_path, monkeypatch):
    seen = capture_figures(monkeypatch)
    write_plots(runs, bench, tmp_path)
    fig = seen["lra_bubble_lra_text_step_b4_cpu-test_float32_t2"]
    # longest length both transformer and local ran ok: 1024 (transformer is oom at 2048)
    assert "n=1024" in fig["xlabel"] and "relative to transformer" in fig["xlabel"]
    offsets = dict(zip([t.split()[0] for t in fig["texts"]], fig["offsets"], strict=True))
    assert set(offsets) == {"local", "transformer"}  # single: no ok run; broken: no bench point
    # transformer: mean(mean(0.40, 0.30), 0.60) = 0.475; local: 0.20 (its diverged seed ignored)
    assert offsets["transformer"][0] == pytest.approx([1.0, 47.5])
    speedup = (1e-3 * 1024**2) / (0.5 * 1024)
    assert offsets["local"][0] == pytest.approx([speedup, 20.0])
    assert any("2 tasks" in t for t in fig["texts"])


def test_bubble_skipped_without_overlap(bench, tmp_path):
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
