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
	$(BIN)/pip install -q -e '.[dev,train]'
	touch $(STAMP)

# The main job on the embedded default: a smoke corpus of diagrams and exact captions, its
# contact sheet, and a check and a render of the bundled textbook problems.
demo: $(STAMP)
	$(BIN)/geoforge generate corpora/smoke.toml --out out/smoke --overwrite
	$(BIN)/geoforge show out/smoke -o out/smoke-sheet.png
	$(BIN)/geoforge check corpora/problems/textbook.txt
	@mkdir -p out
	$(BIN)/geoforge render corpora/problems/orthocentre.txt -o out/demo.png --svg

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2
	$(BIN)/pip show -q geoforge-example-plugin >/dev/null 2>&1 || $(BIN)/pip install -q -e plugins/geoforge-example-plugin --no-deps
	$(BIN)/pytest -q plugins/geoforge-example-plugin/tests

test-all: $(STAMP)
	$(BIN)/pytest -q -n 2 -m ''

bench: $(STAMP)
	$(BIN)/python benchmarks/render_speed.py

clean:
	rm -rf $(VENV) out build *.egg-info
