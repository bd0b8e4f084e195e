"""Foundation benchmark: `/artist show` and `/pipeline` through the Bolt app on PostgreSQL.

Seeds a separate database with 10,000 artists (50,000 interactions, 10,000 opportunities), then
sends correctly signed slash-command requests into three Bolt apps in one run:
  (a) a bare Bolt app acking a trivial command,
  (b) the same bare app plus one raw psycopg query fetching the artist row,
  mona's own app for `/artist show` and `/pipeline`;
and, for the cost of the application layer, the same `/artist show` as
  (c) ``Application.execute(caller, ShowArtist(...))`` called directly (a typed command, no chat),
  (d) ``Dispatcher.dispatch(invocation)`` (the chat line parsed into that command, then executed).
Prints p50/p99 latency of each and the ratios, and the number of SQL queries `/artist show` makes
for an artist with 1 and with 40 interactions (equal means no N+1).

Goals (issue #2): show p99 within 3x of (b); pipeline p99 under 50 ms; query count constant.
Issue #8: the Slack path's p99 no slower than before the application layer.
Run: `make bench` (MONA_BENCH_DATABASE_URL overrides the database; MONA_BENCH_N the request count).
"""

from __future__ import annotations

import io
import itertools
import os
import random
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import psycopg
from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import libpq_dsn, pct, prepare_database, slack_signature, start_auth_stub  # noqa: E402
from bot.app import bootstrap  # noqa: E402
from core.config import Settings  # noqa: E402
from core.pipelines import STAGES, Pipeline  # noqa: E402
from core.text import fold  # noqa: E402

URL = os.environ.get("MONA_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mona_bench")
N = int(os.environ.get("MONA_BENCH_N", "400"))
ARTISTS, INTERACTIONS, DEALS = 10_000, 50_000, 10_000
SECRET = "bench-signing-secret"
ADMIN = "UBENCH"


def seed() -> None:
    rnd = random.Random(7)
    stages = [(p, s) for p in Pipeline for s in STAGES[p]]
    with psycopg.connect(libpq_dsn(URL)) as conn:
        conn.execute(
            "INSERT INTO members (id, display_name, name_key, role, created_at) "
            "SELECT g, 'Member ' || g, 'member ' || g, 'member', now() FROM generate_series(1, 5) g"
        )
        conn.execute("INSERT INTO identities (platform, external_id, member_id) VALUES ('slack', %s, 1)", (ADMIN,))
        conn.execute("SELECT setval('members_id_seq', 5)")
        buf = io.StringIO()
        stays = io.StringIO()
        for i in range(1, ARTISTS + 1):
            p, s = rnd.choice(stages)
            days = rnd.randint(0, 120)
            name = f"Artist {i:05d}"
            buf.write(f"{i}\t{name}\t{fold(name)}\tpop\tParis\t{rnd.randint(1, 5)}\t{p.value}\t{s}\t{days}\n")
            # Each earlier stage of the pipeline took 5 days; the current one started `days` ago.
            idx = STAGES[p].index(s)
            for j, earlier in enumerate(STAGES[p][: idx + 1]):
                entered = days + (idx - j) * 5
                left = "\\N" if j == idx else str(entered - 5)
                stays.write(f"{i}\t{p.value}\t{earlier}\t{entered}\t{left}\n")
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE a_in (id int, name text, name_key text, genre text, city text, owner_id int, "
                        "pipeline text, stage text, days int)")
            with cur.copy("COPY a_in FROM STDIN") as copy:
                copy.write(buf.getvalue())
            cur.execute(
                "INSERT INTO artists (id, name, name_key, genre, city, owner_id, pipeline, stage, stage_entered_at, "
                "created_at, updated_at, version) SELECT id, name, name_key, genre, city, owner_id, pipeline, stage, "
                "now() - days * interval '1 day', now(), now(), 1 FROM a_in"
            )
            cur.execute("SELECT setval('artists_id_seq', %s)", (ARTISTS,))
            cur.execute("CREATE TEMP TABLE s_in (artist_id int, pipeline text, stage text, entered int, left_days int)")
            with cur.copy("COPY s_in FROM STDIN") as copy:
                copy.write(stays.getvalue())
            cur.execute(
                "INSERT INTO stage_stays (artist_id, pipeline, stage, entered_at, left_at) SELECT artist_id, pipeline, stage, "
                "now() - entered * interval '1 day', now() - left_days * interval '1 day' FROM s_in"
            )
            cur.execute(
                "INSERT INTO stage_durations (pipeline, stage, days, stays) SELECT pipeline, stage, "
                "CAST(FLOOR(EXTRACT(EPOCH FROM (left_at - entered_at)) / 86400) AS INTEGER), count(*) "
                "FROM stage_stays WHERE left_at IS NOT NULL GROUP BY 1, 2, 3")
            cur.execute(
                "INSERT INTO interactions (artist_id, kind, text, at, author_id) "
                "SELECT 1 + (g %% %s), (ARRAY['call','email','meeting','dm','note'])[1 + g %% 5], "
                "'Interaction ' || g, now() - (g %% 300) * interval '1 hour', 1 + g %% 5 "
                "FROM generate_series(1, %s) g", (ARTISTS, INTERACTIONS))
            cur.execute(
                "INSERT INTO opportunities (artist_id, title, value, currency, status, created_at, author_id) "
                "SELECT 1 + (g * 7 %% %s), 'Deal ' || g, (g %% 50) * 100 + 500, 'EUR', "
                "(ARRAY['open','open','won','lost'])[1 + g %% 4], now(), 1 FROM generate_series(1, %s) g",
                (ARTISTS, DEALS))
        conn.commit()
        conn.execute("ANALYZE")


