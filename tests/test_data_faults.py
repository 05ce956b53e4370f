"""Data-side faults as real faults: corrupt caches, disk full, kill -9, leftovers, concurrent
starts and bad input. Each asserts that nothing is lost or left behind and that the message
names the cause (file, line) and the fix; ``lra-data`` answers with its documented exit code."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from lra.config import build_task
from lra.run import prepare as data_cli
from tasks import cache, files
from tasks.errors import CacheCorruptError, DataError
from tasks.pathfinder import read_metadata, read_metadata_file

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "task.num_train=60",
    "task.num_val=10",
    "task.num_test=10",
    "task.min_length=10",
    "task.max_length=100",
    "task.max_depth=4",
    "workers=1",
    "trainer.progress=false",
]
TINY_KW = dict(num_train=60, num_val=10, num_test=10, min_length=10, max_length=100, max_depth=4)


def _cli(tmp_path, *extra, capsys=None):
    code = data_cli.main(["task=listops", f"data_dir={tmp_path}", *TINY, *extra])
    out = capsys.readouterr() if capsys else None
    return code, out


def _task(data_dir, **kw):
    task = build_task("listops", data_dir=data_dir, **{**TINY_KW, **kw})
    task.progress = False
    return task


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name or p.name == ".partial"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------- cache integrity
@pytest.fixture
def prepared(tmp_path):
    task = _task(tmp_path)
    task.prepare()
    return task


def test_cache_records_sizes_shapes_and_checksums(prepared):
    meta = cache.read_meta(prepared.cache_dir)
    assert meta["integrity"] == "crc32-v1"
    record = meta["arrays"]["val/input_ids.npy"]
    path = prepared.cache_dir / "val" / "input_ids.npy"
    assert record["shape"] == [10, int(prepared.cfg.seq_len)] and record["dtype"] == "|u1"
    assert record["bytes"] == path.stat().st_size and record["crc32"] == cache.file_crc32(path)
    assert cache.verify_cache(prepared.cache_dir, full=True) == "verified"


@pytest.mark.parametrize("fault", ["truncate", "delete"])
def test_truncated_or_missing_array_is_named_before_training(prepared, tmp_path, fault, capsys):
    path = prepared.cache_dir / "val" / "input_ids.npy"
    if fault == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    else:
        path.unlink()
    # opening the split, and prepare() (what lra-train calls first), name the file and the fix
    for call in (lambda: prepared.split("val"), prepared.prepare):
        with pytest.raises(CacheCorruptError) as err:
            call()
        assert str(path) in str(err.value) and "lra-data task=listops" in str(err.value)
    prepared.split("train")  # the intact split still opens
    # lra-data rebuilds it, saying why; nothing is left behind
    code, out = _cli(tmp_path, capsys=capsys)
    assert code == 0
    assert "corrupt cache, rebuilding" in out.err and str(path) in out.err
    assert "cache: rebuilt" in out.out
    assert len(prepared.split("val")) == 10 and not _leftovers(tmp_path)


def test_flipped_byte_is_caught_by_the_full_check(prepared, tmp_path, capsys):
    path = prepared.cache_dir / "train" / "input_ids.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert cache.verify_cache(prepared.cache_dir) == "verified"  # same size: quick check passes
    with pytest.raises(CacheCorruptError, match="checksum"):
        cache.verify_cache(prepared.cache_dir, full=True)
    code, out = _cli(tmp_path, capsys=capsys)
    assert code == 0 and "checksum" in out.err and "cache: rebuilt" in out.out
    assert cache.verify_cache(prepared.cache_dir, full=True) == "verified"


def test_cache_written_before_integrity_records_opens_unverified(prepared, tmp_path, capsys):
    spec = prepared.cache_dir / "spec.json"
    meta = json.loads(spec.read_text())
    del meta["integrity"], meta["arrays"]
    spec.write_text(json.dumps(meta))
    prepared.prepare()
    assert prepared.cache_status == "unverified" and len(prepared.split("test")) == 10
    code, out = _cli(tmp_path, capsys=capsys)
    assert code == 0 and "cache: unverified" in out.out
    # a truncated file of such a cache is still reported by name
    path = prepared.cache_dir / "test" / "input_ids.npy"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CacheCorruptError, match=str(path)):
        prepared.split("test")


def test_unreadable_spec_json_is_named(prepared):
    (prepared.cache_dir / "spec.json").write_bytes(b"{\xff")
    with pytest.raises(CacheCorruptError, match="spec.json"):
        prepared.split("train")


# --------------------------------------------------------------------------- disk full
def test_disk_full_mid_write_removes_the_temporary_files(tmp_path, monkeypatch, capsys):
    """ENOSPC from the array writer after half a file: exit 4, no temp file, retry succeeds."""
    real_save = cache.save_array

    def full_disk(path, value):
        if "input_ids" in str(path):
            Path(path).write_bytes(b"\0" * 1000)  # what a full disk leaves: a partial file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_save(path, value)

    monkeypatch.setattr(cache, "save_array", full_disk)
    code, out = _cli(tmp_path, capsys=capsys)
    assert code == 4
    assert "No space left on device" in out.err and "input_ids.npy" in out.err
    assert "Traceback" not in out.err and len(out.err.strip().splitlines()) == 1
    assert not _leftovers(tmp_path) and not list((tmp_path / "cache").iterdir())
    monkeypatch.setattr(cache, "save_array", real_save)
    assert _cli(tmp_path)[0] == 0


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


def test_disk_full_on_a_small_tmpfs(tmp_path, capsys):
    """A real full disk (a 192 KiB tmpfs): the leftover does not keep it full for the retry."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "192k"):
        pytest.skip("cannot mount a tmpfs here (needs root); the monkeypatched test covers it")
    try:
        code, out = _cli(disk, "task.seq_len=2000", capsys=capsys)  # 160 KB of token ids
        assert code == 4 and "No space left on device" in out.err and ".npy" in out.err
        assert not _leftovers(disk)
        code, out = _cli(disk, "task.seq_len=200", capsys=capsys)  # fits once the leftover is gone
        assert code == 0, out.err
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# --------------------------------------------------------------------------- leftovers and kill -9
def test_leftovers_of_dead_writers_are_swept_live_ones_kept(tmp_path, capsys):
    dead, live = _dead_pid(), os.getppid()
    task = _task(tmp_path)
    gen_dir, cache_root = task.tsv_dir(), tmp_path / "cache"
    gen_dir.mkdir(parents=True)
    cache_root.mkdir()
    stale = [
        gen_dir / f"basic_train.tsv.tmp{dead}",
        gen_dir / f"generation.json.tmp{dead}",
        cache_root / f"{task.cache_dir.name}.tmp{dead}",
    ]
    for path in stale[:2]:
        path.write_text("partial")
    (stale[2] / "train").mkdir(parents=True)
    kept = gen_dir / f"basic_val.tsv.tmp{live}"
    kept.write_text("another writer's")
    assert _cli(tmp_path, capsys=capsys)[0] == 0
    assert not any(p.exists() for p in stale) and kept.exists()
    assert files.sweep(gen_dir) == []  # only dead writers' files go


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_takes_the_generator_workers_with_it(tmp_path):
    """SIGKILL of lra-data while 2 generator workers run: they end too; a re-run completes."""
    argv = ["task=listops", f"data_dir={tmp_path}", "workers=2", "trainer.progress=false"]
    argv += ["task.num_train=400000", "task.num_val=10", "task.num_test=10"]
    code = "import sys; from lra.run.prepare import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], cwd=REPO)
    deadline = time.time() + 60
    while time.time() < deadline and len(_children(proc.pid)) < 2:
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) >= 2, "the workers did not start"
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(files.pid_alive(w) for w in workers):
        time.sleep(0.05)
    assert not any(files.pid_alive(w) for w in workers), "orphaned generator workers"


