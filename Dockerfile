# One image for every mailqueue service: the workers, the development SMTP server and Flower.
# Build: docker compose build    (or: docker build -t mailqueue .)
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # /app is on the path so that MAILQUEUE_SETTINGS=config.docker (and your own settings
    # module, mounted or copied under /app) can be imported by every process.
    PYTHONPATH=/app \
    MAILQUEUE_SETTINGS=config.docker

WORKDIR /app

# The package and its dependencies (and Flower); settings come last, as they change most.
COPY pyproject.toml README.md ./
COPY mailqueue ./mailqueue
COPY workers ./workers
RUN pip install ".[monitoring]"

COPY config ./config

# Celery refuses to be comfortable as root; run as an unprivileged user.
RUN useradd --create-home --uid 1000 mailqueue && mkdir -p /var/mail/devsmtp && chown mailqueue /var/mail/devsmtp
USER mailqueue

# The default service is a worker; docker-compose.yml sets each service's command.
CMD ["mailqueue", "worker", "--loglevel", "INFO"]
