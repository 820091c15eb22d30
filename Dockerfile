# syntax=docker/dockerfile:1
# modelarts-exporter image: the built wheel (and its dependency wheels) in a venv, nothing else from the repo.
# Runs as a numeric non-root user and needs no writable path, so it works with readOnlyRootFilesystem.
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY exporter/ exporter/
# The runtime dependencies exactly as locked, every file checked against the lock's hashes (a
# dependency missing from the lock fails here), then the project's own wheel without dependencies.
RUN pip download --require-hashes --only-binary=:all: --dest /wheels -r requirements.lock \
    && pip wheel --no-deps --wheel-dir /wheels . \
    && cp requirements.lock /wheels/

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="modelarts-exporter" \
      org.opencontainers.image.description="Prometheus exporter for ModelArts training jobs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="python:3.11-slim-bookworm"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Install from the build stage's wheels only (--no-index): no source tree, compilers or network here.
# The lock with its hashes first, then the exporter's wheel with --no-deps: nothing unlocked gets in.
# Byte-code is compiled now, at install time, so the read-only container never needs to write it.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install --no-index --find-links=/wheels --require-hashes -r /wheels/requirements.lock \
    && python -m pip --python /opt/venv/bin/python install --no-index --no-deps /wheels/modelarts_exporter-*.whl \
    && /opt/venv/bin/modelarts-exporter --help >/dev/null
# Only after the install: with the venv first on PATH, the `python -m pip` above would run the
# venv's python, which has no pip.
ENV PATH=/opt/venv/bin:$PATH
USER 65532:65532
EXPOSE 9878
# Liveness of the process: /healthz on loopback at MODELARTS_EXPORTER_LISTEN_ADDRESS (default
# :9878), over HTTPS when MODELARTS_EXPORTER_WEB_CONFIG_FILE turns TLS on, a TCP connection when
# it requires client certificates (`modelarts-exporter healthcheck --help`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["modelarts-exporter", "healthcheck"]
ENTRYPOINT ["modelarts-exporter"]
CMD ["serve"]
