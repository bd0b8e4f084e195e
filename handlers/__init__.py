"""Platform-neutral commands and interactive actions.

Importing this package registers every command in ``handlers.registry.registry``.
"""

from handlers import (  # noqa: F401  (registration side effects)
    artists,
    calendar,
    flows,
    kanban,
    marketplace,
    metrics,
    moderation,
    mona,
    ops,
    pipeline,
    score,
    stream,
)
