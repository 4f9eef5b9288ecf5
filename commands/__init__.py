"""Everything a person triggers. `register` is the only place a command or action id meets a handler."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from commands import handlers as h
from commands import home as hm
from commands import workflows as wf
from messages import blocks as bk
from messages import checkin as ck
from messages import home as home_ui
from messages import measures as ms
from messages import requests as rq

COMMANDS = {"/reap": h.on_reap}
SHORTCUTS = {"create_action_item": h.on_create_from_message}
GLOBAL_SHORTCUTS = {home_ui.ADD_SHORTCUT: hm.on_add_shortcut}
EVENTS = {"app_home_opened": h.on_home_opened}
ACTIONS = {
    bk.DONE: h.on_done,
    bk.SNOOZE: h.on_snooze,
    bk.UPDATE: h.on_update,
    ck.CHECKIN_OPEN: h.on_checkin_open,
    rq.APPROVE: h.on_approve,
    rq.DECLINE: h.on_decline,
    rq.VERIFY: h.on_verify,
    home_ui.ADD: hm.on_add,
    home_ui.START_CHECKIN: hm.on_start_checkin,
    home_ui.ROLLUP: hm.on_rollup,
}
# Workflow Builder steps (manifest `functions`), by callback_id.
FUNCTIONS = {
    wf.START_CHECKIN: wf.command_step(wf.start_checkin),
    wf.POST_ROLLUP: wf.command_step(wf.post_rollup),
    wf.UPDATE_ITEM: wf.command_step(wf.update_item),
    wf.LIST_OVERDUE: wf.on_list_overdue,
}
VIEWS = {
    bk.ADD_MODAL: h.on_add_submit,
    bk.UPDATE_MODAL: h.on_update_submit,
    bk.SNOOZE_MODAL: h.on_snooze_submit,
    ck.CHECKIN_MODAL: h.on_checkin_submit,
    rq.DECLINE_MODAL: h.on_decline_submit,
    ms.SCORE_MODAL: h.on_score_submit,
}


def register(app: AsyncApp) -> None:
    """Wire /reap, the buttons, the modals, App Home, the shortcut, the workflow steps and the error
    answer into `app`."""
    app.error(h.on_error)
    app.middleware(h.skip_duplicate_events)
    for command, command_handler in COMMANDS.items():
        app.command(command)(command_handler)
    for callback_id, shortcut_handler in SHORTCUTS.items():
        app.message_shortcut(callback_id)(shortcut_handler)
    for callback_id, global_handler in GLOBAL_SHORTCUTS.items():
        app.global_shortcut(callback_id)(global_handler)
    for event, event_handler in EVENTS.items():
        app.event(event)(event_handler)
    for action_id, action_handler in ACTIONS.items():
        app.action(action_id)(action_handler)
    for callback_id, step_handler in FUNCTIONS.items():
        app.function(callback_id)(step_handler)
    for callback_id, view_handler in VIEWS.items():
        app.view(callback_id)(view_handler)
