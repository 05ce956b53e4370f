"""Every ``§`` reference to docs/GENERATORS.md or docs/LRA_PROTOCOL.md resolves to a heading.

Collected from the repository's text files (``git ls-files``, new untracked files included):

* ``GENERATORS.md §X.Y`` / ``LRA_PROTOCOL.md §X.Y`` (with or without ``docs/``, backticks or a
  line break before the ``§``), including chains such as ``§2.2-§2.5`` or ``§2.13 / §3``;
* bare ``§X.Y`` in ``tasks/listops*.py`` and ``tasks/pathfinder*.py`` whose module docstring
  names ``docs/GENERATORS.md``: these point into that document.

A section exists when the document has a Markdown heading that starts with its number
(``### 2.6 Extending a snake``); a ``§X.Y step N`` reference also needs a numbered item ``N.``
in that section.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = {
    "GENERATORS": ROOT / "docs" / "GENERATORS.md",
    "LRA_PROTOCOL": ROOT / "docs" / "LRA_PROTOCOL.md",
}
SKIP_SUFFIXES = {".csv", ".png", ".jpg", ".pdf", ".npy", ".npz", ".pt", ".gz", ".tar", ".zip"}

NUM = r"\d+(?:\.\d+)*"
SECTION = rf"§({NUM})(?:\s+step\s+(\d+))?"
SECTION_RE = re.compile(SECTION)
# a chain of sections after the first: "§2.2-§2.5", "§2.13 / §3", "§1.2, §1.5", "§2.5 and §2.6"
CHAIN = rf"{SECTION}(?:\s*(?:-|–|/|,|and|&)\s*{SECTION})*"
DOC_REF_RE = re.compile(rf"(?:docs/)?(GENERATORS|LRA_PROTOCOL)\.md[`'\")]*\s*,?\s*({CHAIN})")
HEADING_RE = re.compile(rf"^#{{1,6}}\s+({NUM})(?=\s|$)")
ITEM_RE = re.compile(r"^\s*(\d+)\.\s")
BARE_SCOPE = ("tasks/listops*.py", "tasks/pathfinder*.py")


def tracked_text_files() -> dict[str, str]:
    """Text of every tracked (or new, not ignored) file, by repository-relative path."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    texts = {}
    for name in sorted(set(out.decode().split("\0")) - {""}):
        path = ROOT / name
        if path.suffix.lower() in SKIP_SUFFIXES or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def sections(markdown: str) -> dict[str, list[str]]:
    """Numbered headings of a Markdown text -> the lines of their section (code blocks skipped)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        m = HEADING_RE.match(line)
        if m:
            assert m.group(1) not in found, f"section {m.group(1)} appears twice"
            current = found[m.group(1)] = []
        elif line.startswith("#"):
            current = None  # an unnumbered heading ends the numbered section
        elif current is not None:
            current.append(line)
    return found


def _refs(chain: str) -> Iterable[tuple[str, str | None]]:
    for m in SECTION_RE.finditer(chain):
        yield m.group(1), m.group(2)


def references(texts: dict[str, str]) -> list[tuple[str, int, str, str, str | None]]:
    """(file, line, document, section, step or None) of every reference to one of the docs."""
    found = []
    for name, text in texts.items():
        claimed: list[tuple[int, int]] = []
        for m in DOC_REF_RE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            claimed.append(m.span())
            for number, step in _refs(m.group(2)):
                found.append((name, line, m.group(1), number, step))
        if not (name.endswith(".py") and any(Path(name).match(p) for p in BARE_SCOPE)):
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if "docs/GENERATORS.md" not in docstring:
            continue
        for m in SECTION_RE.finditer(text):
            if any(a <= m.start() < b for a, b in claimed):
                continue
            line = text.count("\n", 0, m.start()) + 1
            found.append((name, line, "GENERATORS", m.group(1), m.group(2)))
    return found


def unresolved(refs, docs: dict[str, dict[str, list[str]]]) -> list[str]:
    """The references whose section (or step) the document lacks, as readable strings."""
    bad = []
    for name, line, doc, number, step in refs:
        body = docs[doc].get(number)
        if body is None:
            bad.append(f"{name}:{line}: {doc}.md §{number} has no heading")
        elif step is not None and not any(
            (m := ITEM_RE.match(text)) and m.group(1) == step for text in body
        ):
            bad.append(f"{name}:{line}: {doc}.md §{number} has no step {step}")
    return bad


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, list[str]]]:
    return {key: sections(path.read_text(encoding="utf-8")) for key, path in DOCS.items()}


def test_every_section_reference_resolves(docs):
    refs = references(tracked_text_files())
    # guard against a collector that silently finds nothing
    assert sum(doc == "GENERATORS" for _, _, doc, _, _ in refs) >= 40
    assert any(doc == "LRA_PROTOCOL" and n == "1.5" for _, _, doc, n, _ in refs)
    assert any(step is not None for *_, step in refs)
    bad = unresolved(refs, docs)
    assert not bad, "unresolved references:\n" + "\n".join(bad)


def test_the_documents_have_the_cited_sections(docs):
    gen = docs["GENERATORS"]
    for number in ("1", "2", *(f"1.{i}" for i in range(1, 10)), *(f"2.{i}" for i in range(1, 15))):
        assert number in gen, number
    assert {"1.3", "1.5", "1.6", "1.7"} <= docs["LRA_PROTOCOL"].keys()


def test_a_missing_section_is_reported(docs):
    s = "\u00a7"  # spelt out, so that the scan of this file finds no broken reference
    texts = {
        "tasks/pathfinder_x.py": f'"""See docs/GENERATORS.md {s}2."""\n# {s}2.99 and {s}2.6 step 9\n',
        "conf/x.yaml": f"# LRA_PROTOCOL.md {s}1.5, GENERATORS.md {s}2.2-{s}7.1\n",
        "models/x.py": f'"""Paper {s}9.9 (bare, outside the scope: ignored)."""\n',
    }
    bad = unresolved(references(texts), docs)
    assert sorted(b.split(": ", 1)[1] for b in bad) == [
        f"GENERATORS.md {s}2.6 has no step 9",
        f"GENERATORS.md {s}2.99 has no heading",
        f"GENERATORS.md {s}7.1 has no heading",
    ]
