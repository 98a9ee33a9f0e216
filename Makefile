# Switchboard: `make run` starts the platform, `make test` runs every test. Both set up what is missing.
SHELL := /bin/bash
export RASA_TELEMETRY_ENABLED := false
export PYTHONPATH := $(CURDIR)

RASA := .venv-rasa/bin/rasa
PY := .venv/bin/python
MODEL := models/northwind.tar.gz
# The classifier's code is part of the bot (its benchmarks live in bench/ and do not retrain it).
# The default bot is Northwind's assistant: the skills (bot/) + bot/tenants/northwind.yml, built by the same
# project builder every tenant's retraining uses.
BOT_FILES := bot/config.yml bot/domain.yml bot/skills.yml $(wildcard bot/data/*.yml) $(wildcard bot/sentiment/*.csv) \
  $(wildcard bot/templates/*/template.yml) bot/tenants/northwind.yml $(wildcard gateway/assistants/*.py) \
  $(wildcard nlu_models/*.py)

.PHONY: docs docs-serve run run-prod test setup setup-tests env train validate compose-check clean bench-nlu bench-nlu-defaults bench-nlu-precision bench-kb bench-load bench-tenants bench-turns bench-turns-versus

setup:  ## create / update both virtual environments and .env (idempotent)
	@bash scripts/setup.sh

setup-tests:  ## setup plus what only the tests need (Chromium, docker-compose), said before it is installed
	@SWITCHBOARD_TEST_TOOLS=1 bash scripts/setup.sh

env:
	@$(PY) scripts/ensure_env.py

train: setup $(MODEL)  ## (re)train the default bot when its data or config changed

$(MODEL): $(BOT_FILES)
	@$(PY) scripts/step.py "training the default bot (Rasa $(shell $(RASA) --version 2>/dev/null | head -1 | awk '{print $$NF}'))" \
	  var/logs/train.log -- bash scripts/train_default.sh
	@touch $(MODEL)

run: setup $(MODEL)  ## start gateway, Rasa and the action server; Ctrl-C stops them
	@$(PY) -m gateway.run

run-prod: setup $(MODEL)  ## production topology natively: PostgreSQL, Redis, RabbitMQ, 2 gateways + 2 Rasa behind proxies
	@$(PY) -m gateway.run --production

test: setup-tests $(MODEL)  ## unit, integration and end-to-end tests
	$(PY) -m pytest

validate: setup  ## rasa data validate on the default bot's project; fails on any warning skills.yml does not explain
	@$(PY) -m gateway assistant validate --from-file bot/tenants/northwind.yml --tenant northwind

docs: setup  ## build the documentation site (docs/, offline) into var/site/
	@$(PY) -m mkdocs build --strict --quiet && echo "documentation: var/site/index.html"

docs-serve: setup  ## serve the documentation site with live reload on http://127.0.0.1:8001
	$(PY) -m mkdocs serve --dev-addr 127.0.0.1:8001

compose-check: setup-tests
	docker-compose config -q

clean:
	rm -rf var models .pytest_cache

bench-nlu: setup $(MODEL)  ## NLU benchmark (not in CI): writes bench/results/nlu.{json,md}
	HF_HUB_OFFLINE=1 $(PY) -m bench.nlu --data $(or $(DATA),../shared/data) $(ARGS)
	HF_HUB_OFFLINE=1 $(PY) -m bench.nlu_defaults --data $(or $(DATA),../shared/data)

bench-nlu-defaults: setup $(MODEL)  ## the default recipe on k-shot draws vs frozen + LR, and the frustration trigger
	HF_HUB_OFFLINE=1 $(PY) -m bench.nlu_defaults --data $(or $(DATA),../shared/data) $(ARGS)

bench-nlu-precision: setup  ## a probe's heads on the fp32 and int8 encoders, held-out draws: bench/results/nlu_precision.*
	HF_HUB_OFFLINE=1 $(PY) -m bench.nlu_precision --data $(or $(DATA),../shared/data) $(ARGS)

bench-kb: setup  ## knowledge-base benchmarks (not in CI): bench/results/kb.{json,md} and kb_faq.{json,md}
	HF_HUB_OFFLINE=1 $(PY) -m bench.kb --data $(or $(DATA),../shared/data)
	HF_HUB_OFFLINE=1 $(PY) -m bench.kb_faq --data $(or $(DATA),../shared/data)

bench-load: setup $(MODEL)  ## turn cost, then load (not in CI): embedded, production topology and raw Rasa; bench/results/{turn_cost,load}.*
	HF_HUB_OFFLINE=1 $(PY) -m bench.turn_cost
	HF_HUB_OFFLINE=1 $(PY) -m bench.load $(if $(DURATION),--duration $(DURATION))

bench-tenants: setup $(MODEL)  ## tenants per Rasa process and a cold tenant's first turn: bench/results/tenant_capacity.*
	HF_HUB_OFFLINE=1 $(PY) -m bench.tenant_capacity $(ARGS)

bench-turns: setup $(MODEL)  ## a turn's cost by conversation length, CPU per process, cold start: bench/results/turn_cost.*
	HF_HUB_OFFLINE=1 $(PY) -m bench.turn_cost $(ARGS)

bench-turns-versus: setup $(MODEL)  ## CPU per turn against the commit the turn-cost issue measured (BASELINE=ref): bench/results/turn_cost_versus.*
	$(PY) -m bench.turn_cost_versus $(if $(BASELINE),--baseline $(BASELINE),)
