# SafeCity: `make demo` and `make test` are all a newcomer needs; each sets itself up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
SECONDS ?= 60

.PHONY: setup demo demo-headless test lint bench system-deps serve clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24" "setuptools>=69,<81" wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

system-deps:
	@bash scripts/install-system-deps.sh

demo: setup
	$(VENV)/bin/safecity demo

demo-headless: setup
	$(VENV)/bin/safecity demo --headless --seconds $(SECONDS) --report demo-report.json

serve: setup
	$(VENV)/bin/safecity serve

# Two workers: the suite waits on services and a browser as much as on the CPU (city-scale tests stay
# together on one worker, see tests/conftest.py).
TEST_WORKERS ?= 2

test: setup system-deps
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup

# The browser scripts that say `// @ts-check` are type-checked by TypeScript (tsconfig.json), installed
# from npm into .tools/ on first use; nothing of it is served or shipped.
TYPESCRIPT := 5.9.3
TSC := .tools/node_modules/.bin/tsc

$(TSC):
	@command -v npm >/dev/null || { echo "make lint needs npm (Node.js) to type-check the browser scripts: apt-get install npm"; exit 1; }
	npm install --silent --no-audit --no-fund --prefix .tools typescript@$(TYPESCRIPT)

lint: setup $(TSC)
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/mypy
	$(TSC) -p tsconfig.json

bench: setup
	@mkdir -p bench/results
	@for script in bench/bench_*.py; do \
		name=$$(basename $$script .py); \
		echo "== $$name" >&2; \
		$(PY) $$script --quick > bench/results/$$name.json || exit 1; \
		cat bench/results/$$name.json; \
	done

clean:
	rm -rf $(VENV) data demo-data .pytest_cache .mypy_cache .ruff_cache
