"""Knowledge-base command line.

    python -m knowledge_base ingest --tenant T PATH...         files or folders (md, html, txt, pdf, csv, json)
    python -m knowledge_base search --tenant T --k 5 --json "query"
    python -m knowledge_base list --tenant T
    python -m knowledge_base delete --tenant T DOCUMENT...     document id or source file name
    python -m knowledge_base reindex --tenant T

Exit status: 0 on success, 1 when some file was rejected or a document was not found, 2 on usage
errors (unknown tenant included).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from knowledge_base.document_store import UnknownTenantError


def _print_search(answer, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    verdict = "answerable" if answer.answerable else "not answerable"
    print(f"{verdict} (best cosine {answer.best_dense_score:.3f})")
    for i, hit in enumerate(answer.results, start=1):
        print(f"{i}. {hit.title}  [{hit.source}{' · ' + hit.url if hit.url else ''}]  score {hit.score:.4f}")
        print("   " + hit.text[:200].replace("\n", " "))


def main(argv: list[str] | None = None) -> int:
    """Run one knowledge-base command."""
    parser = argparse.ArgumentParser(prog="python -m knowledge_base", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ingest = sub.add_parser("ingest", help="add or replace documents")
    ingest.add_argument("paths", nargs="+", type=Path)
    search = sub.add_parser("search", help="search with citations")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=5)
    search.add_argument("--mode", choices=("hybrid", "rrf", "dense", "lexical"), default="hybrid")
    search.add_argument("--json", action="store_true")
    sub.add_parser("list", help="list documents")
    delete = sub.add_parser("delete", help="delete documents by id or source")
    delete.add_argument("documents", nargs="+")
    sub.add_parser("reindex", help="re-embed and rebuild the tenant's index")
    for command in sub.choices.values():
        command.add_argument("--tenant", required=True)
    args = parser.parse_args(argv)

    from gateway.migrate import upgrade_database
    from gateway.settings import get_settings
    from knowledge_base.factory import build_knowledge_base

    settings = get_settings()
    upgrade_database(settings.database_url)
    # The tenant is checked before the encoder loads (that takes seconds): a typo fails at once.
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.stores.tenant_store import TenantStore

    engine = create_db_engine(settings.database_url)
    sessions = create_session_factory(engine)
    if not TenantStore(sessions).exists(args.tenant):
        engine.dispose()
        print(f"unknown tenant {args.tenant!r}; create it with `python -m gateway tenants create {args.tenant} "
              f"--name \"…\" --template blank`", file=sys.stderr)
        return 2
    kb = build_knowledge_base(settings)
    try:
        if args.command == "ingest":
            # The plan's document limit holds here as in the admin API (replacing a document is always fine).
            from gateway.billing.plans import Unit
            from gateway.billing.usage_service import UsageService

            limit = UsageService(sessions).gauge_limit(args.tenant, Unit.KB_DOCUMENTS)
            if limit is not None:
                known = {d.source for d in kb.list_documents(args.tenant)}
                from knowledge_base.parsers import KINDS

                files = [f for p in args.paths for f in (sorted(x for x in p.rglob("*") if x.is_file()
                                                                  and x.suffix.lower() in KINDS)
                                                           if p.is_dir() else [p])]
                new = {f.name for f in files} - known  # a source is its file name
                if len(known) + len(new) > limit:
                    print(f"error: the plan includes {limit} knowledge-base documents and {len(known)} are in use; "
                          f"these {len(new)} new files do not fit (upgrade the plan or delete documents)",
                          file=sys.stderr)
                    return 2
            # The count above fails fast; the limit is enforced again inside each file's write.
            reports = kb.ingest_paths(args.tenant, args.paths, progress=True, document_limit=limit)
            for report in reports:
                if report.reason:  # the reason names the file already
                    print(f"{report.status:9} {report.reason}")
                else:
                    print(f"{report.status:9} {report.source} ({report.chunks} chunks, {report.duplicates} duplicates)")
            return 1 if any(r.status == "rejected" for r in reports) else 0
        if args.command == "search":
            _print_search(kb.search(args.tenant, args.query, args.k, args.mode), args.json)
            return 0
        if args.command == "list":
            for doc in kb.list_documents(args.tenant):
                print(f"{doc.id}  {doc.kind:8} {doc.chunk_count:4} chunks  {doc.source}  {doc.title}")
            return 0
        if args.command == "delete":
            missing = 0
            for key in args.documents:
                deleted = kb.delete(args.tenant, key)
                print(f"deleted {deleted.source}" if deleted else f"not found: {key}")
                missing += deleted is None
            return 1 if missing else 0
        if args.command == "reindex":
            print(f"re-indexed {kb.reindex(args.tenant, progress=True)} chunks")
            return 0
    except UnknownTenantError:
        print(f"unknown tenant {args.tenant!r}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 2


if __name__ == "__main__":
    sys.exit(main())
