"""The moderation engine: one community's rules in, a verdict on each chat message out.

Pure and in memory: no database, no chat SDK, no I/O. The moderation service keeps the rules and
the case log, builds one ``ModerationEngine`` per community, feeds it every message the Discord and
Twitch adapters receive, and turns a ``Violation`` into an action with ``decide``.

What the caller may rely on:
- Moderators and the broadcaster (``ChatMessage.is_moderator``) are never flagged; a user holding a
  role listed in a rule's ``exempt_roles`` is not checked by that rule.
- The rules are checked in this order and the first that trips is reported: banned word, banned
  pattern, link, mentions, caps, repeated message, flood. Every message still counts towards the
  repeat and flood history, whichever rule tripped.
- ``evaluate`` never raises on user text and takes a few microseconds; its per-user history is
  bounded (users idle longer than the largest window are forgotten, and at most ``max_users`` are
  kept). A lock makes it safe to call from several threads.
"""

from __future__ import annotations

import bisect
import re
import threading
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

import ahocorasick
import re2

from core.moderation.folding import LEET, SPACED_SCREEN, deleet, fold, spaced_runs

RuleName = Literal["banned_word", "pattern", "link", "caps", "repeat", "flood", "mentions"]
NONE: frozenset[str] = frozenset()


# ---------------------------------------------------------------- messages and verdicts


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One chat message as an adapter saw it.

    ``roles`` holds the user's role names (Discord) or badges (Twitch: ``vip``, ``subscriber``, …);
    ``is_moderator`` is true for moderators and the broadcaster. ``mention_count`` is the number of
    user and role mentions (the adapter knows them); ``None`` lets the engine count ``<@id>``,
    ``<@&id>`` and ``@name`` in the text. ``emote_spans`` are the platform emotes as Python slices,
    ``text[start:end]`` — Twitch's ``emotes`` tag gives inclusive ends, so pass ``end + 1``.
    """

    platform: str
    community: str
    user_id: str
    user_name: str
    text: str
    roles: frozenset[str] = NONE
    is_moderator: bool = False
    mention_count: int | None = None
    emote_spans: tuple[tuple[int, int], ...] = ()


#: Why each rule tripped, in English, from the violation's ``facts`` (for logs and specs; the
#: moderation service renders the same facts in the team's language when people read them).
REASONS: dict[RuleName, str] = {
    "banned_word": "banned word: {word}",
    "pattern": "banned pattern: {pattern}",
    "link": "link to {host} not allowed",
    "mentions": "{count} mentions (limit {limit})",
    "caps": "{percent}% capitals",
    "repeat": "same message {count} times in {window}",
    "flood": "{count} messages in {window}",
}


@dataclass(frozen=True, slots=True)
class Violation:
    """Which rule tripped, the facts of it, and the part of the message that did it.

    ``facts`` are language-neutral, the placeholders of the rule's entry in ``REASONS``: the banned
    ``word``, the ``pattern``, the link's ``host``, a ``count`` and its ``limit``, the ``percent`` of
    capitals, a ``window`` like ``30s``. ``excerpt`` is the offending text as the user wrote it
    (their case, accents and disguises), not as it was folded to be matched."""

    rule: RuleName
    facts: Mapping[str, str | int] = field(default_factory=dict, hash=False)
    excerpt: str = ""

    @property
    def reason(self) -> str:
        """Why, in a few English words: ``banned word: mona``."""
        return REASONS[self.rule].format(**self.facts)


# ---------------------------------------------------------------- rules


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class LinkPolicy(StrEnum):
    OFF = "off"  # links are not checked
    BLOCK = "block"  # no links (give roles that may post them as exempt_roles)
    ALLOW_LIST = "allowlist"  # only links to allowed_domains and their subdomains


@dataclass(frozen=True)
class WordRule:
    """Banned words or phrases, matched on folded text as whole words (see ``folding``)."""

    words: frozenset[str] = NONE
    exempt_roles: frozenset[str] = NONE


@dataclass(frozen=True)
class PatternRule:
    """Banned regular expressions (validate each with ``compile_pattern``), matched on folded text."""

    patterns: tuple[str, ...] = ()
    exempt_roles: frozenset[str] = NONE


@dataclass(frozen=True)
class LinkRule:
    """Links: ``OFF``, ``BLOCK`` or ``ALLOW_LIST``; "allowed for some roles" is ``exempt_roles``."""

    policy: LinkPolicy = LinkPolicy.OFF
    allowed_domains: frozenset[str] = NONE
    exempt_roles: frozenset[str] = NONE


@dataclass(frozen=True)
class CapsRule:
    """More than ``max_ratio`` capitals among at least ``min_letters`` letters (emotes not counted)."""

    enabled: bool = True
    max_ratio: float = 0.7
    min_letters: int = 12
    exempt_roles: frozenset[str] = NONE

    def __post_init__(self) -> None:
        _require(0 < self.max_ratio < 1, "the caps ratio must be between 0 and 1 (e.g. 0.7 for 70 %)")
        _require(self.min_letters >= 1, "the caps rule needs at least 1 letter to judge")


@dataclass(frozen=True)
class RepeatRule:
    """The same folded text from one user ``times`` times within ``window_s`` seconds."""

    enabled: bool = True
    times: int = 3
    window_s: float = 30.0
    exempt_roles: frozenset[str] = NONE

    def __post_init__(self) -> None:
        _require(self.times >= 2, "a message repeats from its 2nd copy: times must be at least 2")
        _require(self.window_s > 0, "the repeat window must be longer than 0 seconds")


@dataclass(frozen=True)
class FloodRule:
    """More than ``max_messages`` messages from one user within ``window_s`` seconds."""

    enabled: bool = True
    max_messages: int = 6
    window_s: float = 10.0
    exempt_roles: frozenset[str] = NONE

    def __post_init__(self) -> None:
        _require(self.max_messages >= 1, "the flood limit must allow at least 1 message")
        _require(self.window_s > 0, "the flood window must be longer than 0 seconds")


@dataclass(frozen=True)
class MentionRule:
    """More than ``max_mentions`` user or role mentions in one message."""

    enabled: bool = True
    max_mentions: int = 5
    exempt_roles: frozenset[str] = NONE

    def __post_init__(self) -> None:
        _require(self.max_mentions >= 1, "the mention limit must allow at least 1 mention")


@dataclass(frozen=True)
class Rules:
    """A community's rules; every part has a usable default, and words/patterns/links start off."""

    words: WordRule = field(default_factory=WordRule)
    patterns: PatternRule = field(default_factory=PatternRule)
    links: LinkRule = field(default_factory=LinkRule)
    caps: CapsRule = field(default_factory=CapsRule)
    repeat: RepeatRule = field(default_factory=RepeatRule)
    flood: FloodRule = field(default_factory=FloodRule)
    mentions: MentionRule = field(default_factory=MentionRule)
    stream_mode: bool = False
    vip_roles: frozenset[str] = frozenset({"vip"})

    def tightened(self) -> Rules:
        """The stricter variant used while the stream is live (``stream_mode``).

        Caps trip above 50 % over 8 letters (or the community's own stricter values); flood and
        mention limits are halved (at least 1); a message repeats one time sooner (at least 2);
        links are blocked for everyone but ``vip_roles`` (an allow-list stays in force, since its
        domains were chosen as safe). Banned words and patterns are unchanged; rules that are
        switched off stay off.
        """
        links = self.links
        policy = links.policy if links.policy is LinkPolicy.ALLOW_LIST else LinkPolicy.BLOCK
        return replace(
            self,
            caps=replace(self.caps, max_ratio=min(self.caps.max_ratio, 0.5), min_letters=min(self.caps.min_letters, 8)),
            flood=replace(self.flood, max_messages=max(1, self.flood.max_messages // 2)),
            mentions=replace(self.mentions, max_mentions=max(1, self.mentions.max_mentions // 2)),
            repeat=replace(self.repeat, times=max(2, self.repeat.times - 1)),
            links=replace(links, policy=policy, exempt_roles=self.vip_roles),
        )

    def effective(self) -> Rules:
        """The rules the engine applies: ``tightened()`` in stream mode, these otherwise."""
        return self.tightened() if self.stream_mode else self


# ---------------------------------------------------------------- rule-creation helpers


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    """A validated banned pattern; ``search`` expects folded text."""

    source: str
    re2_source: str
    regex: Any = field(repr=False)

    def search(self, folded: str) -> str | None:
        match = self.regex.search(folded.encode())  # bytes: the re2 wrapper's str path is 3x slower
        return None if match is None else bytes(match.group()).decode(errors="replace")

    def span(self, folded: str) -> tuple[int, int] | None:
        """Where the first match is in ``folded``, as character positions (start, end)."""
        data = folded.encode()
        match = self.regex.search(data)
        if match is None:
            return None
        start = len(data[: match.start()].decode(errors="ignore"))
        return start, start + len(data[match.start() : match.end()].decode(errors="ignore"))


def _re2_options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = 64 << 20
    return options


_RE2_OPTIONS = _re2_options()
_UNSUPPORTED = (
    (re.compile(r"\(\?<?[=!]"), "lookahead and lookbehind ((?=…), (?!…), (?<=…), (?<!…)) are not supported"),
    (re.compile(r"\\[1-9]|\(\?P="), r"backreferences (\1, (?P=name)) are not supported"),
)
MAX_PATTERN_LENGTH = 500


def compile_pattern(text: str) -> CompiledPattern:
    """Validate and compile a banned pattern, or raise ``ValueError`` saying what is wrong and where.

    Python ``re`` syntax, case-insensitive, run by RE2 (linear time, so no pattern can stall the
    bot): lookarounds and backreferences are refused, and so is a pattern that matches an empty
    message (it would flag every message). Patterns see folded text: lowercase, no accents.
    """
    source = text.strip()
    if not source:
        raise ValueError("the pattern is empty")
    if len(source) > MAX_PATTERN_LENGTH:
        raise ValueError(f"the pattern is {len(source)} characters long; the limit is {MAX_PATTERN_LENGTH}")
    try:
        re.compile(source, re.IGNORECASE)
    except re.error as exc:
        pos = exc.pos if exc.pos is not None else 0
        raise ValueError(f"invalid pattern {source!r}: {exc.msg} at position {pos} (…{source[pos:pos + 12]!r})") from None
    for finder, why in _UNSUPPORTED:
        found = finder.search(source)
        if found:
            raise ValueError(f"invalid pattern {source!r}: {why} (at position {found.start()})")
    re2_source = re.sub(r"(?<!\\)((?:\\\\)*)\\Z", r"\1\\z", source)
    try:
        regex = re2.compile(re2_source, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"invalid pattern {source!r}: {detail}") from None
    if regex.search("") is not None:
        raise ValueError(f"invalid pattern {source!r}: it matches an empty message, so it would flag every message")
    return CompiledPattern(source, re2_source, regex)


def fold_banned_word(text: str) -> str:
    """The folded form a banned word is matched as, or ``ValueError`` if nothing would be left."""
    folded = fold(text)
    if not any(c.isalnum() for c in folded):
        raise ValueError(f"{text!r} has no letters or digits to match")
    return folded


_DOMAIN = re.compile(r"(?=.{4,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})", re.ASCII)


def is_domain(text: str) -> bool:
    """Whether ``text`` is a domain for a link allow-list: ``youtube.com``, ``open.spotify.com``.

    ASCII labels of letters, digits and inner hyphens, at least two of them, an alphabetic (or
    ``xn--``) top level; case is ignored. No scheme, path, port, wildcard or IP address.
    """
    return _DOMAIN.fullmatch(text.strip().lower()) is not None


_DURATION_PART = re.compile(r"\s*(\d+)\s*([a-z]*)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_HINT = "use a number and s, m, h, d or w, e.g. 90s, 10m, 1h30m, 2d"


def parse_duration(text: str) -> int:
    """Seconds in ``90s``, ``10m``, ``1h30m``, ``2d``, ``1w`` (a bare number is seconds).

    Raises ``ValueError`` naming the part it could not read.
    """
    given = text.strip()
    rest = given.lower()
    if not rest:
        raise ValueError(f"no duration given; {_DURATION_HINT}")
    if rest.isdecimal():
        rest += "s"
    total, pos = 0, 0
    while pos < len(rest):
        part = _DURATION_PART.match(rest, pos)
        if part is None:
            raise ValueError(f"{given!r} is not a duration: expected a number at {rest[pos:]!r}; {_DURATION_HINT}")
        number, unit = part.groups()
        if unit not in _UNITS:
            what = f"{unit!r} is not a unit" if unit else f"{number!r} has no unit"
            raise ValueError(f"{given!r} is not a duration: {what}; {_DURATION_HINT}")
        total += int(number) * _UNITS[unit]
        pos = part.end()
    if total <= 0:
        raise ValueError(f"{given!r} is not a duration: it must be longer than 0 seconds; {_DURATION_HINT}")
    return total


def format_duration(seconds: float) -> str:
    """``5400`` → ``1h30m``; the inverse of ``parse_duration`` for whole units."""
    left, parts = int(seconds), list[str]()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts)


# ---------------------------------------------------------------- compiled matchers


class _Matchers:
    """Banned words and patterns, compiled once per rule set.

    Words: one Aho-Corasick automaton searched over the deleeted text, each hit's word boundaries
    then checked in the folded text. Patterns, plus the question "is anything spaced out here?":
    one RE2 set, one pass over the folded text.
    """

    def __init__(self, words: frozenset[str], patterns: tuple[str, ...]) -> None:
        self.words: Any = ahocorasick.Automaton()
        self.spaced: Any = ahocorasick.Automaton()
        for word in sorted(words):
            folded = fold(word)
            if not any(c.isalnum() for c in folded):
                continue
            key = deleet(folded)
            if key not in self.words:
                self.words.add_word(key, (len(key), folded))
            glued = "".join(c for c in folded if c.isalnum()).translate(LEET)
            if len(glued) >= 4 and glued not in self.spaced:
                self.spaced.add_word(glued, folded)
        self.has_words = len(self.words) > 0
        for automaton in (self.words, self.spaced):
            if len(automaton):
                automaton.make_automaton()
        self.patterns = [compile_pattern(source) for source in patterns]
        screens = [pattern.re2_source for pattern in self.patterns]
        self.spaced_index = len(screens) if len(self.spaced) else -1
        if self.spaced_index >= 0:
            screens.append(SPACED_SCREEN)
        self.screen: Any = None
        if screens:
            self.screen = re2.Set.SearchSet(_RE2_OPTIONS)
            for source in screens:
                self.screen.Add(source)
            self.screen.Compile()

    def screen_hits(self, folded: str) -> list[int]:
        return (self.screen.Match(folded) or []) if self.screen is not None else []

    def find_word(self, folded: str, hits: list[int]) -> tuple[str, int, int] | None:
        """The banned word found, and where it is in ``folded`` (start, end)."""
        best: tuple[str, int, int] | None = None
        size = len(folded)
        for end, (length, word) in self.words.iter(deleet(folded)):
            start = end - length + 1
            if (start and folded[start - 1].isalnum()) or (end + 1 < size and folded[end + 1].isalnum()):
                continue
            span = folded[start : end + 1]
            if (span == word or any(map(str.isalpha, span))) and (best is None or length > best[2] - best[1]):
                best = word, start, end + 1  # the longest: "a$$" is "ass" more than "as"; "455" is a number
        if best is None and self.spaced_index in hits:
            for written, glued in spaced_runs(folded):
                for _end, word in self.spaced.iter(glued):
                    start = folded.find(written)
                    return word, start, start + len(written)
        return best

    def find_pattern(self, folded: str, hits: list[int]) -> tuple[str, int, int] | None:
        """The first banned pattern that matches, and where its match is in ``folded``."""
        first = min((i for i in hits if i != self.spaced_index), default=None)
        if first is None:
            return None
        pattern = self.patterns[first]
        start, end = pattern.span(folded) or (0, 0)
        return pattern.source, start, end


def as_written(text: str, start: int, end: int) -> str:
    """The part of ``text`` that folds to ``fold(text)[start:end]``: what the user wrote there.

    Folding works character by character (then trims and collapses whitespace), so the folded
    length of ``text[:i]`` grows with ``i``: the span is found by bisecting on it. The marks that
    follow the last character (accents, zalgo) are kept with it."""
    folded = fold(text)
    while start < end and folded[start] == " ":
        start += 1
    while end > start and folded[end - 1] == " ":
        end -= 1
    if end <= start:
        return ""
    size = len(text)

    def folded_length(i: int) -> int:
        return len(fold(text[:i]))

    first = bisect.bisect_left(range(size + 1), start + 1, key=folded_length) - 1
    last = bisect.bisect_left(range(size + 1), end, lo=max(first, 0), key=folded_length)
    while last < size and unicodedata.category(text[last]) in ("Mn", "Me"):
        last += 1
    return text[max(first, 0) : last]


# generic top-level domains seen in chat spam and everyday links, then the country codes
_KNOWN_TLDS = (
    "com net org info biz edu gov mil int name pro mobi app dev page xyz online site store shop live "
    "stream club top link click fun icu vip tech art music space website blog news one today world life "
    "games game social media studio video tube chat email cloud design agency digital network money bet "
    "casino poker porn sex xxx adult win loan gift gifts free promo sale deals plus global zone wiki lol "
    "rip ninja rocks fan fans band community center company group team events tickets tours photo photos "
    "pics gallery wtf cam cash finance crypto trade market marketing software solutions services "
    "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo bq br bs bt bw "
    "by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu "
    "fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il "
    "im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma "
    "mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om "
    "pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr "
    "ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi "
    "vn vu wf ws ye yt za zm zw"
)
_TLDS = frozenset(_KNOWN_TLDS.split())
_LINK = re.compile(
    r"(?:(?P<scheme>[a-z][a-z0-9+.-]{0,15}://)|(?<![\w@./-]))"
    r"(?P<host>(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?P<tld>[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
    r"|\d{1,3}(?:\.\d{1,3}){3})(?![\w-])"
)
_DOTS = frozenset("\u3002\uff0e\uff61\ufe52")  # full stops that browsers and NFKC read as "."
_INVISIBLE = (*range(0x200B, 0x2010), *range(0x2060, 0x2065), 0xFEFF, 0xAD)
_LINK_VIEW = {0x3002: ".", 0xFF61: ".", 0xFE52: "."} | dict.fromkeys(_INVISIBLE)


def find_links(text: str) -> list[str]:
    """The hosts of the links in ``text``: ``https://…`` with any host, bare ``name.tld`` with a
    known top level (``.com``, ``.gg``, country codes, …) or ``www.``; e-mail addresses are not links.

    Hosts keep their own letters (a Cyrillic look-alike of ``youtube.com`` is not ``youtube.com``).
    """
    if "." not in text and (text.isascii() or _DOTS.isdisjoint(text)):
        return []
    view = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).translate(_LINK_VIEW).lower()
    hosts = []
    for match in _LINK.finditer(view):
        host = match.group("host")
        if match.group("scheme") or (match.group("tld") in _TLDS or host.startswith("www.")):
            hosts.append(host)
    return hosts


def _domain_allowed(host: str, allowed: frozenset[str]) -> bool:
    while True:
        if host in allowed:
            return True
        dot = host.find(".")
        if dot < 0:
            return False
        host = host[dot + 1 :]


_DISCORD_EMOTE = re.compile(r"<a?:\w+:\d+>")
_MENTION = re.compile(r"<@[!&]?\d+>|(?<![\w@])@\w+")


def capitals(text: str, emote_spans: tuple[tuple[int, int], ...] = ()) -> tuple[int, int]:
    """``(capitals, letters)`` among cased letters, leaving out emotes (Twitch spans, Discord
    ``<:name:id>``), mentions and non-letters such as Unicode emoji."""
    if emote_spans:
        pieces, pos = [], 0
        for start, end in sorted(emote_spans):
            pieces.append(text[pos : max(pos, start)])
            pos = max(pos, end)
        pieces.append(text[pos:])
        text = " ".join(pieces)
    if "<" in text:
        text = _DISCORD_EMOTE.sub(" ", text)
    if "@" in text:
        text = _MENTION.sub(" ", text)
    if text.isascii():
        data = text.encode()
        upper = len(data.translate(None, _NOT_ASCII_UPPER))
        return upper, upper + len(data.translate(None, _NOT_ASCII_LOWER))
    upper = sum(map(str.isupper, text))
    return upper, upper + sum(map(str.islower, text))


_NOT_ASCII_UPPER = bytes(b for b in range(256) if not 65 <= b <= 90)
_NOT_ASCII_LOWER = bytes(b for b in range(256) if not 97 <= b <= 122)


def _more_capitals_than(text: str, limit: float) -> bool:
    """Whether ``text`` (emotes included) may have more than ``limit`` capitals; cheap, never a false no."""
    data = text.encode(errors="surrogatepass")
    bound = len(data.translate(None, _NOT_ASCII_UPPER)) + len(data) - len(text)  # + every non-ASCII character
    return bound > limit and (len(data) == len(text) or sum(map(str.isupper, text)) > limit)


# ---------------------------------------------------------------- the engine

_MEMORY = 50  # recent messages remembered per user (more if the flood limit needs them)


class ModerationEngine:
    """Checks messages against one community's rules, remembering recent messages per user."""

    def __init__(self, rules: Rules, *, max_users: int = 50_000) -> None:
        self.max_users = max_users
        self._lock = threading.Lock()
        # (platform, user id) → that user's recent (time, folded text), oldest first; least recent user first
        self._users: OrderedDict[tuple[str, str], deque[tuple[float, str]]] = OrderedDict()
        self._permits: dict[str, float] = {}
        self._rules = rules
        self._matchers = _Matchers(rules.words.words, rules.patterns.patterns)
        self._apply(rules)

    @property
    def rules(self) -> Rules:
        return self._rules

    def update_rules(self, rules: Rules) -> None:
        """Switch to new rules (e.g. stream mode on) keeping each user's history and the permits.

        Raises ``ValueError`` for an invalid pattern, leaving the old rules in force.
        """
        old = self._rules
        same = rules.words.words == old.words.words and rules.patterns.patterns == old.patterns.patterns
        matchers = self._matchers if same else _Matchers(rules.words.words, rules.patterns.patterns)
        with self._lock:
            self._rules, self._matchers = rules, matchers
            self._apply(rules)

    def _apply(self, rules: Rules) -> None:
        self._active = active = rules.effective()
        self._allowed_domains = frozenset(d.strip().lower().rstrip(".") for d in active.links.allowed_domains)
        self._horizon = max(active.repeat.window_s if active.repeat.enabled else 0.0,
                            active.flood.window_s if active.flood.enabled else 0.0)
        self._memory = max(_MEMORY, active.flood.max_messages + 1)

    @property
    def tracked_users(self) -> int:
        """How many users' recent messages are remembered (for tests and metrics)."""
        return len(self._users)

    def permit(self, user_id: str, now: float, *, seconds: float = 60.0) -> None:
        """``!permit``: the user may post one link that the link rule would block, within ``seconds``.

        The permit is used up by the first message with one such link (a message with several is
        refused and leaves the permit in place). Permits are keyed by user id alone.
        """
        with self._lock:
            for uid in [u for u, until in self._permits.items() if until < now]:
                del self._permits[uid]
            self._permits[user_id] = now + seconds

    def forget(self, platform: str, user_id: str) -> None:
        """Drop what the engine remembers about a user (their recent messages and any permit)."""
        with self._lock:
            self._users.pop((platform, user_id), None)
            self._permits.pop(user_id, None)

    def evaluate(self, message: ChatMessage, now: float) -> Violation | None:
        """The first rule ``message`` breaks, or ``None``; ``now`` is in seconds on any steady clock."""
        if message.is_moderator:
            return None
        rules, roles, matchers = self._active, message.roles, self._matchers
        words = matchers.has_words and rules.words.exempt_roles.isdisjoint(roles)
        patterns = bool(matchers.patterns) and rules.patterns.exempt_roles.isdisjoint(roles)
        repeat = rules.repeat.enabled and rules.repeat.exempt_roles.isdisjoint(roles)
        flood = rules.flood.enabled and rules.flood.exempt_roles.isdisjoint(roles)
        folded = fold(message.text) if words or patterns or repeat else ""
        with self._lock:
            behaviour = self._track(message.platform, message.user_id, message.text, folded, now, repeat, flood) if repeat or flood else None
            if words or patterns:
                hits = matchers.screen_hits(folded)
                word = matchers.find_word(folded, hits) if words else None
                if word:
                    return Violation("banned_word", {"word": word[0]}, as_written(message.text, word[1], word[2]))
                pattern = matchers.find_pattern(folded, hits) if patterns and hits else None
                if pattern:
                    return Violation("pattern", {"pattern": pattern[0]}, as_written(message.text, pattern[1], pattern[2]))
            return self._check_content(message, now) or behaviour

    def _check_content(self, message: ChatMessage, now: float) -> Violation | None:
        rules, roles, text = self._active, message.roles, message.text
        links = rules.links
        if links.policy is not LinkPolicy.OFF and links.exempt_roles.isdisjoint(roles):
            violation = self._check_links(message.user_id, text, now)
            if violation:
                return violation
        mentions = rules.mentions
        if mentions.enabled and mentions.exempt_roles.isdisjoint(roles):
            count = message.mention_count
            if count is None:
                count = len(_MENTION.findall(text)) if "@" in text else 0
            if count > mentions.max_mentions:
                return Violation("mentions", {"count": count, "limit": mentions.max_mentions})
        caps = rules.caps
        if (caps.enabled and caps.exempt_roles.isdisjoint(roles) and len(text) >= caps.min_letters and not text.islower()
                and _more_capitals_than(text, caps.max_ratio * caps.min_letters)):  # else it cannot trip
            upper, letters = capitals(text, message.emote_spans)
            if letters >= caps.min_letters and upper > caps.max_ratio * letters:
                return Violation("caps", {"percent": round(100 * upper / letters)}, text[:80])
        return None

    def _check_links(self, user_id: str, text: str, now: float) -> Violation | None:
        hosts = find_links(text)
        if hosts and self._active.links.policy is LinkPolicy.ALLOW_LIST:
            hosts = [h for h in hosts if not _domain_allowed(h.rstrip("."), self._allowed_domains)]
        if not hosts:
            return None
        until = self._permits.pop(user_id, None)
        if until is not None and until >= now:
            if len(hosts) == 1:
                return None  # the !permit is used up
            self._permits[user_id] = until
        return Violation("link", {"host": hosts[0]}, hosts[0])

    def _track(self, platform: str, user_id: str, text: str, folded: str, now: float, repeat: bool,
               flood: bool) -> Violation | None:
        users, rules = self._users, self._active
        for _ in range(2):  # forget users idle for longer than any window, a couple per message
            if not users or next(iter(users.values()))[-1][0] > now - self._horizon:
                break
            users.popitem(last=False)
        while len(users) >= self.max_users:
            users.popitem(last=False)
        key = (platform, user_id)
        recent = users.get(key)
        if recent is None:
            recent = users[key] = deque(maxlen=self._memory)
        else:
            users.move_to_end(key)
            if recent.maxlen != self._memory:  # the flood limit grew
                recent = users[key] = deque(recent, maxlen=self._memory)
        recent.append((now, folded))
        while recent[0][0] <= now - self._horizon:
            recent.popleft()
        if repeat:
            since = now - rules.repeat.window_s
            same = sum(1 for at, seen in recent if seen == folded and at > since)
            if same >= rules.repeat.times:
                window = format_duration(rules.repeat.window_s)
                return Violation("repeat", {"count": same, "window": window}, text[:80])
        limit = rules.flood.max_messages
        if flood and len(recent) > limit and recent[-limit - 1][0] > now - rules.flood.window_s:
            since = now - rules.flood.window_s
            count = sum(1 for at, _ in recent if at > since)
            return Violation("flood", {"count": count, "window": format_duration(rules.flood.window_s)})
        return None


# ---------------------------------------------------------------- escalation

Action = Literal["delete", "warn", "timeout", "ban"]


@dataclass(frozen=True, slots=True)
class Strike:
    """A counted offence on a user's record (the service keeps them all; old ones stop counting)."""

    at: float
    rule: str = ""


@dataclass(frozen=True)
class EscalationPolicy:
    """How automatic offences escalate, counting the strikes of the last ``window_s`` seconds.

    Default ladder: 1st–3rd offence → delete + warn; 4th → 10 min timeout; 5th → 1 h timeout;
    then ban. ``purge`` answers warning-level offences with a 1 s timeout instead (on Twitch it clears
    the user's messages). Violations of the rules in ``delete_only`` are deleted and not counted.
    """

    window_s: float = 24 * 3600
    warnings: int = 3
    timeouts_s: tuple[int, ...] = (600, 3600)
    purge: bool = False
    delete_only: frozenset[str] = NONE


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do; the offending message is deleted in every case."""

    action: Action
    duration_s: int | None = None  # timeouts only; a ban is permanent
    counts_as_strike: bool = True


def decide(violation: Violation, prior_strikes: list[Strike], policy: EscalationPolicy, now: float) -> Decision:
    """The action for ``violation`` given the user's earlier strikes (any age: old ones are ignored)."""
    if violation.rule in policy.delete_only:
        return Decision("delete", None, counts_as_strike=False)
    recent = sum(1 for strike in prior_strikes if strike.at > now - policy.window_s)
    if recent < policy.warnings:
        return Decision("timeout", 1) if policy.purge else Decision("warn")
    step = recent - policy.warnings
    if step < len(policy.timeouts_s):
        return Decision("timeout", policy.timeouts_s[step])
    return Decision("ban")


__all__ = [
    "REASONS", "Action", "CapsRule", "ChatMessage", "CompiledPattern", "Decision", "EscalationPolicy", "FloodRule",
    "LinkPolicy", "LinkRule", "MentionRule", "ModerationEngine", "PatternRule", "RepeatRule", "RuleName",
    "Rules", "Strike", "Violation", "WordRule", "as_written", "capitals", "compile_pattern", "decide",
    "find_links", "fold_banned_word", "format_duration", "is_domain", "parse_duration",
]
