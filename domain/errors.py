"""Domain exceptions. Each builds its own message; handlers catch only ReapError."""

from __future__ import annotations


class ReapError(Exception):
    """Base of every error a person can cause and be told about."""


class NotFound(ReapError):
    """Something named by the user does not exist."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"I can't find {kind} {name}.")


class PermissionDenied(ReapError):
    """The actor may not do this; the message says who may."""

    def __init__(self, action: str, who_may: str) -> None:
        self.action = action
        self.who_may = who_may
        super().__init__(f"You can't {action}. {who_may}")


class InvalidChange(ReapError):
    """The change makes no sense for the item's current state."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)
