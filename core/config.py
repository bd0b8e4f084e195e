"""Settings read once from the environment.

Every knob mona has is here, so the README's configuration table can be checked against this file.
Secrets (tokens, signing secrets, database passwords) are kept in fields with ``repr=False`` so
that logging a ``Settings`` never prints them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LANGUAGES = ("en", "fr")


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "mona"


def _ids(name: str, text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if not p.isdigit()]
    if bad:
        raise ValueError(f"{name} must be comma-separated numeric ids, not {', '.join(map(repr, bad))}")
    return tuple(int(p) for p in parts)


def _hour(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 23:
        raise ValueError(f"MONA_DIGEST_HOUR must be an hour from 0 to 23, not {text!r}")
    return int(text)


#: Twitch settings mona needs together: with any of them set, all of them.
_TWITCH_REQUIRED = ("TWITCH_CLIENT_ID", "TWITCH_CLIENT_SECRET", "TWITCH_BOT_ID", "TWITCH_REFRESH_TOKEN",
                    "TWITCH_CHANNEL_ID")


def _twitch(env: Mapping[str, str]) -> dict[str, str | None]:
    """The Twitch settings, checked: all required ones or none; user ids numeric."""
    values = {name: (env.get(name) or "").strip() or None for name in _TWITCH_REQUIRED}
    values["TWITCH_BOT_TOKEN"] = (env.get("TWITCH_BOT_TOKEN") or "").strip() or None
    values["TWITCH_BROADCASTER_REFRESH_TOKEN"] = (env.get("TWITCH_BROADCASTER_REFRESH_TOKEN") or "").strip() or None
    given = [n for n in _TWITCH_REQUIRED if values[n]]
    if given and len(given) < len(_TWITCH_REQUIRED):
        missing = ", ".join(n for n in _TWITCH_REQUIRED if not values[n])
        raise ValueError(f"Twitch needs {missing} as well (see the README, Connecting a Twitch channel)")
    for name in ("TWITCH_BOT_ID", "TWITCH_CHANNEL_ID"):
        if values[name] and not (values[name] or "").isdigit():
            raise ValueError(f"{name} must be a numeric Twitch user id, not {values[name]!r}")
    return values


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None = None
    lang: str = "en"
    timezone: str = "Europe/Paris"
    admins: frozenset[str] = frozenset()
    stuck_days: int = 30
    #: Workflow runs are kept this many days (``MONA_FLOW_KEEP_DAYS``), and at most 1,000 per workflow.
    flow_keep_days: int = 30
    page_size: int = 10
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_api_url: str | None = None
    discord_token: str | None = field(default=None, repr=False)
    discord_api_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    #: Servers to register the slash commands in (at once); empty: globally.
    discord_guild_ids: tuple[int, ...] = ()
    #: Twitch: the application (client id and secret), the bot account (its user id and tokens) and
    #: the broadcaster whose chat it joins. All or none of the required ones (see ``from_env``).
    twitch_client_id: str | None = None
    twitch_client_secret: str | None = field(default=None, repr=False)
    twitch_bot_id: str | None = None
    twitch_bot_token: str | None = field(default=None, repr=False)
    twitch_refresh_token: str | None = field(default=None, repr=False)
    twitch_channel_id: str | None = None
    #: Optional: the broadcaster's refresh token (scope moderation:read), to ask Twitch who moderates.
    twitch_broadcaster_refresh_token: str | None = field(default=None, repr=False)
    twitch_api_url: str = "https://api.twitch.tv/helix/"
    twitch_auth_url: str = "https://id.twitch.tv/"
    twitch_eventsub_url: str = "wss://eventsub.wss.twitch.tv/ws"
    #: What ``!socials`` answers in Twitch chat.
    socials: str = ""
    digest_hour: int = 9
    delivery_lease_seconds: float = 60.0
    requeue_after_seconds: float = 30.0
    http_host: str = "0.0.0.0"
    http_port: int = 3000
    #: The address people reach mona's HTTP server at (calendar feed links), ``MONA_PUBLIC_URL``.
    public_url: str = "http://localhost:3000"
    log_level: str = "INFO"
    #: A score that falls by more than this many points records a ``score.dropped`` event.
    score_drop: float = 10.0
    #: The OpenAI-compatible API that writes prescriptions; none: a template writes them.
    openai_base_url: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    ai_model: str = "gpt-4o-mini"
    ai_timeout_seconds: float = 20.0
    #: OBS Studio's WebSocket server (Tools → WebSocket Server Settings); none: no studio.
    obs_host: str | None = None
    obs_port: int = 4455
    obs_password: str | None = field(default=None, repr=False)
    #: Where files mona makes are written (stream report charts): MONA_DATA_DIR.
    data_dir: str = ""

    @property
    def embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def slack_mode(self) -> str | None:
        """``"socket"``, ``"http"`` or ``None`` (no Slack), from which tokens are set."""
        if self.slack_bot_token and self.slack_app_token:
            return "socket"
        if self.slack_bot_token and self.slack_signing_secret:
            return "http"
        return None

    @property
    def twitch_enabled(self) -> bool:
        return bool(self.twitch_client_id)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL") or ""
        if not database_url:
            data_dir = Path(env.get("MONA_DATA_DIR") or _default_data_dir())
            data_dir.mkdir(parents=True, exist_ok=True)
            database_url = f"sqlite:///{data_dir / 'mona.sqlite3'}"
        elif database_url.startswith(("postgres://", "postgresql://")):
            # psycopg 3 is the driver; accept the URLs people copy from hosting dashboards.
            database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
        lang = (env.get("MONA_LANG") or "en").lower()
        if lang not in LANGUAGES:
            raise ValueError(f"MONA_LANG must be one of {', '.join(LANGUAGES)}, not {lang!r}")
        admins = frozenset(a.strip() for a in (env.get("MONA_ADMINS") or "").split(",") if a.strip())
        twitch = _twitch(env)
        return cls(
            database_url=database_url,
            redis_url=env.get("REDIS_URL") or None,
            lang=lang,
            timezone=env.get("MONA_TZ") or "Europe/Paris",
            admins=admins,
            stuck_days=int(env.get("MONA_STUCK_DAYS") or 30),
            flow_keep_days=int(env.get("MONA_FLOW_KEEP_DAYS") or 30),
            page_size=int(env.get("MONA_PAGE_SIZE") or 10),
            slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
            slack_app_token=env.get("SLACK_APP_TOKEN") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_api_url=env.get("SLACK_API_URL") or None,
            discord_token=env.get("DISCORD_TOKEN") or None,
            discord_api_url=env.get("DISCORD_API_URL") or "https://discord.com/api/v10",
            discord_gateway_url=env.get("DISCORD_GATEWAY_URL") or "wss://gateway.discord.gg/",
            discord_guild_ids=_ids("DISCORD_GUILD_IDS", env.get("DISCORD_GUILD_IDS") or ""),
            twitch_client_id=twitch["TWITCH_CLIENT_ID"],
            twitch_client_secret=twitch["TWITCH_CLIENT_SECRET"],
            twitch_bot_id=twitch["TWITCH_BOT_ID"],
            twitch_bot_token=twitch["TWITCH_BOT_TOKEN"],
            twitch_refresh_token=twitch["TWITCH_REFRESH_TOKEN"],
            twitch_channel_id=twitch["TWITCH_CHANNEL_ID"],
            twitch_broadcaster_refresh_token=twitch["TWITCH_BROADCASTER_REFRESH_TOKEN"],
            twitch_api_url=env.get("TWITCH_API_URL") or "https://api.twitch.tv/helix/",
            twitch_auth_url=env.get("TWITCH_AUTH_URL") or "https://id.twitch.tv/",
            twitch_eventsub_url=env.get("TWITCH_EVENTSUB_URL") or "wss://eventsub.wss.twitch.tv/ws",
            socials=(env.get("MONA_SOCIALS") or "").strip(),
            digest_hour=_hour(env.get("MONA_DIGEST_HOUR") or "9"),
            delivery_lease_seconds=float(env.get("MONA_DELIVERY_LEASE_SECONDS") or 60),
            requeue_after_seconds=float(env.get("MONA_REQUEUE_AFTER_SECONDS") or 30),
            http_host=env.get("MONA_HTTP_HOST") or "0.0.0.0",
            http_port=int(env.get("PORT") or env.get("MONA_HTTP_PORT") or 3000),
            public_url=(env.get("MONA_PUBLIC_URL")
                        or f"http://localhost:{int(env.get('PORT') or env.get('MONA_HTTP_PORT') or 3000)}").rstrip("/"),
            log_level=(env.get("MONA_LOG_LEVEL") or "INFO").upper(),
            score_drop=_points("MONA_SCORE_DROP", env.get("MONA_SCORE_DROP") or "10"),
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            ai_model=env.get("MONA_AI_MODEL") or "gpt-4o-mini",
            ai_timeout_seconds=float(env.get("MONA_AI_TIMEOUT_SECONDS") or 20),
            obs_host=env.get("OBS_HOST") or None,
            obs_port=int(env.get("OBS_PORT") or 4455),
            obs_password=env.get("OBS_PASSWORD") or None,
            data_dir=str(env.get("MONA_DATA_DIR") or _default_data_dir()),
        )


def _points(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of points, not {text!r}") from None
    if not 0 < value <= 100:
        raise ValueError(f"{name} must be between 0 and 100 points, not {text!r}")
    return value
