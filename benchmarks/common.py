"""Helpers the benchmark scripts share: the benchmark database (libpq DSN, created if missing,
emptied and migrated), percentiles, signed Slack requests and small HTTP stubs.

Imported by the scripts as ``benchmarks.common`` once they have put the repository root on
``sys.path`` (each does, so ``python benchmarks/bench_x.py`` works from the repository root)."""

from __future__ import annotations

import hashlib
import hmac
import json
import statistics
import threading
import time
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING

from tests.standin import QuietHandler

if TYPE_CHECKING:
    from core.db import Database

__all__ = ["QuietHandler", "libpq_dsn", "pct", "prepare_database", "slack_signature", "start_auth_stub"]


# ---------------------------------------------------------------------------------- database


def libpq_dsn(url: str, *, dbname: str | None = None) -> str:
    """The libpq DSN of a SQLAlchemy URL (of ``dbname`` on the same server, if given)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return (f"host={u.host or '127.0.0.1'} port={u.port or 5432} user={u.username or 'postgres'} "
            f"dbname={dbname or u.database}")


def prepare_database(url: str) -> Database:
    """The database of ``url``, created if missing, emptied (its public schema dropped) and
    migrated (which also seeds what the migrations seed)."""
    import psycopg
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from core.db import Database

    name = make_url(url).database
    with psycopg.connect(libpq_dsn(url, dbname="postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.upgrade()
    return db


# ---------------------------------------------------------------------------------- figures


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (inclusive method); the 100th is the maximum."""
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if p < 100 else max(values)


# ---------------------------------------------------------------------------------- Slack


def slack_signature(body: str, secret: str, timestamp: str | None = None) -> tuple[str, str]:
    """``(timestamp, signature)`` of a Slack request: ``v0=`` + HMAC-SHA256 of ``v0:{ts}:{body}``."""
    ts = str(int(time.time())) if timestamp is None else timestamp
    return ts, "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()


class _AuthStub(QuietHandler):
    """Answers every POST as Slack answers ``auth.test``."""

    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1"}).encode()
        self._send(200, body, "application/json")


def start_auth_stub() -> str:
    """A Slack Web API stub answering ``auth.test`` (to every method), in a daemon thread; its API URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AuthStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/api/"


def print_table(rows: list[tuple[str, str, str, str]], widths: tuple[int, int, int] = (50, 40, 18)) -> None:
    """The closing table of a benchmark: each figure, its value, its goal and whether it is met."""
    a, b, c = widths
    print(f"\n{'figure':{a}} {'value':{b}} {'goal':{c}} verdict")
    for name, value, goal, ok in rows:
        print(f"{name:{a}} {value:{b}} {goal:{c}} {ok}")
