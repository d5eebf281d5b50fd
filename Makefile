# Two commands do everything on a fresh machine:
#   make book   execute every notebook (profile $(PROFILE)) and build the HTML book
#   make test   unit tests plus every notebook executed with the smoke profile and with the
#               rehearsal profile on a format-exact data root (what CI runs)
PROFILE ?= default
DATA_ROOT ?=
DRYRUN ?=
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fmsnb-installed

.PHONY: install browser-deps book long test clean

install: $(STAMP)

# torch==2.13.0 is the CPU wheel on this kind of machine's disk; installing it first keeps pip
# from resolving the package's `torch>=2.1` to a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	# openai-clip without its torchvision dependency: fmsnb.text needs only its text tower.
	$(PY) -m pip install --quiet --no-deps openai-clip
	$(PY) -m pip install --quiet ftfy regex
	touch $@

# Execute the notebooks of _toc.yml with papermill, then build the HTML (see fmsnb/publish/book.py);
# DRYRUN=1 only checks the profile, the data root and the notebooks and prints the plan.
book: install
	$(PY) -m fmsnb.publish.book --profile $(PROFILE) $(if $(DATA_ROOT),--data-root "$(DATA_ROOT)") $(if $(DRYRUN),--dry-run)

# The long profile (params/long.yml): every chapter executed with it (52 minutes here),
# its metrics and chapter times published to book/results/long/ for the default book to show.
# It leaves its executed pages in book/notebooks/; `make book` executes the default ones again.
long: install
	$(PY) -m fmsnb.publish.book --profile long --no-build --publish

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# Headless Chromium and its driver for tests/test_browser.py (Debian's packages).
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium chromium-driver)

test: install browser-deps
	$(PY) -m pytest -q

clean:
	rm -rf _build book/notebooks
