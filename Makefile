# The two commands: `make run` (the product with demo data; `make run PORT=8001` for another port) and
# `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test lint check schema messages vendor clean

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	touch $@

run: $(BIN)/.installed
	$(BIN)/python scripts/devenv.py run --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/python scripts/devenv.py test $(ARGS)

# lint-imports: the apps' layers and no app using another app's private names ([tool.importlinter])
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-logo

# check --deploy on production settings, makemigrations --check and the committed OpenAPI schema diff
check: $(BIN)/.installed
	$(BIN)/python scripts/devenv.py check

schema: $(BIN)/.installed
	$(BIN)/python scripts/devenv.py check --write

# Development settings (DJANGO_DEBUG): without it the settings are production's, which need secrets.
messages: $(BIN)/.installed
	DJANGO_DEBUG=true $(BIN)/python manage.py makemessages -l fr --ignore=.venv --ignore=var --ignore=node_modules
	DJANGO_DEBUG=true $(BIN)/python manage.py compilemessages --ignore=.venv --ignore=node_modules

# axe-core checks the pages in the browser tests only: it goes to tests/browser/vendor/, never served.
vendor:
	npm install --no-audit --no-fund
	cp node_modules/@picocss/pico/css/pico.min.css node_modules/htmx.org/dist/htmx.min.js \
	   node_modules/chart.js/dist/chart.umd.min.js static/vendor/
	cp node_modules/axe-core/axe.min.js tests/browser/vendor/
	cp node_modules/axe-core/LICENSE tests/browser/vendor/axe.LICENSE

clean:
	rm -rf $(VENV) var staticfiles
