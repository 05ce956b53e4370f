"""``scripts/fetch_lra_release.sh``: extraction + layout check on a tiny fake archive, and a
resumed download from a local HTTP server (127.0.0.1) that honours ``Range`` requests.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch_lra_release.sh"
LAYOUT = [
    "listops-1000/basic_train.tsv",
    "listops-1000/basic_val.tsv",
    "listops-1000/basic_test.tsv",
    "tsv_data/new_aan_pairs.train.tsv",
    "tsv_data/new_aan_pairs.eval.tsv",
    "tsv_data/new_aan_pairs.test.tsv",
    "pathfinder32/curv_contour_length_14/metadata/0.npy",
    "pathfinder64/curv_contour_length_14/metadata/0.npy",
    "pathfinder128/curv_contour_length_14/metadata/0.npy",
    "pathfinder256/curv_contour_length_14/metadata/0.npy",
]


# beside the nested complete copy, the archive's top folder holds a second listops-1000 and
# pathfinder128 (LRA issue #38)
OUTER = [
    "listops-1000/basic_train.tsv",
    "pathfinder128/curv_contour_length_14/metadata/0.npy",
]


def fake_release(path: Path, skip: tuple[str, ...] = ()) -> bytes:
    """A gzipped tar in the release's layout: ``lra_release/`` with the two outer folders and
    the complete ``lra_release/lra_release/`` (``skip``: its folders to leave out)."""
    members = [(f"lra_release/{name}", "outer") for name in OUTER]
    members += [
        (f"lra_release/lra_release/{name}", "nested")
        for name in LAYOUT
        if name.split("/")[0] not in skip
    ]
    with tarfile.open(path, "w:gz") as tar:
        for name, copy in members:
            data = f"{copy} {name}\n".encode() * 50
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def fetch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_extract_only_prints_size_and_sha256_and_checks_layout(tmp_path):
    data = fake_release(tmp_path / "lra_release.gz")
    dest = tmp_path / "data" / "lra_release"
    result = fetch("--extract-only", str(tmp_path / "lra_release.gz"), "--dest", str(dest))
    assert result.returncode == 0, result.stderr
    assert f"size: {len(data)} bytes" in result.stdout
    assert f"sha256: {hashlib.sha256(data).hexdigest()}" in result.stdout
    # the archive's top folder is DEST: its nested complete copy is DEST/lra_release
    assert (dest / "lra_release" / "tsv_data" / "new_aan_pairs.eval.tsv").is_file()
    assert (dest / "pathfinder128").is_dir() and not (dest / "lra_release" / "lra_release").exists()
    assert "MISSING" not in result.stdout and f"release complete: {dest / 'lra_release'}" in (
        result.stdout
    )
    again = fetch("--check-only", "--dest", str(dest))
    assert again.returncode == 0 and again.stdout.count("ok ") == 10


def test_tasks_read_the_nested_copy_where_the_archive_has_two(tmp_path):
    """Path-X and ListOps exist twice in the archive; the default release_dir (= DEST) reads
    the nested complete copy, as LRA's dataset_setup.sh and S4-derived loaders do."""
    from lra.config import build_task

    fake_release(tmp_path / "lra_release.gz")
    dest = tmp_path / "data" / "lra_release"
    assert (
        fetch("--extract-only", str(tmp_path / "lra_release.gz"), "--dest", str(dest)).returncode
        == 0
    )
    pathx = build_task("pathx", data_dir=tmp_path / "data")
    inner = dest / "lra_release" / "pathfinder128" / "curv_contour_length_14"
    assert pathx.image_dir() == inner
    assert (inner / "metadata" / "0.npy").read_text().startswith("nested ")
    listops = build_task("listops", data_dir=tmp_path / "data", source="release")
    assert listops.tsv_dir() == dest / "lra_release" / "listops-1000"
    # release_dir may also name the nested folder itself
    direct = build_task("pathx", data_dir=tmp_path / "x", release_dir=str(dest / "lra_release"))
    assert direct.image_dir() == inner


def test_check_names_what_is_missing(tmp_path):
    fake_release(tmp_path / "a.gz", skip=("tsv_data", "pathfinder128"))
    result = fetch("--extract-only", str(tmp_path / "a.gz"), "--dest", str(tmp_path / "rel"))
    assert result.returncode == 1
    assert "MISSING  tsv_data/new_aan_pairs.train.tsv" in result.stdout
    assert "MISSING  pathfinder128" in result.stdout and "ok       pathfinder64" in result.stdout
    assert "4 expected item(s) missing" in result.stderr


def test_bad_archive_digest_and_usage_errors(tmp_path):
    data = fake_release(tmp_path / "a.gz")
    wrong = hashlib.sha256(data + b"x").hexdigest()
    result = fetch(
        "--extract-only", str(tmp_path / "a.gz"), "--dest", str(tmp_path / "r"), "--sha256", wrong
    )
    assert result.returncode == 1 and "sha256 mismatch" in result.stderr
    assert not (tmp_path / "r").exists()  # nothing extracted from a bad archive
    assert fetch("--nope").returncode == 2
    missing = fetch("--extract-only", str(tmp_path / "none.gz"), "--dest", str(tmp_path / "r"))
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_digest_pin_from_the_environment_and_unverified_notice(tmp_path, monkeypatch):
    data = fake_release(tmp_path / "a.gz")
    args = ("--extract-only", str(tmp_path / "a.gz"), "--dest", str(tmp_path / "r"))
    monkeypatch.delenv("LRA_RELEASE_SHA256", raising=False)
    assert "sha256: NOT VERIFIED" in fetch(*args).stdout
    monkeypatch.setenv("LRA_RELEASE_SHA256", hashlib.sha256(data).hexdigest())
    assert "sha256: verified" in fetch(*args).stdout
    monkeypatch.setenv("LRA_RELEASE_SHA256", "0" * 64)
    assert "sha256 mismatch" in fetch(*args).stderr


class RangeServer(http.server.BaseHTTPRequestHandler):
    """Serves ``payload`` at any path; honours ``Range: bytes=N-``; records the ranges asked."""

    payload = b""
    ranges: list[str | None] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        asked = self.headers.get("Range")
        self.ranges.append(asked)
        start = int(asked.removeprefix("bytes=").split("-")[0]) if asked else 0
        body = self.payload[start:]
        self.send_response(206 if asked else 200)
        if asked:
            self.send_header(
                "Content-Range", f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}"
            )
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    payload = fake_release(tmp_path / "served.gz")
    handler = type("Handler", (RangeServer,), {"payload": payload, "ranges": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/lra_release.gz", handler
    httpd.shutdown()
    thread.join(timeout=5)


@pytest.mark.parametrize("tool", ["curl", "wget"])
def test_interrupted_download_resumes(server, tmp_path, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    url, handler = server
    archive = tmp_path / "dl" / "lra_release.gz"
    archive.parent.mkdir()
    half = len(handler.payload) // 2
    Path(f"{archive}.part").write_bytes(handler.payload[:half])  # what an interruption leaves
    dest = tmp_path / "dl" / "lra_release"
    result = fetch("--url", url, "--tool", tool, "--archive", str(archive), "--dest", str(dest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"resuming {archive}.part at {half} bytes" in result.stdout
    assert handler.ranges == [f"bytes={half}-"]  # only the missing half was asked for
    assert archive.read_bytes() == handler.payload and not Path(f"{archive}.part").exists()
    assert "release complete" in result.stdout
    again = fetch("--url", url, "--archive", str(archive), "--dest", str(dest), "--download-only")
    assert again.returncode == 0 and "not downloading again" in again.stdout
    assert len(handler.ranges) == 1
