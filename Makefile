# The README's commands. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/demo
# pytest-xdist workers: the suite is mostly single-threaded XLA compiles and process start-ups,
# so two workers on two cores take about 0.7x the time of one (10.6 against 14.9 minutes when
# measured). TEST_WORKERS=auto: one per core.
# --durations lists the slowest tests at the end, to keep the suite inside its 15-minute budget.
TEST_WORKERS ?= 2
# The JAX build to install: cpu (the default), cuda (NVIDIA GPUs, CUDA 12 from PyPI) or tpu
# (Cloud TPU VMs). Switching builds reinstalls into the same .venv.
ACCELERATOR ?= cpu
ifeq ($(filter $(ACCELERATOR),cpu cuda tpu),)
$(error ACCELERATOR=$(ACCELERATOR) is not allowed; use cpu, cuda or tpu)
endif
comma := ,
EXTRAS := test,onnx,video,serve$(if $(filter-out cpu,$(ACCELERATOR)),$(comma)$(ACCELERATOR))
INSTALLED := $(VENV)/.installed-$(ACCELERATOR)

.PHONY: install tpu-compiler demo serve test bench-data clean

# .venv with colorjax and the JAX build for ACCELERATOR (the launch scripts call it).
install: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	$(PY) -m pip install --quiet --no-deps -c constraints.txt jax2onnx
	rm -f $(VENV)/.installed*
	touch $@

# XLA:TPU's compiler (libtpu, the version jax[tpu] pins) beside .venv's packages, for
# `colorjax compile` on any machine: out of the import path, so JAX never takes this machine
# for a TPU host.
TPU_COMPILER := $(VENV)/tpu-compiler/libtpu/libtpu.so
tpu-compiler: $(TPU_COMPILER)

$(TPU_COMPILER): $(INSTALLED)
	$(PY) -m pip install --quiet --no-deps --upgrade -c constraints.txt \
	    --target $(VENV)/tpu-compiler libtpu
	touch $@

# The main job on the bundled sample photos: the portrait U-Net, a few minutes on a CPU.
demo: $(INSTALLED)
	$(VENV)/bin/colorjax train --config=configs/unet.py:demo --workdir=$(WORKDIR)

# The web page for WORKDIR's run on http://127.0.0.1:7860 (colorjax serve --help for more).
serve: $(INSTALLED)
	$(VENV)/bin/colorjax serve --workdir=$(WORKDIR)

test: $(INSTALLED) $(TPU_COMPILER)
	$(PY) -m pytest -x -q -n $(TEST_WORKERS) --durations=15

bench-data: $(INSTALLED)
	$(VENV)/bin/colorjax bench-data

clean:
	rm -rf $(VENV) runs
