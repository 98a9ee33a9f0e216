"""Every supported file type parses along its structure; every kind of broken file is refused."""

from __future__ import annotations

import json

import pytest

from knowledge_base.chunker import chunk_document
from knowledge_base.parsers import DocumentError, parse_bytes
from tests.knowledge_base.pdf_fixture import make_pdf

MARKDOWN = b"""---
title: Returns and refunds
url: https://help.example/returns
---
# Returns and refunds

Intro paragraph about returns.

## Start a return
Open **Your orders** and choose [Return items](https://x.example).

## Refund timing
### Cards
Card refunds take 5 to 10 days.
```
# not a heading inside code
```
"""


def test_markdown_sections_follow_headings_and_keep_titles() -> None:
    document = parse_bytes("returns.md", MARKDOWN)
    assert document.kind == "markdown"
    assert document.title == "Returns and refunds"
    assert document.url == "https://help.example/returns"
    headings = [s.heading for s in document.sections]
    assert headings == ["Returns and refunds", "Returns and refunds › Start a return",
                        "Returns and refunds › Refund timing › Cards"]
    assert "Return items" in document.sections[1].text and "](" not in document.sections[1].text
    assert "# not a heading inside code" in document.sections[2].text
    chunks = chunk_document(document)
    assert chunks[2].title == "Returns and refunds › Refund timing › Cards"
    assert all(c.url == "https://help.example/returns" for c in chunks)


def test_html_drops_scripts_and_keeps_structure() -> None:
    page = b"""<html><head><title>Shipping</title><link rel="canonical" href="https://help.example/shipping">
    <script>alert('x')</script><style>p{}</style></head><body><nav>Menu</nav>
    <h1>Shipping</h1><p>We ship to the EU.</p><h2>Costs</h2><ul><li>Standard 4.95</li><li>Express 9.95</li></ul>
    <img src=x onerror="alert(1)"><footer>Footer text</footer></body></html>"""
    document = parse_bytes("shipping.html", page)
    assert document.title == "Shipping" and document.url == "https://help.example/shipping"
    text = " ".join(s.text for s in document.sections)
    assert "alert" not in text and "Menu" not in text and "Footer" not in text
    assert [s.heading for s in document.sections] == ["Shipping", "Shipping › Costs"]
    assert "• Express 9.95" in document.sections[1].text


def test_plain_text_first_line_is_the_title() -> None:
    document = parse_bytes("gift-cards.txt", "Gift cards\nThey are valid for two years.\n".encode())
    assert document.title == "Gift cards"
    assert document.sections[0].text == "They are valid for two years."


def test_pdf_text_is_extracted_per_page() -> None:
    document = parse_bytes("warranty.pdf", make_pdf(["Warranty claims", "Send a photo of the fault."], title="Warranty"))
    assert document.kind == "pdf" and document.title == "Warranty"
    assert "Send a photo of the fault." in document.sections[0].text


def test_faq_csv_and_json_make_one_chunk_per_pair_with_their_own_url() -> None:
    csv_doc = parse_bytes("faq.csv", b"question,answer,url\nDo you ship abroad?,Yes to 30 countries.,https://h.example/abroad\n"
                                     b"Can I pay later?,Yes in three parts.,\n")
    assert [s.heading for s in csv_doc.sections] == ["Do you ship abroad?", "Can I pay later?"]
    chunks = chunk_document(csv_doc)
    assert chunks[0].title == "Do you ship abroad?" and chunks[0].url == "https://h.example/abroad"
    assert chunks[1].url is None
    json_doc = parse_bytes("faq.json", json.dumps({"faqs": [{"question": "Q1?", "answer": "A1.", "url": None}]}).encode())
    assert json_doc.sections[0].heading == "Q1?" and json_doc.sections[0].text == "A1."


