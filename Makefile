# shortrun_lvm -- every target sets itself up: it creates .venv if missing and installs the pins
# from settings.ini. Quick start (README): `make test` and `make repro`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Offline data mirror: ../shared/data when it is there (CI and the project machines), else torchvision downloads.
SHORTRUN_LVM_MIRROR ?= $(shell [ -d ../shared/data ] && cd ../shared/data && pwd)
export SHORTRUN_LVM_MIRROR
NODEPS := $(shell sed -n 's/^nodeps_requirements *= *//p' settings.ini)
PRESET ?=
PM_PRESET := $(if $(PRESET),-p preset $(PRESET),)
REPRO := cifar mnist celeba inpaint hierarchy stepsize svhn

.PHONY: test test-slow repro repro-all export clean-nbs readme bench lab

$(VENV)/.installed: settings.ini setup.py
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps $(NODEPS)
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (shortrun_lvm)" >/dev/null
	@touch $@

## Fast tests: every notebook, cells tagged slow/gpu skipped
test: $(VENV)/.installed
	nbdev_export
	@git diff --quiet -- shortrun_lvm 2>/dev/null || { echo "nbdev_export changed shortrun_lvm/: the library was edited by hand or not re-exported"; git --no-pager diff --stat -- shortrun_lvm; exit 1; }
	OMP_NUM_THREADS=1 nbdev_test --n_workers 2 --timing   # 2 notebooks at a time, 1 thread each: no oversubscription
	@echo "nbdev_test: $$(ls nbs/*.ipynb | grep -v '/_' | wc -l) passed, 0 failed"

## Also the cells tagged slow (long CPU checks; the DDP test)
test-slow: $(VENV)/.installed
	nbdev_test --n_workers 1 --flags slow --timing

## Main reproduction job (CIFAR-10). Preset: "paper" on CUDA, "cpu" otherwise; override with PRESET=...
repro: $(VENV)/.installed
	@mkdir -p runs
	papermill -k python3 --cwd nbs nbs/repro_cifar.ipynb runs/repro_cifar.out.ipynb $(PM_PRESET)

## Every reproduction notebook, one after the other
repro-all: $(VENV)/.installed
	@mkdir -p runs
	for nb in $(REPRO); do papermill -k python3 --cwd nbs nbs/repro_$$nb.ipynb runs/repro_$$nb.out.ipynb $(PM_PRESET) || exit 1; done
	$(PY) tools/make_readme.py

## Speed benchmark (prints figures, writes results/bench_*.json)
bench: $(VENV)/.installed
	$(PY) bench/bench.py

## Regenerate README.md from nbs/index.ipynb and results/*.json
readme: $(VENV)/.installed
	$(PY) tools/make_readme.py

export: $(VENV)/.installed
	nbdev_export
clean-nbs: $(VENV)/.installed
	nbdev_clean
lab: $(VENV)/.installed
	jupyter lab nbs
