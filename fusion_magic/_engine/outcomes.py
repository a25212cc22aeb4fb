"""What each step of a deliberation returns: the panel's answers, the judge's (or jury's) verdict,
the tool primary's turn. Small immutable values; one function (`fusion_magic._engine.deliberation.
build_result`) turns them into a `FusionResult`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from .._values.result import Analysis, Response

__all__ = ["Judgement", "PanelCancelled", "PanelOutcome", "ToolOutcome"]


@dataclasses.dataclass(frozen=True)
class PanelOutcome:
    "Every member's `Response`, in panel order; ``interrupted`` when the run was stopped meanwhile."

    responses: tuple[Response, ...] = ()
    interrupted: bool = False

    @property
    def answered(self) -> list[Response]:
        return [r for r in self.responses if r.ok]


@dataclasses.dataclass(frozen=True)
class Judgement:
    """The judge seat's verdict (a jury's: merged, with the chair's synthesis), or why there is none.

    ``judge`` is the seat's call(s) summed (a jury's: the chair's synthesis call; None when every
    juror failed); ``jury`` each juror's call.
    """

    judge: Response | None = None
    jury: tuple[Response, ...] = ()
    answer: str = ""
    analysis: Analysis | None = None
    notes: tuple[str, ...] = ()
    raw: str | None = None
    error: str | None = None
    failure_reason: str | None = None
    order: tuple[str, ...] = ()  # the members in the order the judge read their answers
    vote: dict[str, Any] | None = None  # judge="vote": the groups and the majority (no judge call)

    @property
    def ok(self) -> bool:
        return self.analysis is not None


@dataclasses.dataclass(frozen=True)
class ToolOutcome:
    """The tool primary's turn: ``tool`` records whether it called `fusion` (and with what
    question, and its calls to the caller's tools); ``panel``/``judgement`` the deliberation it
    asked for; ``answer`` its final answer (the judge's when its last call failed)."""

    tool: dict[str, Any]
    primary: Response
    answer: str = ""
    error: str | None = None
    panel: PanelOutcome | None = None
    judgement: Judgement | None = None


class PanelCancelled(asyncio.CancelledError):
    "A cancellation that carries the panel's answers so far (in panel order) and tool mode's turn so far."

    def __init__(self, responses: tuple[Response, ...], tool: ToolOutcome | None = None) -> None:
        super().__init__("interrupted")
        self.responses, self.tool = responses, tool
