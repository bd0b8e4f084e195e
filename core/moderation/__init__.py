"""Chat moderation for Discord and Twitch: the rules engine, its text folding, and escalation.

``engine`` checks one community's messages against its rules and decides how offences escalate;
``folding`` says exactly how disguised text is read. Both are pure: the moderation service stores
rules and cases, and the adapters act on its decisions.
"""

from core.moderation.engine import (
    Action,
    CapsRule,
    ChatMessage,
    CompiledPattern,
    Decision,
    EscalationPolicy,
    FloodRule,
    LinkPolicy,
    LinkRule,
    MentionRule,
    ModerationEngine,
    PatternRule,
    RepeatRule,
    RuleName,
    Rules,
    Strike,
    Violation,
    WordRule,
    capitals,
    compile_pattern,
    decide,
    find_links,
    fold_banned_word,
    format_duration,
    is_domain,
    parse_duration,
)
from core.moderation.folding import collapse_spaced, deleet, fold

__all__ = [
    "Action", "CapsRule", "ChatMessage", "CompiledPattern", "Decision", "EscalationPolicy", "FloodRule",
    "LinkPolicy", "LinkRule", "MentionRule", "ModerationEngine", "PatternRule", "RepeatRule", "RuleName",
    "Rules", "Strike", "Violation", "WordRule", "capitals", "collapse_spaced", "compile_pattern", "decide",
    "deleet", "find_links", "fold", "fold_banned_word", "format_duration", "is_domain", "parse_duration",
]
