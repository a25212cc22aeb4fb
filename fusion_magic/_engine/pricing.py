"""Model prices from an endpoint's ``/models`` list, and cost estimates before anything is sent.

OpenRouter publishes prices as decimal strings in USD per token (``"0.000003"``); other
OpenAI-compatible servers (llama.cpp, Ollama, vLLM) list models without prices, which shows up
here as ``None``: "unknown", never "free". The list is kept on disk for a day per base URL.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._base.errors import ProviderError
from .cache import cache_dir, canonical_base_url, scrub

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Estimate",
    "ModelPrice",
    "Models",
    "PricingWarning",
    "cost_from_tokens",
    "count_tokens",
    "estimate",
    "find_price",
    "load_models",
]

JUDGE_OVERHEAD_TOKENS = 700  # judge instructions + output schema, on top of prompt and answers
CHARS_PER_TOKEN = 4


class PricingWarning(UserWarning):
    "Prices could not be refreshed; an older copy of the model list is in use."


def _usd(value: Any) -> float | None:
    """A price string as float USD; None when absent, unparsable or negative (variable-price routers)."""
    if value is None or value == "":
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return price if price >= 0 and math.isfinite(price) else None


@dataclass(frozen=True)
class ModelPrice:
    """One model of the ``/models`` list: id, name, context and USD prices (None = unknown)."""

    id: str
    name: str = ""
    context_length: int | None = None
    prompt: float | None = None  # USD per prompt token
    completion: float | None = None  # USD per completion token
    request: float | None = None  # USD per request
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> ModelPrice:
        """Parse one entry of a ``/models`` ``data`` list (OpenRouter, OpenAI, llama.cpp, Ollama...)."""
        pricing = item.get("pricing")
        top = item.get("top_provider") or {}
        meta = item.get("meta") or {}  # llama.cpp puts the trained context here
        context = item.get("context_length") or top.get("context_length") or meta.get("n_ctx_train")
        prompt = completion = request = None
        if isinstance(pricing, Mapping):
            # Only prompt and completion are required; an absent extra (request, image...) costs nothing.
            prompt, completion = _usd(pricing.get("prompt")), _usd(pricing.get("completion"))
            request = _usd(pricing.get("request", "0"))
        return cls(
            id=str(item.get("id", "")),
            name=str(item.get("name") or item.get("id", "")),
            context_length=int(context) if isinstance(context, (int, float)) else None,
            prompt=prompt,
            completion=completion,
            request=request,
            raw=dict(item),
        )

    @property
    def known(self) -> bool:
        "True when both token prices are known."
        return self.prompt is not None and self.completion is not None

    @property
    def free(self) -> bool:
        "True when the model is known to cost nothing."
        return self.known and self.prompt == 0 and self.completion == 0 and not self.request

    def rates(self, prompt_tokens: int = 0) -> tuple[float, float] | None:
        """(prompt, completion) USD per token for a request this long: long-context overrides apply."""
        if not self.known:
            return None
        prompt, completion = self.prompt, self.completion
        overrides = (self.raw.get("pricing") or {}).get("overrides") or []
        best: float = -1
        for o in overrides:  # OpenRouter charges more past a prompt length (e.g. 200k tokens)
            floor = o.get("min_prompt_tokens") if isinstance(o, Mapping) else None
            if isinstance(floor, (int, float)) and best < floor <= prompt_tokens:
                best = floor
                prompt = _usd(o.get("prompt")) if o.get("prompt") is not None else prompt
                completion = _usd(o.get("completion")) if o.get("completion") is not None else completion
        if prompt is None or completion is None:
            return None
        return prompt, completion


class Models(dict[str, ModelPrice]):
    """Model id -> `ModelPrice`, plus where the list came from (``stale`` = an old copy, fetch failed)."""

    def __init__(
        self,
        items: Iterable[tuple[str, ModelPrice]] = (),
        *,
        fetched_at: float | None = None,
        stale: bool = False,
        note: str = "",
    ) -> None:
        super().__init__(items)
        self.fetched_at = fetched_at
        self.stale = stale
        self.note = note


def _parse(body: Any) -> list[ModelPrice]:
    items = body.get("data") if isinstance(body, Mapping) else body
    if not isinstance(items, list):
        raise ValueError("no `data` list")
    return [ModelPrice.from_api(i) for i in items if isinstance(i, Mapping) and i.get("id")]


def _models_file(base_url: str) -> os.PathLike[str]:
    digest = hashlib.sha256(canonical_base_url(base_url).encode()).hexdigest()[:16]
    return cache_dir() / f"models-{digest}.json"


# Parsed copies by file path, valid while the file's mtime is unchanged: a cached re-run should not
# re-parse a megabyte of JSON every time.
_MEMO: dict[str, tuple[tuple[int, int], float, list[ModelPrice]]] = {}


def _stamp(path: os.PathLike[str]) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size  # size too: two writes within one clock tick share an mtime


def _read_file(path: os.PathLike[str]) -> tuple[float, list[ModelPrice]] | None:
    try:
        stamp = _stamp(path)
        memo = _MEMO.get(os.fspath(path))
        if memo is not None and memo[0] == stamp:
            return memo[1], memo[2]
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        fetched_at, models = float(saved["fetched_at"]), _parse(saved["body"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: behave as if there were no copy
    _MEMO[os.fspath(path)] = (stamp, fetched_at, models)
    return fetched_at, models


def _write_file(path: os.PathLike[str], base_url: str, body: Any, fetched_at: float, models: list[ModelPrice]) -> None:
    tmp = f"{os.fspath(path)}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"base_url": canonical_base_url(base_url), "fetched_at": fetched_at, "body": body}, f)
        os.replace(tmp, path)  # atomic: another kernel never reads half a file
        _MEMO[os.fspath(path)] = (_stamp(path), fetched_at, models)
    except OSError:
        pass  # a read-only cache dir only costs a refetch next time


async def load_models(
    http: httpx.AsyncClient, base_url: str, headers: Mapping[str, str], *, refresh: bool = False, max_age: float = 86400
) -> Models:
    """GET ``{base_url}/models`` as `Models`, using the on-disk copy while it is younger than ``max_age``.

    ``refresh=True`` always fetches. When the fetch fails, an older copy is used (``.stale`` is
    True and a `PricingWarning` says so); with no copy at all, `ProviderError` is raised.
    """
    import httpx  # the type is only needed here, at call time

    path = _models_file(base_url)
    saved = _read_file(path)
    if saved and not refresh and time.time() - saved[0] < max_age:
        return Models(((m.id, m) for m in saved[1]), fetched_at=saved[0])
    label = canonical_base_url(base_url)
    try:
        response = await http.get(f"{base_url.rstrip('/')}/models", headers=dict(headers))
        if response.status_code >= 400:
            raise ProviderError(
                f"GET {label}/models answered HTTP {response.status_code}",
                status_code=response.status_code,
                retryable=response.status_code >= 500,
            )
        body = response.json()
        models = _parse(body)
    except (httpx.HTTPError, ValueError, ProviderError) as exc:
        secrets = [p for v in headers.values() for p in (v, v.split()[-1] if v.split() else "")]
        reason = _reason(exc, [*secrets, urlsplit(base_url).password or ""])
        if saved is None:
            if isinstance(exc, ProviderError):
                raise
            raise ProviderError(
                f"could not load the model list from {label}/models ({reason}); check the base URL and your connection"
            ) from None
        age_h = (time.time() - saved[0]) / 3600
        note = f"could not refresh model prices from {label} ({reason}); using a copy from {age_h:.0f} h ago"
        warnings.warn(note, PricingWarning, stacklevel=2)
        return Models(((m.id, m) for m in saved[1]), fetched_at=saved[0], stale=True, note=note)
    now = time.time()
    _write_file(path, base_url, body, now, models)
    return Models(((m.id, m) for m in models), fetched_at=now)


def _reason(exc: Exception, secrets: list[str]) -> str:
    # httpx messages are short ("All connection attempts failed"); scrub anyway, a key must never show.
    text = str(exc) if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}".rstrip(": ")
    return scrub(text[:160], secrets)


def find_price(prices: Mapping[str, ModelPrice], model: str) -> ModelPrice | None:
    """The price entry for ``model``; a routing suffix (``:nitro``, ``:online``) falls back to the base id."""
    if model in prices:
        return prices[model]
    base, sep, variant = model.partition(":")
    # `:free` is a different (free) listing: never price it as the paid base model, or vice versa.
    if sep and variant != "free" and base in prices:
        return prices[base]
    return None


def count_tokens(text: str) -> int:
    """A rough token count (about 4 characters per token): an estimate, not the model's tokenizer."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def cost_from_tokens(
    price: ModelPrice | None, prompt_tokens: int | None, completion_tokens: int | None
) -> float | None:
    """USD for a call from its token counts (for when usage.cost is missing); None if the price is unknown."""
    if price is None:
        return None
    rates = price.rates(prompt_tokens or 0)
    if rates is None:
        return None
    return (prompt_tokens or 0) * rates[0] + (completion_tokens or 0) * rates[1] + (price.request or 0.0)


