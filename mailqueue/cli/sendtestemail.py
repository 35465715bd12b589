"""``mailqueue sendtestemail``: Django's sendtestemail command, through mailqueue's mailers."""

from __future__ import annotations

import argparse
import datetime
import socket

from mailqueue.cli.base import CommandParser, add_command

MISSING_ARGUMENTS = "You must specify some email recipients, or pass the --managers or --admin options."

DESCRIPTION = """\
Sends a test email to the email addresses specified as arguments.

The message goes through a mailer (MAILERS; without it, EMAIL_BACKEND and the EMAIL_*
settings), exactly as send_mail() sends it, so it also tests the settings an application
would use. With the queue backend the command returns once the message is on the broker;
the workers deliver it.

examples:
  mailqueue sendtestemail ann@example.com
  mailqueue sendtestemail --admins --managers
  mailqueue sendtestemail ann@example.com --using newsletter
"""


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(
        subparsers, "sendtestemail", help="send a test email, as Django's sendtestemail", description=DESCRIPTION
    )
    parser.add_argument("email", nargs="*", help="One or more email addresses to send a test email to.")
    parser.add_argument(
        "--managers", action="store_true", help="Send a test email to the addresses specified in settings.MANAGERS."
    )
    parser.add_argument(
        "--admins", action="store_true", help="Send a test email to the addresses specified in settings.ADMINS."
    )
    parser.add_argument(
        "--using", default=None, metavar="ALIAS",
        help="Specify the MAILERS alias to use for sending the test email. Defaults to 'default'.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not (args.email or args.managers or args.admins or args.using):
        args.command_parser.error(MISSING_ARGUMENTS)  # as Django: only when nothing at all is given
    from mailqueue.mail import mail_admins, mail_managers, send_mail

    subject = f"Test email from {socket.gethostname()} on {datetime.datetime.now(datetime.UTC)}"
    send_mail(
        subject=subject, message="If you're reading this, it was successful.", from_email=None,
        recipient_list=args.email, using=args.using,
    )
    if args.managers:
        mail_managers(subject, "This email was sent to the site managers.", using=args.using)
    if args.admins:
        mail_admins(subject, "This email was sent to the site admins.", using=args.using)
    return 0
