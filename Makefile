# make demo : venv + install + synthetic WSI benchmark + DINO-4K and SLPD trained on CPU,
#             embeddings, knn/linear evaluation and a report (a few minutes)
# make test : venv + install + redis-server (when missing and root) + lint + pytest
# make lint : ruff (style, imports, docstrings) + mypy on the typed public API
# FAISS=gpu  : install faiss-gpu instead of faiss-cpu (`make test FAISS=gpu`)
# JOBS=N     : pytest worker processes for `make test` (default 2, pytest-xdist; 0 = serial)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
FAISS ?= cpu
JOBS ?= 2
# packages whose public API mypy checks (settings: [tool.mypy] in pyproject.toml)
MYPY_PATHS := slpd_plugin/datasets/stores slpd_plugin/prototypes slpd_plugin/models \
	slpd_plugin/evaluation slpd_plugin/cli

.PHONY: demo test test-fast lint install redis clean

$(STAMP): setup.cfg requirements/constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -c requirements/constraints.txt torch torchvision
	$(PIP) install -q -c requirements/constraints.txt -e '.[dev,mmpretrain,$(FAISS)]'
	touch $(STAMP)

install: $(STAMP)

redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else echo "redis-server missing: install it (apt-get install redis-server); Redis tests will skip"; fi; }

demo: install
	$(PY) tools/run_demo.py --out work_dirs/demo

# ruff: pyflakes, style, imports, and Google-style docstrings in slpd_plugin/ (pyproject.toml)
lint: install
	$(VENV)/bin/ruff check slpd_plugin tools benchmarks tests examples configs setup.py
	$(VENV)/bin/mypy $(MYPY_PATHS)

# Whole test files go to a worker (--dist loadfile) so that module fixtures run once,
# the longest files first (tests/conftest.py orders them; --no-loadscope-reorder keeps
# that order instead of xdist's most-tests-first); --durations shows in CI's log where
# the time went.
DIST := --dist loadfile --no-loadscope-reorder
test: install redis lint
	$(PY) -m pytest -q -n $(JOBS) $(DIST) --durations=25 tests

test-fast: install redis
	$(PY) -m pytest -q -n $(JOBS) $(DIST) -m "not slow" tests

clean:
	rm -rf work_dirs data/demo_store
