"""The reminder cadence: how often an open item is chased; one type for the policy, plan file and export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from domain.errors import ReapError

MAX_CADENCE_VALUE = 365


class CadenceError(ReapError, ValueError):
    """A reminder cadence setting is missing, unknown or out of range; the message names it."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"cadence {setting}: {problem}" if setting else f"cadence: {problem}")


@dataclass(frozen=True)
class Cadence:
    """How often an open item is chased; 0 turns a step off (escalate_every=0: never repeat)."""

    first_days_before: int = 7
    business_days_before: int = 1
    overdue_every: int = 3
    escalate_after: int = 5
    escalate_every: int = 5

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            # bool is an int subclass; `true` in a plan file is a typo, not 1.
            if isinstance(value, bool) or not isinstance(value, int):
                raise CadenceError(spec.name, f"must be a whole number, not {value!r}")
            if not 0 <= value <= MAX_CADENCE_VALUE:
                raise CadenceError(spec.name, f"must be between 0 and {MAX_CADENCE_VALUE}, not {value}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object] | None) -> Cadence:
        """A cadence from a plan file's `cadence:` mapping; missing settings keep their defaults."""
        if values is None:
            return cls()
        if not isinstance(values, Mapping):
            raise CadenceError("", f"expected a mapping of settings, not {type(values).__name__}")
        known = [spec.name for spec in fields(cls)]
        for key in values:
            if key not in known:
                raise CadenceError(str(key), f"is not a setting; use {', '.join(known)}")
        return cls(**{str(key): value for key, value in values.items()})  # type: ignore[arg-type]


CADENCE_KEYS: tuple[str, ...] = tuple(spec.name for spec in fields(Cadence))
