"""Knowledge-base administration: upload, list, search, re-index and delete documents.

    PUT    /api/v1/admin/tenants/{tenant}/kb/documents/{filename}   body = the file's bytes (?url= optional)
    GET    /api/v1/admin/tenants/{tenant}/kb/documents
    DELETE /api/v1/admin/tenants/{tenant}/kb/documents/{document}  id or file name
    POST   /api/v1/admin/tenants/{tenant}/kb/reindex
    GET    /api/v1/admin/tenants/{tenant}/kb/search?q=…&k=5&mode=hybrid
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gateway.api.tenant_admin_auth import require_tenant_admin
from gateway.api.deps import get_services
from gateway.api.errors import ApiError
from gateway.billing.plans import Unit
from gateway.services import GatewayServices
from knowledge_base.document_store import DocumentLimitError, DocumentRecord
from knowledge_base.parsers import DocumentError, kind_of
from knowledge_base.service import KnowledgeBase

PREFIX = "/api/v1/admin/tenants"
router = APIRouter(prefix=PREFIX, tags=["admin: knowledge base"], dependencies=[Depends(require_tenant_admin)])


def _document(record: DocumentRecord) -> dict[str, Any]:
    data = asdict(record)
    data["updated_at"] = record.updated_at.isoformat()
    return data


async def tenant_knowledge_base(tenant: str, services: GatewayServices = Depends(get_services)) -> KnowledgeBase:
    """Dependency: the knowledge base, once the path's tenant is known to exist (404 otherwise)."""
    if not services.tenants.exists(tenant):
        raise ApiError(404, "unknown_tenant", f"no tenant {tenant!r}")
    return await run_in_threadpool(services.knowledge_base)


@router.put("/{tenant}/kb/documents/{filename}")
async def upload_document(
    tenant: str, filename: str, request: Request, url: str | None = Query(default=None, max_length=1000),
    kb: KnowledgeBase = Depends(tenant_knowledge_base),
) -> dict[str, Any]:
    """Add or replace one document (the file name is its identity within the tenant)."""
    try:
        kind_of(filename)
    except DocumentError as exc:
        raise ApiError(415, "unsupported_document", str(exc)) from None
    services: GatewayServices = request.app.state.services
    documents = await run_in_threadpool(kb.list_documents, tenant)
    replacing = any(d.source == filename for d in documents)
    limit = await run_in_threadpool(services.usage.gauge_limit, tenant, Unit.KB_DOCUMENTS)
    if not replacing and limit is not None and len(documents) >= limit:
        raise _plan_limit(DocumentLimitError(limit, len(documents)))
    data = await request.body()
    try:
        # The limit is checked again inside the write's transaction: uploads racing for the last
        # place cannot both take it.
        report = await run_in_threadpool(kb.ingest_bytes, tenant, filename, data, url, limit)
    except DocumentLimitError as exc:
        raise _plan_limit(exc) from None
    if report.status == "rejected":
        status = 413 if "limit" in (report.reason or "") else 422
        raise ApiError(status, "invalid_document", report.reason or "the document was rejected")
    return report.to_dict()


def _plan_limit(error: DocumentLimitError) -> ApiError:
    return ApiError(402, "plan_limit", f"{error}; upgrade the plan or delete one to add more",
                    limit=error.limit, in_use=error.in_use)


@router.get("/{tenant}/kb/documents")
async def list_documents(tenant: str, kb: KnowledgeBase = Depends(tenant_knowledge_base)) -> dict[str, Any]:
    """The tenant's documents."""
    documents = await run_in_threadpool(kb.list_documents, tenant)
    return {"documents": [_document(d) for d in documents]}


@router.delete("/{tenant}/kb/documents/{document}", status_code=204)
async def delete_document(tenant: str, document: str, kb: KnowledgeBase = Depends(tenant_knowledge_base)) -> Response:
    """Delete a document by id or file name; it leaves search results at once."""
    if await run_in_threadpool(kb.delete, tenant, document) is None:
        raise ApiError(404, "unknown_document", f"no document {document!r} in tenant {tenant!r}")
    return Response(status_code=204)


@router.post("/{tenant}/kb/reindex")
async def reindex(tenant: str, kb: KnowledgeBase = Depends(tenant_knowledge_base)) -> dict[str, Any]:
    """Re-embed every chunk and swap in a fresh index."""
    return {"chunks": await run_in_threadpool(kb.reindex, tenant)}


@router.get("/{tenant}/kb/search")
async def search(
    tenant: str, q: str = Query(min_length=1, max_length=2000), k: int = Query(default=5, ge=1, le=50),
    mode: str = Query(default="hybrid", pattern="^(hybrid|rrf|dense|lexical)$"),
    kb: KnowledgeBase = Depends(tenant_knowledge_base),
) -> dict[str, Any]:
    """Search with citations, as the bot would."""
    answer = await run_in_threadpool(kb.search, tenant, q, k, mode)
    return answer.to_dict()