_TRIGGERS = itertools.count()


def signed(command: str, text_: str) -> BoltRequest:
    body = urllib.parse.urlencode({
        "token": "x", "team_id": "T1", "team_domain": "bench", "channel_id": "C1", "channel_name": "bench",
        "user_id": ADMIN, "user_name": "bench", "command": command, "text": text_, "api_app_id": "A1",
        "response_url": "http://127.0.0.1:9/response", "trigger_id": f"1.2.{next(_TRIGGERS)}",  # unique, as on Slack
    })
    ts, sig = slack_signature(body, SECRET)
    headers = {"content-type": ["application/x-www-form-urlencoded"], "x-slack-signature": [sig],
               "x-slack-request-timestamp": [ts]}
    return BoltRequest(body=body, headers=headers)


def measure(app: App, make: Callable[[int], BoltRequest], n: int) -> list[float]:
    for i in range(20):  # warm up
        app.dispatch(make(i))
    out = []
    for i in range(n):
        req = make(i)
        t0 = time.perf_counter()
        resp = app.dispatch(req)
        out.append((time.perf_counter() - t0) * 1000)
        assert resp.status == 200, resp.body
    return out


def timed(call: Callable[[int], None], n: int) -> list[float]:
    for i in range(20):  # warm up
        call(i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    t0 = time.perf_counter()
    db = prepare_database(URL)
    seed()
    print(f"seeded {ARTISTS:,} artists, {INTERACTIONS:,} interactions, {DEALS:,} opportunities "
          f"in {time.perf_counter() - t0:.1f} s")
    api = start_auth_stub()
    settings = Settings(database_url=URL, admins=frozenset({f"slack:{ADMIN}"}), slack_bot_token="xoxb-bench",
                        slack_signing_secret=SECRET, slack_api_url=api, log_level="WARNING")
    mona = bootstrap(settings, migrate=False, db=db)
    import logging

    logging.getLogger("mona.app").setLevel(logging.WARNING)
    from bot.slack import build_app

    client = WebClient(token="xoxb-bench", base_url=api)
    mona_app = build_app(mona, client=client)

    bare = App(signing_secret=SECRET, client=WebClient(token="xoxb-bench", base_url=api), process_before_response=True)
    raw = psycopg.connect(libpq_dsn(URL), autocommit=True)

    @bare.command("/ping")
    def ping(ack: Callable[..., None]) -> None:
        ack(text="pong")

    @bare.command("/raw")
    def raw_query(ack: Callable[..., None], command: dict[str, str]) -> None:
        row = raw.execute("SELECT * FROM artists WHERE name_key = %s", (fold(command["text"]),)).fetchone()
        ack(text=str(row[1]))

    rnd = random.Random(3)
    ids = [rnd.randint(1, ARTISTS) for _ in range(N + 20)]
    from core.app import Caller
    from handlers.artists import ShowArtist
    from handlers.reply import Invocation

    caller = Caller(platform="slack", user_id=ADMIN, user_name="bench", channel_id="C1")

    def direct(i: int) -> None:
        outcome = mona.app.execute(caller, ShowArtist(artist=f"Artist {ids[i]:05d}"))
        assert outcome.ok, outcome.error

    def dispatched(i: int) -> None:
        reply = mona.dispatcher.dispatch(Invocation(platform="slack", user_id=ADMIN, user_name="bench", channel_id="C1",
                                                    text=f"/artist show Artist {ids[i]:05d}"))
        assert not reply.error, reply.text

    from bot.slack import EVENTS_PATH, wsgi_app

    web = wsgi_app(mona, mona_app)

    def over_http(i: int) -> None:
        req = signed("/artist", f"show Artist {ids[i]:05d}")
        raw = req.raw_body.encode()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": EVENTS_PATH, "CONTENT_LENGTH": str(len(raw)),
                   "CONTENT_TYPE": "application/x-www-form-urlencoded", "wsgi.input": io.BytesIO(raw),
                   "HTTP_X_SLACK_SIGNATURE": req.headers["x-slack-signature"][0],
                   "HTTP_X_SLACK_REQUEST_TIMESTAMP": req.headers["x-slack-request-timestamp"][0]}
        status: list[str] = []
        b"".join(web(environ, lambda st, headers, exc_info=None: status.append(st)))  # type: ignore[arg-type]
        assert status[0].startswith("200"), status

    results = {
        "(c) Application.execute, typed": timed(direct, N),
        "(d) Dispatcher.dispatch, chat line": timed(dispatched, N),
        "(a) bare Bolt, trivial command": measure(bare, lambda i: signed("/ping", "hi"), N),
        "(b) bare Bolt + 1 psycopg query": measure(bare, lambda i: signed("/raw", f"Artist {ids[i]:05d}"), N),
        "/artist show NAME": measure(mona_app, lambda i: signed("/artist", f"show Artist {ids[i]:05d}"), N),
        "(e) /artist show over HTTP (WSGI)": timed(over_http, N),
        "/pipeline (both pipelines)": measure(mona_app, lambda i: signed("/pipeline", ""), max(100, N // 2)),
        "/pipeline mona": measure(mona_app, lambda i: signed("/pipeline", "mona"), max(100, N // 2)),
    }
    print(f"\n{'request':36} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in results.items():
        print(f"{name:36} {len(values):5d} {statistics.median(values):8.2f} {pct(values, 99):8.2f}")
    b99 = pct(results["(b) bare Bolt + 1 psycopg query"], 99)
    show99 = pct(results["/artist show NAME"], 99)
    pipe99 = pct(results["/pipeline (both pipelines)"], 99)
    print(f"\nratio /artist show p99 / (b) p99 = {show99 / b99:.2f}x   (goal <= 3x)")
    print(f"ratio /artist show p99 / (a) p99 = {show99 / pct(results['(a) bare Bolt, trivial command'], 99):.2f}x")
    print(f"/pipeline p99 = {pipe99:.2f} ms at {ARTISTS:,} artists   (goal < 50 ms)")
    c99 = pct(results["(c) Application.execute, typed"], 99)
    c50, d50 = statistics.median(results["(c) Application.execute, typed"]), statistics.median(results["(d) Dispatcher.dispatch, chat line"])
    show50 = statistics.median(results["/artist show NAME"])
    a50 = statistics.median(results["(a) bare Bolt, trivial command"])
    print(f"application layer: execute p50 {c50:.2f} / p99 {c99:.2f} ms; parsing the chat line adds "
          f"{d50 - c50:+.2f} ms at p50; the Slack adapter adds {show50 - d50:+.2f} ms at p50 "
          f"(bare Bolt alone: {a50:.2f} ms)")
    print(f"ratio Slack /artist show p99 / execute p99 = {show99 / c99:.2f}x")
    http50 = statistics.median(results["(e) /artist show over HTTP (WSGI)"])
    print(f"the HTTP endpoint (signature on the raw body, replay check: 2 short transactions) adds "
          f"{http50 - show50:+.2f} ms at p50 to Bolt's dispatch")

    counts = {}
    with psycopg.connect(libpq_dsn(URL), autocommit=True) as conn:
        few = conn.execute("SELECT artist_id FROM interactions GROUP BY artist_id HAVING count(*) <= 5 LIMIT 1").fetchone()
        conn.execute("INSERT INTO interactions (artist_id, kind, text, at, author_id) "
                     "SELECT 1, 'note', 'extra ' || g, now(), 1 FROM generate_series(1, 40) g")
    for label, artist_id in (("few interactions", few[0]), ("45+ interactions", 1)):
        seen: list[str] = []

        def listener(*a: object, _seen: list[str] = seen) -> None:
            _seen.append(str(a[2]))

        event.listen(db.engine, "before_cursor_execute", listener)
        mona_app.dispatch(signed("/artist", f"show #{artist_id}"))
        event.remove(db.engine, "before_cursor_execute", listener)
        counts[label] = len(seen)
    print("SQL queries per /artist show: " + ", ".join(f"{k}: {v}" for k, v in counts.items())
          + ("   (constant: no N+1)" if len(set(counts.values())) == 1 else "   (GROWS: N+1!)"))
    raw.close()


if __name__ == "__main__":
    main()