def test_die_with_parent_exits_when_the_parent_is_gone():
    code = f"from tasks import files; files.die_with_parent({_dead_pid()}); import time; time.sleep(30)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=20)
    assert done.returncode == 1


@pytest.mark.slow
def test_concurrent_starts_both_succeed(tmp_path):
    """Two lra-data on one data_dir at once: both exit 0, one verified cache, no leftovers."""
    code = "import sys; from lra.run.prepare import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "task=listops", f"data_dir={tmp_path}", *TINY]
    procs = [subprocess.Popen(argv, cwd=REPO, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    (cache_dir,) = (tmp_path / "cache").iterdir()
    assert cache.verify_cache(cache_dir, full=True) == "verified"
    assert not _leftovers(tmp_path)


# --------------------------------------------------------------------------- bad input, CLI
def _release(tmp_path, rows: dict[str, bytes]) -> Path:
    folder = tmp_path / "rel" / "listops-1000"
    folder.mkdir(parents=True)
    good = b"Source\tTarget\r\n( [MAX 2 9 ] )\t9\r\n( [MIN 3 1 ] )\t1\r\n"
    for split in ("train", "val", "test"):
        (folder / f"basic_{split}.tsv").write_bytes(rows.get(split, good))
    return folder


def _release_cli(tmp_path, *extra):
    rel = ["task.source=release", f"task.release_dir={tmp_path / 'rel'}", "task.seq_len=16"]
    return data_cli.main([f"data_dir={tmp_path}", "trainer.progress=false", *rel, *extra])


def test_non_utf8_tsv_names_file_and_line_exit_3(tmp_path, capsys, monkeypatch):
    folder = _release(
        tmp_path, {"val": b"Source\tTarget\r\n( [MAX 2 ] )\t2\r\n( [MIN \xff ] )\t1\r\n"}
    )
    assert _release_cli(tmp_path) == 3
    err = capsys.readouterr().err
    assert f"{folder / 'basic_val.tsv'}:3: not UTF-8" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _release_cli(tmp_path, "--debug") == 3
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("LRA_DEBUG", "1")
    assert _release_cli(tmp_path) == 3
    assert "Traceback" in capsys.readouterr().err


def test_empty_split_exit_3(tmp_path, capsys):
    _release(tmp_path, {"test": b"Source\tTarget\r\n"})
    assert _release_cli(tmp_path) == 3
    assert "test split has no examples" in capsys.readouterr().err


def test_all_unknown_tokens_and_all_truncated_warn(tmp_path, capsys):
    folder = _release(tmp_path, {"train": b"Source\tTarget\nhello world\t1\nfoo bar baz\t2\n"})
    assert _release_cli(tmp_path, "task.seq_len=2") == 0
    err = capsys.readouterr().err
    assert f"lra-data: warning: {folder / 'basic_train.tsv'}:2: 4 of 4 tokens (100.0%)" in err
    assert "truncated (warning above 90%)" in err
    task = build_task("listops", data_dir=tmp_path, source="release", seq_len=2,
                      release_dir=str(tmp_path / "rel"))  # fmt: skip
    summary = task.summary()
    assert summary["splits"]["train"]["unknown_fraction"] == 1.0
    assert summary["thresholds"] == {"warn_truncated_fraction": 0.9, "warn_unknown_fraction": 0.01}


def test_internal_error_is_one_line_exit_5(tmp_path, capsys, monkeypatch):
    def broken(cfg):
        raise RuntimeError("boom")

    monkeypatch.setattr(data_cli, "prepare", broken)
    assert _cli(tmp_path)[0] == 5
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and "--debug" in err
    assert "Traceback" not in err


def test_exit_codes_are_documented():
    doc = data_cli.__doc__
    for code in (
        "0  done",
        "1  source data missing",
        "2  usage",
        "3  bad data",
        "4  I/O",
        "5  internal",
    ):
        assert code in doc


# --------------------------------------------------------------------------- pathfinder metadata
LINE = "imgs/0 sample_0.png 0 1 1.0 14 4 2 0.5 1 1\n"


def test_pathfinder_metadata_paths_that_leave_the_folder_are_refused(tmp_path):
    path = tmp_path / "0.npy"
    for bad in ("../../etc sample_0.png", "/etc passwd", "imgs/0 ../../x.png"):
        path.write_text(LINE + LINE.replace("imgs/0 sample_0.png", bad))
        with pytest.raises(DataError, match=f"{path}:2: image path .* leaves the dataset folder"):
            read_metadata_file(path)


def test_pathfinder_metadata_not_utf8_names_line(tmp_path):
    path = tmp_path / "0.npy"
    path.write_bytes(LINE.encode() * 2 + b"imgs/0 \xff.png 0 1 1.0 14 4 2 0.5 1 1\n")
    with pytest.raises(DataError, match=f"{path}:3: not UTF-8"):
        read_metadata_file(path)


def test_empty_pathfinder_metadata_file_warns(tmp_path):
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "0.npy").write_text(LINE)
    (tmp_path / "metadata" / "1.npy").write_text("")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = read_metadata(tmp_path)
    assert len(rows) == 1
    assert any("1 empty metadata file(s)" in str(w.message) and "1.npy" in str(w.message)
               for w in caught)  # fmt: skip


def test_sweep_leaves_other_machines_writers_alone(tmp_path):
    """On a shared file system another host's pid means nothing here: never sweep its files."""
    dead = _dead_pid()
    mine = files.tmp_name(tmp_path / "basic_train.tsv", pid=dead)
    theirs = tmp_path / f"basic_val.tsv.tmp{dead}@another-node"
    for path in (mine, theirs):
        path.write_text("partial")
    assert files.sweep(tmp_path) == [mine]
    assert theirs.exists() and mine.name.endswith(f"@{files.host_tag()}")
