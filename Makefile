# shortrun_lvm -- every target sets itself up: it creates .venv if missing and installs the package with its
# dev and fid extras at the tested versions of constraints.txt. Quick start (README): `make test` and `make repro`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Offline data mirror: ../shared/data when it is there (CI and the project machines), else torchvision downloads.
SHORTRUN_LVM_MIRROR ?= $(shell [ -d ../shared/data ] && cd ../shared/data && pwd)
export SHORTRUN_LVM_MIRROR
KERNEL := shortrun_lvm
PRESET ?=
PM_PRESET := $(if $(PRESET),-p preset $(PRESET),)
# papermill options: the project's kernel; cells' output (prints, training bars) streamed to the terminal as they run
PM_OPTS := -k $(KERNEL) --cwd nbs --progress-bar --log-output
REPRO := cifar mnist celeba inpaint hierarchy stepsize svhn

.PHONY: test test-slow repro repro-all validate-paper export clean-nbs readme bench lab kernel docs docs-check

$(VENV)/.installed: settings.ini setup.py constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,fid]"
	@$(PY) -c "from shortrun_lvm.metrics import fetch_inception; fetch_inception()" || echo "FID weights not fetched (see above); the FID checks skip until they are"
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python 3 ($(KERNEL))" >/dev/null
	@touch $@

## Fast tests: every notebook, cells tagged slow/gpu skipped
test: $(VENV)/.installed
	nbdev_export
	@git diff --quiet -- shortrun_lvm 2>/dev/null || { echo "nbdev_export changed shortrun_lvm/: the library was edited by hand or not re-exported"; git --no-pager diff --stat -- shortrun_lvm; exit 1; }
	OMP_NUM_THREADS=1 nbdev_test --n_workers 2 --timing   # 2 notebooks at a time, 1 thread each: no oversubscription
	@echo "nbdev_test: $$(ls nbs/*.ipynb | grep -v '/_' | wc -l) passed, 0 failed"
	$(PY) tools/proc_nbs.py   # the docs build's notebook processing (docs-check): a test cell that mixes imports and code breaks it

## Also the cells tagged slow (long CPU checks; the DDP test)
test-slow: $(VENV)/.installed
	nbdev_test --n_workers 1 --flags slow --timing

## Main reproduction job (CIFAR-10). Preset: "paper" on CUDA, "cpu" otherwise; override with PRESET=...
repro: $(VENV)/.installed
	@mkdir -p runs
	papermill $(PM_OPTS) nbs/repro_cifar.ipynb runs/repro_cifar.out.ipynb $(PM_PRESET)

## Every reproduction notebook, one after the other
repro-all: $(VENV)/.installed
	@mkdir -p runs
	for nb in $(REPRO); do papermill $(PM_OPTS) nbs/repro_$$nb.ipynb runs/repro_$$nb.out.ipynb $(PM_PRESET) || exit 1; done
	$(PY) tools/make_readme.py

## Every repro notebook's `paper` preset through every stage for VALIDATE_ITERS iterations per run on this device,
## with the projected full-run time per notebook (results/validate_paper_<cpu|cuda>.json)
VALIDATE_ITERS ?= 2
validate-paper: $(VENV)/.installed
	$(PY) tools/validate_paper.py --iters $(VALIDATE_ITERS)

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

## Register the kernel "$(KERNEL)" for this user too, so a system or JupyterHub JupyterLab finds it
kernel: $(VENV)/.installed
	$(PY) -m ipykernel install --user --name $(KERNEL) --display-name "Python 3 ($(KERNEL))"

## Process every notebook as the docs build does (no Quarto needed); fails on a notebook that cannot be processed
docs-check: $(VENV)/.installed
	$(PY) tools/proc_nbs.py

## The documentation site in _docs/ (needs Quarto: https://quarto.org/docs/get-started/)
docs: $(VENV)/.installed
	@command -v quarto >/dev/null || { echo "Quarto is not installed (nbdev would try to install it and pip install the project): see https://quarto.org/docs/get-started/"; exit 1; }
	nbdev_docs
