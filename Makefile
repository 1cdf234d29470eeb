# itchfpga: FPGA + host market-data stack. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-stamp
SIM    ?= verilator
JOBS   ?= 2
OUT    ?= out
export SIM

APT_PKGS := iverilog tshark python3-venv perl make g++
APT_PKGS += chromium chromium-driver postgresql

.PHONY: help setup test test-long test-icarus lint demo bench bench-doc synth synth-doc bitstream regs-doc formal clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## Install the toolchain (venv from pyproject pins; iverilog via apt-get). Idempotent
	@command -v chromedriver >/dev/null && test -x /usr/lib/postgresql/15/bin/initdb || $(MAKE) --no-print-directory apt-deps
	@command -v iverilog >/dev/null && command -v tshark >/dev/null || $(MAKE) --no-print-directory apt-deps
	@$(PY) -c 'from host.feed.fastbook import c_library; c_library()'  # C book, build/fastbook (cached)

.PHONY: apt-deps
apt-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian packages: $(APT_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	else \
	  echo "missing Debian packages; run: sudo apt-get install -y $(APT_PKGS)"; \
	  command -v iverilog >/dev/null || echo "(iverilog missing: SIM=icarus benches fail until it is installed)"; \
	  command -v tshark >/dev/null || echo "(tshark missing: the Wireshark pcap check is skipped)"; \
	fi

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null \
	  || $(MAKE) --no-print-directory apt-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

test: setup ## Run the unit tests and the quick cocotb benches
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile -m "not long" tests sim

test-long: setup ## Long runs: >= 1M messages through the reference model and the gateware chain
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile -m long tests sim

test-icarus: setup ## The cocotb benches on Icarus Verilog instead of Verilator
	SIM=icarus $(PY) -m pytest -q -n $(JOBS) --dist loadfile -m "not long" sim

lint: setup ## ruff (100 columns)
	$(VENV)/bin/ruff check hw host sim tests bench

demo: setup ## Generate the sample market, replay it through the simulated card with verification, run a trading session
	@mkdir -p $(OUT)
	$(PY) -m host generate --messages 200000 --symbols 16 --seed 1 --profile realistic --out $(OUT)/sample.itch --pcap $(OUT)/sample.pcap
	$(PY) -m host stats $(OUT)/sample.pcap
	$(PY) -m host replay $(OUT)/sample.itch --card sim --verify --out $(OUT)/replay
	$(PY) -m host session $(OUT)/sample.itch --card sim --out $(OUT)/session --no-progress
	$(PY) -m host backtest $(OUT)/sample.itch --strategy mm --out $(OUT)/backtest --no-progress
	@echo "demo: plots in $(OUT)/replay/*.png, BBO trace $(OUT)/replay/bbo.csv, session journal and exports in $(OUT)/session/, backtest report $(OUT)/backtest/report.html"

bench: setup ## Run every bench once -> build/bench/figures.md (BENCHES=book,card for a subset)
	$(PY) bench/run_all.py $(if $(BENCHES),--only $(BENCHES))

bench-doc: setup ## make bench, then publish its figures into the tracked docs/figures.md
	$(PY) bench/run_all.py --publish $(if $(BENCHES),--only $(BENCHES))

synth: setup ## Yosys synth_xilinx (xcup) per block + ECP5 Fmax proxy -> synth/out/report.json, synth/out/synthesis.md
	$(PY) -m hw.synth $(if $(BLOCKS),--blocks $(BLOCKS))

synth-doc: setup ## make synth, then publish its figures into the tracked docs/synthesis.md
	$(PY) -m hw.synth --write-doc $(if $(BLOCKS),--blocks $(BLOCKS))

bitstream: setup ## Alveo U250: Vivado build if vivado is on PATH, else write the complete build tree
	$(PY) -m hw.platform.alveo build --out build/alveo

regs-doc: setup ## Regenerate docs/registers.md from hw/regs.py
	$(PY) -m hw.regs --write

formal: setup ## Bounded proofs (SymbiYosys) of the ingress blocks; every seeded bug must fail (docs/formal.md)
	nice -n 5 $(PY) -m sim.formal --mutants

clean: ## Remove build outputs
	rm -rf $(OUT) build sim/*/sim_build sim/formal/build .pytest_cache

HBT_VENV := build/hftbacktest-venv
.PHONY: hftbacktest-venv
hftbacktest-venv: ## Separate venv with hftbacktest 2.4.4 (needs numpy<2.3) for the bench comparison
	@test -x $(HBT_VENV)/bin/python || $(PYTHON) -m venv $(HBT_VENV)
	$(HBT_VENV)/bin/python -m pip install -q hftbacktest==2.4.4
