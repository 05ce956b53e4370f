"""Named sweeps, launcher presets, and multiruns through Hydra's joblib and submitit launchers."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lra.config import CONF_DIR, group_options
from lra.records import read_records
from tasks.files import pid_alive

PAPER_METHODS = {
    "transformer", "local", "sparse", "longformer", "linformer", "reformer",
    "sinkhorn", "synthesizer", "bigbird", "linear", "performer",
}  # fmt: skip


def sweep_jobs(name: str, extra: list[str] | None = None) -> list[list[str]]:
    """The override lists of every job of ``conf/sweep/<name>.yaml`` (as the basic sweeper)."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", [f"+sweep={name}", *(extra or [])], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    axes = [[f"{key}={v}" for v in str(values).split(",")] for key, values in params.items()]
    return [list(job) for job in itertools.product(*axes)]


def test_named_sweeps_exist_and_cover_the_table():
    assert {"lra_table", "one_task", "lr_search"} <= set(group_options("sweep"))
    jobs = sweep_jobs("lra_table")
    assert len(jobs) == len(group_options("task")) * len(PAPER_METHODS) * 3
    models = {o.split("=")[1] for job in jobs for o in job if o.startswith("model=")}
    assert models == PAPER_METHODS
    assert len(sweep_jobs("one_task")) == len(PAPER_METHODS) * 3
    assert len(sweep_jobs("lr_search")) >= 5


@pytest.mark.parametrize("name", ["lra_table", "one_task", "lr_search"])
def test_every_job_of_a_named_sweep_composes(name):
    """Each combination composes into a valid run config (no training).

    Seeds only set ``seed``; to stay fast each other combination is composed with one seed.
    """
    jobs = sweep_jobs(name)
    seen = set()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for job in jobs:
            if "seed=0" not in job:
                continue
            cfg = compose("train", [f"+sweep={name}", *job])
            chosen = dict(o.split("=", 1) for o in job)
            assert cfg.task.name == chosen["task"] and cfg.model.name == chosen["model"]
            assert cfg.seed == int(chosen["seed"])
            if "task.optim.lr" in chosen:
                assert cfg.task.optim.lr == float(chosen["task.optim.lr"])
            seen.add((cfg.task.name, cfg.model.name, cfg.seed, float(cfg.task.optim.lr)))
    seeds = {o for job in jobs for o in job if o.startswith("seed=")}
    assert len(seen) * len(seeds) == len(jobs)  # no two jobs compose to the same run


def test_slurm_gpu_preset_composes_and_is_overridable():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            [
                "hydra/launcher=slurm_gpu",
                "hydra.launcher.partition=gpu",
                "hydra.launcher.gpus_per_node=2",
                "hydra.launcher.timeout_min=30",
            ],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 2
    assert launcher.timeout_min == 30 and launcher.mem_gb > 0 and launcher.cpus_per_task > 0
    assert launcher.max_num_timeout > 0  # time limits requeue


