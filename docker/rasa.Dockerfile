# Rasa 3.6.21 on Python 3.10 with the NLU serving runtime; the bot is trained into the image, so
# one image is one reproducible bot version.
FROM python:3.10-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RASA_TELEMETRY_ENABLED=false PYTHONPATH=/app
WORKDIR /app
COPY requirements/rasa.in requirements/rasa.lock.txt requirements/
RUN pip install --no-cache-dir -r requirements/rasa.in -c requirements/rasa.lock.txt
COPY connectors/__init__.py connectors/rasa_channel.py connectors/rasa_lock_store.py connectors/
COPY bot/ bot/
RUN rasa train --config bot/config.yml --domain bot/domain.yml --data bot/data \
      --out models --fixed-model-name northwind
RUN useradd --system --uid 10001 switchboard && chown -R switchboard /app
USER switchboard
EXPOSE 5005
CMD ["sh", "-c", "exec rasa run --model models/northwind.tar.gz --enable-api --auth-token=\"$SWITCHBOARD_RASA_TOKEN\" --interface 0.0.0.0 --port 5005 --endpoints bot/endpoints.production.yml --credentials bot/credentials.yml"]
