"""The services of docker-compose.yml: ``MAILQUEUE_SETTINGS=config.docker`` (set in the image).

Host names are the compose service names: ``redis`` is the broker and result backend,
``devsmtp`` the development SMTP server. To deliver real mail, override EMAIL_HOST,
EMAIL_PORT, EMAIL_USE_TLS, EMAIL_HOST_USER and EMAIL_HOST_PASSWORD in the environment of
the ``worker`` service (environment variables win over this module).
"""

EMAIL_BACKEND = "mailqueue.backends.queue.EmailBackend"
DEFAULT_FROM_EMAIL = "mailqueue@example.com"

MAILQUEUE_BROKER_URL = "redis://redis:6379/0"

EMAIL_HOST = "devsmtp"
EMAIL_PORT = 1025
EMAIL_TIMEOUT = 30.0
