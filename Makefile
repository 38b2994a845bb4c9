# The README's commands. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
WORKDIR ?= runs/demo
# pytest-xdist workers: the suite is mostly single-threaded XLA compiles and process start-ups,
# so two workers on two cores take about 0.7x the time of one (10.6 against 14.9 minutes when
# measured). TEST_WORKERS=auto: one per core.
# --durations lists the slowest tests at the end, to keep the suite inside its 15-minute budget.
TEST_WORKERS ?= 2

.PHONY: demo test bench-data clean

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# The main job on the bundled sample photos: the portrait U-Net, a few minutes on a CPU.
demo: $(INSTALLED)
	$(PY) -m colorjax.main --config=configs/unet.py:demo --workdir=$(WORKDIR)

test: $(INSTALLED)
	$(PY) -m pytest -x -q -n $(TEST_WORKERS) --durations=15

bench-data: $(INSTALLED)
	$(VENV)/bin/colorjax bench-data

clean:
	rm -rf $(VENV) runs