def test_faq_alternative_questions_from_csv_and_json_without_blanks_or_repeats() -> None:
    csv_doc = parse_bytes("faq.csv", "question,answer,alternatives\n"
                                     "Do you ship abroad?,Yes to 30 countries.,\"Can you send it to Spain? |  |"
                                     " do you ship abroad?\nInternational  delivery?\"\n"
                                     "Can I pay later?,Yes in three parts.,\n".encode())
    assert csv_doc.sections[0].alternatives == ("Can you send it to Spain?", "International delivery?")
    assert csv_doc.sections[1].alternatives == ()
    json_doc = parse_bytes("faq.json", json.dumps([{"question": "Q1?", "answer": "A1.",
                                                    "alternatives": ["First way?", "Second way?"]}]).encode())
    assert json_doc.sections[0].alternatives == ("First way?", "Second way?")
    listed = parse_bytes("faq.json", json.dumps([{"question": "Q?", "answer": "A.",
                                                  "alternatives": ["Plan A | plan B: which?", " ", "q?"]}]).encode())
    assert listed.sections[0].alternatives == ("Plan A | plan B: which?",)  # a list item is one question, whole
    [chunk] = chunk_document(json_doc)
    assert chunk.alternatives == ("First way?", "Second way?")
    # The alternatives are part of what the chunk is: a changed one makes a new chunk to embed.
    [plain] = chunk_document(parse_bytes("faq.json", json.dumps([{"question": "Q1?", "answer": "A1."}]).encode()))
    assert plain.content_hash != chunk.content_hash
    assert plain.search_text == chunk.search_text  # the answer's own text does not change


def test_faq_alternative_questions_are_bounded() -> None:
    many = " | ".join(f"Way {i}?" for i in range(21))
    with pytest.raises(DocumentError, match="entry 1 has 21 alternative questions"):
        parse_bytes("faq.csv", f'question,answer,alternatives\nQ?,A.,"{many}"\n'.encode())
    with pytest.raises(DocumentError, match="entry 2 has an alternative question over 500"):
        parse_bytes("faq.csv", f'question,answer,alternatives\nQ?,A.,\nR?,B.,{"x" * 501}\n'.encode())


def test_long_sections_are_split_at_paragraphs_and_sentences() -> None:
    body = "\n\n".join(f"Paragraph {i}. " + "This sentence is filler text. " * 12 for i in range(6))
    chunks = chunk_document(parse_bytes("long.md", f"# Long\n\n{body}".encode()))
    assert len(chunks) > 2
    assert all(len(c.text) <= 900 for c in chunks)
    assert all(c.title == "Long" for c in chunks)


def test_repeated_passages_are_chunked_once() -> None:
    chunks = chunk_document(parse_bytes("faq.csv", b"question,answer\nSame?,Same answer.\nSame?,Same answer.\n"))
    assert len(chunks) == 1


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.md", b"   \n", "empty"),
        ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "not UTF-8"),
        ("broken.pdf", b"%PDF-1.4\n this is not really a pdf", "not a readable PDF"),
        ("truncated.pdf", make_pdf(["hello"])[:120], "not a readable PDF"),
        ("nul.txt", b"abc\x00def", "NUL"),
        ("bad.json", b"{not json", "invalid JSON"),
        ("shape.json", b'{"faqs": "nope"}', "expected a list"),
        ("noheader.csv", b"a,b\n1,2\n", "question and answer columns"),
        ("missing.csv", b"question,answer\nOnly a question?,\n", "needs both"),
        ("program.exe", b"MZ\x90\x00", "unsupported file type"),
        ("headings-only.md", b"# Title\n## Another\n", "no text"),
    ],
)
def test_broken_files_are_rejected_with_a_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason):
        parse_bytes(name, data)


def test_oversized_files_are_rejected_before_parsing() -> None:
    with pytest.raises(DocumentError, match="over the 1000-byte limit"):
        parse_bytes("big.txt", b"x" * 1001, max_bytes=1000)
