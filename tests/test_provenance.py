"""Which commit a record or benchmark row names (``lra.provenance.git_sha``)."""

from __future__ import annotations

import subprocess

import pytest

from lra import provenance


@pytest.fixture
def fresh_sha():
    """``git_sha`` is cached per process: cleared around the test, so that neither this test
    nor a later one sees another checkout's answer."""
    provenance.git_sha.cache_clear()
    yield lambda: (provenance.git_sha.cache_clear(), provenance.git_sha())[1]
    provenance.git_sha.cache_clear()


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_git_sha_is_dirty_for_code_changes_not_for_results(tmp_path, monkeypatch, fresh_sha):
    """A changed tracked file marks the commit ``-dirty``; a result file written by an earlier
    run (under results/) does not; untracked files never do."""
    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "bench.csv").write_text("a\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)
    assert fresh_sha() == head
    (tmp_path / "results" / "bench.csv").write_text("a\n1\n")
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert fresh_sha() == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert fresh_sha() == f"{head}-dirty"
