"""Marketplace benchmark: `/market requests` (a filtered page) and `/market stats` at 100,000 requests.

Seeds its own database (mona_bench_market) with 2,000 artists and 100,000 requests spread over the
10 blocks, all statuses and two years (generate_series, then the figures' aggregate tables the way
the services keep them), then runs both commands through the dispatcher (the console driver: the
whole path of a command — identify, permission, parse, one transaction, reply) and the same reads
as raw SQL over one psycopg connection. Prints p50/p99 of each and the ratios.

Goal (marketplace issue): p99 under 50 ms for each command.
Run: `make bench-marketplace` (MONA_BENCH_MARKET_DATABASE_URL overrides the database; MONA_BENCH_N the runs).
"""

from __future__ import annotations

import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import libpq_dsn, pct, prepare_database  # noqa: E402
from bot.app import bootstrap  # noqa: E402
from bot.console import ConsoleBot  # noqa: E402
from core.config import Settings  # noqa: E402

URL = os.environ.get("MONA_BENCH_MARKET_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mona_bench_market")
N = int(os.environ.get("MONA_BENCH_N", "400"))
ARTISTS, REQUESTS = 2_000, 100_000


SEED = [
    "INSERT INTO members (id, display_name, name_key, role, created_at) "
    "SELECT g, 'Member ' || g, 'member ' || g, 'member', now() FROM generate_series(1, 20) g",
    "INSERT INTO identities (platform, external_id, member_id) VALUES ('console', 'local', 1)",
    "UPDATE members SET role = 'admin' WHERE id = 1",
    "SELECT setval('members_id_seq', 20)",
    f"INSERT INTO artists (id, name, name_key, owner_id, pipeline, stage, stage_entered_at, created_at, updated_at, version) "
    f"SELECT g, 'Artist ' || lpad(g::text, 5, '0'), 'artist ' || lpad(g::text, 5, '0'), 1 + g % 20, 'mona', "
    f"'Prospection', now(), now(), now(), 1 FROM generate_series(1, {ARTISTS}) g",
    f"SELECT setval('artists_id_seq', {ARTISTS})",
    # Statuses weighted like a live marketplace; opened over the last two years; accepted after
    # 0-71 hours, delivered 1-60 days after opening.
    f"""INSERT INTO market_requests (id, artist_id, block_id, brief, budget, currency, due, status, requester_id,
        assignee_id, created_at, accepted_at, delivered_at, updated_at, version)
    SELECT g, 1 + (g * 7919) % {ARTISTS}, 1 + (g / 7) % 10, 'Brief ' || g, 500 + (g % 40) * 250, 'EUR',
        (now() - (g % 730) * interval '1 day' + interval '30 days')::date, s.status,
        1 + g % 20, CASE WHEN s.status = 'new' THEN NULL ELSE 1 + (g * 3) % 20 END,
        now() - (g % 730) * interval '1 day',
        CASE WHEN s.status IN ('accepted', 'in_progress', 'delivered', 'closed')
             THEN now() - (g % 730) * interval '1 day' + (g % 72) * interval '1 hour' END,
        CASE WHEN s.status IN ('delivered', 'closed')
             THEN least(now(), now() - (g % 730) * interval '1 day' + (1 + g % 60) * interval '1 day') END,
        now(), 1
    FROM generate_series(1, {REQUESTS}) g
    CROSS JOIN LATERAL (SELECT (ARRAY['new','accepted','in_progress','delivered','closed','closed','closed',
        'declined','cancelled','delivered'])[1 + (g / 70) % 10] AS status) s""",
    f"SELECT setval('market_requests_id_seq', {REQUESTS})",
    "INSERT INTO market_transitions (request_id, kind, from_status, to_status, actor_id, at) "
    "SELECT id, 'status', NULL, 'new', requester_id, created_at FROM market_requests",
    "INSERT INTO market_transitions (request_id, kind, from_status, to_status, actor_id, at) "
    "SELECT id, 'status', 'new', 'accepted', assignee_id, accepted_at FROM market_requests WHERE accepted_at IS NOT NULL",
    # The aggregates, as the services keep them.
    "INSERT INTO market_request_counts (block_id, status, n) SELECT block_id, status, count(*) FROM market_requests GROUP BY 1, 2",
    "INSERT INTO market_request_durations (block_id, step, hours, n) "
    "SELECT block_id, 'accept', floor(extract(epoch FROM accepted_at - created_at) / 3600)::int, count(*) "
    "FROM market_requests WHERE accepted_at IS NOT NULL GROUP BY 1, 2, 3",
    "INSERT INTO market_request_durations (block_id, step, hours, n) "
    "SELECT block_id, 'deliver', floor(extract(epoch FROM delivered_at - created_at) / 3600)::int, count(*) "
    "FROM market_requests WHERE delivered_at IS NOT NULL GROUP BY 1, 2, 3",
    "INSERT INTO market_revenue (block_id, month, currency, total, n) "
    "SELECT block_id, date_trunc('month', delivered_at AT TIME ZONE 'UTC')::date, currency, sum(budget), count(*) "
    "FROM market_requests WHERE delivered_at IS NOT NULL AND budget IS NOT NULL GROUP BY 1, 2, 3",
]

