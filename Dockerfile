# The Signing Service's image: `signing-service run` on port 8443, data in the /data volume,
# configured by the environment variables of the README's "Configuration" table (`*_FILE` forms
# included). No secret is baked in: the first start makes the master key and a self-signed
# certificate in /data unless they are supplied.
#
#   docker build -t signing-service .                  # the official python:3.11-slim-bookworm
#   scripts/build-image                                 # how our machines build it (no Docker Hub)
#
# Behind a TLS-inspecting proxy, give its CA to the steps that download packages:
#   docker build --secret id=cacert,src=/path/to/ca-bundle.crt .
# and a package index other than PyPI as a secret too (its URL may carry credentials):
#   docker build --secret id=pip_index_url,src=FILE_WITH_THE_URL .
# Plain DOCKER_BUILDKIT=1 is enough: no `# syntax` line, so no frontend image is pulled.

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS base
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore


# The service's runtime dependencies at the locked versions, hash-checked. requirements.lock
# (uv export --all-packages) also holds the dev tools, so it is cut down first: the packages
# reachable from signing-service and signing-manager through the lock's own "# via" notes, each
# block kept whole (version, markers, hashes). Nothing is resolved again, and `pip check` proves
# the result complete. This layer changes only when the lock does.
FROM base AS deps
WORKDIR /build
# Runs a download step with the build secrets, when given: a TLS-inspecting proxy's CA, another
# package index (see the top of this file).
RUN printf '%s\n' '#!/bin/sh' 'set -eu' \
      'if [ -s /run/secrets/cacert ]; then' \
      '  export PIP_CERT=/run/secrets/cacert SSL_CERT_FILE=/run/secrets/cacert; fi' \
      'if [ -s /run/secrets/pip_index_url ]; then' \
      '  PIP_INDEX_URL="$(cat /run/secrets/pip_index_url)"; export PIP_INDEX_URL; fi' \
      'exec "$@"' > with-build-secrets \
 && chmod 755 with-build-secrets
COPY requirements.lock ./
RUN python3 -c 'import re; \
blocks = [b for b in re.split(r"\n(?=\S)", open("requirements.lock").read()) if b[:1].isalpha()]; \
name = lambda block: re.match(r"[\w.-]+", block)[0].lower(); \
needed_by = {name(b): set(re.findall(r"^[ \t]+#(?: via)?[ \t]+([\w.-]+)[ \t]*$", b, re.M)) for b in blocks}; \
keep = {"signing-service", "signing-manager"}; \
[keep.update(n for n, users in needed_by.items() if users & keep) for _ in needed_by]; \
print("\n".join(b.strip() for b in blocks if name(b) in keep))' > runtime.lock
RUN --mount=type=secret,id=cacert --mount=type=secret,id=pip_index_url \
    python3 -m venv /app/venv \
 && ./with-build-secrets /app/venv/bin/pip install --quiet --no-compile --require-hashes \
      --no-deps --only-binary :all: -r runtime.lock


# The two wheels: the service and the client. The client's wheel is also what /client/ offers:
# `run` finds it in /app/client (read-only to the service) and so has nothing to pack.
FROM deps AS wheels
COPY client/pyproject.toml client/
COPY client/src client/src
COPY service/pyproject.toml service/
COPY service/src service/src
RUN --mount=type=secret,id=cacert --mount=type=secret,id=pip_index_url \
    ./with-build-secrets /app/venv/bin/pip wheel --quiet --no-deps --wheel-dir /wheels \
      ./client ./service


FROM base AS runtime
# A fixed UID/GID, so volumes and Kubernetes' runAsUser/fsGroup can name it.
RUN groupadd --gid 10001 signing \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin signing \
 && mkdir -m 0700 /data && chown 10001:10001 /data
COPY --from=deps /app/venv /app/venv
COPY --from=wheels /wheels/signing_manager-*.whl /app/client/
# Bytecode is compiled here, unchecked-hash: Python then never looks at the sources' times nor
# tries to write a .pyc, so a read-only root filesystem costs nothing at start (and our build
# machines set PYTHONDONTWRITEBYTECODE, which would leave pip's compilation out). The
# interpreter's own library too: the official image ships it without .pyc.
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    /app/venv/bin/pip install --quiet --no-compile --no-deps --no-index /wheels/*.whl \
 && /app/venv/bin/pip check \
 && /app/venv/bin/python -m compileall -q -f -j 0 --invalidation-mode unchecked-hash \
      /app/venv/lib "$(/app/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" \
      >/dev/null

ENV PATH=/app/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    SIGNING_SERVICE_DATA_DIR=/data \
    SIGNING_SERVICE_CLIENT_WHEEL_DIR=/app/client \
    HOME=/data
USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 8443
# Without Django, so every 30 s costs a few milliseconds. It asks 127.0.0.1 on
# SIGNING_SERVICE_HEALTHCHECK_PORT (8443): set it when --bind names another port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "signing_service.healthcheck"]
ENTRYPOINT ["signing-service"]
CMD ["run", "--bind", "0.0.0.0:8443"]
