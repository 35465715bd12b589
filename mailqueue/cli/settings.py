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
    from mailqueue.conf import SETTINGS_MODULE_VARIABLE
    from mailqueue.defaults import SETTINGS

    if args.table:
        sys.stdout.write(settings_table())
        return 0
    values, invalid = readable_settings()
    if args.json:
        print_json({**values, **{name: {"error": message} for name, message in invalid.items()}})
        return 1 if invalid else 0
    print(f"# {SETTINGS_MODULE_VARIABLE}={os.environ.get(SETTINGS_MODULE_VARIABLE, '')}")
    width = max(len(name) for name in SETTINGS)
    for name in SETTINGS:
        source = " (env)" if name in os.environ else ""
        shown = f"INVALID: {invalid[name]}" if name in invalid else repr(values[name])
        print(f"{name:<{width}}  {shown}{source}")
    if invalid:
        print(f"mailqueue: error: {len(invalid)} setting(s) are invalid: {', '.join(invalid)}", file=sys.stderr)
    return 1 if invalid else 0


def readable_settings() -> tuple[dict[str, object], dict[str, str]]:
    """Every setting for display (secrets masked), and the ones that cannot be read, with why.

    One bad environment variable must not hide the rest: this command is where one looks for it.
    """
    from mailqueue.conf import masked, settings
    from mailqueue.defaults import SETTINGS
    from mailqueue.exceptions import ImproperlyConfigured

    settings.settings_module()  # an unimportable settings module is one error, not one per setting
    values: dict[str, object] = {}
    invalid: dict[str, str] = {}
    for name in SETTINGS:
        try:
            values[name] = masked(name, getattr(settings, name))
        except ImproperlyConfigured as error:
            invalid[name] = str(error)
    return values, invalid
