# `make run` and `make test` bootstrap .venv on first use, then act.
#   make run            the app and what it uses at run time (ONNX Runtime included), then the window
#   make test           the same plus the test tools, then the whole suite (offscreen)
#   make check          the fast lane (under 3 minutes on 2 cores): ruff, the import contracts
#                       (lint-imports) and the suite without the tests marked slow
#   make lint           ruff and the import contracts alone (pyproject.toml holds both configurations)
#   TORCH=cpu           (with run/test/check) torch and torchvision from PyTorch's CPU wheel index,
#                       without the ~4 GB of CUDA libraries and triton the default wheel pulls. Any
#                       other PyTorch index name works too (TORCH=cu126). It applies when .venv is
#                       created: on an existing .venv with another build it stops and says so.
# Before anything imports Qt, `python -m gui.qtlibs` checks the system libraries Qt's platform
# plugin needs: as root with apt-get (or dnf) it installs what is missing, otherwise it prints the
# one command that does and stops.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed
TORCH  ?=
TORCH_INDEX := https://download.pytorch.org/whl/$(TORCH)
# torch/torchvision requirements as pyproject.toml states them (one source of truth)
TORCH_REQS := $(shell sed -n 's/^ *"\(torch\(vision\)\{0,1\}[<>=!~][^"]*\)".*/"\1"/p' pyproject.toml)
QTLIBS := $(PY) -m gui.qtlibs --install
RUFF   := $(VENV)/bin/ruff
LINT_IMPORTS := $(VENV)/bin/lint-imports --no-cache

.PHONY: run test check lint bench screenshots clean-venv torch-variant

$(RUN_STAMP): pyproject.toml | torch-variant
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
ifneq ($(TORCH),)
	$(PY) -m pip install --quiet --index-url $(TORCH_INDEX) $(TORCH_REQS)
endif
	$(PY) -m pip install --quiet -e ".[onnx,doctor,live]"
	touch $@

# On top of the run install: pip adds only what the test extra lists.
$(TEST_STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e ".[onnx,doctor,live,test]"
	touch $@

# TORCH=... on a .venv that already holds another torch build would silently keep it.
torch-variant:
ifneq ($(TORCH),)
	@v=$$(test -x $(PY) && $(PY) -c "import importlib.metadata as m; print(m.version('torch'))" 2>/dev/null); \
	case "$$v" in ""|*+$(TORCH)) ;; *) echo "$(VENV) already holds torch $$v, not the $(TORCH) build:" \
	"run \`make clean-venv\` first, then \`make $(or $(MAKECMDGOALS),run) TORCH=$(TORCH)\`" >&2; exit 1;; esac
endif

run: $(RUN_STAMP)
	$(QTLIBS)
	$(PY) main.py

# CI runs `make test` (.ci/run): the checks first, then every test.
test: $(TEST_STAMP)
	$(RUFF) check --output-format concise .
	$(LINT_IMPORTS)
	$(QTLIBS) --platform offscreen
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

check: $(TEST_STAMP)
	$(RUFF) check --output-format concise .
	$(LINT_IMPORTS)
	$(QTLIBS) --platform offscreen
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not slow"

lint: $(TEST_STAMP)
	$(RUFF) check --output-format concise .
	$(LINT_IMPORTS)

# The benchmarks build their inputs with tests/support, the screenshots take sample photos from
# scikit-image and scikit-learn: both need the test extra.
bench: $(TEST_STAMP)
	$(PY) -m benchmarks

screenshots: $(TEST_STAMP)
	$(QTLIBS) --platform offscreen
	QT_QPA_PLATFORM=offscreen $(PY) -m benchmarks.screenshots

clean-venv:
	rm -rf $(VENV)
