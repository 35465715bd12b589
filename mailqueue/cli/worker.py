"""``mailqueue worker``: start one worker of the fleet (``celery -A workers worker``)."""

from __future__ import annotations

import argparse
import os
import sys

from mailqueue.cli.base import CommandParser, add_command

DESCRIPTION = """\
Start one worker of the fleet: runs 'celery -A workers worker' with the options given,
in place of this process (so signals such as SIGTERM reach Celery directly).

Any Celery worker option is passed through, for example:
  mailqueue worker --concurrency 8 --loglevel INFO
  mailqueue worker --pool threads --concurrency 16 --hostname mail1@%h
  mailqueue worker --priorities high    # a worker kept free for high-priority mail
Run 'mailqueue worker --celery-help' for Celery's own list of options.

With no MAILQUEUE_BROKER_URL, the worker uses the embedded Redis under
MAILQUEUE_DATA_DIR (started here if it is not running yet)."""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "worker", help="start a delivery worker (Celery options pass through)",
                         description=DESCRIPTION)
    parser.add_argument("--celery-help", action="store_true", help="show Celery's worker options and exit")
    parser.add_argument("--priorities", metavar="LIST", type=priorities,
                        help="take only these priorities, e.g. 'high' or 'high,normal' (default: all three, "
                             "high first; sets MAILQUEUE_WORKER_PRIORITIES)")
    parser.add_argument("--no-broker-check", action="store_true",
                        help="start even if the broker does not answer now (Celery then keeps retrying)")
    parser.set_defaults(handler=run, accepts_extra=True)


def priorities(value: str) -> str:
    """An argparse type: a comma-separated list of priorities, as MAILQUEUE_WORKER_PRIORITIES takes it."""
    from mailqueue.queue.priority import check_priorities

    try:
        return ",".join(check_priorities([name.strip() for name in value.split(",") if name.strip()],
                                         what="--priorities"))
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def celery_command(options: list[str]) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers", "worker", *options]


def check_broker(url: str) -> None:
    """Fail in one line, before Celery starts, if a Redis broker does not answer."""
    import redis

    from mailqueue.cli.base import CommandError
    from mailqueue.queue.broker import redacted

    if not url.startswith(("redis://", "rediss://", "unix://")):
        return  # another transport: Celery reports on it
    client = redis.Redis.from_url(url, socket_connect_timeout=3.0, socket_timeout=3.0)
    try:
        client.ping()
    except redis.RedisError as error:
        raise CommandError(f"cannot reach the broker at {redacted(url)}: {error} (the worker was not started; "
                           "--no-broker-check starts it anyway)") from None
    finally:
        client.close()


def worker_environment() -> dict[str, str]:
    """The worker's environment: the embedded broker resolved (and started) up front, once.

    The data folder is passed as an absolute path, so a worker given ``--workdir`` still
    finds the same server, and the current directory is put on PYTHONPATH so settings
    modules such as ``config.local`` import as they do here.
    """
    from mailqueue.conf import settings

    env = dict(os.environ)
    if not settings.MAILQUEUE_BROKER_URL:
        from mailqueue.queue.embedded import data_dir_path, ensure_embedded_redis

        ensure_embedded_redis()
        env["MAILQUEUE_DATA_DIR"] = str(data_dir_path())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return env


def run(args: argparse.Namespace) -> int:
    if args.celery_help:
        command = celery_command(["--help"])
        os.execv(command[0], command)
    command = celery_command(list(args.extra))
    env = worker_environment()
    if args.priorities:
        env["MAILQUEUE_WORKER_PRIORITIES"] = args.priorities
    if not args.no_broker_check:
        from mailqueue.queue.broker import broker_url

        check_broker(broker_url())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, env)
