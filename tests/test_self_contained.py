"""The repository is self-contained: it cites no file outside itself (pure file reading, no jax).

1. No text file cites the external implementation spec or the external design notes.
2. Every relative markdown link of a .md file points to a file or folder of the repository.
3. Every "register #N" citation names a row of docs/register.md.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".toml", ".txt", ".cfg", ".yml", ".yaml"}
SKIP_DIRS = {".git", "__pycache__", "results"}          # "results" only at the top level (ignored outputs)

# written in pieces so that this file does not match its own patterns
FORBIDDEN = ("spec" + " §", "DESIGN" + ".md", "paper" + "_spec")

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`]*`")
FENCE = re.compile(r"^\s*(```|~~~)")
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")   # http:, https:, mailto:, ...

# "register #3", "register #16/#17", "register #19-#23", "register #30–#34"
CITATION = re.compile(r"register\s+#(\d+)((?:\s*(?:[-–/]\s*#?|,\s*#)\d+)*)", re.IGNORECASE)
PART = re.compile(r"([-–/,])\s*#?(\d+)")
# rows of docs/register.md: "| 12 |", or a range row "| 31–34 |"
ROW = re.compile(r"^\|\s*(\d+)(?:\s*[-–]\s*(\d+))?\s*\|")


def _files() -> list[Path]:
    """Tracked files plus untracked, not ignored ones (git), else a walk of the tree."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             cwd=ROOT, capture_output=True, check=True, timeout=30).stdout
        paths = [ROOT / p for p in out.decode("utf-8").split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        paths = []
        for folder, dirs, names in os.walk(ROOT):
            here = Path(folder)
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS or (d == "results" and here != ROOT)]
            paths += [here / n for n in names]
    return sorted(p for p in paths if p.suffix in TEXT_SUFFIXES and p.is_file())


FILES = _files()


def _lines(path: Path):
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        yield i, line


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _register_rows() -> set[int]:
    rows = set()
    for _, line in _lines(ROOT / "docs" / "register.md"):
        m = ROW.match(line)
        if m:
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) else lo
            rows.update(range(lo, hi + 1))
    return rows


def test_files_found():
    assert (ROOT / "docs" / "register.md") in FILES
    assert Path(__file__).resolve() in FILES


def test_no_citation_of_external_files():
    offenders = [f"{_rel(p)}:{i}: {line.strip()}"
                 for p in FILES for i, line in _lines(p) if any(s in line for s in FORBIDDEN)]
    assert not offenders, (f"{len(offenders)} citation(s) of files outside the repository "
                           f"({', '.join(FORBIDDEN)}):\n" + "\n".join(offenders))


def test_relative_markdown_links_resolve():
    offenders = []
    for p in FILES:
        if p.suffix != ".md":
            continue
        fenced = False
        for i, line in _lines(p):
            if FENCE.match(line):
                fenced = not fenced
                continue
            if fenced:
                continue
            for target in LINK.findall(INLINE_CODE.sub("", line)):
                if EXTERNAL.match(target) or target.startswith("#"):
                    continue
                rel = unquote(target.split("#", 1)[0])
                resolved = (p.parent / rel).resolve()
                inside = resolved == ROOT or ROOT in resolved.parents
                if not inside or not resolved.exists():
                    offenders.append(f"{_rel(p)}:{i}: ({target})")
    assert not offenders, f"{len(offenders)} broken relative link(s):\n" + "\n".join(offenders)


def test_register_citations_name_rows():
    rows = _register_rows()
    assert set(range(1, 31)) <= rows, sorted(rows)
    offenders = []
    for p in FILES:
        for i, line in _lines(p):
            for m in CITATION.finditer(line):
                cited = [int(m.group(1))]
                for sep, n in PART.findall(m.group(2)):       # a dash is a range: every row in it
                    cited += list(range(cited[-1] + 1, int(n) + 1)) if sep in "-–" else [int(n)]
                missing = [n for n in cited if n not in rows]
                if missing:
                    offenders.append(f"{_rel(p)}:{i}: {m.group(0)} (no row {missing})")
    assert not offenders, (f"{len(offenders)} citation(s) of rows that docs/register.md lacks:\n"
                           + "\n".join(offenders))
