# The two set-up commands of the README:
#   make serve   install the service (no torch) and start it on the shipped model
#   make test    install everything (training included) and run lint, types and tests
PYTHON ?= python3
SERVE_VENV := .venv-serve
DEV_VENV := .venv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint typecheck pytest browser train export evaluate bench docker-smoke clean

$(SERVE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install -q -e .
	touch $@

# torch's CPU build. PyPI's Linux torch wheel pulls several GB of CUDA packages; PyTorch's CPU index
# has the CPU build, so pip looks there too, unless it finds a torch wheel without any index (a
# local wheelhouse in its find-links, as on this project's machines). TORCH_INDEX_URL= turns the
# index off; TORCH_INDEX_URL=<url> picks another (a mirror, or a CUDA build).
TORCH_VERSION := $(shell sed -n 's/.*"torch==\([^"]*\)".*/\1/p' pyproject.toml)
TORCH_INDEX_URL ?= $(shell $(PYTHON) -m pip install -q --dry-run --ignore-installed --no-deps --no-index \
	"torch==$(TORCH_VERSION)" >/dev/null 2>&1 || echo https://download.pytorch.org/whl/cpu)

$(DEV_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEV_VENV)
	$(DEV_VENV)/bin/pip install -q $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL)) -e ".[train,dev]"
	touch $@

serve: $(SERVE_VENV)/.installed
	GENRE_HOST=$(HOST) GENRE_PORT=$(PORT) $(SERVE_VENV)/bin/python -m app.main

test: lint typecheck pytest

# The web page's test drives Debian's Chromium (no browser download); install it if missing.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		{ echo "install Debian's chromium (apt-get install chromium) for the web page test"; exit 1; }

lint: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/ruff check .
	$(DEV_VENV)/bin/ruff format --check .

typecheck: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/mypy

pytest: $(DEV_VENV)/.installed browser
	$(DEV_VENV)/bin/python -m pytest

# The shipped model, in one command: four training runs, two at a time with one thread each (as the
# shipped members were trained), exported as one ONNX ensemble with its card.
TRAIN := $(DEV_VENV)/bin/python -m training.train --data ../shared/data/gtzan --threads 1
SEEDS := 0 1 2 3
RUNS := $(addprefix runs/seed,$(SEEDS))
MODEL_VERSION := 1.3.0
train: $(DEV_VENV)/.installed
	$(MAKE) -j2 $(RUNS)
	$(MAKE) export

.PHONY: $(RUNS)
$(RUNS): runs/seed%: $(DEV_VENV)/.installed
	mkdir -p $(@D) && $(TRAIN) --seed $* --out $@ > $@.log 2>&1

export: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.export $(addprefix --run ,$(RUNS)) --out model/genre_birnn.onnx --version $(MODEL_VERSION)

evaluate: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.evaluate --data ../shared/data/gtzan

bench: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m bench.pipeline
	$(DEV_VENV)/bin/python -m bench.load --clients 32 --seconds 60

docker-smoke:
	bash docker/smoke-test.sh

clean:
	rm -rf $(SERVE_VENV) $(DEV_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
