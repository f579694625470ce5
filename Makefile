# ECAP — every entry point a user or CI needs. Run `make help` for the list.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ECAP := $(BIN)/ecap
DEMO_RATE ?= 500
DEMO_SECONDS ?= 60
DEMO_CUSTOMERS ?= 5000
ORDERS ?=
SPARK_ORDERS = $(if $(ORDERS),--orders $(ORDERS))
RETENTION_HOURS ?= 168

.PHONY: help venv install lint format test test-unit test-integration demo up down status clean \
	spark-ingest spark-silver spark-rfm spark-clv spark-churn spark-cohorts spark-all lake-maintain

help: ## Show the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install ECAP with its dev tools

install: venv

lint: venv ## ruff + mypy + the import contracts of docs/architecture.md
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: venv ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: venv ## Unit and integration tests (starts its own brokers; uses ECAP_POSTGRES_DSN/ECAP_REDIS_URL if set)
	$(BIN)/pytest -q tests

test-unit: venv ## Unit tests only (no services)
	$(BIN)/pytest -q tests/unit

test-integration: venv ## Integration tests only
	$(BIN)/pytest -q tests/integration

up: venv ## Start the embedded broker, PostgreSQL and Redis
	$(ECAP) up

down: venv ## Stop the workers and the embedded stack
	-$(ECAP) workers stop
	$(ECAP) down

status: venv ## Show the embedded stack
	$(ECAP) status

demo: venv ## Embedded stack, two years of order history, the stream workers, a minute of live traffic, the Spark chain, then the REST API; prints the live views, the lake tables, the API and its demo users
	$(ECAP) up
	$(ECAP) db migrate
	$(ECAP) topics create
	$(ECAP) generate history --customers $(DEMO_CUSTOMERS) --days 730 --seed 7 --end now --to-kafka
	$(ECAP) workers start transactions user-events alerts
	$(ECAP) generate stream --rate $(DEMO_RATE) --duration $(DEMO_SECONDS) --start now --seed 7
	$(ECAP) topics list
	$(BIN)/python -m spark_jobs all
	$(ECAP) users demo
	$(ECAP) workers start api
	$(ECAP) workers status
	@echo
	@echo "Live views: the URLs above (docs/api-live.md). Lake tables: the paths above (docs/batch.md)."
	@echo "REST API: the URL above, documented in docs/api.md; log in as a demo user as shown above."
	@echo "'make spark-all' reruns the chain on what has arrived since; 'ecap workers stop' stops the workers, 'make down' the stack."

spark-ingest: venv ## Kafka topics -> Delta bronze tables (incremental, idempotent)
	$(BIN)/python -m spark_jobs ingest

spark-silver: venv ## Bronze -> silver orders (dedupe, refunds netted, one currency, margin)
	$(BIN)/python -m spark_jobs silver $(SPARK_ORDERS)

spark-rfm: venv ## Gold RFM scores and segments (ORDERS=file.csv|.parquet: your own history)
	$(BIN)/python -m spark_jobs rfm $(SPARK_ORDERS)

spark-clv: venv ## Gold CLV: historical and BG/NBD + Gamma-Gamma (reads silver)
	$(BIN)/python -m spark_jobs clv $(SPARK_ORDERS)

spark-churn: venv ## Gold churn model, metrics and scores (reads silver)
	$(BIN)/python -m spark_jobs churn $(SPARK_ORDERS)

spark-cohorts: venv ## Gold cohort matrix and daily revenue (reads silver)
	$(BIN)/python -m spark_jobs cohorts $(SPARK_ORDERS)

spark-all: venv ## ingest -> silver -> every gold job
	$(BIN)/python -m spark_jobs all $(SPARK_ORDERS)

lake-maintain: venv ## Compact and vacuum every lake table (RETENTION_HOURS=168)
	$(BIN)/python -m spark_jobs maintain --retention-hours $(RETENTION_HOURS)

clean: ## Remove caches (keeps .venv and .ecap)
	rm -rf .pytest_cache .mypy_cache .ruff_cache
