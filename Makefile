# make demo : venv + install + synthetic WSI benchmark + DINO-4K and SLPD trained on CPU,
#             embeddings, knn/linear evaluation and a report (a few minutes)
# make test : venv + install + redis-server (when missing and root) + pytest
# FAISS=gpu  : install faiss-gpu instead of faiss-cpu (`make test FAISS=gpu`)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
FAISS ?= cpu

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

lint: install
	$(VENV)/bin/ruff check slpd_plugin tools benchmarks tests examples

test: install redis lint
	$(PY) -m pytest -q tests

test-fast: install redis
	$(PY) -m pytest -q -m "not slow" tests

clean:
	rm -rf work_dirs data/demo_store
