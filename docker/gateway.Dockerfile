# Gateway: FastAPI on Python 3.11 (same pinned environment as .venv).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements/app.in requirements/app.lock.txt requirements/
RUN pip install --no-cache-dir -r requirements/app.in -c requirements/app.lock.txt
COPY gateway/ gateway/
COPY connectors/ connectors/
COPY knowledge_base/ knowledge_base/
RUN useradd --system --uid 10001 switchboard && mkdir -p /app/var/kb && chown -R switchboard /app/var
USER switchboard
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
CMD ["sh", "-c", "python -m gateway migrate && python -m gateway seed-demo && python -m knowledge_base ingest --tenant northwind knowledge_base/help_centre; python -m gateway serve"]