#: The same reads the two commands make, as raw SQL (the page: count + one joined page).
RAW_REQUESTS = [
    ("SELECT count(*) FROM market_requests WHERE status = %(status)s AND block_id = %(block)s", True),
    ("SELECT r.id, b.name, a.name, r.status, r.budget, r.currency, r.due, q.display_name, s.display_name "
     "FROM market_requests r JOIN (SELECT id FROM market_requests WHERE status = %(status)s AND block_id = %(block)s "
     "ORDER BY id DESC OFFSET %(offset)s LIMIT 10) p ON p.id = r.id JOIN market_blocks b ON b.id = r.block_id "
     "JOIN artists a ON a.id = r.artist_id LEFT JOIN members q ON q.id = r.requester_id "
     "LEFT JOIN members s ON s.id = r.assignee_id ORDER BY r.id DESC", True),
]
RAW_STATS = [
    ("SELECT * FROM market_blocks ORDER BY id", False),
    ("SELECT block_id, status, n FROM market_request_counts", False),
    ("SELECT block_id, step, hours, n FROM market_request_durations", False),
    ("SELECT month, block_id, currency, total, n FROM market_revenue "
     "WHERE month >= date_trunc('month', now()) - interval '5 months' ORDER BY month DESC, block_id", False),
]
BLOCK_KEYS = ["signature", "ar", "production", "publishing", "marketing", "distribution", "booking", "synchro",
              "exit", "strategy"]
STATUSES = ["new", "accepted", "in_progress", "delivered", "closed"]


def timed(fn: Callable[[int], object], n: int) -> list[float]:
    for i in range(20):
        fn(i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    t0 = time.perf_counter()
    db = prepare_database(URL)  # creates the tables and seeds the 10 blocks
    with psycopg.connect(libpq_dsn(URL)) as conn:
        for statement in SEED:
            conn.execute(statement)  # type: ignore[arg-type]
        conn.commit()
        conn.execute("ANALYZE")
    print(f"seeded {ARTISTS:,} artists and {REQUESTS:,} requests in {time.perf_counter() - t0:.1f} s")

    settings = Settings(database_url=URL, log_level="WARNING", page_size=10)
    mona = bootstrap(settings, migrate=False, db=db)
    logging.getLogger("mona.dispatch").setLevel(logging.WARNING)
    bot = ConsoleBot(mona.dispatcher, user_name="bench")
    rnd = random.Random(5)
    picks = [(rnd.choice(STATUSES), rnd.randrange(10), rnd.randint(1, 20)) for _ in range(N + 20)]

    def page(i: int) -> None:
        status, block, page_no = picks[i]
        r = bot.run(f"/market requests --status {status} --block {BLOCK_KEYS[block]} --page {page_no}")
        assert not r.error, r.text

    def stats(i: int) -> None:
        r = bot.run("/market stats")
        assert not r.error, r.text

    raw = psycopg.connect(libpq_dsn(URL), autocommit=True)

    def run_raw(queries: list[tuple[str, bool]]) -> Callable[[int], None]:
        def go(i: int) -> None:
            status, block, page_no = picks[i]
            params = {"status": status, "block": block + 1, "offset": (page_no - 1) * 10}
            with raw.transaction():
                for sql, takes in queries:
                    raw.execute(sql, params if takes else None).fetchall()  # type: ignore[arg-type]
        return go

    results = {
        "/market requests --status --block --page": timed(page, N),
        "  same reads, raw psycopg": timed(run_raw(RAW_REQUESTS), N),
        "/market stats": timed(stats, N),
        "  same reads, raw psycopg ": timed(run_raw(RAW_STATS), N),
    }
    raw.close()
    print(f"\n{'request':42} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in results.items():
        print(f"{name:42} {len(values):5d} {statistics.median(values):8.2f} {pct(values, 99):8.2f}")
    names = list(results)
    for cmd, rawname in ((names[0], names[1]), (names[2], names[3])):
        c99, r99 = pct(results[cmd], 99), pct(results[rawname], 99)
        verdict = "ok" if c99 < 50 else "OVER GOAL"
        print(f"{cmd.split(' --')[0]:16} p99 {c99:6.2f} ms = {c99 / r99:5.2f}x raw p99 ({r99:.2f} ms)   "
              f"(goal < 50 ms: {verdict})")


if __name__ == "__main__":
    main()
