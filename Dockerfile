# syntax=docker/dockerfile:1
# REAP Tracker container image.
#
#   docker build -t reap-tracker .
#   docker run --env-file deploy/reap.env -p 3000:3000 -v reap-data:/var/lib/reap reap-tracker
#
# With no command it migrates the database (reap db upgrade) and then serves Slack over HTTP on
# port 3000; `... reap-tracker socket --health-port 3000` uses Socket Mode instead. Any other
# `reap` subcommand runs as given (`... reap-tracker db upgrade`, `... reap-tracker report Q2`).
# Set REAP_MIGRATE_ON_START=false when a separate one-shot step migrates (see compose.yaml).
# Needs BuildKit (the default builder since Docker 23) for RUN --mount and COPY --chmod.

# --- builder: turn the project and every dependency into wheels --------------------------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
# .dockerignore keeps .git, .venv, tests, databases and secrets out of this context.
COPY . .
# The project's wheel and one for every dependency (all of them ship binary wheels for CPython
# 3.11, so no compiler is needed here either), at the versions CI tested: constraints.txt, the
# lock `make lock` writes, so an image built next month runs what passed today.
RUN pip wheel --wheel-dir /wheels -c constraints.txt .

# --- final: the wheels installed into a clean interpreter, run as an unprivileged user --------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Only wheels cross over from the builder (bind-mounted, so they stay out of the image's layers):
# no source tree, no tests, no .git, no build tools.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels reap-tracker

RUN groupadd --system --gid 10001 reap \
 && useradd --system --uid 10001 --gid reap --home-dir /var/lib/reap --no-create-home \
        --shell /usr/sbin/nologin reap \
 && install -d -o reap -g reap -m 0750 /var/lib/reap

COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/reap-entrypoint

WORKDIR /var/lib/reap

# SQLite in the state directory by default (mount a volume there); production sets
# DATABASE_URL=postgresql+asyncpg://... instead. Logs are one JSON object per line.
ENV DATABASE_URL=sqlite+aiosqlite:////var/lib/reap/reap.db \
    REAP_LOG_FORMAT=json

USER 10001:10001

EXPOSE 3000

# `reap serve` answers GET /livez; `reap socket` does too when started with --health-port 3000.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/livez', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["/usr/local/bin/reap-entrypoint"]
# `reap serve` listens on loopback unless told otherwise; in a container it must take the
# network interface to be reachable through the published port.
CMD ["serve", "--host", "0.0.0.0", "--port", "3000"]
