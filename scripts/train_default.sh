#!/usr/bin/env bash
# Build Northwind's Rasa project (bot/ skills + bot/tenants/northwind.yml, with the project builder every
# tenant's retraining uses) and train it into models/northwind.tar.gz. make train runs this quietly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export RASA_TELEMETRY_ENABLED=false PYTHONPATH="$PWD" HF_HUB_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/python -m gateway assistant build --from-file bot/tenants/northwind.yml --tenant northwind var/build/northwind
.venv-rasa/bin/rasa train --config var/build/northwind/config.yml --domain var/build/northwind/domain.yml \
  --data var/build/northwind/data --out models --fixed-model-name northwind
# Score the model on the project's held-out sets, as the learning loop scores its versions: the models
# page then shows v1's metrics, and the first retrain is compared with them.
.venv/bin/python -m gateway assistant score models/northwind.tar.gz --project var/build/northwind \
  --out models/northwind.metrics.json
