"""``mailqueue demo``: the whole pipeline on one machine, with nothing configured.

It starts the embedded Redis, a development SMTP server (in this process) and one worker
(a ``celery -A workers worker`` subprocess), sends a few hundred varied messages through
the queue backend, waits for every delivery report and prints what happened. The demo
keeps to database 1 of the embedded Redis, which it empties first, so it never touches
the queue of database 0 that ``config.local`` and a bare ``mailqueue worker`` use.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from mailqueue.cli.base import CommandError, CommandParser, add_command

DESCRIPTION = """\
Run mailqueue end to end on this machine: the embedded Redis, a development SMTP
server and one worker, then a few hundred varied messages through the queue backend
(some with recipients that bounce or are greylisted, to show failures and retries).
Prints the delivered, failed and retried counts and the throughput.

Needs nothing configured and ignores what is: it always uses the embedded Redis
(database 1, emptied first, under MAILQUEUE_DATA_DIR), stopped at the end if the demo
started it. Progress goes to stderr, results to stdout."""

DEMO_DB = 1
QUEUE = "mailqueue"
BATCH_SIZE = 10  # small batches: the worker's threads share the load, the progress bar moves
WORKER_READY_SECONDS = 30.0


def register(subparsers: argparse._SubParsersAction[CommandParser]) -> None:
    parser = add_command(subparsers, "demo", help="run the whole pipeline on this machine", description=DESCRIPTION)
    parser.add_argument("--messages", type=int, default=300, help="how many messages (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="worker threads (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="give up after SECONDS (default: %(default)s)")
    parser.add_argument("--keep-broker", action="store_true",
                        help="leave the embedded Redis running afterwards (it is stopped if the demo started it)")
    parser.set_defaults(handler=run)


@dataclass
class Outcome:
    messages: int
    tasks: int
    delivered: int
    failed: int
    retried: int  # messages that needed more than one attempt
    retry_rounds: int
    dead_letters: int
    enqueue_seconds: float
    total_seconds: float


def demo_url(embedded_url: str) -> str:
    return urlunsplit(urlsplit(embedded_url)._replace(path=f"/{DEMO_DB}"))


def forget_configuration() -> None:
    """Drop every setting from this process's environment (but the data folder, made absolute)."""
    from mailqueue.conf import SETTINGS_MODULE_VARIABLE
    from mailqueue.defaults import SETTINGS
    from mailqueue.queue.embedded import data_dir_path

    data_dir = str(data_dir_path())
    for name in [*SETTINGS, SETTINGS_MODULE_VARIABLE]:
        os.environ.pop(name, None)
    os.environ["MAILQUEUE_DATA_DIR"] = data_dir


