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


class TextRefused(InvalidChange):
    """Text we will not store as given; refused whole, never cut or cleaned behind the person's back."""


class TextTooLong(TextRefused):
    """The text is longer than its field may hold; the message names the limit."""

    def __init__(self, field: str, length: int, limit: int) -> None:
        self.field = field
        self.length = length
        self.limit = limit
        super().__init__(
            f"The {field} is {length:,} characters, which is too long (the limit is {limit:,}); "
            "nothing was saved."
        )


class ControlCharacter(TextRefused):
    """The text holds an invisible control character (or a line break where one line is expected)."""

    def __init__(self, field: str, char: str) -> None:
        self.field = field
        self.char = char
        names = {"\n": "a line break", "\r": "a line break", "\t": "a tab"}
        what = names.get(char, "an invisible control character")
        super().__init__(
            f"The {field} contains {what} (U+{ord(char):04X}); please retype it. Nothing was saved."
        )


class NotFinite(InvalidChange):
    """A number that is infinite or not a number at all (inf, nan) where a real value is needed."""

    def __init__(self, field: str, value: float) -> None:
        self.field = field
        self.value = value
        super().__init__(f"The {field} must be a finite number, not {value}; nothing was saved.")
