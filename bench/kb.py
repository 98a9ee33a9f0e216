"""Knowledge-base benchmark: retrieval quality on real customer queries, and index scale.

    make bench-kb        # or: python -m bench.kb --data ../shared/data

1. Quality: the 77 help articles in ``bench/kb_articles/`` (one per BANKING77 intent, written for
   this project) are ingested through the real ingestion path; the 3,080 BANKING77 test queries
   are searched; relevant = the article of the query's intent. Recall@1, Recall@5 and MRR@10 for
   BM25 alone, dense flat, dense approximate (HNSW, IVF) and hybrid, in the same run. The
   answerability threshold is checked against CLINC150's out-of-scope test queries.
2. Scale: 10k / 100k / 1M random and clustered 384-d unit vectors: build time, memory, single-query
   p50 / p99 latency on one thread, recall@10 of the approximate indexes against exact search.

Writes ``bench/results/kb.json`` and ``bench/results/kb.md`` (after every step, so a partial run
still leaves results).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from tqdm.auto import tqdm

from knowledge_base.vector_index import FaissVectorIndex

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_ROOT / "bench" / "results"
ARTICLES = PROJECT_ROOT / "bench" / "kb_articles"
DIM = 384


# ------------------------------------------------------------------------------------------ quality
def _queries(data: Path) -> list[tuple[str, str]]:
    with (data / "banking77" / "test.csv").open(encoding="utf-8") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def _oos_queries(data: Path) -> list[str]:
    return [text for text, _ in json.loads((data / "clinc150" / "data_full.json").read_text())["oos_test"]]


def quality(data: Path) -> dict[str, Any]:
    """Recall@1 / Recall@5 / MRR@10 per retrieval mode, plus answerability at several thresholds."""
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.migrate import upgrade_database
    from gateway.stores.tenant_store import TenantStore
    from knowledge_base.document_store import KnowledgeDocumentStore
    from knowledge_base.embedder import SentenceEmbedder
    from knowledge_base.retriever import HybridRetriever
    from knowledge_base.service import KnowledgeBase
    from knowledge_base.tenant_index import TenantIndexStore

    queries = _queries(data)
    oos = _oos_queries(data)
    embedder = SentenceEmbedder()
    results: dict[str, Any] = {"articles": 77, "queries": len(queries), "oos_queries": len(oos), "modes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/kb.db"
        upgrade_database(url)
        sessions = create_session_factory(create_db_engine(url))
        TenantStore(sessions).ensure_tenant("bench", "Benchmark bank")
        stores = {kind: TenantIndexStore(Path(tmp) / kind, embedder.dimension, kind=kind) for kind in ("flat", "hnsw", "ivf")}
        kb = KnowledgeBase(KnowledgeDocumentStore(sessions), stores["flat"], embedder)
        started = time.perf_counter()
        reports = kb.ingest_paths("bench", [ARTICLES], progress=True)
        results["ingest_seconds"] = round(time.perf_counter() - started, 2)
        assert all(r.status == "added" for r in reports), [r for r in reports if r.status != "added"]
        chunks = kb.store.chunks("bench")
        intent_of_doc = {}
        for article in ARTICLES.glob("*.md"):
            intent = next(line.split(":", 1)[1].strip() for line in article.read_text().splitlines() if line.startswith("intent:"))
            intent_of_doc[article.name] = intent
        intent_of_chunk = {c.id: intent_of_doc[c.source] for c in chunks}
        texts = [c.search_text for c in chunks]
        vectors = embedder.embed(texts)
        for kind in ("hnsw", "ivf"):
            stores[kind].replace_all("bench", [c.id for c in chunks], vectors, texts)
        snapshots = {kind: store.snapshot("bench") for kind, store in stores.items()}
        query_vectors = embedder.embed([q for q, _ in queries], batch_size=128, progress=True)
        retriever = HybridRetriever()
        plans = {"bm25": ("flat", "lexical"), "dense_flat": ("flat", "dense"), "dense_hnsw": ("hnsw", "dense"),
                 "dense_ivf": ("ivf", "dense"), "hybrid_rrf": ("flat", "rrf"), "hybrid": ("flat", "hybrid")}
        for name, (kind, mode) in plans.items():
            ranks = []
            started = time.perf_counter()
            for (text, intent), vector in zip(tqdm(queries, desc=name, leave=False), query_vectors):
                ranking = retriever.rank(snapshots[kind], vector, text, 10, mode)  # type: ignore[arg-type]
                found = [intent_of_chunk[c.chunk_id] for c in ranking.chunks]
                ranks.append(found.index(intent) + 1 if intent in found else None)
            elapsed = time.perf_counter() - started
            results["modes"][name] = {
                "recall@1": float(np.mean([r == 1 for r in ranks])),
                "recall@5": float(np.mean([r is not None and r <= 5 for r in ranks])),
                "mrr@10": float(np.mean([1.0 / r if r else 0.0 for r in ranks])),
                "ms_per_query": round(1000 * elapsed / len(queries), 3),
            }
            write_report_partial(results, "quality")
        # Answerability: best cosine of in-domain queries vs out-of-scope ones.
        oos_vectors = embedder.embed(oos, batch_size=128)
        in_best = snapshots["flat"].dense.search(query_vectors, 1)[0][:, 0]  # type: ignore[union-attr]
        oos_best = snapshots["flat"].dense.search(oos_vectors, 1)[0][:, 0]  # type: ignore[union-attr]
        results["answerability"] = [
            {"threshold": t, "in_domain_answered": float(np.mean(in_best >= t)), "oos_refused": float(np.mean(oos_best < t))}
            for t in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
        ]
        # The rule the bot uses: strong cosine, or a weaker one that BM25 supports.
        in_rule = [retriever.rank(snapshots["flat"], v, q, 5) for (q, _), v in zip(queries, query_vectors)]  # type: ignore[arg-type]
        oos_rule = [retriever.rank(snapshots["flat"], v, q, 5) for q, v in zip(oos, oos_vectors)]  # type: ignore[arg-type]
        results["answerability_rule"] = {
            "answer_threshold": retriever.answer_threshold, "strong_threshold": retriever.strong_threshold,
            "lexical_support": retriever.lexical_support,
            "in_domain_answered": float(np.mean([r.answerable for r in in_rule])),
            "in_domain_answered_correctly": float(np.mean([
                r.answerable and intent_of_chunk[r.chunks[0].chunk_id] == intent for r, (_, intent) in zip(in_rule, queries)])),
            "oos_refused": float(np.mean([not r.answerable for r in oos_rule])),
        }
    return results


# ------------------------------------------------------------------------------------------ scale
def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix, dtype=np.float32)


def make_vectors(n: int, distribution: str, seed: int) -> np.ndarray:
    """``n`` unit vectors: isotropic Gaussian (random) or a mixture of 1,000 clusters (clustered)."""
    rng = np.random.default_rng(seed)
    if distribution == "random":
        return _unit(rng.standard_normal((n, DIM), dtype=np.float32))
    centres = rng.standard_normal((1000, DIM), dtype=np.float32)
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, 100_000):  # in blocks: bounded temporary memory
        stop = min(n, start + 100_000)
        out[start:stop] = centres[rng.integers(0, 1000, stop - start)] + 0.6 * rng.standard_normal((stop - start, DIM), dtype=np.float32)
    return _unit(out)


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def scale(sizes: list[int], kinds: list[str], queries: int = 500) -> list[dict[str, Any]]:
    """Build each index kind on each size and distribution; time single queries on one thread."""
    rows: list[dict[str, Any]] = []
    for distribution in ("random", "clustered"):
        for n in sizes:
            vectors = make_vectors(n, distribution, seed=1)
            probes = make_vectors(queries, distribution, seed=2)  # same distribution, not in the index
            ids = np.arange(n, dtype=np.int64)
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            exact = FaissVectorIndex.build(ids, vectors, "flat")
            _, truth = exact.search(probes, 10)  # batched, all threads: the ground truth
            for kind in kinds:
                settings = {"hnsw": [("ef_search", v) for v in (64, 128, 256, 512)], "ivf": [("nprobe", v) for v in (16, 64, 256)],
                            "flat": [(None, None)]}[kind]
                faiss.omp_set_num_threads(os.cpu_count() or 1)
                before = _rss_mb()
                started = time.perf_counter()
                index = exact if kind == "flat" else FaissVectorIndex.build(ids, vectors, kind, ef_construction=40)
                build_s = time.perf_counter() - started
                memory = len(faiss.serialize_index(index._index)) / 1e6  # noqa: SLF001 - bytes of the index itself
                rss = _rss_mb() - before
                faiss.omp_set_num_threads(1)
                for knob, value in settings:
                    if knob == "ef_search":
                        faiss.downcast_index(index._index.index).hnsw.efSearch = value  # noqa: SLF001
                    elif knob == "nprobe":
                        index._index.nprobe = value  # noqa: SLF001
                    timings, found = [], []
                    for probe in probes:
                        t0 = time.perf_counter()
                        _, got = index.search(probe, 10)
                        timings.append((time.perf_counter() - t0) * 1000)
                        found.append(got[0])
                    recall = float(np.mean([len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth)]))
                    row = {"distribution": distribution, "n": n, "kind": kind, "knob": knob, "value": value,
                           "build_s": round(build_s, 2), "index_mb": round(memory, 1), "rss_delta_mb": round(rss, 1),
                           "p50_ms": round(float(np.percentile(timings, 50)), 3),
                           "p99_ms": round(float(np.percentile(timings, 99)), 3), "recall@10": round(recall, 4)}
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    write_report_partial(rows, "scale")  # a long run leaves results as it goes
                if index is not exact:
                    del index
            del exact, vectors
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return rows


# ------------------------------------------------------------------------------------------ report
_STATE: dict[str, Any] = {}


def write_report_partial(part: Any, key: str) -> None:
    """Remember a finished part and rewrite the report."""
    _STATE[key] = part
    write_report(_STATE)


def write_report(results: dict[str, Any]) -> None:
    """kb.json and a markdown summary next to it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "kb.json").write_text(json.dumps(results, indent=2))
    lines = ["# Knowledge-base benchmark", ""]
    if "meta" in results:
        meta = results["meta"]
        lines += [f"Measured {meta['measured_at']} on commit `{meta['commit']}`, {meta['machine']}; "
                  f"encoder all-MiniLM-L6-v2 (packaged), FAISS {meta['faiss']}.", ""]
    quality_part = results.get("quality")
    if quality_part:
        lines += ["## Retrieval quality: BANKING77 test queries against 77 help articles", "",
                  f"Measured on commit `{results.get('quality_commit', '?')}`.", "",
                  f"{quality_part['queries']} queries, one article per intent written for this project "
                  f"(`bench/kb_articles/`), ingested through the real ingestion path in {quality_part.get('ingest_seconds', '?')} s.", "",
                  "hybrid = cosine + 0.12 · BM25 / best BM25 of the query (the weight chosen on BANKING77 training queries); "
                  "hybrid_rrf = reciprocal rank fusion (k = 60) of the same two rankings.", "",
                  "| retrieval | Recall@1 | Recall@5 | MRR@10 | ms / query |", "|---|---|---|---|---|"]
        for name, m in quality_part["modes"].items():
            lines.append(f"| {name} | {100 * m['recall@1']:.2f} | {100 * m['recall@5']:.2f} | {m['mrr@10']:.4f} | {m['ms_per_query']} |")
        if "answerability" in quality_part:
            lines += ["", "Answerability threshold (best dense cosine): share of in-domain BANKING77 queries answered vs "
                      f"share of {quality_part['oos_queries']} CLINC150 out-of-scope queries refused:", "",
                      "| threshold | in-domain answered | out-of-scope refused |", "|---|---|---|"]
            for row in quality_part["answerability"]:
                lines.append(f"| {row['threshold']:.2f} | {100 * row['in_domain_answered']:.1f} | {100 * row['oos_refused']:.1f} |")
        rule = quality_part.get("answerability_rule")
        if rule:
            tier = (f", or ≥ {rule['answer_threshold']} with the passage in BM25's top {rule['lexical_support']}"
                    if rule["lexical_support"] else "; the BM25-supported tier is off")
            lines += ["", f"The bot's rule (cosine ≥ {rule['strong_threshold']}{tier}): answers {100 * rule['in_domain_answered']:.1f} % of in-domain queries "
                      f"({100 * rule['in_domain_answered_correctly']:.1f} % with the right article) and refuses "
                      f"{100 * rule['oos_refused']:.1f} % of out-of-scope ones."]
    if results.get("scale"):
        lines += ["", "## Index scale: 384-d unit vectors, single query, one thread", "",
                  f"Measured on commit `{results.get('scale_commit', '?')}`. Latency: one query at a time, FAISS on one "
                  "thread, after building; recall@10 against exact search of the same 500 queries.", "",
                  "| data | n | index | setting | build s | index MB | p50 ms | p99 ms | recall@10 vs flat |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in results["scale"]:
            setting = f"{r['knob']}={r['value']}" if r["knob"] else "exact"
            lines.append(f"| {r['distribution']} | {r['n']:,} | {r['kind']} | {setting} | {r['build_s']} | {r['index_mb']} | "
                         f"{r['p50_ms']} | {r['p99_ms']} | {r['recall@10']} |")
    if results.get("notes"):
        lines += ["", *results["notes"]]
    (RESULTS / "kb.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results."""
    parser = argparse.ArgumentParser(prog="python -m bench.kb")
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--kinds", nargs="*", default=["flat", "hnsw", "ivf"])
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_quality and not args.data.exists():
        print(f"benchmark data not found at {args.data} (use --data)", file=sys.stderr)
        return 2
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
    _STATE["meta"] = {"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit or "unknown",
                      "machine": f"{platform.machine()}, {os.cpu_count()} cores", "faiss": faiss.__version__}
    previous = RESULTS / "kb.json"
    if previous.exists():  # a partial run keeps the other part, with the commit it was measured on
        earlier = json.loads(previous.read_text())
        for part in ("quality", "scale"):
            if part in earlier:
                _STATE[part] = earlier[part]
                _STATE[part + "_commit"] = earlier.get(part + "_commit", earlier.get("meta", {}).get("commit"))
    if not args.skip_quality:
        _STATE["quality_commit"] = _STATE["meta"]["commit"]
        write_report_partial(quality(args.data), "quality")
    if not args.skip_scale:
        _STATE["scale_commit"] = _STATE["meta"]["commit"]
        write_report_partial(scale(args.sizes, args.kinds), "scale")
    print((RESULTS / "kb.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
