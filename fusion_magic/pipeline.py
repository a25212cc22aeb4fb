"""`Fusion`: one prompt to a panel, then a judge. The async core is `arun`; `run` wraps it.

Everything a user can get wrong is checked in the constructor, so a bad configuration fails
before any request is sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import conversation, evidence, followup
from .budget import guard_run
from .cache import Cache
from .client import ChatClient
from .config import (
    MAX_PANEL,
    Endpoint,
    Member,
    check_model_id,
    check_panel,
    check_prompt,
    check_text,
    get_preset,
    parse_jury,
    parse_members,
    resolve_endpoint,
)
from .errors import ConfigError
from .judge_seat import merged, run_judge
from .ledger import Ledger
from .ledger import ledger as session_ledger
from .panel import Call, ask_panel
from .pricing import ModelPrice, load_models
from .progress import JUDGE, Tracker
from .result import Analysis, FusionResult, Response
from .runner import in_background, on_background, run_sync
from .settings import DEFAULTS
from .settings import check as check_settings

if TYPE_CHECKING:
    import pandas as pd

    from .comparison import Comparison

__all__ = ["Fusion"]

T = TypeVar("T")
LOCAL_JUDGE_NOTE = "the local judge is a tiny model (SmolLM2-135M): read its analysis as a demo, not a verdict"
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("fusion_depth", default=0)
# Set on a thread while it waits in run()/map()/rejudge(): its progress callbacks run inside that
# deliberation. (A ContextVar would not do: the caller's context also reaches the private loop.)
_waiting = threading.local()
NESTING = "fusion_magic does not start a deliberation inside another one"


@dataclasses.dataclass
class Chat:
    "A caller's conversation around the prompt: context for the panel; messages and tools for a primary."

    context: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    messages: list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    tool_choice: Any = "auto"


class Fusion:
    """A configured deliberation: panel, judge, endpoint and limits.

    Usage:

        fusion = Fusion(preset="budget", timeout=60)
        result = fusion.run("Is P = NP likely?")        # blocking, also inside Jupyter
        result = await fusion.arun("Is P = NP likely?")  # async
    """

    def __init__(
        self,
        preset: str = DEFAULTS["preset"],
        panel: str | Sequence[str | Member] | None = None,
        judge: str | Member | None = None,
        *,
        judges: str | list[str | Member] | None = None,
        verified_only: bool = False,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        headers: Mapping[str, str] | None = None,
        auth_header: str | None = None,
        auth_scheme: str | None = None,
        timeout: float | None = DEFAULTS["timeout"],
        judge_timeout: float | None = None,
        quorum: int | None = None,
        cache: bool = DEFAULTS["cache"],
        refresh: bool = DEFAULTS["refresh"],
        max_cost: float | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        web: bool = DEFAULTS["web"],
        tool: str | None = None,
        stream: bool = DEFAULTS["stream"],
        max_retries: int = DEFAULTS["max_retries"],
        stall_timeout: float = DEFAULTS["stall_timeout"],
        max_panel: int = MAX_PANEL,
        transport: httpx.AsyncBaseTransport | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self._settings = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        chosen = get_preset(preset)
        self.preset = chosen.name
        self._local = chosen.endpoint == "local" and not base_url
        self.endpoint: Endpoint | None = None
        if not self._local:
            self.endpoint = resolve_endpoint(
                base_url, api_key, api_key_env, headers=headers, auth_header=auth_header, auth_scheme=auth_scheme
            )
        strict_ids = self._strict_ids
        self.panel = parse_members(panel, openrouter=strict_ids) if panel is not None else chosen.panel
        self.judge = chosen.judge
        if judge is not None:
            (self.judge,) = parse_members([judge], what="judge", openrouter=strict_ids)
        # A jury: its first judge chairs (and wins over `judge`); one judge given is just a judge.
        self.jury = parse_jury(judges, openrouter=strict_ids) if judges else ()
        if self.jury:
            self.judge = self.jury[0]
        self.jury = self.jury if len(self.jury) > 1 else ()
        self.verified_only = bool(verified_only)
        check_panel(self.panel, max_size=max_panel)
        if system is not None:
            check_text(system, "the system prompt")
        for member in (*self.panel, self.judge):
            if member.system is not None:
                check_text(member.system, f"the system prompt of {member.name}")
        if tool:
            check_model_id(tool, what="--tool", openrouter=strict_ids)
        if web and not strict_ids:
            raise ConfigError("--web uses OpenRouter's web search; the endpoint here is not OpenRouter")
        if stall_timeout is None:
            raise ConfigError("stall_timeout must be a positive number of seconds, got None")
        check_settings(
            {
                "timeout": timeout,
                "max_cost": max_cost,
                "stall_timeout": stall_timeout,
                "judge_timeout": judge_timeout,
                "temperature": temperature,
                "max_tokens": max_tokens,
            }
        )
        if quorum is not None and not (isinstance(quorum, int) and 1 <= quorum <= len(self.panel)):
            raise ConfigError(f"quorum must be between 1 and the panel size ({len(self.panel)}), got {quorum!r}")
        self.timeout, self.quorum, self.max_cost, self.tool = timeout, quorum, max_cost, tool
        self.judge_timeout = judge_timeout  # None: the judge has the same deadline as a member
        self.system, self.temperature, self.web = system, temperature, web
        self.max_tokens = max_tokens if max_tokens is not None else chosen.max_tokens
        self.use_cache, self.refresh, self.stream = cache, refresh, stream
        self.max_retries, self.stall_timeout, self.transport = max_retries, stall_timeout, transport
        self.last_result: FusionResult | None = None
        # Where this Fusion records what it spends: the session's ledger unless given its own.
        self.ledger: Ledger = ledger if ledger is not None else session_ledger()
        # What results show as their preset: a panel given by hand is not the preset's.
        self.preset_label = self.preset if panel is None else "custom"

    @property
    def _strict_ids(self) -> bool:
        "Model ids must have OpenRouter's shape when OpenRouter is the endpoint."
        return bool(self.endpoint and self.endpoint.is_openrouter)

    def __repr__(self) -> str:
        panel = ", ".join(m.name for m in self.panel)
        where = "local model" if self._local else self.endpoint.label if self.endpoint else "?"
        return f"Fusion(preset={self.preset!r}, panel=[{panel}], judge={self.judge.name!r}, endpoint={where!r})"

    def derive(self, **changes: Any) -> Fusion:
        "A new `Fusion` with these settings changed and the rest as here (checked like the constructor)."
        return Fusion(**{**self._settings, **changes})

    # -- sync facade --------------------------------------------------------------------------
    def run(
        self, prompt: str, *, on_tick: Callable[[Tracker], None] | None = None, follow_up_of: FusionResult | None = None
    ) -> FusionResult:
        """Deliberate on ``prompt`` and return the result (blocking; works inside Jupyter).

        On Ctrl-C / kernel interrupt the in-flight requests are cancelled within a second,
        the answers that arrived stay in ``last_result`` (and the cache), and the interrupt
        is re-raised.
        """
        tracker = self.tracker()
        with _sync_caller():
            return run_sync(
                self.arun(prompt, tracker=tracker, follow_up_of=follow_up_of),
                on_tick=(lambda: on_tick(tracker)) if on_tick else None,
            )

    def follow_up(self, previous: FusionResult, question: str, **kw: Any) -> FusionResult:
        "Ask this panel ``question`` with ``previous`` (and the turns before it) as context; judged again."
        return self.run(question, follow_up_of=previous, **kw)

    def rejudge(self, result: FusionResult, judge: str | None = None) -> FusionResult:
        "Re-run only the judge over the stored panel answers of ``result``."
        with _sync_caller():
            return run_sync(self.arejudge(result, judge))

    def map(
        self, prompts: Any, *, concurrency: int = 8, progress: bool = True, max_cost: float | None = None
    ) -> pd.DataFrame:
        """Deliberate on every prompt; one DataFrame row per prompt (see `fusion_magic.batch`).

        ``max_cost`` caps the whole batch: nothing is sent when the estimate for the prompts not
        already cached exceeds it (the per-run ``max_cost`` of this `Fusion` still applies to each)."""
        from .batch import run_map

        with _sync_caller():
            return run_map(self, prompts, concurrency=concurrency, progress=progress, max_cost=max_cost)

    async def amap(
        self, prompts: Any, *, concurrency: int = 8, progress: bool = False, max_cost: float | None = None
    ) -> pd.DataFrame:
        "The async twin of `map` (no progress bar unless asked)."
        from .batch import arun_map

        _refuse_nesting()
        return await on_background(
            arun_map(self, prompts, concurrency=concurrency, progress=progress, max_cost=max_cost)
        )

    def compare(
        self,
        prompts: Any,
        baselines: Any = None,
        *,
        reference: Any = None,
        grader: Any = None,
        concurrency: int = 8,
        max_cost: float | None = None,
        progress: bool = True,
    ) -> Comparison:
        """Fusion against single models on ``prompts``: cost, latency and quality per approach.

        ``baselines``: model ids, each asked alone with the same prompt and settings (default:
        the panel's members). ``reference``: one expected answer per prompt, scored by ``grader``
        ("contains" by default, "exact", or a function ``(answer, reference) -> float in [0, 1]``).
        Without references ``grader`` is an LLM ("judge", the default, or a model id) comparing the
        fused answer with each baseline's in both orders (the judge wrote the fused answer and may
        favour it: another model is the fairer grader); ``grader=False`` grades nothing.
        Cached like every call; ``max_cost`` refuses before sending (see `fusion_magic.compare`).
        """
        from .compare import run_compare

        with _sync_caller():
            return run_compare(
                self,
                prompts,
                baselines,
                reference=reference,
                grader=grader,
                concurrency=concurrency,
                max_cost=max_cost,
                progress=progress,
            )

    async def acompare(self, prompts: Any, baselines: Any = None, **options: Any) -> Comparison:
        "The async form of `compare` (no progress display)."
        from .compare import acompare

        return await acompare(self, prompts, baselines, **options)

    # -- async core ---------------------------------------------------------------------------
    def tracker(self) -> Tracker:
        "A fresh progress tracker for this panel and judge."
        return Tracker(
            [m.name for m in self.panel], self.judge.name, deadline_s=self.timeout, jurors=[m.name for m in self.jury]
        )

    async def arun(
        self,
        prompt: str,
        *,
        tracker: Tracker | None = None,
        follow_up_of: FusionResult | None = None,
        messages: list[dict[str, Any]] | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        _shared: Call | None = None,
    ) -> FusionResult:
        """Deliberate on ``prompt``: the panel concurrently, then the judge.

        With ``follow_up_of``, ``prompt`` is a follow-up question: each member also sees the earlier
        questions, its own earlier answers and the synthesized answers (see `fusion_magic.followup`).
        ``messages``: the conversation ``prompt`` comes from (OpenAI shape). The turns before its
        last user message are context every member sees; the ``tool`` primary gets it as is.
        ``tools``: function tools offered to the ``tool`` primary besides `fusion`; its calls to
        them are returned in ``result.tool["tool_calls"]`` for the caller to run. ``tool_choice``:
        the primary's first choice (OpenAI shape, default "auto"; naming `fusion` forces the panel).
        """
        prompt = check_prompt(prompt)
        turns = followup.turns_of(follow_up_of) if follow_up_of is not None else []
        _refuse_nesting()
        context: list[dict[str, Any]] = []
        if messages is not None:
            context = conversation.panel_context(messages[: conversation.question_index(messages)])
        chat = Chat(context, list(messages) if messages is not None else None, list(tools or []), tool_choice or "auto")
        return await on_background(self._nested(self._arun(prompt, tracker or self.tracker(), turns, chat, _shared)))

    @staticmethod
    async def _nested(coro: Coroutine[Any, Any, T]) -> T:
        # Runs on the private loop: mark everything below as inside a deliberation.
        token = _depth.set(_depth.get() + 1)
        try:
            return await coro
        finally:
            _depth.reset(token)

    async def _arun(
        self, prompt: str, tracker: Tracker, turns: list[dict[str, Any]], chat: Chat, shared: Call | None = None
    ) -> FusionResult:
        started = time.perf_counter()
        # A batch sets up client, cache and prices once (``shared``); each run has its own tracker.
        call = dataclasses.replace(shared, tracker=tracker, partial=[]) if shared else await self._call(tracker)
        result = FusionResult(prompt=prompt, preset=self.preset_label, history=turns, verified_only=self.verified_only)
        result._fusion = self  # type: ignore[attr-defined]  # for result.follow_up(); not part of to_dict
        try:
            result.estimate_usd = tracker.estimate_usd = await self._estimate(call, prompt)
            if self.tool:
                await self._tool_mode(call, result, chat)
            else:
                await self._deliberate(call, result, prompt, chat.context)
        except asyncio.CancelledError:
            tracker.cancel_pending("interrupted")  # the judge too: it will not start now
            result.responses = call.partial or result.responses
            result.interrupted, result.status, result.failure_reason = True, "interrupted", "cancelled"
            kept = sum(r.ok for r in result.responses)
            result.error = (
                f"interrupted: the {kept} answers that arrived are kept (and cached)"
                if kept
                else "interrupted before any answer arrived"
            )
            result.elapsed_s = round(time.perf_counter() - started, 4)
            self.last_result = result
            self.ledger.record_fusion(result)  # what arrived was paid for
            raise
        finally:
            call.close()  # a run's SQLite connection ends with it: a replaced cache file is reopened at once
        result.elapsed_s = round(time.perf_counter() - started, 4)
        self.last_result = result
        self.ledger.record_fusion(result)
        return result

    async def _deliberate(
        self, call: Call, result: FusionResult, prompt: str, context: list[dict[str, Any]] | None = None
    ) -> None:
        context = context or []
        messages = {m.name: self._messages(m, prompt, result.history, context) for m in self.panel}
        result.responses = await ask_panel(call, self.panel, messages, timeout=self.timeout, quorum=self.quorum)
        answered = [r for r in result.responses if r.ok]
        if not answered:
            result.status = "error"
            result.error = f"all {len(self.panel)} panel members failed: " + "; ".join(
                r.reason for r in result.responses
            )
            result.failure_reason = panel_failure(result.responses)
            call.note(JUDGE, state="skipped", note="no panel answers")
            return
        await self._analyse(call, result, conversation.judge_question(prompt, context), self.judge, self.jury)

    async def _analyse(
        self, call: Call, result: FusionResult, prompt: str, judge: Member, jury: tuple[Member, ...]
    ) -> None:
        "The judge's verdict, or a jury's (see `fusion_magic.jury`)."
        if jury:
            from .jury import run_jury

            await run_jury(self, call, result, prompt, jury)
        else:
            await self._judge(call, result, prompt, judge)

    async def _judge(self, call: Call, result: FusionResult, prompt: str, judge: Member, key: str = JUDGE) -> None:
        answered = [r for r in result.responses if r.ok]
        # Names a judge may use for a member besides its label: its model ids and the model that served it.
        aliases = {model: m.name for m in self.panel for model in m.models}
        aliases |= {r.served_by: r.model for r in answered if r.served_by}
        timeout = self.judge_timeout if self.judge_timeout is not None else self.timeout
        question = followup.judge_question(result.history, prompt) if result.history else prompt
        outcome = await run_judge(
            call, judge, question, answered, timeout=timeout, max_tokens=self.max_tokens, aliases=aliases, key=key
        )
        result.judge = merged(judge.name, outcome)
        result.notes += outcome.notes
        if self._local:
            result.notes.append(LOCAL_JUDGE_NOTE)
        if not outcome.ok:
            result.status, result.judge_raw = "judge_failed", outcome.raw or None
            result.error, result.failure_reason = outcome.error, outcome.failure_reason
            return
        result.answer = outcome.answer
        answers = {r.model: r.content for r in answered}
        result.analysis = evidence.verify(outcome.analysis or Analysis(), answers)
        result.status = "ok" if all(r.ok for r in result.responses) else "partial"
        result.judge_raw, result.error, result.failure_reason = None, None, None

    async def arejudge(self, result: FusionResult, judge: str | None = None) -> FusionResult:
        "Re-run only the judge (or this Fusion's jury, when no judge is named) over the answers in ``result``."
        if not any(r.ok for r in result.responses):
            raise ConfigError("nothing to judge: the result has no panel answers")
        member = parse_members([judge], what="judge", openrouter=self._strict_ids)[0] if judge else self.judge
        _refuse_nesting()
        jury = () if judge else self.jury
        tracker = Tracker([r.model for r in result.responses], member.name, jurors=[m.name for m in jury])
        return await on_background(self._nested(self._rejudge(result, member, tracker, jury)))

    async def _rejudge(
        self, result: FusionResult, member: Member, tracker: Tracker, jury: tuple[Member, ...] = ()
    ) -> FusionResult:
        call = await self._call(tracker)
        started = time.perf_counter()
        fresh = FusionResult(
            prompt=result.prompt,
            preset=result.preset,
            responses=list(result.responses),
            history=list(result.history),
            verified_only=self.verified_only,
        )
        fresh._fusion = self  # type: ignore[attr-defined]
        try:
            await self._analyse(call, fresh, result.prompt, member, jury)
        finally:
            call.close()
        fresh.elapsed_s = round(time.perf_counter() - started, 4)
        self.last_result = fresh
        self.ledger.record_fusion(fresh)
        return fresh

    # -- pieces -------------------------------------------------------------------------------
    async def aendpoint(self) -> Endpoint:
        """The endpoint, resolved once: a remote one when this `Fusion` is made (so a missing key
        fails early); the `local` preset's when first needed, which starts its server."""
        if self.endpoint is None:
            from .local import local_base_urls, pool_size

            size = pool_size(len(self.panel))  # one process per member, up to the core count
            bases = await asyncio.get_running_loop().run_in_executor(None, local_base_urls, size)
            endpoint = resolve_endpoint(bases[0], api_key="", env={})
            self.endpoint = dataclasses.replace(endpoint, replicas=tuple(bases[1:]))
        return self.endpoint

    async def alist_models(self, *, refresh: bool = False) -> dict[str, ModelPrice]:
        "The endpoint's models with their prices (``/models``, cached on disk for a day)."
        endpoint = await self.aendpoint()
        client = ChatClient(endpoint, transport=self.transport)
        return await load_models(client.http, endpoint.base_url, client.headers(), refresh=refresh)

    def list_models(self, *, refresh: bool = False) -> dict[str, ModelPrice]:
        "`alist_models`, blocking (also inside Jupyter)."
        return run_sync(self.alist_models(refresh=refresh))

    async def _call(self, tracker: Tracker | None) -> Call:
        endpoint = await self.aendpoint()
        client = ChatClient(
            endpoint,
            transport=self.transport,
            max_retries=self.max_retries,
            stall_timeout=self.stall_timeout,
            depth=_depth.get(),
        )
        params: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.web:
            params["tools"] = [{"type": "openrouter:web_search"}]
        return Call(
            client=client,
            cache=Cache() if self.use_cache else None,
            refresh=self.refresh,
            stream=self.stream,
            tracker=tracker,
            params={k: v for k, v in params.items() if v is not None},
        )

    def _messages(
        self,
        member: Member,
        prompt: str,
        turns: list[dict[str, Any]] | None = None,
        context: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        "A member's chat: a follow-up's turns, else the caller's context turns, then the prompt."
        system = member.system if member.system is not None else self.system
        if turns:
            return followup.member_messages(member.name, system, turns, prompt)
        return [
            *([{"role": "system", "content": system}] if system else []),
            *(context or []),
            {"role": "user", "content": prompt},
        ]

    async def _estimate(self, call: Call, prompt: str) -> float | None:
        "The cost estimate (None when prices are unknown); raises `BudgetError` over ``max_cost``."
        return await guard_run(self, call, prompt)

    async def _tool_mode(self, call: Call, result: FusionResult, chat: Chat) -> None:
        from .tool import run_tool_mode

        await run_tool_mode(
            self,
            call,
            result,
            messages=chat.messages,
            tools=chat.tools,
            context=chat.context,
            tool_choice=chat.tool_choice,
        )


def panel_failure(responses: list[Response]) -> str:
    "Fusion's failure code when no member answered: one shared cause, else all_panels_failed."
    codes = {r.status_code for r in responses}
    if codes == {429}:
        return "rate_limited"
    if 402 in codes:
        return "insufficient_credits"
    if codes <= {400, 404} and all("model" in (r.error or "").lower() for r in responses):
        return "invalid_model"
    return "all_panels_failed"


def _refuse_nesting(*, sync: bool = False) -> None:
    "Raise the nesting `ConfigError` when called from inside a running deliberation, however reached."
    # _depth: inside the async core (a custom transport, a tool); _waiting: a progress callback of a
    # sync run on this thread; in_background: a blocking call on fusion_magic's own loop (where
    # `map` and the widget rightly await `arun`) would wait for itself forever.
    if _depth.get() > 0 or getattr(_waiting, "active", False) or (sync and in_background()):
        raise ConfigError(NESTING)


class _sync_caller:
    "Refuse nesting, then mark this thread as waiting on a deliberation until the block ends."

    def __enter__(self) -> None:
        _refuse_nesting(sync=True)
        _waiting.active = True

    def __exit__(self, *exc: object) -> None:
        _waiting.active = False
