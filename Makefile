# Every target creates .venv and installs what it needs, so a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch is pinned so pip takes the local CPU build instead of the registry's CUDA one.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench lint clean docs
# The report's browser test (pytest -m browser) opens report.html in Debian's headless Chromium.
CHROMIUM := /usr/bin/chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/elbo demo

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest -m "not slow" -q -n 2 --dist loadgroup --durations=20

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

bench: $(STAMP)
	@for script in benchmarks/[!_]*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# Installed only when missing, from Debian's package registry (as in CI): as root, or through sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

# The documentation site, into site/: strict, so a broken link or a reference to a missing name fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) .pytest_cache
