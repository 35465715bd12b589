"""Settings profiles for mailqueue: pick one with MAILQUEUE_SETTINGS=config.<name>.

- ``config.local``: one machine, nothing installed: the embedded Redis and ``mailqueue devserver``.
- ``config.docker``: the services of docker-compose.yml.
- ``config.test``: an application's own test suite: mail stays in memory.
- ``config.production_example``: a documented starting point for production.

Every setting, with its default and meaning, is listed in ``mailqueue/defaults.py`` and in
the README's settings table. Environment variables of the same name override these modules.
"""
