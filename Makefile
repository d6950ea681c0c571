# Task runner for the stack. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

COMPOSE ?= docker compose
# TLS=on adds compose.tls.yaml (HTTPS at nginx, with the certificates make certs writes);
# TLS=acme adds compose.acme.yaml after it (the certificate from an ACME server, renewed).
TLS ?= off
TLS_FILES = $(if $(filter on acme,$(TLS)),-f compose.tls.yaml)$(if $(filter acme,$(TLS)), -f compose.acme.yaml)
# The development stack: the two files `docker compose` alone reads, compose.override.yaml
# holding the development loop (bind-mounted app, gunicorn's reload).
# compose.db.yaml (Postgres behind PgBouncer) joins them while it exists: an app without a
# database deletes that file, and every target runs the stack without one (docs/database.md).
DB_FILES = $(wildcard compose.db.yaml)
COMPOSE_FILES ?= compose.yaml $(DB_FILES) compose.override.yaml
DEV_COMPOSE = $(COMPOSE) $(addprefix -f ,$(COMPOSE_FILES)) $(TLS_FILES)
PROD_COMPOSE = $(COMPOSE) -f compose.yaml $(addprefix -f ,$(DB_FILES)) -f compose.prod.yaml $(TLS_FILES)
# The names make certs writes a certificate for (and NGINX_SERVER_NAMES must list).
CERT_NAMES ?= localhost
CERT_DIR ?= certs
# Compose reads .env only when no --env-file is given: name it too, before the digests.
PUSHED_COMPOSE = $(COMPOSE) -f compose.yaml -f deploy/compose.pushed.yaml $(if $(wildcard .env),--env-file .env) --env-file $(or $(PUSHED_IMAGES_FILE),deploy/pushed-images.env)
# The acme image builds on web's base image: PYTHON_IMAGE from the shell or from .env, as
# compose reads it, else the tag services/web/Dockerfile names (the one place it is written).
ifndef PYTHON_IMAGE
PYTHON_IMAGE := $(or $(shell sed -n 's/^PYTHON_IMAGE=//p' .env 2>/dev/null | tail -n 1),$(shell scripts/dockerfile-arg.sh services/web/Dockerfile PYTHON_IMAGE))
endif
export PYTHON_IMAGE
VENV := .venv
PYTHON := $(VENV)/bin/python
LINT_BIN := .venv-lint/bin
DOCKERFILES := services/web/Dockerfile services/nginx/Dockerfile services/acme/Dockerfile services/db/Dockerfile services/prometheus/Dockerfile services/nginx-exporter/Dockerfile $(wildcard bench/*/Dockerfile) $(wildcard .ci/stand-ins/*.Dockerfile) $(wildcard tests/swarm/*.Dockerfile) tests/acme/pebble.Dockerfile
SHELL_SCRIPTS = $(shell git ls-files '*.sh' '*.envsh') .ci/run
N ?= 3
# The version a rollout bakes into the web image: the commit, marked when uncommitted.
APP_VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: migrate db-password db-backup db-restore
.PHONY: help up doctor down logs ps build scale push up-pushed swarm-deploy swarm-update swarm-rollback swarm-remove swarm-ps test-swarm test-arm64 rollout nginx-reload acme-renew certs observability test test-unit test-rules test-integration test-worker-counts prod-up prod-down \
        docker-host lock clean bench bench-quick bench-tuning bench-growth lint lint-python lint-dockerfiles lint-shell lint-compose lint-workflows \
        ecs-render ecs-render-migration ecs-validate ecs-migrate ecs-deploy ecs-wait-stable

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

up: doctor db-password ## Check the machine, build and start the stack on http://127.0.0.1:8080 (TLS=on: and https://localhost:8443), migrate its database, returning when it serves
	@echo "make up: building the images and starting the stack; the first build takes a few minutes"
	$(DEV_COMPOSE) up --build --detach --wait
	@COMPOSE="$(DEV_COMPOSE)" scripts/migrate.sh
	@echo "make up: the live page is on http://$$($(DEV_COMPOSE) port nginx 8080 | sed 's/^0\.0\.0\.0:/127.0.0.1:/')/ (make logs follows the logs, make down stops it)"

doctor: ## Check Docker, Compose, buildx, the port, the base images and disk space, saying what to do for each problem
	@scripts/doctor.sh

# The containers go with their anonymous volumes (the scratch paths the images declare, see
# services/*/Dockerfile), which Docker would otherwise keep; the named ones (the database's
# data) stay, as `down` without --volumes keeps them.
down: ## Stop the stack and remove its containers, network and scratch volumes; the database's data stays
	$(DEV_COMPOSE) --profile observability rm --stop --force --volumes
	$(DEV_COMPOSE) --profile observability down --remove-orphans

db-password: ## Write a random database password to secrets/db_password, unless one is there (make up does)
	@$(if $(DB_FILES),scripts/db-password.sh,true)

migrate: db-password ## Run the database migrations once, in a one-off container of the web image, under a lock
	COMPOSE="$(DEV_COMPOSE)" scripts/migrate.sh

db-backup: ## Dump the database to FILE (default backups/db-<time>.dump) while the stack serves
	COMPOSE="$(DEV_COMPOSE)" FILE="$(FILE)" scripts/db-backup.sh

db-restore: ## Restore a dump from make db-backup: make db-restore FILE=backups/db-....dump
	COMPOSE="$(DEV_COMPOSE)" FILE="$(FILE)" scripts/db-restore.sh

logs: ## Follow the logs of every container
	$(DEV_COMPOSE) logs --follow --tail=100

ps: ## Show the containers and their health
	$(DEV_COMPOSE) ps

build: ## Build the web and nginx images
	$(DEV_COMPOSE) build

scale: ## Run N web replicas (make scale N=3); nginx follows without a restart
	$(DEV_COMPOSE) up --detach --wait --no-recreate --scale web=$(N) web

push: ## Build both images, tag them with the commit (+ RELEASE_TAG), push to REGISTRY, write digests to deploy/pushed-images.env
	COMPOSE="$(COMPOSE)" scripts/push.sh

up-pushed: ## Run the stack from the images make push wrote, pulled by digest, never built
	$(PUSHED_COMPOSE) up --no-build --detach --wait

# Docker Swarm (deploy/swarm/): against the swarm the Docker CLI talks to (DOCKER_HOST or
# the current context must be a manager). See docs/deploy.md.
SWARM_STACK_NAME ?= flask-stack
.PHONY: swarm-push-db swarm-migrate

swarm-push-db: ## Push the database's images (Postgres, PgBouncer) for the swarm, apart from the app's: REGISTRY=host[:port]
	deploy/swarm/push-db.sh

swarm-deploy: db-password ## Deploy (or scale: WEB_REPLICAS=N) the stack and its database on a swarm, migrating first, with the digests make push wrote
	SWARM_STACK_NAME="$(SWARM_STACK_NAME)" deploy/swarm/deploy.sh

swarm-update: ## Migrate (stopping, the old release serving, if that fails), then roll out the digests make push wrote last: one web task at a time, start-first, self-rolling-back (then failing)
	SWARM_STACK_NAME="$(SWARM_STACK_NAME)" deploy/swarm/deploy.sh

swarm-migrate: ## Run the pushed web image's migrations once on the swarm, a one-off job (swarm-deploy and swarm-update do it first)
	SWARM_STACK_NAME="$(SWARM_STACK_NAME)" deploy/swarm/migrate.sh

swarm-rollback: ## Put web's previous image back (one task at a time, start-first)
	docker service rollback --detach=false $(SWARM_STACK_NAME)_web

swarm-ps: ## Show the stack's tasks, on which node each runs and its state
	docker stack ps $(SWARM_STACK_NAME)

swarm-remove: ## Remove the stack from the swarm
	docker stack rm --detach=false $(SWARM_STACK_NAME)

rollout: db-password ## Rebuild web, migrate (stopping, the old version serving, if that fails), replace each replica start-first, one at a time, losing no request
	COMPOSE="$(DEV_COMPOSE)" APP_VERSION="$(APP_VERSION)" scripts/rollout.sh

nginx-reload: ## Check nginx's config and reload it gracefully (no request is lost; a renewed certificate is served after it)
	$(COMPOSE) exec -T nginx sh -c 'nginx -t -q && nginx -s reload'

acme-renew: ## With TLS=acme: have the renewal job renew now if due (FORCE=1: even if not), install and reload nginx; fails if it failed
	$(COMPOSE) -f compose.yaml -f compose.tls.yaml -f compose.acme.yaml exec -T acme python -m renewal.request $(if $(filter 1,$(FORCE)),--force)

certs: ## A local CA (certs/ca/ca.crt, kept) and a new certificate for CERT_NAMES (default localhost) in certs/site, for TLS=on
	scripts/make-certs.sh $(CERT_DIR) $(CERT_NAMES)

observability: ## Start the stack with the observability profile: Prometheus on http://127.0.0.1:9090, the nginx exporter
	@echo "make observability: building and starting the stack with Prometheus and the nginx exporter"
	$(DEV_COMPOSE) --profile observability up --build --detach --wait
	@echo "make observability: Prometheus is on http://$$($(DEV_COMPOSE) --profile observability port prometheus 9090)/"

prod-up: db-password ## Start with the production overlay (limits, read-only, restart policies), then migrate
	@echo "make prod-up: building and starting the production overlay (probes off, read-only, limits)"
	$(PROD_COMPOSE) up --build --detach --wait
	@COMPOSE="$(PROD_COMPOSE)" scripts/migrate.sh
	@echo "make prod-up: serving on http://$$($(PROD_COMPOSE) port nginx 8080 | sed 's/^0\.0\.0\.0:/127.0.0.1:/')/"

prod-down: ## Stop the production-overlay stack; the database's data stays
	$(PROD_COMPOSE) rm --stop --force --volumes
	$(PROD_COMPOSE) down --remove-orphans

test: test-unit test-rules test-integration ## Run every test: unit, Prometheus's rules, then integration against the composed stack

test-unit: $(VENV)/.installed ## Unit tests of the app, the gunicorn settings, the benchmark's logic and the ECS tools (no Docker needed)
	$(PYTHON) -m pytest services/web/tests services/acme/tests bench/tests deploy/ecs/tests

# promtool from the Prometheus image the profile runs (its Dockerfile's ARG names the tag),
# on the config and rules baked into it.
PROMETHEUS_IMAGE ?= $(shell scripts/dockerfile-arg.sh services/prometheus/Dockerfile PROMETHEUS_IMAGE)
PROMTOOL = docker run --rm -v "$(CURDIR)/services/prometheus:/etc/prometheus:ro" -w /etc/prometheus/rules --entrypoint /bin/promtool $(PROMETHEUS_IMAGE)

test-rules: ## Check Prometheus's config and rules, and run the rules' unit tests (promtool test rules)
	$(PROMTOOL) check config /etc/prometheus/prometheus.yml
	$(PROMTOOL) check rules flask-stack.rules.yml
	$(PROMTOOL) test rules tests.yml

test-integration: $(VENV)/.installed ## Integration tests: bring up the stack in a throwaway project and drive it
	$(PYTHON) -m pytest -m "not swarm and not arm64" tests

# The stacks derive their worker count from the CPUs; users' laptops have 8 or more. These
# runs give the tests marked worker_count (pytest.ini) the counts a laptop and a one-CPU
# container would derive.
test-worker-counts: $(VENV)/.installed ## The tests that depend on the worker count, with GUNICORN_WORKERS=8 and =1
	GUNICORN_WORKERS=8 $(PYTHON) -m pytest -m worker_count tests
	GUNICORN_WORKERS=1 $(PYTHON) -m pytest -m worker_count tests

# The other CPU is emulated (QEMU through binfmt_misc): building and running its images is
# many times slower than the engine's own, so this is not part of make test.
test-arm64: $(VENV)/.installed ## make push for amd64 and arm64 to a local registry, then the arm64 stack's smoke checks under emulation (slow: its time is in the README)
	scripts/docker-host/install-qemu.sh
	scripts/install-sbom-tools.sh
	BASE_PLATFORM=linux/arm64 scripts/docker-host/build-base-images.sh
	$(PYTHON) -m pytest -m arm64 -rP tests

test-swarm: $(VENV)/.installed ## The Swarm tests: a three-node swarm of Docker-in-Docker engines, under load (several minutes)
	$(PYTHON) -m pytest -m swarm tests

bench: ## Benchmark every server configuration, direct and behind nginx (over an hour); report in bench/results/latest
	bench/run.sh full

bench-quick: ## The benchmark's smoke run (about 10 min): one configuration of each server, short runs
	bench/run.sh quick

bench-tuning: ## The default configuration against variants of it, in paired rounds (about 22 min; BENCH_VARIANTS=words narrows them)
	bench/run.sh tuning

bench-growth: ## How cost grows: nginx's memory by idle connections, a gevent worker's by sleeping requests, replicas on these cores, make scale's time (about 10 min)
	bench/run.sh growth

# Each linter is also a target of its own; lint runs them all and reports every failure.
lint: ## Lint and check the format of Python (ruff), Dockerfiles (hadolint), shell (shellcheck), compose files (compose-lint), CI workflows (zizmor, check-jsonschema)
	@scripts/install-linters.sh
	@$(MAKE) --no-print-directory --keep-going lint-python lint-dockerfiles lint-shell lint-compose lint-workflows

lint-python:
	$(LINT_BIN)/ruff check
	$(LINT_BIN)/ruff format --check

lint-dockerfiles:
	$(LINT_BIN)/hadolint --config .hadolint.yaml $(DOCKERFILES)

lint-shell:
	shellcheck $(SHELL_SCRIPTS)

lint-compose:
	scripts/lint-compose.sh

# zizmor's audits offline, every one (pedantic); the workflow schema check-jsonschema bundles.
lint-workflows:
	$(LINT_BIN)/zizmor --offline --persona=pedantic --show-audit-urls=never .github/workflows
	$(LINT_BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

docker-host: ## Install and start a Docker engine and base images on a bare Debian machine (root)
	scripts/docker-host/install-engine.sh
	scripts/docker-host/build-base-images.sh

lock: ## Re-lock dependencies with hashes (web image, test tools and linters)
	scripts/lock-requirements.sh

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r tests/requirements.txt
	touch $@

clean: ## Remove the test and lint virtualenvs and caches
	rm -rf $(VENV) .venv-lint .venv-deploy .pytest_cache .ruff_cache

# Deploy to AWS ECS (deploy/ecs/): offline tools, never run against AWS by CI.
DEPLOY_VENV := .venv-deploy
ECS_STACK_NAME ?= flask-stack
ECS_PARAMETERS ?=

ecs-render: $(DEPLOY_VENV)/.installed ## Print the task definition JSON for `aws ecs register-task-definition --cli-input-json`
	@ECS_STACK_NAME="$(ECS_STACK_NAME)" ECS_PARAMETERS="$(ECS_PARAMETERS)" $(DEPLOY_VENV)/bin/python deploy/ecs/render.py

ecs-validate: $(DEPLOY_VENV)/.installed ## cfn-lint, botocore's ECS model and our own rules on the template and the rendered task definition
	ECS_STACK_NAME="$(ECS_STACK_NAME)" ECS_PARAMETERS="$(ECS_PARAMETERS)" $(DEPLOY_VENV)/bin/python deploy/ecs/validate.py

ecs-render-migration: $(DEPLOY_VENV)/.installed ## Print the one-off migration task's definition (make ecs-migrate registers it)
	@ECS_STACK_NAME="$(ECS_STACK_NAME)" ECS_PARAMETERS="$(ECS_PARAMETERS)" $(DEPLOY_VENV)/bin/python deploy/ecs/render.py --migration

ecs-migrate: $(DEPLOY_VENV)/.installed ## Run the database migrations as a one-off ECS task of the pushed web image, failing unless they succeed (DRY_RUN=1 prints the commands)
	ECS_STACK_NAME="$(ECS_STACK_NAME)" ECS_PARAMETERS="$(ECS_PARAMETERS)" $(DEPLOY_VENV)/bin/python deploy/ecs/migrate.py

ecs-wait-stable: ## Wait until the deployed ECS service is stable: one deployment, every desired task running
	ECS_STACK_NAME="$(ECS_STACK_NAME)" deploy/ecs/wait-stable.sh

ecs-deploy: $(DEPLOY_VENV)/.installed ## Migrate (with a database), then deploy deploy/ecs/template.yaml with the pushed digests (DRY_RUN=1 prints the commands)
	ECS_STACK_NAME="$(ECS_STACK_NAME)" ECS_PARAMETERS="$(ECS_PARAMETERS)" ECS_PYTHON=$(DEPLOY_VENV)/bin/python deploy/ecs/deploy.sh

$(DEPLOY_VENV)/.installed: deploy/ecs/requirements.txt
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r deploy/ecs/requirements.txt
	touch $@
