"""Everything a person triggers. `register` is the only place a command or action id meets a handler."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from commands import blocks as bk
from commands import handlers as h

COMMAND = "/reap"
SHORTCUT_CREATE = "create_action_item"
EVENTS = ("app_home_opened",)


def register(app: AsyncApp) -> None:
    """Wire /reap, the item buttons, the modals, App Home and the message shortcut into `app`."""
    app.middleware(h.skip_duplicate_events)
    app.command(COMMAND)(h.on_reap)
    app.action(bk.DONE)(h.on_done)
    app.action(bk.SNOOZE)(h.on_snooze)
    app.action(bk.UPDATE)(h.on_update)
    app.view(bk.ADD_MODAL)(h.on_add_submit)
    app.view(bk.UPDATE_MODAL)(h.on_update_submit)
    app.view(bk.SNOOZE_MODAL)(h.on_snooze_submit)
    app.event("app_home_opened")(h.on_home_opened)
    app.message_shortcut(SHORTCUT_CREATE)(h.on_create_from_message)
