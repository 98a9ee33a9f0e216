"""Split parsed documents into retrievable chunks along their structure."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from knowledge_base.parsers import ParsedDocument

MAX_CHUNK_CHARS = 900


def search_text(title: str, text: str) -> str:
    """What gets embedded and BM25-indexed for a chunk: the heading carries much of the meaning."""
    return f"{title}\n{text}"


def question_texts(kind: str, title: str, alternatives: tuple[str, ...]) -> list[str]:
    """The texts an FAQ chunk is also found by, each embedded alone: its question, then its alternatives.

    Chunks of other kinds have none (their title is a heading path, not something a customer asks).
    """
    return [title, *alternatives] if kind == "faq" else []


@dataclass(frozen=True)
class Chunk:
    """A passage ready to embed and index.

    Attributes:
        title: The document title and heading path shown in citations.
        text: The passage itself.
        url: Link of the passage (FAQ rows may have their own), else the document's.
        position: Order within the document.
        alternatives: An FAQ entry's other phrasings of its question (each one a search key).
    """

    title: str
    text: str
    url: str | None
    position: int
    alternatives: tuple[str, ...] = ()

    @property
    def content_hash(self) -> str:
        """Hash of the normalised passage: the same passage twice in a tenant is stored once.

        Alternative questions count too (new ones must be embedded); without any, the hash is the
        passage's alone, as before they existed.
        """
        keyed = "\n".join([self.search_text, *self.alternatives])
        normalised = re.sub(r"\s+", " ", keyed).strip().lower()
        return hashlib.sha256(normalised.encode()).hexdigest()

    @property
    def search_text(self) -> str:
        """What gets embedded and BM25-indexed."""
        return search_text(self.title, self.text)


def _split(text: str, limit: int) -> list[str]:
    """Paragraphs packed up to ``limit`` characters; over-long paragraphs split at sentences."""
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        paragraph = paragraph.strip()
        if len(paragraph) <= limit:
            pieces.append(paragraph)
            continue
        sentence_buffer = ""
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
            while len(sentence) > limit:  # one endless "sentence": cut hard
                pieces.append(sentence[:limit])
                sentence = sentence[limit:]
            if len(sentence_buffer) + len(sentence) + 1 > limit and sentence_buffer:
                pieces.append(sentence_buffer)
                sentence_buffer = ""
            sentence_buffer = f"{sentence_buffer} {sentence}".strip()
        if sentence_buffer:
            pieces.append(sentence_buffer)
    packed: list[str] = []
    for piece in pieces:
        if packed and len(packed[-1]) + len(piece) + 2 <= limit:
            packed[-1] = f"{packed[-1]}\n\n{piece}"
        else:
            packed.append(piece)
    return [p for p in packed if p.strip()]


def chunk_document(document: ParsedDocument, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """One chunk per section (FAQ pair), long sections split; titles kept on every chunk."""
    chunks: list[Chunk] = []
    for section in document.sections:
        heading = section.heading
        if document.kind == "faq":
            title = heading  # the question is the best title of its answer
        elif heading and heading != document.title and not heading.startswith(document.title):
            title = f"{document.title} › {heading}"
        else:
            title = heading or document.title
        for piece in _split(section.text, max_chars):
            chunks.append(Chunk(title[:500], piece, section.url or document.url, len(chunks),
                                section.alternatives if document.kind == "faq" else ()))
    # De-duplicate inside the document too (repeated boilerplate).
    seen: set[str] = set()
    unique = []
    for chunk in chunks:
        if chunk.content_hash not in seen:
            seen.add(chunk.content_hash)
            unique.append(Chunk(chunk.title, chunk.text, chunk.url, len(unique), chunk.alternatives))
    return unique
