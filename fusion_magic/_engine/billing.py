"""What the server billed for calls whose answer was not kept, added to the member's figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .._base.errors import ProviderError

__all__ = ["Billing"]

T = TypeVar("T")


@dataclass
class Billing:
    """What the server billed for calls whose answer was not kept (an empty 200 with a cost, an in-band error).

    Those calls were paid for, so their cost is added to the member's figures rather than lost. A
    server that reports tokens but no cost (every server but OpenRouter) leaves them ``unpriced``
    until `settle` prices them from the model's list price (then ``estimated`` is True).
    """

    cost_usd: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    unpriced: tuple[int, int] = (0, 0)  # (prompt, completion) tokens billed without a cost
    estimated: bool = False

    def add(self, cost_usd: float | None, prompt_tokens: int | None, completion_tokens: int | None) -> None:
        self.cost_usd = _plus(self.cost_usd, cost_usd)
        self.prompt_tokens = _plus(self.prompt_tokens, prompt_tokens)
        self.completion_tokens = _plus(self.completion_tokens, completion_tokens)
        if cost_usd is None and (prompt_tokens or completion_tokens):
            self.unpriced = (self.unpriced[0] + (prompt_tokens or 0), self.unpriced[1] + (completion_tokens or 0))

    def settle(self, price: Callable[[int, int], float | None]) -> None:
        "Price the ``unpriced`` tokens with ``price(prompt, completion)`` (USD or None: still unknown)."
        if self.unpriced == (0, 0):
            return
        cost = price(*self.unpriced)
        if cost is not None:
            self.cost_usd, self.estimated, self.unpriced = _plus(self.cost_usd, cost), True, (0, 0)

    def take(self, error: ProviderError) -> None:
        "Add what ``error``'s call was billed."
        self.add(error.cost_usd, error.prompt_tokens, error.completion_tokens)

    def onto(self, figures: T) -> T:
        "``figures`` (a `Response`) with this billing added to its cost_usd and token counts."
        for name in ("cost_usd", "prompt_tokens", "completion_tokens"):
            setattr(figures, name, _plus(getattr(figures, name), getattr(self, name)))
        if self.estimated and hasattr(figures, "cost_estimated"):
            figures.cost_estimated = True
        return figures


def _plus(a: Any, b: Any) -> Any:
    return a if b is None else b if a is None else a + b
