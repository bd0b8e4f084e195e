"""``mona``: run the bot (console, Slack Socket Mode or Slack HTTP, Discord, Twitch, from the
environment), ``mona exec "/artist add …"`` for scripts, ``mona db upgrade``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
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
    sub.add_parser("run", help="run the bot (the default): Slack, Discord and/or Twitch if their settings are set, else the console")
    ex = sub.add_parser("exec", help="run one command as the console user and print the reply")
    ex.add_argument("command", nargs=argparse.REMAINDER, help='e.g. "/artist add Alex --genre pop"')
    wk = sub.add_parser("worker", help="run an RQ worker (queues high, default, low, with the scheduler) and the relay")
    wk.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    rl = sub.add_parser("relay", help="move committed outbox events to the queue (in a loop, or --once)")
    rl.add_argument("--once", action="store_true")
    im = sub.add_parser("import", help="import a CSV file of artist metrics as the console user, and print the report")
    im.add_argument("file", help="a CSV file: artist, date, source and metric columns (instagram_followers, …)")
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
    chat = bool(settings.discord_token) or settings.twitch_enabled
    quiet = args.cmd in ("exec", "db", "import") or (settings.slack_mode is None and not chat)
    configure_logging("WARNING" if quiet and "MONA_LOG_LEVEL" not in os.environ else settings.log_level)

    if args.cmd == "db":
        from core.db import Database

        database = Database(settings.database_url)
        if args.action == "upgrade":
            database.upgrade()
        print(database.current_revision())
        return 0
    mona = bootstrap(settings)
    # What startup built lives as long as the process: kept out of the collector's full passes, which
    # otherwise walk it every few hundred commands (a 150 ms pause in a reply).
    gc.freeze()
    from bot.console import ConsoleBot, render, repl

    if args.cmd == "exec":
        reply = ConsoleBot(mona.dispatcher).run(" ".join(args.command))
        print(render(reply))
        mona.run_pending_jobs()
        return 1 if reply.error else 0
    if args.cmd == "import":
        return import_file(mona, args.file)
    if args.cmd == "worker":
        from jobs.worker import run_worker

        return run_worker(mona.runtime, burst=args.burst)
    if args.cmd == "relay":
        from jobs.relay import relay_once
        from jobs.ticker import Ticker

        if args.once:
            print(f"relayed {relay_once(mona.runtime)} events")
            return 0
        Ticker(mona.runtime).run_forever()
        return 0
    mode = settings.slack_mode
    if mode is None and not chat:
        where = "SQLite file " + settings.database_url.removeprefix("sqlite:///") if settings.embedded_database else "PostgreSQL"
        print(f"No Slack, Discord or Twitch settings: starting the console on {where}.", file=sys.stderr)
        mona.start_background()
        repl(ConsoleBot(mona.dispatcher))
        return 0
    mona.start_background()
    if mode != "http":  # connecting out: serve the health check on its own
        from bot.health import serve_in_background

        serve_in_background(mona)
    if mode is not None:
        from bot import slack

        serve = slack.run_socket_mode if mode == "socket" else slack.serve_http
        if not chat:
            serve(mona)
            return 0
        # Slack (blocking, synchronous) on a thread; Discord and Twitch on the main thread's event loop.
        threading.Thread(target=_run_slack, args=(serve, mona), name="slack", daemon=True).start()
    if settings.discord_token and settings.twitch_enabled:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_discord_and_twitch(mona))
    elif settings.discord_token:
        from bot.discord import run_discord

        run_discord(mona)
    else:
        from bot.twitch import TwitchConnectError, run_twitch

        try:
            run_twitch(mona)
        except TwitchConnectError as e:
            print(f"mona: {e}", file=sys.stderr)
            return 2
    return 0


def _run_slack(serve: Callable[[Mona], None], mona: Mona) -> None:
    try:
        serve(mona)
    except Exception:
        logging.getLogger("mona.slack").exception("the Slack connection stopped; the other platforms go on")


async def _serve_discord_and_twitch(mona: Mona) -> None:
    """Discord and Twitch on one event loop. Twitch stopping (a refused token, say) is logged and
    leaves Discord running; Discord stopping stops both."""
    from bot import discord as discord_adapter
    from bot.twitch import serve_twitch

    settings = mona.settings
    assert settings.discord_token is not None

    async def twitch() -> None:
        try:
            await serve_twitch(mona)
        except Exception:
            logging.getLogger("mona.twitch").exception("the Twitch connection stopped; Discord goes on")

    twitch_task = asyncio.create_task(twitch(), name="twitch")
    discord_adapter.point_at(settings.discord_api_url, settings.discord_gateway_url)
    try:
        async with discord_adapter.MonaDiscord(mona, guard=mona.guard) as client:
            await client.start(settings.discord_token)
    finally:
        twitch_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await twitch_task


if __name__ == "__main__":
    raise SystemExit(main())


def import_file(mona: Mona, path: str) -> int:
    """``mona import FILE``: the file's metrics through the application's one door, as the console user."""
    from pathlib import Path

    from bot.console import CONSOLE_CALLER, render
    from handlers.args import Upload
    from handlers.metrics import ImportMetrics
    from handlers.reply import Reply

    file = Path(path)
    try:
        content = file.read_bytes()
    except OSError as e:
        print(f"mona: cannot read {path}: {e.strerror}", file=sys.stderr)
        return 2
    outcome = mona.app.execute(CONSOLE_CALLER, ImportMetrics(file=Upload(file.name, content)))
    reply = outcome.value if isinstance(outcome.value, Reply) else Reply(
        text=outcome.error.message if outcome.error else "", error=True)
    print(render(reply))
    return 1 if reply.error else 0
