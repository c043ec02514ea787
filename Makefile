# The two set-up commands: `make run` and `make test`. Everything else here serves them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
S3_PORT ?= 9000
export FLEET_S3_ENDPOINT ?= 127.0.0.1:$(S3_PORT)
export FLEET_MODELS_DIR ?= var/models
export FLEET_CACHE_DIR ?= var/cache

.PHONY: install services run test lint clean

$(STAMP): pyproject.toml
	@command -v rabbitmq-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server; }
	# Debian keeps initdb off PATH, in /usr/lib/postgresql/VERSION/bin.
	@command -v pg_ctlcluster >/dev/null || command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: only pip finds the local CPU wheel; anything else pulls GBs of CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[worker,dev]'
	# The real CLIP BPE vocabulary ships in open-clip-torch; --no-deps keeps torchvision out.
	$(BIN)/pip install -q --no-deps open-clip-torch==3.3.0
	@touch $(STAMP)

install: $(STAMP)

services: install
	$(BIN)/python -m devservices.rabbit
	$(BIN)/python -m devservices.postgres
	$(BIN)/python -m devservices.s3 --dir var/s3 --port $(S3_PORT)

# The worker writes the tiny default model into an empty models folder on its first start.
run: services
	@echo "edge on http://127.0.0.1:8888 with one worker (logs: var/worker.log)"
	@$(BIN)/fooocus-fleet worker > var/worker.log 2>&1 & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  FLEET_WEBHOOK_ALLOW="$${FLEET_WEBHOOK_ALLOW-127.0.0.0/8,::1}" \
	  $(BIN)/fooocus-fleet edge --host 127.0.0.1 --port 8888

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/python -m devservices.rabbit
	$(BIN)/python -m devservices.postgres
	$(BIN)/pytest

clean:
	rm -rf var $(VENV)
