"""Turn uploaded files into structured documents: sections with headings, or FAQ pairs.

Supported: Markdown, HTML, plain text, PDF, and FAQ lists as CSV or JSON (question, answer, url, and
optionally ``alternatives``: other ways customers ask the same question).
Every failure is a ``DocumentError`` with a reason a person can act on; nothing is half-parsed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 5 * 1024 * 1024
#: Alternative phrasings an FAQ entry may have, and their length: each is a search key of its own.
MAX_ALTERNATIVES = 20
MAX_QUESTION_CHARS = 500
KINDS = {
    ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".txt": "text",
    ".pdf": "pdf", ".csv": "faq", ".json": "faq",
}


class DocumentError(ValueError):
    """A file that cannot be ingested, with the reason."""


@dataclass
class Section:
    """A piece of a document under a heading path (``"Returns › Refund timing"``)."""

    heading: str
    text: str
    url: str | None = None
    alternatives: tuple[str, ...] = ()  # an FAQ entry's other phrasings of its question


@dataclass
class ParsedDocument:
    """What a file contributes to the knowledge base."""

    source: str
    kind: str
    title: str
    sections: list[Section]
    url: str | None = None
    raw_hash_input: bytes = field(default=b"", repr=False)


def kind_of(name: str) -> str:
    """The document kind of a file name, or a ``DocumentError`` for unsupported types."""
    suffix = Path(name).suffix.lower()
    if suffix not in KINDS:
        raise DocumentError(f"{name}: unsupported file type {suffix or '(none)'}; use one of {', '.join(sorted(KINDS))}")
    return KINDS[suffix]


def parse_bytes(name: str, data: bytes, max_bytes: int = MAX_FILE_BYTES) -> ParsedDocument:
    """Parse one uploaded file.

    Args:
        name: File name (its suffix selects the parser) used as the document's source.
        data: The file's bytes.
        max_bytes: Largest file accepted.

    Raises:
        DocumentError: Unsupported type, too large, empty, not UTF-8, corrupt, or no usable text.
    """
    kind = kind_of(name)
    if len(data) > max_bytes:
        raise DocumentError(f"{name}: {len(data)} bytes is over the {max_bytes}-byte limit")
    if not data.strip():
        raise DocumentError(f"{name}: the file is empty")
    if kind == "pdf":
        document = _parse_pdf(name, data)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"{name}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        if "\x00" in text:
            raise DocumentError(f"{name}: contains NUL bytes; is it really a {kind} file?")
        parser = {"markdown": _parse_markdown, "html": _parse_html, "text": _parse_text, "faq": _parse_faq}[kind]
        document = parser(name, text)
    document.sections = [s for s in document.sections if s.text.strip()]
    if not document.sections:
        raise DocumentError(f"{name}: no text to index")
    document.raw_hash_input = data
    return document


def read_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """A file's bytes, refused before reading when it is missing or over the limit."""
    if not path.is_file():
        raise DocumentError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentError(f"{path.name}: {size} bytes is over the {max_bytes}-byte limit")
    return path.read_bytes()


def parse_path(path: Path, max_bytes: int = MAX_FILE_BYTES) -> ParsedDocument:
    """Parse a file on disk (its name is the source)."""
    return parse_bytes(path.name, read_file(path, max_bytes), max_bytes)


