# The two commands of the README: `make demo` (main job on the embedded default) and `make test`.
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint setup setup-gpu
setup: $(STAMP)

# A GPU machine: everything `setup` installs, with torch's CUDA build, checked to see a GPU.
setup-gpu:
	bash scripts/setup.sh --gpu

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh

demo: $(STAMP)
	$(VENV)/bin/ltxa-data demo recipes/demo.yaml

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -ra

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