def worker_environment(url: str, smtp_port: int, log_dir: Path) -> dict[str, str]:
    """The worker sees only the demo's settings, whatever the user has configured."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("MAILQUEUE_", "EMAIL_"))}
    env.update(
        MAILQUEUE_BROKER_URL=url, MAILQUEUE_QUEUE=QUEUE, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_port),
        EMAIL_TIMEOUT="10", MAILQUEUE_RETRY_MIN_DELAY="0.2", MAILQUEUE_RETRY_MAX_DELAY="1",
        MAILQUEUE_MAX_RETRIES="3", MAILQUEUE_DEFERRED_POLL_INTERVAL="0.1", MAILQUEUE_DATA_DIR=str(log_dir),
        PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
    )
    return env


class Demo:
    def __init__(self, args: argparse.Namespace, *, err: TextIO) -> None:
        if args.messages < 1 or args.concurrency < 1:
            args.command_parser.error("--messages and --concurrency must be at least 1")
        self.args, self.err = args, err
        self.deadline = time.monotonic() + args.timeout
        forget_configuration()
        self.worker_name = f"demo{os.getpid()}"
        self.url = ""  # the demo database's URL, once the broker is up
        self.broker_stopped = False

    def say(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def run(self) -> Outcome:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(self.broker())
            port = stack.enter_context(self.smtp_server())
            worker = stack.enter_context(self.worker(url, port))
            from mailqueue.conf import override_settings

            with override_settings(EMAIL_BACKEND="mailqueue.backends.queue.EmailBackend", MAILQUEUE_BROKER_URL=url,
                                   MAILQUEUE_RESULT_BACKEND="", MAILQUEUE_QUEUE=QUEUE, MAILQUEUE_BATCH_SIZE=BATCH_SIZE):
                self.wait_for_worker(url, worker)
                return self.send_and_collect(worker)
        raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow errors

    @contextlib.contextmanager
    def broker(self) -> Iterator[str]:
        import redis

        from mailqueue.queue.embedded import embedded_status, ensure_embedded_redis, stop_embedded_redis

        status = embedded_status()
        self.log_dir = status.data_dir
        url = self.url = demo_url(ensure_embedded_redis())
        self.say(f"Embedded Redis: {url} (data in {status.data_dir})")
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
        try:
            yield url
        finally:
            if status.url is None and not self.args.keep_broker:
                stop_embedded_redis()
                self.broker_stopped = True

    @contextlib.contextmanager
    def smtp_server(self) -> Iterator[int]:
        from mailqueue.devserver import DevServerHandler, free_port, start_devserver

        self.handler = DevServerHandler(simulate_failures=True)
        port = free_port()
        controller = start_devserver(self.handler, port=port)
        self.say(f"Development SMTP server: 127.0.0.1:{port} (bounces 'bounce*', greylists 'greylist*' once)")
        try:
            yield port
        finally:
            controller.stop()

    @contextlib.contextmanager
    def worker(self, url: str, smtp_port: int) -> Iterator[subprocess.Popen[bytes]]:
        self.log_path = self.log_dir / "demo-worker.log"
        command = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "threads",
                   "--concurrency", str(self.args.concurrency), "--loglevel", "INFO", "--hostname",
                   f"{self.worker_name}@%h", "--without-mingle", "--without-gossip"]
        with open(self.log_path, "wb") as log:
            process = subprocess.Popen(command, env=worker_environment(url, smtp_port, self.log_dir),
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.say(f"Worker: pid {process.pid}, {self.args.concurrency} threads (log: {self.log_path})")
        try:
            yield process
        finally:
            stop_process(process)

    def wait_for_worker(self, url: str, worker: subprocess.Popen[bytes]) -> None:
        from celery import Celery

        from mailqueue.queue.broker import shared_celery_config

        app = Celery("mailqueue-demo", broker=url, set_as_current=False)
        app.conf.update(shared_celery_config())
        deadline = min(self.deadline, time.monotonic() + WORKER_READY_SECONDS)
        try:
            while time.monotonic() < deadline:
                self.check_worker(worker)
                replies = app.control.ping(timeout=0.3) or []
                if any(name.startswith(f"{self.worker_name}@") for reply in replies for name in reply):
                    return
            raise CommandError(f"the demo worker did not come up in time; see {self.log_path}")
        finally:
            app.close()

    def check_deadline(self, remaining: str) -> None:
        if time.monotonic() > self.deadline:
            raise CommandError(f"the demo did not finish within {self.args.timeout:g} s: {remaining}; "
                               f"see {self.log_path}")

    def check_worker(self, worker: subprocess.Popen[bytes]) -> None:
        if worker.poll() is not None:
            raise CommandError(f"the demo worker exited with status {worker.returncode}; see {self.log_path}")

    def send_and_collect(self, worker: subprocess.Popen[bytes]) -> Outcome:
        from mailqueue.cli.demo_messages import demo_messages

        messages = demo_messages(self.args.messages)
        started = time.monotonic()
        batches = self.enqueue(messages)
        enqueued = time.monotonic()
        self.wait_for_reports(batches, worker)
        reports = self.reports(batches)
        return tally(reports, messages=len(messages), enqueue_seconds=enqueued - started,
                     total_seconds=time.monotonic() - started)

    def enqueue(self, messages: list[Any]) -> dict[str, int]:
        """Send in batch-sized chunks (one task each); returns task id -> message count."""
        from mailqueue.cli.progress import Progress
        from mailqueue.mail import get_connection

        connection = get_connection()
        progress = Progress("Enqueueing", len(messages), stream=self.err)
        batches: dict[str, int] = {}
        for start in range(0, len(messages), BATCH_SIZE):
            self.check_deadline(f"{len(messages) - start} message(s) not enqueued yet")
            chunk = messages[start:start + BATCH_SIZE]
            connection.send_messages(chunk)
            for message in chunk:
                task_id = message.delivery.task_id
                batches[task_id] = batches.get(task_id, 0) + 1
            progress.update(start + len(chunk))
        progress.finish()
        return batches

    def wait_for_reports(self, batches: dict[str, int], worker: subprocess.Popen[bytes]) -> None:
        from mailqueue.cli.progress import Progress
        from mailqueue.queue.delivery import Delivery

        progress = Progress("Delivering", sum(batches.values()), stream=self.err)
        remaining, done = dict(batches), 0
        while remaining:
            self.check_deadline(f"{len(remaining)} delivery task(s) still pending")
            self.check_worker(worker)
            for task_id in [task_id for task_id in remaining if Delivery(task_id).ready()]:
                done += remaining.pop(task_id)
            progress.update(done)
            time.sleep(0.05)
        progress.finish()

    def reports(self, batches: dict[str, int]) -> list[dict[str, Any]]:
        from mailqueue.queue.delivery import Delivery

        return [Delivery(task_id).get(timeout=10) for task_id in batches]


def tally(reports: list[dict[str, Any]], *, messages: int, enqueue_seconds: float, total_seconds: float) -> Outcome:
    entries = [entry for report in reports for entry in report.get("messages", {}).values()]
    return Outcome(
        messages=messages, tasks=len(reports),
        delivered=sum(int(report.get("sent", 0)) for report in reports),
        failed=sum(int(report.get("failed", 0)) for report in reports),
        retried=sum(1 for entry in entries if int(entry.get("attempts", 0)) > 1),
        retry_rounds=sum(int(report.get("retries", 0)) for report in reports),
        dead_letters=sum(1 for entry in entries if entry.get("dead_letter")),
        enqueue_seconds=enqueue_seconds, total_seconds=total_seconds,
    )


def stop_process(process: subprocess.Popen[bytes], grace_seconds: float = 15.0) -> None:
    """SIGTERM (Celery's warm shutdown), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def result_lines(outcome: Outcome, received: int) -> list[str]:
    rate = outcome.messages / outcome.total_seconds if outcome.total_seconds else 0.0
    enqueue_rate = outcome.messages / outcome.enqueue_seconds if outcome.enqueue_seconds else 0.0
    return [
        f"Messages:   {outcome.messages} in {outcome.tasks} delivery tasks",
        f"Delivered:  {outcome.delivered}",
        f"Failed:     {outcome.failed} (a recipient refused for good; {outcome.dead_letters} dead letter(s) kept)",
        f"Retried:    {outcome.retried} message(s) needed more than one attempt "
        f"({outcome.retry_rounds} retry round(s))",
        f"Throughput: {rate:.0f} messages/s end to end ({outcome.total_seconds:.1f} s); "
        f"enqueueing {enqueue_rate:.0f} messages/s ({outcome.enqueue_seconds:.2f} s)",
        f"SMTP:       the development server accepted {received} message(s)",
    ]


def explanation_lines(outcome: Outcome, *, url: str, broker_stopped: bool) -> list[str]:
    """What the totals mean, and where the demo's dead letters are (not where the commands look)."""
    lines = [
        "",
        "Delivered and Failed count messages, whatever their number of recipients. The SMTP server",
        "counts transactions: a message retried for some of its recipients arrives once per round.",
    ]
    if outcome.dead_letters:
        where = f"MAILQUEUE_BROKER_URL={url} mailqueue dead list"
        lines.append(f"The dead letters are in the demo's own database (database {DEMO_DB}), not the one the other")
        lines.append(f"commands read. To see them: `{where}`"
                     + (", after `mailqueue demo --keep-broker` (this run stopped that Redis)."
                        if broker_stopped else "."))
    return lines


def run(args: argparse.Namespace) -> int:
    demo = Demo(args, err=sys.stderr)
    outcome = demo.run()
    print("\n".join(result_lines(outcome, demo.handler.received)
                    + explanation_lines(outcome, url=demo.url, broker_stopped=demo.broker_stopped)))
    return 0 if outcome.delivered + outcome.failed == outcome.messages else 1
