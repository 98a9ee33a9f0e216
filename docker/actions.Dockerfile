# Action server: rasa-sdk on Python 3.11 (same pinned environment as .venv).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements/app.in requirements/app.lock.txt requirements/
RUN pip install --no-cache-dir -r requirements/app.in -c requirements/app.lock.txt
COPY actions/ actions/
COPY gateway/ gateway/
COPY knowledge_base/ knowledge_base/
RUN useradd --system --uid 10001 switchboard && mkdir -p /app/var/kb && chown -R switchboard /app/var
USER switchboard
EXPOSE 5055
CMD ["python", "-m", "actions.server", "--port", "5055"]
