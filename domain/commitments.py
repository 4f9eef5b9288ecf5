"""Commitments that cannot quietly move: which changes need a coordinator's approval, and evidence.

A plan is a public commitment. Owners update status, progress and notes freely; dropping an item,
moving its due date later than the plan allows, and handing it to someone else are requests that
a coordinator decides. Completion may need evidence (a link) and a coordinator's verification.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from domain.errors import InvalidChange

EVIDENCE_MAX = 500
# A link people can open: http(s) only, so javascript: and data: never reach a report or a page.
_LINK = re.compile(r"https?://[^\s<>\"'|]{1,490}", re.ASCII)


class EvidenceRequired(InvalidChange):
    """Completion needs a link to what was delivered, or the link given is not one."""


class ReasonRequired(InvalidChange):
    """A change to a commitment needs a reason that the coordinators (and the record) will read."""


class ChangeKind(StrEnum):
    """A change to a commitment that may need approval."""

    DROP = "drop"
    REDATE = "redate"
    REASSIGN = "reassign"

    @property
    def label(self) -> str:
        """What the change does, in words."""
        return {"drop": "drop the item", "redate": "move the due date", "reassign": "reassign the item"}[
            self.value
        ]


class RequestState(StrEnum):
    """Where a change request stands."""

    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


@dataclass(frozen=True)
class ChangePolicy:
    """A plan's rules for its commitments (from the plan file's `policy:`; these are the defaults)."""

    approval: frozenset[str] = field(default_factory=lambda: frozenset(k.value for k in ChangeKind))
    due_allowance_days: int = 0
    evidence_required: bool = True
    verification: bool = True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> ChangePolicy:
        """The policy stored with a plan (None or {}: the defaults)."""
        if not data:
            return cls()
        default = cls()
        approval = data.get("approval")
        return cls(
            approval=frozenset(approval) if approval is not None else default.approval,
            due_allowance_days=int(data.get("due_allowance_days", default.due_allowance_days)),
            evidence_required=bool(data.get("evidence_required", default.evidence_required)),
            verification=bool(data.get("verification", default.verification)),
        )

    def as_mapping(self) -> dict[str, Any]:
        """The policy as stored and exported."""
        return {
            "approval": sorted(self.approval),
            "due_allowance_days": self.due_allowance_days,
            "evidence_required": self.evidence_required,
            "verification": self.verification,
        }

    def needs_approval(
        self, kind: ChangeKind, *, old_due: date | None = None, new_due: date | None = None
    ) -> bool:
        """Whether a change of this kind (for a due date: from old to new) needs a coordinator's approval."""
        if kind.value not in self.approval:
            return False
        if kind == ChangeKind.REDATE:
            if old_due is None or new_due is None:
                # Setting a first due date is a commitment made, not moved; clearing one moves it.
                return old_due is not None
            return (new_due - old_due).days > self.due_allowance_days
        return True


def check_evidence(text: str) -> str:
    """The evidence link as given, if it is an http(s) link (a Slack permalink is one); else refused."""
    link = text.strip().strip("<>").split("|", 1)[0]
    if len(link) > EVIDENCE_MAX or not _LINK.fullmatch(link):
        raise EvidenceRequired(
            f"Evidence must be a link people can open (https://…, or a Slack message's permalink), "
            f"not “{text[:60]}”; nothing was changed."
        )
    return link


def check_reason(reason: str | None, *, what: str) -> str:
    """The reason a change needs, refused when it is missing."""
    if not reason or not reason.strip():
        raise ReasonRequired(
            f"To {what}, give a reason (in quotes after the command, or in the form's note);"
            " nothing was changed."
        )
    return reason.strip()
