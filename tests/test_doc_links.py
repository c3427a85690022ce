"""Every link and image in README.md and docs/**/*.md resolves inside this repository.

* a relative link names a file or folder that exists, and its `#anchor` (if
  any) matches a heading of the target, slugged the way GitHub does it;
* no link climbs above the repository's root or points at documents that
  are not in it: the docs stand alone;
* an http(s) link is well-formed (it is not fetched: the tests use no network);
* no file of the repository cites documents that are not in it (the design
  notes and issue threads the project started from): the contracts live in
  docs/contracts/, docs/cli.md and docs/config.md.

Links inside code spans and fenced code blocks are text, not links.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.S | re.M)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
#: [text](target "title") and ![alt](target); the text may hold one level of brackets.
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^\s)>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
#: [label]: target  (reference definitions)
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
#: The folder beside the repository that the docs once cited (spelt in pieces, so that this
#: file does not cite it either); a link there is never right.
_SIBLING = "sha" + "red"
_OUTSIDE = ("../" + _SIBLING, _SIBLING + "/")
#: Names of documents outside the repository, spelt in pieces for the same reason.
_OUTSIDE_NAMES = ("DES" + "IGN.md", "STY" + "LE.md", "LIBRARY-" + "NOTES", "../" + _SIBLING)


def unfenced(text: str) -> str:
    """The text with fenced code blocks blanked (line numbers kept)."""
    return _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def prose(text: str) -> str:
    """The text with fenced blocks and code spans blanked."""
    return _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), unfenced(text))


def links(text: str) -> list[str]:
    body = prose(text)
    return [m.group(1) for m in _INLINE.finditer(body)] + [
        m.group(1) for m in _REFERENCE.finditer(body)
    ]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown file offers: its heading slugs (-1, -2 for repeats), HTML anchors."""
    text = path.read_text(encoding="utf-8")
    seen: dict[str, int] = {}
    out: set[str] = set()
    for match in _HEADING.finditer(unfenced(text)):
        base = slug(match.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    out.update(_HTML_ANCHOR.findall(text))
    return out


def problem(source: Path, target: str) -> str | None:
    """Why `target`, linked from `source`, is broken; None if it is fine."""
    if any(part in target for part in _OUTSIDE):
        return "points outside the repository (not part of these docs)"
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        if not parts.netloc or "." not in parts.netloc or " " in target:
            return "is not a well-formed URL"
        return None
    if parts.scheme == "mailto":
        return None if "@" in parts.path else "is not a well-formed address"
    if parts.scheme or parts.netloc:
        return f"uses a scheme the docs do not link with ({parts.scheme or '//'})"
    path_text = unquote(parts.path)
    if path_text.startswith("/"):
        return "is absolute; link relative to the file"
    file = (source.parent / path_text).resolve() if path_text else source
    if not file.is_relative_to(ROOT):
        return "climbs above the repository's root"
    if not file.exists():
        return f"names {file.relative_to(ROOT).as_posix()}, which does not exist"
    if parts.fragment:
        if file.is_dir() or file.suffix != ".md":
            return "has an #anchor on something that is not a Markdown file"
        if unquote(parts.fragment) not in anchors(file):
            return f"#{parts.fragment} matches no heading of {file.relative_to(ROOT).as_posix()}"
    return None


#: Citations of documents outside the repository, in any file of it (this one excepted).
_CITATIONS = re.compile(
    "|".join(re.escape(name) for name in _OUTSIDE_NAMES)
    + r"|design card|\bthe seed\b|\bseed's|\bseed \d|amazon-locker-lld"
    r"|\bissues? \d|\bissues? #\d",
    re.I,
)
_TREES = ("kiosk", "firmware_bridge", "tests", "bench", "docs", "config", "systemd")
_TEXT = {".py", ".md", ".toml", ".yaml", ".yml", ".tcss", ".service", ".rules", ".txt", ".cfg"}


#: The design notes' own name, in capitals ("DESIGN:", "DESIGN's v1 list").
_CITATIONS_CASED = re.compile(r"\bDESIGN\b")


def repository_text() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for tree in _TREES:
        files += [p for p in (ROOT / tree).rglob("*") if p.is_file() and p.suffix in _TEXT]
    return [p for p in files if ".venv" not in p.parts and p != Path(__file__).resolve()]


def test_nothing_cites_documents_outside_the_repository():
    hits = [
        f"{path.relative_to(ROOT).as_posix()}:{n}: {line.strip()}"
        for path in repository_text()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _CITATIONS.search(line) or _CITATIONS_CASED.search(line)
    ]
    assert hits == [], "cite the docs/ page that holds the contract instead:\n" + "\n".join(hits)


def test_the_scan_sees_the_docs():
    assert ROOT / "README.md" in DOCS and len(DOCS) > 5
    assert links((ROOT / "README.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_resolves(doc: Path):
    broken = [
        f"{doc.relative_to(ROOT).as_posix()}: ({target}) {why}"
        for target in links(doc.read_text(encoding="utf-8"))
        if (why := problem(doc, target))
    ]
    assert broken == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Register map `kiosk-v1`", "register-map-kiosk-v1"),
        ("The processes (`kiosk run`, time, API)", "the-processes-kiosk-run-time-api"),
        ("Offline first, and the outbox cap", "offline-first-and-the-outbox-cap"),
        ("Exit codes: 0, 1, 2, 3", "exit-codes-0-1-2-3"),
        ("kiosk.ui -> kiosk.api", "kioskui---kioskapi"),
    ],
)
def test_slugs_follow_github(heading: str, anchor: str):
    assert slug(heading) == anchor


@pytest.mark.parametrize(
    ("target", "broken"),
    [
        ("cloud.md", False),
        ("docs/cloud.md", True),  # relative to docs/x.md this is docs/docs/cloud.md
        ("cloud.md#no-such-heading", True),
        ("cloud.md#location-search", False),
        ("../../outside.md", True),
        ("../" + _SIBLING + "/anything.md", True),
        ("https://example.org/x", False),
        ("https://", True),
        ("decisions/", False),
    ],
)
def test_the_checker_tells_broken_from_fine(target: str, broken: bool):
    assert (problem(ROOT / "docs" / "x.md", target) is not None) == broken
