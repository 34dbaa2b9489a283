"""Citations of docs/protocol.md point at headings that exist (anchors as GitHub makes them from headings)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "docs" / "protocol.md"
CITED = re.compile(r"protocol\.md#([a-z0-9-]+)")
SKIP = {"build", "dist", "__pycache__", "runs"}


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return found


def text_files() -> list[Path]:
    """The repository's source, docs and configs (no hidden folders, build output or egg-info)."""
    found = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if SKIP & set(parts) or any(part.startswith(".") or part.endswith(".egg-info") for part in parts):
            continue
        if path.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".txt"} and path.is_file():
            found.append(path)
    return found


def test_every_protocol_citation_names_an_existing_section():
    known = anchors(PROTOCOL.read_text(encoding="utf-8"))
    assert {"voc07-linear-svm", "feature-taps-and-pooling", "places205-linear-classification"} <= known
    cited = [
        (str(path.relative_to(ROOT)), anchor)
        for path in text_files()
        for anchor in CITED.findall(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert len({path for path, _ in cited}) >= 10  # code, configs and READMEs cite it
    assert [(path, anchor) for path, anchor in cited if anchor not in known] == []


def test_nothing_cites_the_old_protocol_file():
    old = "PROTOCOL" + ".md"  # spelled so that this file does not cite it
    assert [str(path) for path in text_files() if old in path.read_text(encoding="utf-8", errors="replace")] == []
