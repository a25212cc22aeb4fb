"""Run the judge seat: structured-output negotiation, a deadline, fallbacks and at most one re-ask.

- Structured output is negotiated per server and model: ``json_schema``, then ``json_object``,
  then the prompt alone, stepping down when a server rejects the request's ``response_format``
  (a 400/422/500 naming it). What worked is remembered for the session.
- Every judge call has a deadline (``timeout``); a late judge is cancelled, the panel answers stay.
- ``judge="a|b"`` tries ``b`` when ``a`` fails or gives no analysis.
- A reply is salvaged whatever its shape (`fusion_magic._judge.verdict`); the judge is re-asked once,
  and only when nothing usable came back. A reply with an analysis but no ``answer`` (OpenRouter
  Fusion's own shape) is kept as it is: no extra call, ``result.answer`` stays empty and a note
  says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from .._base.config import Member
from .._judge import prompt as judging
from .._judge.verdict import Salvage, salvage
from .._judge.verdict_prune import prune
from .._render.progress import JUDGE
from .._values.result import Analysis, Response
from .context import RunContext
from .panel import ask, merge_calls
from .wire import names_response_format

__all__ = ["FORMATS", "JudgeOutcome", "forget_formats", "run_judge"]

FORMATS = ("json_schema", "json_object", "prompt")
# (base URL, model) -> index into FORMATS of the first format that server accepted this session.
_formats: dict[tuple[str, str], int] = {}


def forget_formats() -> None:
    "Forget what each server accepted (the next judge call tries json_schema again)."
    _formats.clear()


@dataclass(frozen=True)
class JudgeOutcome:
    """What the judge seat produced: a verdict, or why there is none."""

    calls: tuple[Response, ...] = ()
    answer: str = ""
    analysis: Analysis | None = None
    notes: tuple[str, ...] = ()
    raw: str = ""
    failure_reason: str | None = None
    error: str | None = None
    model: str | None = None  # the judge model whose reply was used
    key: str = JUDGE  # its progress line

    @property
    def ok(self) -> bool:
        return self.analysis is not None


async def run_judge(
    ctx: RunContext,
    judge: Member,
    prompt: str,
    answered: list[Response],
    *,
    timeout: float | None,
    max_tokens: int | None,
    aliases: dict[str, str] | None = None,
    key: str = JUDGE,
    cap: int | None = None,
) -> JudgeOutcome:
    """Judge the ``answered`` panel responses with ``judge`` (its model, then its fallbacks).

    ``key`` is the progress line (a jury's judges each have one). The judge may write at least
    2048 tokens when ``max_tokens`` is set, or exactly ``cap`` when that is given (a preset's tiny judge).
    """
    labels = judging.labels_for([r.model for r in answered])
    pairs = list(zip(labels, answered, strict=True))
    traces = {label: judging.tool_trace(r.tool_calls) for label, r in pairs if r.tool_calls}
    texts = {label: r.content for label, r in pairs}
    base = judging.build_messages(prompt, texts, traces)
    answers = {r.model: r.content for r in answered}
    fence = judging.fence_of(prompt, texts, traces)
    params: dict[str, Any] = {"temperature": 0.0 if judge.temperature is None else judge.temperature}
    if cap:
        params["max_tokens"] = cap
    elif max_tokens:
        params["max_tokens"] = max(max_tokens, 2048)
    calls: list[Response] = []  # every call of the seat, as they are made
    kept: tuple[Salvage, str, str] | None = None  # an answer without analysis, while fallbacks are tried
    errors: list[str] = []
    failure, last_raw = None, ""
    for model in judge.models:
        seat = Member(model, name=judge.name, temperature=judge.temperature)
        found, raw, why, code = await _ask_model(
            ctx, seat, base, labels, params, timeout, aliases, key, calls, (answers, fence)
        )
        if found is not None and found.has_analysis:
            fallback = ["judge fallback used: " + " | ".join(errors)] if errors else []
            return _finish(key, calls, found, raw, model, fallback)
        if found is not None and found.usable and kept is None:
            kept = (found, raw, model)
        errors.append(why)
        failure, last_raw = code, raw or last_raw
        if len(judge.models) > 1 and model != judge.models[-1]:
            ctx.note(key, state="retrying", note=f"{model}: {why}; trying the next judge")
    if kept is not None:
        found, raw, model = kept
        return _finish(key, calls, found, raw, model, ["the judge gave an answer but no analysis"])
    ctx.note(key, state="failed", note=" | ".join(errors))
    error = f"judge {judge.name} gave no analysis: " + " | ".join(errors)
    return JudgeOutcome(calls=tuple(calls), raw=last_raw, failure_reason=failure, error=error, key=key)


def _finish(key: str, calls: list[Response], found: Salvage, raw: str, model: str, notes: list[str]) -> JudgeOutcome:
    verdict = judging.verdict_of(found)
    if found.has_analysis and not found.answer.strip():
        notes = [*notes, "the judge gave an analysis but no synthesized answer"]
    return JudgeOutcome(
        calls=tuple(calls),
        answer=verdict.answer,
        analysis=verdict.to_analysis(),
        notes=(*notes, *found.notes()),
        raw=raw,
        model=model,
        key=key,
    )


async def _ask_model(
    ctx: RunContext,
    seat: Member,
    base: list[dict[str, Any]],
    labels: dict[str, str],
    params: dict[str, Any],
    timeout: float | None,
    aliases: dict[str, str] | None,
    key: str,
    calls: list[Response],
    answers: tuple[dict[str, str], str],
) -> tuple[Salvage | None, str, str, str]:
    """One judge model: negotiate the format, re-ask once if nothing usable came back.

    Returns (what was salvaged or None, raw text, why it is not an analysis, Fusion failure code).
    """
    endpoint = (ctx.endpoint.base_url, seat.model)
    messages = base
    asked = 0
    while True:
        level = _formats.get(endpoint, 0)
        fmt = _response_format(FORMATS[level], list(labels))
        parsed: dict[str, Salvage] = {}
        response = await _one_call(ctx, seat, messages, labels, aliases, timeout, {**params, **fmt}, key, parsed)
        calls.append(response)
        if not response.ok:
            if level + 1 < len(FORMATS) and _rejects_format(response):
                _formats[endpoint] = level + 1
                ctx.note(key, state="retrying", note=f"{FORMATS[level]} not supported; trying {FORMATS[level + 1]}")
                continue
            return None, "", response.error or "judge call failed", _call_failure(response)
        found = parsed.get(response.content) or salvage(response.content, labels, aliases)  # read once
        prune(found, *answers)
        if found.usable or asked:
            why = (
                ""
                if found.usable
                else ("reply not valid JSON" if not found.found_json else "JSON has no analysis sections")
            )
            if found.usable and not found.has_analysis:
                why = "answer only, no analysis"
            return found, response.content, why, found.failure if not found.usable else "judge_schema_mismatch"
        asked += 1
        problem = "no JSON object in the reply" if not found.found_json else "no analysis sections and no answer"
        messages = [*base, {"role": "assistant", "content": response.content}, judging.reask_message(problem)]


async def _one_call(
    ctx: RunContext,
    seat: Member,
    messages: list[dict[str, Any]],
    labels: dict[str, str],
    aliases: dict[str, str] | None,
    timeout: float | None,
    params: dict[str, Any],
    key: str = JUDGE,
    parsed: dict[str, Salvage] | None = None,
) -> Response:
    def usable(text: str) -> bool:  # only a usable reply is cached (and taken from the cache)
        found = salvage(text, labels, aliases)
        if parsed is not None:  # the seat reads the reply it gets from here, not a second time
            parsed[text] = found
        return found.usable

    try:
        response, _ = await asyncio.wait_for(ask(ctx, seat, messages, key=key, accept=usable, **params), timeout)
    except asyncio.TimeoutError:
        ctx.note(key, state="timed_out", note=f"no answer within {timeout:g}s")
        return Response(
            seat.name,
            status="timed_out",
            error=f"{seat.model}: no answer within {timeout:g}s (cancelled)",
            served_by=seat.model,
        )
    return response


def _response_format(kind: str, labels: list[str]) -> dict[str, Any]:
    if kind == "json_schema":
        return {"response_format": judging.response_format(labels)}
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {}


def _rejects_format(response: Response) -> bool:
    return response.status_code in (400, 422, 500) and names_response_format(response.error or "")


def _call_failure(response: Response) -> str:
    "Fusion's failure code for a judge call that failed."
    if response.status_code == 402:
        return "insufficient_credits"
    if response.status_code == 429:
        return "rate_limited"
    if response.status_code in (400, 404) and "model" in (response.error or "").lower():
        return "invalid_model"
    if "empty answer" in (response.error or "") or response.status in ("truncated", "reasoning_only"):
        return "judge_empty_completion"
    return "judge_upstream_error"


def merged(name: str, outcome: JudgeOutcome) -> Response:
    "The judge seat's calls summed into one `Response` (status failed when there is no verdict)."
    response = merge_calls(name, list(outcome.calls)) if outcome.calls else Response(name, status="skipped")
    if outcome.model:
        response.served_by = response.served_by or outcome.model
    if not outcome.ok:
        response.status = "timed_out" if response.status == "timed_out" else "failed"
        response.error = outcome.error
    else:
        response.status, response.error = "ok", None
    return response
