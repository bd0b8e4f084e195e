"""``mona``: run the bot (console, Slack Socket Mode or Slack HTTP, Discord, from the environment),
``mona exec "/artist add …"`` for scripts, ``mona db upgrade``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.config import Settings

if TYPE_CHECKING:
    from bot.app import Mona


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mona", description="The MONA x SPARK ops bot.")
    sub = parser.add_subparsers(dest="cmd")
    sub.add_parser("run", help="run the bot (the default): Slack and/or Discord if their tokens are set, else the console")
    ex = sub.add_parser("exec", help="run one command as the console user and print the reply")
    ex.add_argument("command", nargs=argparse.REMAINDER, help='e.g. "/artist add Alex --genre pop"')
    wk = sub.add_parser("worker", help="run an RQ worker (queues high, default, low, with the scheduler) and the relay")
    wk.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    rl = sub.add_parser("relay", help="move committed outbox events to the queue (in a loop, or --once)")
    rl.add_argument("--once", action="store_true")
    db = sub.add_parser("db", help="database tasks")
    db.add_argument("action", choices=["upgrade", "current"])
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ValueError as e:
        print(f"mona: {e}", file=sys.stderr)
        return 2
    from bot.app import bootstrap, configure_logging

    # The console shows replies on the terminal: only problems go to its log unless asked.
    quiet = args.cmd in ("exec", "db") or (settings.slack_mode is None and not settings.discord_token)
    configure_logging("WARNING" if quiet and "MONA_LOG_LEVEL" not in os.environ else settings.log_level)

    if args.cmd == "db":
        from core.db import Database

        database = Database(settings.database_url)
        if args.action == "upgrade":
            database.upgrade()
        print(database.current_revision())
        return 0
    mona = bootstrap(settings)
    from bot.console import ConsoleBot, render, repl

    if args.cmd == "exec":
        reply = ConsoleBot(mona.dispatcher).run(" ".join(args.command))
        print(render(reply))
        mona.run_pending_jobs()
        return 1 if reply.error else 0
    if args.cmd == "worker":
        from jobs.worker import run_worker

        return run_worker(mona.runtime, burst=args.burst)
    if args.cmd == "relay":
        from jobs.ticker import Ticker, relay_once

        if args.once:
            print(f"relayed {relay_once(mona.runtime)} events")
            return 0
        Ticker(mona.runtime).run_forever()
        return 0
    mode = settings.slack_mode
    if mode is None and not settings.discord_token:
        where = "SQLite file " + settings.database_url.removeprefix("sqlite:///") if settings.embedded_database else "PostgreSQL"
        print(f"No Slack or Discord tokens set: starting the console on {where}.", file=sys.stderr)
        mona.start_background()
        repl(ConsoleBot(mona.dispatcher))
        return 0
    mona.start_background()
    if mode is not None:
        from bot import slack

        serve = slack.run_socket_mode if mode == "socket" else slack.serve_http
        if not settings.discord_token:
            serve(mona)
            return 0
        # Both: Slack (blocking, synchronous) on a thread, Discord's event loop on the main thread.
        threading.Thread(target=_run_slack, args=(serve, mona), name="slack", daemon=True).start()
    from bot.discord import run_discord

    run_discord(mona)
    return 0


def _run_slack(serve: Callable[[Mona], None], mona: Mona) -> None:
    try:
        serve(mona)
    except Exception:
        logging.getLogger("mona.slack").exception("the Slack connection stopped; Discord goes on")


if __name__ == "__main__":
    raise SystemExit(main())
