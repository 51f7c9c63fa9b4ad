# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Each creates the virtual environment in .venv if it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(BIN)/geoforge render corpora/demo/orthocenter.txt -o out/demo.png --svg
	$(BIN)/geoforge check ../shared/corpora-ext/alphageometry/jgex_ag_231.txt 2>/dev/null || $(BIN)/geoforge check corpora/demo/problems.txt
	@echo "wrote out/demo.png and out/demo.svg"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2

test-all: $(STAMP)
	$(BIN)/pytest -q -n 2 -m ''

bench: $(STAMP)
	$(BIN)/python benchmarks/render_speed.py

clean:
	rm -rf $(VENV) out build *.egg-info