# ------------------------------------------------------------------------------------------ formats
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """``title:`` / ``url:`` lines of a YAML-ish front matter block, and the rest of the text."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta = {}
    for line in match.group(1).splitlines():
        key, _, value = line.partition(":")
        if value.strip():
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return meta, text[match.end():]


def _clean_markdown(text: str) -> str:
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)  # images
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links keep their words
    text = re.sub(r"(\*\*|__|`)", "", text)
    text = re.sub(r"^\s*[-*+]\s+", "• ", text, flags=re.M)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _parse_markdown(name: str, text: str) -> ParsedDocument:
    meta, body = _front_matter(text)
    title = meta.get("title", "")
    path: list[str] = []
    sections: list[Section] = []
    buffer: list[str] = []

    def flush() -> None:
        content = _clean_markdown("\n".join(buffer))
        if content:
            sections.append(Section(" › ".join(path) or title or Path(name).stem, content))
        buffer.clear()

    in_code = False
    for line in body.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            flush()
            level, heading = len(match.group(1)), _clean_markdown(match.group(2))
            if level == 1 and not title:
                title = heading
            path[:] = path[: max(level - 1, 0)]
            while len(path) < level - 1:
                path.append("")
            path.append(heading)
            path[:] = [p for p in path if p]
        else:
            buffer.append(line)
    flush()
    title = title or Path(name).stem.replace("-", " ").replace("_", " ").capitalize()
    return ParsedDocument(name, "markdown", title, sections, meta.get("url"))


def _parse_html(name: str, text: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "iframe", "nav", "footer"]):
        tag.decompose()
    title = (soup.title.get_text(" ", strip=True) if soup.title else "") or ""
    canonical = soup.find("link", rel="canonical")
    url = canonical.get("href") if canonical and canonical.get("href") else None
    body = soup.body or soup
    sections: list[Section] = []
    heading_path: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        content = "\n".join(t for t in buffer if t).strip()
        if content:
            sections.append(Section(" › ".join(heading_path) or title or Path(name).stem, content))
        buffer.clear()

    for element in body.find_all(["h1", "h2", "h3", "h4", "p", "li", "td", "pre", "blockquote", "dd", "dt"]):
        if element.find_parent(["li", "td", "blockquote", "dd"]) and element.name in ("p", "li"):
            continue  # nested: its text comes with its parent
        words = re.sub(r"\s+", " ", element.get_text(" ", strip=True)).strip()
        if element.name in ("h1", "h2", "h3", "h4"):
            flush()
            level = int(element.name[1])
            if level == 1 and not title:
                title = words
            heading_path[:] = heading_path[: level - 1] + [words]
        elif words:
            buffer.append(("• " if element.name == "li" else "") + words)
    flush()
    return ParsedDocument(name, "html", title or Path(name).stem, sections, url)


def _parse_text(name: str, text: str) -> ParsedDocument:
    lines = text.strip().splitlines()
    title = lines[0].strip() if lines and len(lines[0]) <= 120 else Path(name).stem
    body = "\n".join(lines[1:]) if lines and title == lines[0].strip() and len(lines) > 1 else text
    return ParsedDocument(name, "text", title, [Section(title, body.strip())])


def _parse_pdf(name: str, data: bytes) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError(f"{name}: the PDF is encrypted")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"{name}: not a readable PDF ({exc.__class__.__name__}: {exc})") from None
    title = meta_title.strip() or Path(name).stem
    sections = [Section(f"{title} › page {i}", text) for i, text in enumerate(pages, start=1) if text]
    return ParsedDocument(name, "pdf", title, sections)


def _parse_faq(name: str, text: str) -> ParsedDocument:
    rows: list[dict[str, Any]]
    if name.lower().endswith(".json"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        if isinstance(loaded, dict):
            loaded = loaded.get("faqs") or loaded.get("items") or []
        if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
            raise DocumentError(f"{name}: expected a list of {{question, answer, url}} objects")
        # A JSON list of alternatives stays a list: each item is one question, whatever it contains.
        rows = [{str(k).lower(): [str(x) for x in v] if isinstance(v, list) and str(k).lower() == "alternatives"
                 else str(v) for k, v in r.items() if v is not None} for r in loaded]
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"question", "answer"} <= {f.strip().lower() for f in reader.fieldnames}:
            raise DocumentError(f"{name}: a FAQ CSV needs a header with question and answer columns (url optional)")
        rows = [{(k or "").strip().lower(): (v or "") for k, v in r.items()} for r in reader]
    sections = []
    for i, row in enumerate(rows, start=1):
        question, answer = row.get("question", "").strip(), row.get("answer", "").strip()
        if not question or not answer:
            raise DocumentError(f"{name}: FAQ entry {i} needs both a question and an answer")
        sections.append(Section(question, answer, row.get("url", "").strip() or None,
                                _alternatives(name, i, question, row.get("alternatives", ""))))
    title = Path(name).stem.replace("-", " ").replace("_", " ").capitalize()
    return ParsedDocument(name, "faq", title, sections)


def _alternatives(name: str, entry: int, question: str, raw: str | list[str]) -> tuple[str, ...]:
    """An FAQ entry's alternative questions: a JSON list, or one text with ``|`` or line breaks between them.

    Blank ones and repeats of the question are dropped; too many or too long ones are refused by entry.
    """
    seen = {question.casefold()}
    alternatives = []
    for part in raw if isinstance(raw, list) else re.split(r"[|\n]", raw or ""):
        part = " ".join(part.split())
        if not part or part.casefold() in seen:
            continue
        if len(part) > MAX_QUESTION_CHARS:
            raise DocumentError(f"{name}: FAQ entry {entry} has an alternative question over {MAX_QUESTION_CHARS} characters")
        seen.add(part.casefold())
        alternatives.append(part)
    if len(alternatives) > MAX_ALTERNATIVES:
        raise DocumentError(f"{name}: FAQ entry {entry} has {len(alternatives)} alternative questions "
                            f"(at most {MAX_ALTERNATIVES})")
    return tuple(alternatives)
