"""``mailqueue settings``: every setting's current value and where the values come from."""

from __future__ import annotations

import argparse
import os
import sys

from mailqueue.cli.base import CommandParser, add_command, print_json

DESCRIPTION = """\
Show the value of every setting as this process sees it: defaults, overridden by the
module named in MAILQUEUE_SETTINGS (or --settings), overridden by environment variables
of the same name. Passwords are masked."""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "settings", help="show the current settings", description=DESCRIPTION)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON object")
    output.add_argument("--table", action="store_true",
                        help="print every setting's default and meaning as a Markdown table (the README's)")
    parser.set_defaults(handler=run)


def settings_table() -> str:
    """The README's settings table, generated from ``mailqueue.defaults`` (a test keeps them equal)."""
    from mailqueue.defaults import SETTINGS

    rows = ["| Setting | Default | Meaning |", "| --- | --- | --- |"]
    for name, setting in SETTINGS.items():
        default, doc = (text.replace("|", "\\|") for text in (repr(setting.default), setting.doc))
        rows.append(f"| `{name}` | `{default}` | {doc} |")
    return "\n".join(rows) + "\n"


def run(args: argparse.Namespace) -> int:
    from mailqueue.conf import SETTINGS_MODULE_VARIABLE, settings
    from mailqueue.defaults import SETTINGS

    if args.table:
        sys.stdout.write(settings_table())
        return 0
    values = settings.as_dict()
    if args.json:
        print_json(values)
        return 0
    print(f"# {SETTINGS_MODULE_VARIABLE}={os.environ.get(SETTINGS_MODULE_VARIABLE, '')}")
    width = max(len(name) for name in SETTINGS)
    for name, value in values.items():
        source = " (env)" if name in os.environ else ""
        print(f"{name:<{width}}  {value!r}{source}")
    return 0
