# The two set-up commands of the README:
#   make serve   install the service (no torch) and start it on the shipped model
#   make test    install everything (training included) and run lint, types and tests
PYTHON ?= python3
SERVE_VENV := .venv-serve
DEV_VENV := .venv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint typecheck pytest train export evaluate bench docker-smoke clean

$(SERVE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install -q -e .
	touch $@

$(DEV_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEV_VENV)
	$(DEV_VENV)/bin/pip install -q -e ".[train,dev]"
	touch $@

serve: $(SERVE_VENV)/.installed
	GENRE_HOST=$(HOST) GENRE_PORT=$(PORT) $(SERVE_VENV)/bin/python -m app.main

test: lint typecheck pytest

lint: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/ruff check .
	$(DEV_VENV)/bin/ruff format --check .

typecheck: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/mypy

pytest: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m pytest

train: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.train --data ../shared/data/gtzan --out runs/main

export: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.export --run runs/main --out model/genre_birnn.onnx

evaluate: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m training.evaluate --data ../shared/data/gtzan

clean:
	rm -rf $(SERVE_VENV) $(DEV_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
