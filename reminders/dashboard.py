"""The public dashboard's step of a tick: republish when a quarter closed or was amended.

What to publish and where is not the reminders' business: bot/ hands in a `PublishHook`
(publishing.site.publish_if_due for the installation's workspace) when REAP_DASHBOARD=public.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

log = logging.getLogger(__name__)

# Publishes the dashboard if the record moved on since it was last written; says what it did.
PublishHook = Callable[[datetime], Awaitable[str | None]]


async def publish_step(hook: PublishHook | None, now: datetime) -> str | None:
    """Run the publisher, if one was handed in; a failure is logged and never stops the tick."""
    if hook is None:
        return None
    try:
        done = await hook(now)
    except Exception:
        # The last good site keeps serving (the publisher swaps a folder in whole); the next tick retries.
        log.exception("publishing the dashboard failed")
        return None
    if done:
        log.info("%s", done)
    return done
