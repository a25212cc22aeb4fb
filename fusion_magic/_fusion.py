"""`Fusion`: one prompt to a panel, then a judge. The async core is `arun`; `run` wraps it.

Everything a user can get wrong is checked in the constructor, so a bad configuration fails
before any request is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from ._base.config import (
    MAX_PANEL,
    Endpoint,
    Member,
    check_model_id,
    check_panel,
    check_text,
    expand_samples,
    get_preset,
    parse_jury,
    parse_members,
    resolve_endpoint,
)
from ._base.errors import ConfigError
from ._base.reasoning import check_reasoning
from ._base.settings import DEFAULTS
from ._base.settings import check as check_settings
from ._engine import followup
from ._engine import run as _run
from ._engine.context import RunContext, models_of
from ._engine.nesting import NESTING, nested, refuse_nesting, sync_caller
from ._engine.pricing import ModelPrice
from ._engine.run_settings import RunSettings
from ._engine.runner import on_background, run_sync
from ._engine.toolset import build_toolset
from ._render.progress import Tracker
from ._values.ledger import Ledger
from ._values.ledger import ledger as session_ledger
from ._values.result import FusionResult

if TYPE_CHECKING:
    import pandas as pd

    from ._values.comparison import Comparison

__all__ = ["NESTING", "Fusion"]


class Fusion:
    """A configured deliberation: panel, judge, endpoint, the members' tools and limits. Usage:

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
        order: str = DEFAULTS["order"],
        cross_examine: bool = DEFAULTS["cross_examine"],
        rounds: int = DEFAULTS["rounds"],
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
        reasoning: str | int | None = None,
        web: bool = DEFAULTS["web"],
        data: Mapping[str, Any] | None = None,
        python: bool | str = DEFAULTS["python"],
        tools: Sequence[Callable[..., Any]] | None = None,
        max_tool_calls: int = DEFAULTS["max_tool_calls"],
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
        self.panel = parse_members(panel, openrouter=strict_ids) if panel is not None else expand_samples(chosen.panel)
        self.judge, self.vote = chosen.judge, judge == "vote"  # "vote": a majority of short answers, no judge
        self.judge_max_tokens = chosen.judge_max_tokens if judge is None and not judges else None
        if judge is not None and not self.vote:
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
        # The members' tools (see `fusion_magic._engine.toolset`); built now, so a missing sandbox fails here.
        self.toolset = build_toolset(
            data=data, python=python, tools=tools, web=web, openrouter=strict_ids, max_tool_calls=max_tool_calls
        )
        if stall_timeout is None:
            raise ConfigError("stall_timeout must be a positive number of seconds, got None")
        check_settings(self._settings)  # every value the settings table checks
        if self.vote and (self.jury or tool):
            raise ConfigError("judge='vote' counts answers without a judge: it takes no --judges and no --tool")
        self.order, self.cross_examine, self.rounds = order, bool(cross_examine), rounds
        if quorum is not None and not (isinstance(quorum, int) and 1 <= quorum <= len(self.panel)):
            raise ConfigError(f"quorum must be between 1 and the panel size ({len(self.panel)}), got {quorum!r}")
        self.timeout, self.quorum, self.max_cost, self.tool = timeout, quorum, max_cost, tool
        self.judge_timeout = judge_timeout  # None: the judge has the same deadline as a member
        self.system, self.temperature, self.web = system, temperature, web
        self.max_tokens = max_tokens if max_tokens is not None else chosen.max_tokens
        self.reasoning = check_reasoning(reasoning if reasoning is not None else chosen.reasoning)
        self.use_cache, self.refresh, self.stream = cache, refresh, stream
        self.max_retries, self.stall_timeout, self.transport = max_retries, stall_timeout, transport
        self.last_result: FusionResult | None = None  # a convenience: the last result made (any, under map)
        # Where this Fusion records what it spends: the session's ledger unless given its own.
        self.ledger: Ledger = ledger if ledger is not None else session_ledger()
        # What results show as their preset: a panel given by hand is not the preset's.
        self.preset_label = self.preset if panel is None else "custom"

    @property
    def is_local(self) -> bool:
        "True for the `local` preset's own llama.cpp servers."
        return self._local

    @property
    def _strict_ids(self) -> bool:
        "Model ids must have OpenRouter's shape when OpenRouter is the endpoint."
        return bool(self.endpoint and self.endpoint.is_openrouter)

    def __repr__(self) -> str:
        panel = ", ".join(m.name for m in self.panel)
        where = "local model" if self._local else self.endpoint.label if self.endpoint else "?"
        return f"Fusion(preset={self.preset!r}, panel=[{panel}], judge={self.judge.name!r}, endpoint={where!r})"

    def run_settings(self) -> RunSettings:
        "The frozen value the engine's steps read: this Fusion's settings as they are now."
        named = {f.name: getattr(self, f.name) for f in dataclasses.fields(RunSettings) if hasattr(self, f.name)}
        named.update(panel=tuple(self.panel), jury=tuple(self.jury), strict_ids=self._strict_ids)
        return RunSettings(
            **named,
            resolve_endpoint=self.aendpoint,
            on_result=self._remember,
            rebuild=lambda **changes: self.derive(**changes).run_settings(),
        )

    def _remember(self, result: FusionResult) -> None:
        result._fusion = self  # type: ignore[attr-defined]  # for result.follow_up(); not part of to_dict
        self.last_result = result  # a convenience for the caller; nothing reads it to recover

    def derive(self, **changes: Any) -> Fusion:
        "A new `Fusion` with these settings changed and the rest as here (checked like the constructor)."
        return Fusion(**{**self._settings, **changes})

    # -- sync facade --------------------------------------------------------------------------
    def run(
        self, prompt: str, *, on_tick: Callable[[Tracker], None] | None = None, follow_up_of: FusionResult | None = None
    ) -> FusionResult:
        """Deliberate on ``prompt`` and return the result (blocking; works inside Jupyter).

        On Ctrl-C / kernel interrupt the in-flight requests are cancelled within a second and
        `FusionInterrupted` (a `KeyboardInterrupt`) is raised; its ``result`` keeps the answers
        that arrived (they are cached too).
        """
        tracker = self.tracker()
        with sync_caller():
            return run_sync(
                self.arun(prompt, tracker=tracker, follow_up_of=follow_up_of),
                on_tick=(lambda: on_tick(tracker)) if on_tick else None,
            )

    def follow_up(self, previous: FusionResult, question: str, **kw: Any) -> FusionResult:
        "Ask this panel ``question`` with ``previous`` (and the turns before it) as context; judged again."
        return self.run(question, follow_up_of=previous, **kw)

    def rejudge(self, result: FusionResult, judge: str | None = None) -> FusionResult:
        "Re-run only the judge over the stored panel answers of ``result``."
        with sync_caller():
            return run_sync(self.arejudge(result, judge))

    def map(
        self, prompts: Any, *, concurrency: int = 8, progress: bool = True, max_cost: float | None = None
    ) -> pd.DataFrame:
        """Deliberate on every prompt; one DataFrame row per prompt (see `fusion_magic._engine.batch`).

        ``max_cost`` caps the whole batch: nothing is sent when the estimate for the prompts not
        already cached exceeds it (the per-run ``max_cost`` of this `Fusion` still applies to each)."""
        from ._engine.batch import run_map

        with sync_caller():
            return run_map(self.run_settings(), prompts, concurrency=concurrency, progress=progress, max_cost=max_cost)

    async def amap(
        self, prompts: Any, *, concurrency: int = 8, progress: bool = False, max_cost: float | None = None
    ) -> pd.DataFrame:
        "The async twin of `map` (no progress bar unless asked)."
        from ._engine.batch import arun_map

        refuse_nesting()
        return await on_background(
            arun_map(self.run_settings(), prompts, concurrency=concurrency, progress=progress, max_cost=max_cost)
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
        """Fusion against single models or other methods on ``prompts``: cost, latency and quality per approach.

        ``baselines``: model ids, or methods (``"model*3"``, ``"vote"``, ``"fusion+cross-examine"``),
        default the panel's members. ``reference``: expected answers, scored by ``grader`` ("contains",
        "exact" or a function); without them ``grader`` is an LLM ("judge" or a model id) comparing
        in both orders; ``grader=False`` grades nothing. Cached; ``max_cost`` refuses before sending
        (see `fusion_magic._studies.compare`)."""
        from ._studies.compare import run_compare

        with sync_caller():
            return run_compare(
                self.run_settings(),
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
        from ._studies.compare import acompare

        return await acompare(self.run_settings(), prompts, baselines, **options)

    # -- async core ---------------------------------------------------------------------------
    def tracker(self) -> Tracker:
        "A fresh progress tracker for this panel and judge."
        return self.run_settings().tracker()

    async def arun(
        self,
        prompt: str,
        *,
        tracker: Tracker | None = None,
        follow_up_of: FusionResult | None = None,
        messages: list[dict[str, Any]] | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        _shared: RunContext | None = None,
    ) -> FusionResult:
        """Deliberate on ``prompt``: the panel concurrently, then the judge.

        With ``follow_up_of``, ``prompt`` is a follow-up question: each member also sees the earlier
        questions, its own earlier answers and the synthesized answers (see `fusion_magic._engine.followup`).
        ``messages``: the conversation ``prompt`` comes from (OpenAI shape). The turns before its
        last user message are context every member sees; the ``tool`` primary gets it as is.
        ``tools``: function tools offered to the ``tool`` primary besides `fusion`; its calls to
        them are returned in ``result.tool["tool_calls"]`` for the caller to run. ``tool_choice``:
        the primary's first choice (OpenAI shape, default "auto"; naming `fusion` forces the panel).
        Cancelled, it raises `DeliberationCancelled` whose ``result`` keeps the answers that arrived
        (awaited from another event loop than fusion_magic's, a plain `asyncio.CancelledError`).
        """
        turns = followup.turns_of(follow_up_of) if follow_up_of is not None else []
        chat = _run.Chat.of(messages, tools, tool_choice)
        settings = self.run_settings()
        return await _run.arun_prompt(settings, prompt, tracker=tracker, turns=turns, chat=chat, shared=_shared)

    async def arejudge(self, result: FusionResult, judge: str | None = None) -> FusionResult:
        "Re-run only the judge (or this Fusion's jury, when none is named; 'vote': a count) over ``result``."
        if not any(r.ok for r in result.responses):
            raise ConfigError("nothing to judge: the result has no panel answers")
        if judge == "vote" and not self.vote:
            return await self.derive(judge="vote", judges=None).arejudge(result)
        member = parse_members([judge], what="judge", openrouter=self._strict_ids)[0] if judge else self.judge
        refuse_nesting()
        jury = () if judge else self.jury
        tracker = Tracker([r.model for r in result.responses], member.name, jurors=[m.name for m in jury])
        return await on_background(nested(_run.rejudge(self.run_settings(), result, member, tracker, jury)))

    # -- pieces -------------------------------------------------------------------------------
    async def aendpoint(self) -> Endpoint:
        """The endpoint, resolved once: a remote one when this `Fusion` is made (so a missing key
        fails early); the `local` preset's when first needed, which starts its server."""
        if self.endpoint is None:
            from ._local.server import local_endpoint, pool_size

            size = pool_size(len(self.panel))  # one process per member, up to the core count
            self.endpoint = await asyncio.get_running_loop().run_in_executor(None, local_endpoint, size)
        return self.endpoint

    async def alist_models(self, *, refresh: bool = False) -> dict[str, ModelPrice]:
        "The endpoint's models with their prices (``/models``, cached on disk for a day)."
        return await models_of(self.run_settings(), refresh=refresh)

    def list_models(self, *, refresh: bool = False) -> dict[str, ModelPrice]:
        "`alist_models`, blocking (also inside Jupyter)."
        return run_sync(self.alist_models(refresh=refresh))
