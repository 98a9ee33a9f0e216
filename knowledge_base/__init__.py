"""Per-tenant knowledge base: ingestion, chunking, embeddings, FAISS + BM25 search with citations."""