def _multirun(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "lra.run.train",
        "-m",
        *args,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_two_job_sweep_writes_two_records(launcher, tiny_overrides, tmp_path):
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    proc = _multirun([*tiny_overrides, f"hydra/launcher={launcher}", *extra, "seed=0,1"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_records(tmp_path / "results")
    assert sorted(r["seed"] for r in records) == [0, 1]
    assert all(r["status"] == "ok" for r in records)
    for seed in (0, 1):  # each job in its own readable folder (+ the other overrides)
        job_dir = tmp_path / "sweep" / "listops" / "transformer" / f"seed{seed}"
        assert len(list(job_dir.rglob("record.json"))) == 1


@pytest.mark.slow
def test_failing_job_is_recorded_and_does_not_stop_the_sweep(tiny_overrides, tmp_path):
    proc = _multirun(
        [*tiny_overrides, "hydra/launcher=joblib", "task.optim.schedule=rsqrt,bogus"], tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {
        r["config"]["task"]["optim"]["schedule"]: r for r in read_records(tmp_path / "results")
    }
    assert set(records) == {"rsqrt", "bogus"}
    assert records["rsqrt"]["status"] == "ok" and records["rsqrt"]["test_acc"] is not None
    assert records["bogus"]["status"] == "failed" and "bogus" in records["bogus"]["error"]
    # the sweep ends with a table of its jobs, read from their records
    assert "sweep finished: 1 of 2 job(s) ok" in proc.stdout
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ") and "schedule=" in ln]
    assert len(rows) == 2 and "| ok |" in rows[0] and "| failed |" in rows[1]


@pytest.mark.slow
def test_single_failing_run_exits_non_zero(tiny_overrides, tmp_path):
    cmd = [sys.executable, "-m", "lra.run.train", *tiny_overrides, "task.optim.schedule=bogus",
           f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    (record,) = read_records(tmp_path / "results")
    assert record["status"] == "failed"


@pytest.mark.slow
def test_lr_search_ends_with_the_table_selected_on_val(tiny_overrides, tmp_path):
    grid = ["+sweep=lr_search", "task.optim.lr=0.001,0.02", "hydra/launcher=joblib"]
    proc = _multirun([*tiny_overrides, *grid], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_records(tmp_path / "results")
    best = max(records, key=lambda r: r["val_acc"])
    lr = best["config"]["task"]["optim"]["lr"]
    assert "## protocol: smoke, selected on val" in proc.stdout
    # the chosen lr is named beside its test accuracy (with the tiny recipe's other changes)
    cell = re.search(r"\d+\.\d\d \(n=1\) \[[^\]]*\]", proc.stdout).group(0)
    assert cell.startswith(f"{100 * best['test_acc']:.2f} (n=1) [")
    assert f" lr={lr:g}," in cell or f"[lr={lr:g}," in cell or f" lr={lr:g}]" in cell


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_job_killed_by_the_os_costs_only_that_job(launcher, tiny_overrides, tmp_path):
    """SIGKILL one job's process (as the out-of-memory killer would): its record says so, the
    other job still runs, the sweep ends normally."""
    longer = ["task.optim.steps=400", "task.optim.eval_every=100", "task.backbone.dim=64"]
    extra = ["hydra.launcher.n_jobs=1"] if launcher == "joblib" else []
    cmd = [sys.executable, "-m", "lra.run.train", "-m", *tiny_overrides, *longer, *extra,
           f"hydra/launcher={launcher}", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock, deadline = None, time.time() + 240
    while lock is None and time.time() < deadline:  # the first job's process holds its lock
        locks = [p for p in (tmp_path / "sweep").rglob(".lock") if p.read_text().strip()]
        lock = locks[0] if locks else None
        time.sleep(0.05)
    assert lock is not None, "no job started"
    os.kill(int(lock.read_text()), signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    records = {r["seed"]: r for r in read_records(tmp_path / "results")}
    killed = next(r for r in records.values() if r["status"] == "failed")
    assert "SIGKILL" in killed["error"] and "out-of-memory" in killed["error"]
    assert len(records) == 2 and sum(r["status"] == "ok" for r in records.values()) == 1


def test_dry_run_lists_the_jobs_and_their_records(tiny_overrides, tmp_path, capsys):
    """``lra-train -m ... --dry-run``: every job of the product, its run id and what is on
    record, and nothing launched."""
    from lra.config import compose as lra_compose
    from lra.identity import make_run_id
    from lra.records import RECORD_KEYS, write_record
    from lra.run.sweep import dry_run

    cfg = lra_compose("train", [*tiny_overrides, "seed=1"])
    record = dict.fromkeys(RECORD_KEYS) | {"run_id": make_run_id(cfg), "status": "ok"}
    write_record(cfg.results_dir, record | {"schema": 2, "test_acc": 0.25})
    assert dry_run(["-m", *tiny_overrides, "seed=0,1", "model=transformer,linear"]) == 0
    out = capsys.readouterr().out
    assert "dry run: 4 job(s), nothing launched; 1 already have an ok record" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "seed=" in line]
    assert len(rows) == 4
    assert sum("| ok |" in r and "| 25.00 |" in r for r in rows) == 1
    assert sum("| no record |" in r for r in rows) == 3
    assert not list((tmp_path / "results" / "runs").glob("*linear*"))  # nothing ran


def test_dry_run_of_a_bad_override_exits_2(capsys):
    from lra.run.sweep import dry_run

    assert dry_run(["-m", "seed=0,1", "model=transformer,nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_a_job_is_stopped_when_its_sweep_process_ends(monkeypatch):
    """The watched process dies (a zombie, not yet reaped): the running job gets SIGTERM."""
    from lra.run import supervise

    monkeypatch.setattr(supervise, "POLL_S", 0.05)
    sweep = subprocess.Popen(["sleep", "60"])

    def job() -> None:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(128 + signal.SIGTERM))
        time.sleep(30)
        os._exit(0)

    killer = threading.Timer(0.3, sweep.kill)
    killer.start()
    start = time.time()
    try:
        assert supervise.run_isolated(job, watch=sweep.pid) == 128 + signal.SIGTERM
        assert time.time() - start < 10
    finally:
        killer.cancel()
        sweep.kill()
        sweep.wait()
    assert not pid_alive(sweep.pid) and pid_alive(os.getpid())


def test_without_a_watched_process_a_job_runs_to_its_end():
    from lra.run import supervise

    assert supervise.run_isolated(lambda: os._exit(3)) == 3


@pytest.mark.slow
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_killing_a_joblib_sweep_stops_its_jobs(n_jobs, tiny_overrides, tmp_path):
    """SIGKILL the sweep process mid-job: running jobs save last.pt and stop, and the jobs
    already handed to a worker are not started (n_jobs=1: the job's parent is the sweep
    process; 2: loky workers outlive it)."""
    longer = ["task.optim.steps=2000", "task.optim.eval_every=100", "task.backbone.dim=64"]
    cmd = [sys.executable, "-m", "lra.run.train", "-m", *tiny_overrides, *longer,
           "hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}", "seed=0,1,2,3",
           f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def locks() -> dict:  # run folder -> pid of the job process holding its lock
        found = [(p.parent, p.read_text().strip()) for p in (tmp_path / "sweep").rglob(".lock")]
        return {folder: int(pid) for folder, pid in found if pid}

    deadline = time.time() + 240
    while len(locks()) < n_jobs and time.time() < deadline:
        time.sleep(0.05)
    assert len(locks()) == n_jobs, "the jobs did not start"
    time.sleep(1)  # past the first checkpointable steps
    proc.kill()
    proc.wait()
    deadline = time.time() + 60
    while any(pid_alive(pid) for pid in locks().values()) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(pid_alive(pid) for pid in locks().values()), "jobs went on without their sweep"
    time.sleep(5)  # a queued job would have started by now
    assert len(locks()) == n_jobs  # none of the two queued jobs started
    assert all((folder / "last.pt").exists() for folder in locks())  # stopped, resumable
    assert read_records(tmp_path / "results") == []
