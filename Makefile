# refapp: `make run` starts everything, `make test` checks everything. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
# `make run PORT=N` points every link (tracker tag, /go/ links, the API's `links`, emails) at N: the
# development processes get BASE_URL=http://127.0.0.1:N unless BASE_URL is set (environment or .env).
DEV_BASE_URL := $(or $(BASE_URL),$(shell sed -n 's/^[[:space:]]*BASE_URL[[:space:]]*=[[:space:]]*//p' .env 2>/dev/null | tail -n 1 | tr -d "\"'"),http://127.0.0.1:$(PORT))
# `make run` and its `migrate` are development: DEBUG on (so the secret key kept in var/ is used
# even with DATABASE_URL set) unless DEBUG is given.
DEV_ENV = DEBUG=$${DEBUG:-1} BASE_URL=$(DEV_BASE_URL)

.PHONY: install run test lint format bench migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): requirements.lock $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-virtualenv -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput

# Web, worker and scheduler under one process manager (honcho reads the Procfile).
# With no DATABASE_URL/REDIS_URL this is the embedded default: SQLite and a file broker under var/.
run: migrate
	@echo ""
	@echo "  refapp is starting on $(DEV_BASE_URL)/"
	@echo "    $(DEV_BASE_URL)/panel/          the admin panel (first run: create the admin account there)"
	@echo "    $(DEV_BASE_URL)/portal/         the affiliates' portal (sign-in by emailed link)"
	@echo "    $(DEV_BASE_URL)/join/<slug>/    a program's public sign-up page"
	@echo "    $(DEV_BASE_URL)/api/v1/docs     the API reference     $(DEV_BASE_URL)/healthz  health"
	@echo "  Next step, in another shell: create a program and get its keys and tracker tag:"
	@echo "    $(DEV_ENV) $(BIN)/python manage.py createprogram --name Acme --slug acme --website https://acme.example --currency USD"
	@echo ""
	$(DEV_ENV) PORT=$(PORT) $(BIN)/honcho start -f Procfile.dev

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
	$(BIN)/python bench/imports.py $(BENCH_IMPORT_ARGS)

clean:
	rm -rf $(VENV) var staticfiles
