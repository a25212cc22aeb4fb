"""One model call as a deliberation keeps it: a panel member's answer or the judge's, with its tool calls.

`fusion_magic._values.result` re-exports these beside the result they belong to.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

__all__ = ["Response", "ResponseStatus", "ToolCall"]

ResponseStatus = Literal[
    "ok", "failed", "timed_out", "cancelled", "skipped", "refused", "filtered", "truncated", "reasoning_only"
]


@dataclass
class ToolCall:
    """One tool a panel member called before answering: what it asked, what it got back."""

    name: str
    arguments: str = ""  # the JSON text the model wrote
    output: str = ""  # what the model was given back (capped)
    error: str | None = None  # the tool failed or refused; ``output`` then holds what the model saw
    elapsed_s: float | None = None

    @property
    def elapsed(self) -> float | None:
        return self.elapsed_s


@dataclass
class Response:
    """One model call: a panel member's answer, or the judge's."""

    model: str  # the member's name as shown everywhere (the model id unless the preset names it)
    content: str = ""
    status: ResponseStatus = "ok"
    error: str | None = None
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    served_by: str | None = None  # the model that actually answered (fallback, alias, router)
    cost_estimated: bool = False  # True when cost_usd comes from /models prices, not usage.cost
    saved_usd: float = 0.0  # a cache hit: what this answer cost when it was first paid for
    first_latency_s: float | None = None  # a cache hit: how long this answer took when first paid for
    status_code: int | None = None  # the HTTP status of the failure, when a server gave one
    sources: list[dict[str, str]] = field(default_factory=list)  # web citations: [{url, title}]
    reasoning: str = ""  # what the model thought before answering; shown collapsed, never judged
    reasoning_tokens: int | None = None
    finish_reason: str | None = None  # the server's word for why the answer ended ("stop", "length", ...)
    tool_calls: list[ToolCall] = field(default_factory=list)  # the tools it ran before answering, in order

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cost_unknown(self) -> bool:
        "True when this call may have been billed but its cost is not known (shown as unknown, never $0)."
        if self.cost_usd is not None or self.cached or self.status == "skipped":
            return False
        # A failed request is not billed unless the server said so: tokens reported without a cost.
        return bool(self.prompt_tokens or self.completion_tokens) if self.status == "failed" else True

    @property
    def reason(self) -> str:
        "One line naming the member and why it has no answer (its error already names it, mostly)."
        why = self.error or self.status
        return why if why.startswith(self.model) else f"{self.model}: {why}"

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(self)
        return plain

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Response:
        "The inverse of `to_dict`."
        from .saved import from_fields

        return from_fields(cls, data)


_ATOMS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """`dataclasses.asdict`'s result without its deep copy of every string and number (`serve`
    writes each result out as JSON: the copy was most of the cost)."""
    if isinstance(value, _ATOMS):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_plain(v) for v in value)
    return copy.deepcopy(value)  # anything else, as `asdict` does
