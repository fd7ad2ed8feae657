# One entry point. Every target sets up what it needs: the first run creates .venv in the repository
# and installs the pinned set into it (a few minutes); later runs reuse it.
#   make book     execute every notebook and build the HTML book into book/_build/html
#   make test     unit tests, every notebook under nbval, the book build and its browser check
#   make lab      JupyterLab on the introduction notebook
#   make student  student copies of the notebooks (solutions replaced by stubs) in student/
#   make slides   offline reveal.js lecture decks in slides/, from the book build's executed notebooks
#   make grade SUBMISSIONS=dir   grade a class (one folder per student): dir/grades.csv, dir/summary.html
#   make clean    remove built files (make distclean also removes .venv)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help setup book test lab student clean distclean lint

help:
	@sed -n '2,/^$$/p' Makefile | sed 's/^# //'

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@
	@echo "environment ready: $(VENV) ($$(du -sh $(VENV) | cut -f1))"

book: $(STAMP)
	$(BIN)/python book/build.py

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/00_introduction.ipynb

student: $(STAMP)
	$(BIN)/python -m mmtutor.student notebooks student
	@echo "student copies written to student/ (git ignores it); open them with: $(BIN)/jupyter lab student"

# slides: reuses the executed notebooks of the book build; runs `make book` first if they are missing or stale
.PHONY: slides
slides: $(STAMP)
	@$(BIN)/python -m mmtutor.slides --check || $(MAKE) book
	$(BIN)/python -m mmtutor.slides

# grade: each student's notebooks against the original checks, fresh kernel, per-cell timeout, no network
.PHONY: grade
grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=dir (one sub-folder of notebooks per student)"; exit 2; }
	$(BIN)/python -m mmtutor.grade "$(SUBMISSIONS)"

lint: $(STAMP)
	$(BIN)/ruff check mmtutor tests benchmarks book/build.py

clean:
	rm -rf book/_build student slides .pytest_cache .ruff_cache mmtutor.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
