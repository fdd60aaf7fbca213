# refapp: `make run` starts everything, `make test` checks everything. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install run test lint format bench migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): requirements.lock $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-virtualenv -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# Web, worker and scheduler under one process manager (honcho reads the Procfile).
# With no DATABASE_URL/REDIS_URL this is the embedded default: SQLite and a file broker under var/.
run: migrate
	@echo ""
	@echo "  refapp is starting on http://127.0.0.1:$(PORT)/"
	@echo "  Next step: create a program and get its keys and tracker tag:"
	@echo "    $(BIN)/python manage.py createprogram --name Acme --slug acme --website https://acme.example --currency USD"
	@echo "  API reference: http://127.0.0.1:$(PORT)/api/v1/docs    Health: http://127.0.0.1:$(PORT)/healthz"
	@echo ""
	DEBUG=$${DEBUG:-1} PORT=$(PORT) $(BIN)/honcho start -f Procfile.dev

# ruff, then the floors and the no-cycles rule of docs/architecture.md (import-linter, pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Lint, then the whole suite. DATABASE_URL/REDIS_URL choose PostgreSQL/Redis; unset = embedded default.
test: lint
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=refapp.settings_test >/dev/null
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles
