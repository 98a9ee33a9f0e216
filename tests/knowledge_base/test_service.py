"""The knowledge base end to end on real parts: parse, store, embed, index, search with citations."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import PROJECT_ROOT
from knowledge_base.service import KnowledgeBase, UnknownTenantError
from tests.knowledge_base.pdf_fixture import make_pdf

HELP_CENTRE = PROJECT_ROOT / "knowledge_base" / "help_centre"

pytestmark = pytest.mark.slow


@pytest.fixture
def help_centre(kb: KnowledgeBase) -> KnowledgeBase:
    reports = kb.ingest_paths("northwind", [HELP_CENTRE])
    assert len(reports) >= 30 and all(r.status == "added" for r in reports), reports
    return kb


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("how long until my refund shows up on my card?", "refund-timing.md"),
        ("can I pay in instalments?", "pay-later-instalments.md"),
        ("I forgot my password", "reset-password.md"),
        ("do you deliver to Canada?", "international-shipping.md"),
        ("the parcel says delivered but I never got it", "late-or-missing-parcel.md"),
        ("how long is the warranty on a kettle?", "product-warranty.md"),
    ],
)
def test_help_centre_questions_find_the_right_article(help_centre: KnowledgeBase, question: str, source: str) -> None:
    answer = help_centre.search("northwind", question, k=3)
    # The kettle question ranks the right article first at cosine 0.35: below the 0.42 the answerability
    # rule needs for its precision target (<= 5 % of off-topic questions answered), so it is not answered.
    assert answer.answerable == ("kettle" not in question)
    assert answer.results[0].source == source
    top = answer.results[0]
    assert top.url == f"https://help.northwind.example/{source.removesuffix('.md')}"
    assert top.title and top.text and top.dense_score is not None


def test_unrelated_questions_are_not_answerable(help_centre: KnowledgeBase) -> None:
    for question in ("what is the capital of Peru?", "who won the football world cup in 1998?"):
        assert not help_centre.search("northwind", question).answerable


def test_reingesting_a_changed_file_replaces_its_chunks(kb: KnowledgeBase) -> None:
    first = kb.ingest_bytes("northwind", "hours.md", b"# Opening hours\n\nThe shop opens at nine in the morning.\n")
    assert first.status == "added"
    assert kb.ingest_bytes("northwind", "hours.md", b"# Opening hours\n\nThe shop opens at nine in the morning.\n").status == "unchanged"
    second = kb.ingest_bytes("northwind", "hours.md", b"# Opening hours\n\nThe shop now opens at ten on weekdays.\n")
    assert second.status == "replaced" and second.document_id == first.document_id
    texts = [r.text for r in kb.search("northwind", "when does the shop open", k=5).results]
    assert any("ten on weekdays" in t for t in texts)
    assert not any("nine in the morning" in t for t in texts)
    assert len(kb.list_documents("northwind")) == 1


def test_deleting_a_document_removes_it_from_results_at_once(kb: KnowledgeBase) -> None:
    report = kb.ingest_bytes("northwind", "pets.md", b"# Pets\n\nDogs are welcome in our stores on a lead.\n")
    assert kb.search("northwind", "can I bring my dog to the store").results
    deleted = kb.delete("northwind", report.document_id or "")
    assert deleted is not None and deleted.source == "pets.md"
    assert kb.search("northwind", "can I bring my dog to the store").results == []
    assert kb.delete("northwind", "pets.md") is None


def test_deleted_chunks_never_surface_even_before_the_index_update(kb: KnowledgeBase) -> None:
    kb.ingest_bytes("northwind", "pets.md", b"# Pets\n\nDogs are welcome in our stores on a lead.\n")
    kb.store.delete_document("northwind", "pets.md")  # SQL only: the index still has the vectors
    assert kb.search("northwind", "can I bring my dog").results == []


def test_broken_upload_is_rejected_and_disturbs_nothing(kb: KnowledgeBase) -> None:
    kb.ingest_bytes("northwind", "pets.md", b"# Pets\n\nDogs are welcome in our stores on a lead.\n")
    before = kb.list_documents("northwind")
    for name, data in (("pets.md", b""), ("bad.pdf", b"%PDF-1.4 garbage"), ("x.txt", "\xff\xfe\xfa".encode("latin-1"))):
        report = kb.ingest_bytes("northwind", name, data)
        assert report.status == "rejected" and report.reason
    assert kb.list_documents("northwind") == before
    assert kb.search("northwind", "can I bring my dog to the store").results[0].source == "pets.md"


def test_every_file_type_and_folders_ingest(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Loyalty points\n\nEvery euro spent earns one loyalty point.\n")
    (folder / "b.html").write_text("<h1>Gift wrap</h1><p>Gift wrapping costs two euros per item.</p>")
    (folder / "c.txt").write_text("Store pickup\nCollect online orders in any store after two hours.\n")
    (folder / "sub" / "d.pdf").write_bytes(make_pdf(["Repairs", "Bikes bought from us are repaired free for a year."]))
    (folder / "e.csv").write_text("question,answer,url\nDo you price match?,No we do not.,https://h.example/pm\n")
    (folder / "f.json").write_text('[{"question": "Do you sell vouchers?", "answer": "Yes, from ten euros."}]')
    (folder / "ignored.png").write_bytes(b"\x89PNG")
    reports = kb.ingest_paths("northwind", [folder])
    assert sorted(r.source for r in reports) == ["a.md", "b.html", "c.txt", "d.pdf", "e.csv", "f.json"]
    assert all(r.status == "added" for r in reports)
    assert kb.search("northwind", "are bicycles repaired for free?").results[0].source == "d.pdf"
    faq = kb.search("northwind", "will you match a competitor's price?").results[0]
    assert faq.source == "e.csv" and faq.url == "https://h.example/pm" and faq.title == "Do you price match?"


def test_duplicate_passages_are_stored_once_per_tenant(kb: KnowledgeBase) -> None:
    text = b"# Returns\n\nYou can return items within 30 days.\n"
    kb.ingest_bytes("northwind", "returns.md", text)
    copy = kb.ingest_bytes("northwind", "returns-copy.md", text)
    assert copy.chunks == 0 and copy.duplicates == 1
    assert kb.ingest_bytes("globex", "returns.md", text).chunks == 1  # other tenants keep their own copy


def test_no_query_ever_returns_another_tenants_chunks(kb: KnowledgeBase) -> None:
    kb.ingest_bytes("northwind", "n.md", b"# Northwind returns\n\nNorthwind accepts returns within 30 days.\n")
    kb.ingest_bytes("globex", "g.md", b"# Globex returns\n\nGlobex accepts returns within 14 days.\n")
    for _ in range(3):
        northwind = kb.search("northwind", "how many days do I have to return something?", k=10)
        globex = kb.search("globex", "how many days do I have to return something?", k=10)
        assert {r.source for r in northwind.results} == {"n.md"}
        assert {r.source for r in globex.results} == {"g.md"}


def test_unknown_tenant_is_refused(kb: KnowledgeBase) -> None:
    with pytest.raises(UnknownTenantError):
        kb.ingest_bytes("nobody", "a.md", b"# A\n\ntext\n")
    assert kb.search("nobody", "anything").results == []


def test_faq_entries_get_a_question_key_that_follows_them(kb: KnowledgeBase, tmp_path: Path) -> None:
    from knowledge_base.tenant_index import QUESTION_KEY_OFFSET

    (tmp_path / "faq.csv").write_text("question,answer\nCan I change my delivery address?,"
                                      "Yes, until the parcel ships: open the order and edit it.\n"
                                      "Do you gift wrap?,We wrap any item for 3 EUR at checkout.\n")
    kb.ingest_paths("northwind", [tmp_path / "faq.csv"])
    ids = kb.indexes.snapshot("northwind").ids.tolist()
    chunks = {c.id for c in kb.store.chunks("northwind")}
    assert {i - QUESTION_KEY_OFFSET for i in ids if i >= QUESTION_KEY_OFFSET} == chunks
    answer = kb.search("northwind", "is it possible to send my order somewhere else?")
    assert answer.results and answer.results[0].title == "Can I change my delivery address?"
    assert all(r.chunk_id in chunks for r in answer.results)  # keys never surface as results
    kb.reindex("northwind")
    assert sorted(kb.indexes.snapshot("northwind").ids.tolist()) == sorted(ids)
    kb.delete("northwind", "faq.csv")
    assert kb.indexes.snapshot("northwind").size == 0


def test_faq_alternative_questions_are_keys_of_their_entry_through_reindex_edit_and_delete(
        kb: KnowledgeBase, tmp_path: Path) -> None:
    from knowledge_base.tenant_index import chunk_of, question_key

    faq = tmp_path / "faq.csv"
    faq.write_text("question,answer,alternatives\n"
                   "Can I change my delivery address?,\"Yes, until the parcel ships: open the order and edit it.\","
                   "\"I moved house, where will my parcel go? | Ship it to my office instead\"\n"
                   "Do you gift wrap?,We wrap any item for 3 EUR at checkout.,\n")
    kb.ingest_paths("northwind", [faq])
    [entry] = [c for c in kb.store.chunks("northwind") if c.title == "Can I change my delivery address?"]
    assert entry.alternatives == ("I moved house, where will my parcel go?", "Ship it to my office instead")
    ids = kb.indexes.snapshot("northwind").ids.tolist()
    assert {question_key(entry.id, j) for j in range(3)} <= set(ids)
    assert len(ids) == 2 + 3 + 1  # two texts, three keys of the entry, one of the other
    answer = kb.search("northwind", "please ship it to my office instead")
    assert answer.answerable and answer.results[0].chunk_id == entry.id
    assert {chunk_of(i) for i in ids} == {c.id for c in kb.store.chunks("northwind")}
    kb.reindex("northwind")
    assert sorted(kb.indexes.snapshot("northwind").ids.tolist()) == sorted(ids)
    # Changing only an alternative re-embeds that entry (new keys), the other entry is kept as it was.
    faq.write_text(faq.read_text().replace("Ship it to my office instead", "Send it to my mother's address"))
    [report] = kb.ingest_paths("northwind", [faq])
    assert report.status == "replaced"
    answer = kb.search("northwind", "could you send it to my mother's address?")
    assert answer.results[0].title == "Can I change my delivery address?"
    assert len(kb.indexes.snapshot("northwind").ids) == 6
    kb.delete("northwind", "faq.csv")
    assert kb.indexes.snapshot("northwind").size == 0


def test_reindex_rebuilds_from_sql(help_centre: KnowledgeBase) -> None:
    count = help_centre.reindex("northwind")
    assert count == sum(d.chunk_count for d in help_centre.list_documents("northwind"))
    assert help_centre.search("northwind", "I forgot my password").results[0].source == "reset-password.md"


def test_hostile_queries_do_not_crash(help_centre: KnowledgeBase) -> None:
    for query in ("", "   ", "🙂🙂🙂", "\x00\x01\x02", "x" * 100_000, "<script>alert(1)</script>", "¿Dónde está mi pedido?"):
        answer = help_centre.search("northwind", query)
        assert isinstance(answer.answerable, bool)


def test_a_folder_past_the_plans_document_limit_stores_what_fits(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("a.md", "b.md", "c.md"):
        (folder / name).write_text(f"# Topic {name}\n\nEverything about the topic of {name}.\n")
    reports = kb.ingest_paths("northwind", [folder], document_limit=2)
    assert [(r.source, r.status) for r in reports] == [("a.md", "added"), ("b.md", "added"), ("c.md", "rejected")]
    assert "c.md" in (reports[2].reason or "") and "includes 2 knowledge-base documents" in (reports[2].reason or "")
    assert sorted(d.source for d in kb.list_documents("northwind")) == ["a.md", "b.md"]
    assert all(r.source != "c.md" for r in kb.search("northwind", "topic of c.md", k=5).results)
    (folder / "a.md").write_text("# Topic a.md\n\nA new text about the topic of a.md.\n")
    assert kb.ingest_paths("northwind", [folder / "a.md"], document_limit=2)[0].status == "replaced"
