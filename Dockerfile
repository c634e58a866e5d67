# The model server, `tuneforge serve-model`, as a CPU container: one replica that follows a registry alias.
#
#   docker build -t tuneforge-serve .
#   docker run -p 8000:8000 \
#       -e TUNEFORGE_REF=intents@production \
#       -e TUNEFORGE_REGISTRY_URL=postgresql+psycopg://tuneforge:secret@db.internal/registry \
#       -e TUNEFORGE_ARTIFACTS=/registry/artifacts -v /srv/registry/artifacts:/registry/artifacts:ro \
#       tuneforge-serve
#
# Every replica reads the alias from the registry database and its blobs from the artifact store on its own:
# run as many as you like behind any load balancer (README, "Serving": "Replicas behind a load balancer").
# The process imports onnxruntime and tokenizers only; torch is installed because the package depends on it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The CPU build of torch first, from PyTorch's CPU index: PyPI's Linux wheel would pull several GB of CUDA
# libraries. The package's torch>=2.13,<2.14 is then already met.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# The registry client for a shared PostgreSQL registry (the dev extra holds it, the package does not);
# add an fsspec backend for an object-store artifact store: --build-arg EXTRA_PIP="psycopg[binary]~=3.2 s3fs".
ARG EXTRA_PIP="psycopg[binary]~=3.2"

WORKDIR /opt/tuneforge
COPY pyproject.toml README.md ./
COPY tuneforge ./tuneforge
COPY registry ./registry
COPY stages ./stages
COPY flows ./flows
# set -f: the brackets of an extra are not file patterns.
RUN set -f && pip install . $EXTRA_PIP

# Not root: the server only needs to read the artifact store and write its cache and traffic files.
RUN useradd --create-home --uid 10001 --user-group tuneforge \
    && mkdir -p /srv/tuneforge/cache /srv/tuneforge/incoming \
    && chown -R tuneforge:tuneforge /srv/tuneforge
COPY --chown=tuneforge:tuneforge params.yaml /srv/tuneforge/params.yaml
WORKDIR /srv/tuneforge
USER tuneforge

# What to serve and where from. TUNEFORGE_REF: NAME@ALIAS (followed as it moves), NAME:VERSION or a model
# folder. The registry's database URL and artifact store (a folder, e.g. a mounted volume, or an fsspec URL)
# must be the ones the pipeline registers into. The defaults fit one host: mount the project's .tuneforge
# folder (registry.db and artifacts/) on /srv/tuneforge/registry. The rest of the serve: section comes from params.yaml;
# TUNEFORGE_SERVE_ARGS adds CLI options, e.g. "--workers 2 --set serve.traffic.sample=0.05".
ENV TUNEFORGE_REF=intents@production \
    TUNEFORGE_REGISTRY_URL=sqlite:////srv/tuneforge/registry/registry.db \
    TUNEFORGE_ARTIFACTS=/srv/tuneforge/registry/artifacts \
    TUNEFORGE_TRAFFIC_DIR=/srv/tuneforge/incoming \
    TUNEFORGE_SERVE_ARGS="" \
    PORT=8000
# Each replica's cache of verified model copies, and the traffic batches for the drift monitor (mount a
# shared volume on /srv/tuneforge/incoming so the monitor reads every replica's files).
VOLUME ["/srv/tuneforge/cache", "/srv/tuneforge/incoming"]
EXPOSE 8000

# /readyz answers 200 once a verified model is loaded: what a load balancer should route on.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/readyz', timeout=2)"

# exec: the server is PID 1 and gets docker stop's SIGTERM itself, so it drains (serve.drain_s) and exits 0.
# A bad REF, an unreachable registry or a port in use is one line on stderr and a non-zero exit.
CMD ["sh", "-c", "exec tuneforge serve-model \"$TUNEFORGE_REF\" --host 0.0.0.0 --port \"$PORT\" --params params.yaml --set \"registry.url=$TUNEFORGE_REGISTRY_URL\" --set \"registry.artifacts=$TUNEFORGE_ARTIFACTS\" --set registry.cache=/srv/tuneforge/cache --set \"serve.traffic.dir=$TUNEFORGE_TRAFFIC_DIR\" $TUNEFORGE_SERVE_ARGS"]
