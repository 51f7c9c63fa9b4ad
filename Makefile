# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Each creates the virtual environment in .venv if it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint bench clean

# constraints.txt pins torch and torchvision exactly for this .venv; the [train] extra takes
# lower bounds. Earlier Makefiles installed the example plugin here: it is removed, so that
# `geoforge plugins` lists the built-ins only.
$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,train]' -c constraints.txt
	$(BIN)/pip uninstall -q -y geoforge-example-plugin 2>/dev/null || true
	touch $(STAMP)

# The main job on the embedded default: a smoke corpus of diagrams and exact captions, its
# contact sheet, and a check and a render of the bundled textbook problems.
demo: $(STAMP)
	$(BIN)/geoforge generate corpora/smoke.toml --out out/smoke --overwrite
	$(BIN)/geoforge show out/smoke -o out/smoke-sheet.png --overwrite
	$(BIN)/geoforge check corpora/problems/textbook.txt
	@mkdir -p out
	$(BIN)/geoforge render corpora/problems/orthocentre.txt -o out/demo.png --svg --overwrite

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2
	@# the example plugin is tested from a throw-away install, never installed into .venv
	tmp=$$(mktemp -d) && $(BIN)/pip install -q --no-deps --target "$$tmp" plugins/geoforge-example-plugin \
		&& PYTHONPATH="$$tmp" $(BIN)/pytest -q plugins/geoforge-example-plugin/tests; \
		status=$$?; rm -rf "$$tmp"; exit $$status

test-all: $(STAMP)
	$(BIN)/pytest -q -n 2 -m ''

bench: $(STAMP)
	$(BIN)/python benchmarks/render_speed.py

clean:
	rm -rf $(VENV) out build *.egg-info