@dataclass
class Estimate:
    """A cost estimate for one deliberation, in USD. Unknown prices count as 0 and are listed."""

    members: list[tuple[str, float | None]]  # (model, USD) in panel order; a model may appear twice
    judge: tuple[str, float | None]
    total: float  # USD, expected
    low: float  # USD, short answers
    high: float  # USD, long answers (every member at max_tokens when set)
    unknown: list[str]
    prompt_tokens: int
    completion_tokens: int  # expected completion per member

    @property
    def complete(self) -> bool:
        "True when every model's price was known."
        return not self.unknown

    def __str__(self) -> str:
        text = f"about ${self.total:.4f} (${self.low:.4f} to ${self.high:.4f})"
        if self.unknown:
            text += f"; price unknown for {', '.join(self.unknown)}"
        return text


def estimate(
    prompt_tokens: int,
    members: list[str],
    judge: str,
    prices: Mapping[str, ModelPrice],
    *,
    max_tokens: int | None = None,
    expected_completion: int = 600,
) -> Estimate:
    """Estimate a deliberation's cost: every member answers ``prompt_tokens``, then the judge reads them all.

    Each member is expected to write ``expected_completion`` tokens (capped by ``max_tokens``). The
    judge reads the prompt, every answer and ~700 tokens of instructions, and writes twice as much
    as a member (analysis + synthesis). ``low`` assumes answers a quarter as long; ``high``
    assumes every member writes ``max_tokens`` (or three times the expected length when unset).
    """
    expected = min(expected_completion, max_tokens) if max_tokens else expected_completion

    def run(completion: int) -> tuple[list[tuple[str, float | None]], tuple[str, float | None]]:
        per_member = [(m, cost_from_tokens(find_price(prices, m), prompt_tokens, completion)) for m in members]
        judge_in = prompt_tokens + completion * len(members) + JUDGE_OVERHEAD_TOKENS
        return per_member, (judge, cost_from_tokens(find_price(prices, judge), judge_in, 2 * completion))

    def add_up(per_member: list[tuple[str, float | None]], judge_cost: tuple[str, float | None]) -> float:
        return sum(c or 0.0 for _, c in [*per_member, judge_cost])

    mid_members, mid_judge = run(expected)
    low = add_up(*run(max(1, expected // 4)))
    high = add_up(*run(max_tokens if max_tokens else 3 * expected))
    unknown = list(dict.fromkeys(m for m, c in [*mid_members, mid_judge] if c is None))
    return Estimate(
        members=mid_members,
        judge=mid_judge,
        total=add_up(mid_members, mid_judge),
        low=low,
        high=high,
        unknown=unknown,
        prompt_tokens=prompt_tokens,
        completion_tokens=expected,
    )
