# Consult: `make run` serves the app with demo accounts; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-unit static translations catalogue lint format clean screenshots bench bench-scale

run: $(STAMP) static translations
	$(PY) -m flask --app app init-db
	$(PY) -m flask --app app demo-data
	$(PY) app.py $(ARGS)

# Two workers (one per core), a test file to each at a time: ~5 min instead of ~9.
test: $(STAMP) static translations
	bash scripts/ensure-chromium.sh
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# The pure rules, and the domain's services in process on SQLite and PostgreSQL: seconds,
# not minutes (the rest of tests/integration, the API and pages in process, takes a minute).
FAST_INTEGRATION := $(addprefix tests/integration/,test_settlement.py test_statement_counts.py \
	test_recovery.py test_summary_api.py test_wiring.py)
test-unit: $(STAMP) translations
	$(PY) -m pytest -q -n 2 --dist loadfile tests/unit $(FAST_INTEGRATION) $(PYTEST_ARGS)

# Consult beside the Node + socket.io peer of ../shared/bench: a table, a PNG, the books
# checked (bench/run --help); then Consult at scale (bench/scale --help: sockets, memory,
# idle CPU, funded-end lateness, gunicorn on PostgreSQL + Redis). About 50 minutes;
# `make bench ARGS=--quick` in about 8 (only --quick is passed on to bench/scale).
bench: $(STAMP) static translations $(VENV)/.bench
	bench/run $(ARGS)
	bench/scale $(filter --quick,$(ARGS))

# The scale half alone: `make bench-scale ARGS="--only sockets --rounds 1"`.
bench-scale: $(STAMP) static translations $(VENV)/.bench
	bench/scale $(ARGS)

$(VENV)/.bench: requirements-bench.txt $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# htmx and its ws extension, axe-core, Chart.js (the analytics page's charts, its UMD
# build) and the Hindi pages' Devanagari font (its woff2 files only) come from the npm
# registry, pinned in package.json + lock.
static: static/vendor/.stamp
static/vendor/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx-ext-ws/dist/ws.min.js node_modules/axe-core/axe.min.js static/vendor/
	cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/
	mkdir -p static/vendor/fonts
	cp node_modules/@fontsource/noto-sans-devanagari/LICENSE static/vendor/fonts/
	cp $(foreach w,400 600 700,node_modules/@fontsource/noto-sans-devanagari/files/noto-sans-devanagari-devanagari-$(w)-normal.woff2) static/vendor/fonts/
	touch $@

# The Hindi pages' catalogue: translations/hi/LC_MESSAGES/messages.po is kept in git, its
# compiled .mo is built here. After changing words, `make catalogue` adds the new ones to
# the .po (empty: the catalogue test fails until each has its Hindi), keeping its header and
# its 100-column wrapping, so an update with nothing new changes only the date.
MO := translations/hi/LC_MESSAGES/messages.mo
translations: $(MO)
$(MO): translations/hi/LC_MESSAGES/messages.po $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -d translations -l hi

catalogue: $(STAMP)
	$(VENV)/bin/pybabel extract --no-location --omit-header -F babel.cfg -k _l -k lazy_gettext -k _same -o translations/messages.pot .
	$(VENV)/bin/pybabel update -w 100 --no-fuzzy-matching -i translations/messages.pot -d translations

# Refresh the screenshots the README shows (the browser flow test), and those of the
# checklist's states (dashboard, low balance, reconnecting, a 375 px phone, errors).
screenshots: $(STAMP) static translations
	SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest tests/e2e/test_browser_flow.py tests/e2e/test_browser_checklist.py \
		tests/e2e/test_browser_hindi.py -q

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules static/vendor
