"""Panel members and presets: plain data, plus the checks run on ids, prompts and panels before anything is sent.

A `Member` is one panel seat (a model, its fallbacks, its own system prompt and temperature); a
`Preset` names a panel and a judge. Where requests go (the endpoint, its key and headers) is
`fusion_magic._base.endpoint`; its names are re-exported here for the modules that build a run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .endpoint import DEFAULT_BASE_URL, DEPTH_HEADER, Endpoint, resolve_endpoint
from .errors import ConfigError
from .reasoning import check_reasoning

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "DEPTH_HEADER",
    "MAX_PANEL",
    "PRESETS",
    "Endpoint",
    "Member",
    "Preset",
    "add_preset",
    "check_model_id",
    "check_panel",
    "check_prompt",
    "check_text",
    "expand_samples",
    "get_preset",
    "parse_jury",
    "parse_members",
    "resolve_endpoint",
]

MAX_PANEL = 16
DEFAULT_MAX_TOKENS = 16000

# Model ids that are themselves a deliberation: a panel of them would nest fusion inside fusion.
_FUSION_MODELS = re.compile(r"^(openrouter/fusion(-[\w.-]+)?|fusion)$", re.IGNORECASE)
# OpenRouter ids: vendor/model, ~vendor/family-latest, optional :variant suffixes.
_OPENROUTER_ID = re.compile(r"^~?[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*(:[\w.\-]+)*$")
# Any other server: one token without spaces or the separators used by --panel.
_GENERIC_ID = re.compile(r"^[^\s,|{}<>*#]+$")
# A self-consistency entry: `model*N` asks one model N times.
_SAMPLED = re.compile(r"^(?P<seat>.+?)\s*\*\s*(?P<n>\d+)$")


@dataclass(frozen=True)
class Member:
    """One panel seat: a model (with optional fallbacks) and its own sampling settings.

    ``name`` is how the seat appears in results and in the judge's analysis; it defaults to
    the model id and must be unique within a panel.
    """

    model: str
    fallbacks: tuple[str, ...] = ()
    name: str = ""
    system: str | None = None
    temperature: float | None = None
    samples: int = 1  # ask this seat N times, as N members `name#1`..`name#N` (see `expand_samples`)
    sample: int = 0  # which sample this member is (1..N); 0 for a plain member; part of its cache key
    reasoning: str | int | None = None  # an effort word or a token budget (`fusion_magic._base.reasoning`)

    def __post_init__(self) -> None:
        if self.reasoning is not None:
            object.__setattr__(self, "reasoning", check_reasoning(self.reasoning, f"reasoning of {self.model}"))
        if not self.name:
            object.__setattr__(self, "name", "|".join((self.model, *self.fallbacks)))
        if not isinstance(self.samples, int) or isinstance(self.samples, bool) or not 1 <= self.samples <= MAX_PANEL:
            raise ConfigError(
                f"samples of {self.name} must be a whole number from 1 to {MAX_PANEL}, got {self.samples!r}"
            )

    @property
    def models(self) -> tuple[str, ...]:
        "The model ids to try, in order."
        return (self.model, *self.fallbacks)


@dataclass(frozen=True)
class Preset:
    """A named panel and judge."""

    name: str
    panel: tuple[Member, ...]
    judge: Member
    description: str = ""
    endpoint: str | None = None  # "local": served by the local model server (see fusion_magic._local.server)
    # Default answer length (a flag or argument wins): room for a reasoning model's thoughts and its
    # answer (OpenRouter Fusion uses 16000); a preset with a small model caps it lower.
    max_tokens: int | None = DEFAULT_MAX_TOKENS
    reasoning: str | int | None = None  # the panel's reasoning effort or budget (a member's own wins)
    # What the preset's own judge may write (None: at least 2048 tokens). A tiny judge fills any room.
    judge_max_tokens: int | None = None


def _members(*ids: str) -> tuple[Member, ...]:
    return tuple(Member(i) for i in ids)


_LOCAL_MODEL = "smollm2-135m-instruct"
JUDGE_CAP_LOCAL = 320  # tokens the local judge may write (bench/local.py)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "quality",
            _members("~anthropic/claude-opus-latest", "~openai/gpt-latest", "~google/gemini-pro-latest"),
            Member("~anthropic/claude-opus-latest"),
            "three frontier models, frontier judge",
        ),
        Preset(
            "budget",
            _members("openai/gpt-5-mini", "google/gemini-2.5-flash", "deepseek/deepseek-chat"),
            Member("openai/gpt-4.1-mini"),
            "three cheap, capable models, cheap judge",
        ),
        Preset(
            "free",
            _members(
                "minimax/minimax-m2:free",
                "qwen/qwen3-30b-a3b-instruct-2507:free",
                "meta-llama/llama-3.3-70b-instruct:free",
            ),
            Member("deepseek/deepseek-chat-v3.1:free"),
            "`:free` models (rate-limited; they come and go)",
        ),
        Preset(
            "local",
            (
                Member(
                    _LOCAL_MODEL,
                    name="smollm2 (plain)",
                    temperature=0.0,
                    system="You are a helpful assistant. Answer briefly.",
                ),
                Member(
                    _LOCAL_MODEL,
                    name="smollm2 (sceptic)",
                    temperature=0.4,
                    system="You are a careful sceptic. Answer briefly and name one caveat.",
                ),
                Member(
                    _LOCAL_MODEL,
                    name="smollm2 (teacher)",
                    temperature=0.7,
                    system="You are a patient teacher. Answer briefly with one example.",
                ),
            ),
            Member(_LOCAL_MODEL, name="smollm2 (judge)", temperature=0.0),
            "ONE small local model (SmolLM2-135M) with three system prompts: a demo, not three opinions",
            endpoint="local",
            max_tokens=300,  # a 135M model rambles; reading long answers is what makes its judge slow
            # Answer first, then as much analysis as fits: uncapped it wrote ~1,000 tokens (50-100 s).
            judge_max_tokens=JUDGE_CAP_LOCAL,
        ),
    )
}


def add_preset(name: str, panel: Iterable[str | Member], judge: str | Member, description: str = "") -> Preset:
    """Register a preset of your own (replacing one of the same name) and return it."""
    if not re.match(r"^[\w.-]+$", name or ""):
        raise ConfigError(f"preset name must be a word, got {name!r}")
    members = parse_members(panel)
    (judge_member,) = parse_members([judge], what="judge")
    preset = Preset(name, members, judge_member, description)
    PRESETS[name] = preset
    return preset


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None


def parse_members(
    spec: str | Iterable[str | Member], *, what: str = "panel", openrouter: bool = True
) -> tuple[Member, ...]:
    """Parse ``"a/x,b/y|c/z"`` (or a list of ids / Members) into members, checking every id.

    ``|`` separates fallbacks: ``b/y|c/z`` tries ``c/z`` when ``b/y`` fails.
    """
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    members: list[Member] = []
    for item in items:
        if isinstance(item, Member):
            member = item
        elif isinstance(item, str):
            seat, samples = _split_samples(item.strip(), what)
            ids = [p.strip() for p in seat.split("|")]
            member = Member(ids[0], tuple(ids[1:]), samples=samples)
        else:
            raise ConfigError(f"{what} entries must be model ids (strings), got {type(item).__name__}")
        for model in member.models:
            check_model_id(model, what=what, openrouter=openrouter)
        members.append(member)
    return expand_samples(members)


def _split_samples(item: str, what: str) -> tuple[str, int]:
    "``model*N`` -> (model, N); anything else -> (item, 1)."
    found = _SAMPLED.match(item)
    if found is None:
        if "*" in item:
            raise ConfigError(f"{item!r} in {what}: write model*N with N a whole number, e.g. openai/gpt-4o*3")
        return item, 1
    n = int(found["n"])
    if not 1 <= n <= MAX_PANEL:
        raise ConfigError(f"{item!r} in {what}: N must be from 1 to {MAX_PANEL}")
    return found["seat"].strip(), n


def expand_samples(members: Iterable[Member]) -> tuple[Member, ...]:
    """Each member with ``samples=N`` (N > 1) as N members `name#1`..`name#N`, one per sample.

    Each sample is its own seat: its own cache entry (the index is part of the key) and, unless a
    temperature is set, a temperature above zero (`fusion_magic._engine.panel`), so the N answers can differ.
    """
    out: list[Member] = []
    for m in members:
        if m.samples <= 1 or m.sample:
            out.append(m)
            continue
        out.extend(replace(m, name=f"{m.name}#{i}", samples=1, sample=i) for i in range(1, m.samples + 1))
    return tuple(out)


def parse_jury(spec: str | Iterable[str | Member], *, openrouter: bool = True) -> tuple[Member, ...]:
    "Parse ``--judges J1,J2,...``: like a panel, the first one chairs; duplicates are refused."
    jury = parse_members(spec, what="judges", openrouter=openrouter)
    names = [m.name for m in jury]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate judge in --judges: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return jury


def check_model_id(model: str, *, what: str = "panel", openrouter: bool = True) -> None:
    "Raise `ConfigError` for an empty, malformed or self-nesting model id."
    if not model:
        raise ConfigError(f"empty model id in {what}")
    if _FUSION_MODELS.match(model.split(":")[0]):
        raise ConfigError(f"{model!r} is itself a deliberation; fusion_magic does not nest fusion inside fusion")
    pattern = _OPENROUTER_ID if openrouter else _GENERIC_ID
    if not pattern.match(model):
        shape = "vendor/model (e.g. openai/gpt-4o, ~openai/gpt-latest, meta-llama/llama-3.3-70b-instruct:free)"
        raise ConfigError(
            f"malformed model id {model!r} in {what}; expected {shape if openrouter else 'one word without spaces'}"
        )


def check_prompt(prompt: object) -> str:
    "Return the prompt stripped, or raise `ConfigError` when it is not text, is empty or cannot be sent."
    if not isinstance(prompt, str):
        raise ConfigError(f"the prompt must be text, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ConfigError("empty prompt: write the question in the cell body (or pass it to run())")
    check_text(prompt, "the prompt")
    return prompt.strip()


def check_text(text: str, what: str) -> None:
    "Raise `ConfigError` when ``text`` cannot be encoded as UTF-8 (a lone surrogate), naming where."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"{what} contains a broken character at position {exc.start} (half of a character such as an "
            "emoji, often from copy and paste); delete or retype it"
        ) from None


def check_panel(panel: tuple[Member, ...], *, max_size: int = MAX_PANEL) -> None:
    "Raise `ConfigError` for an empty, oversized or duplicated panel."
    if not panel:
        raise ConfigError("the panel is empty; name at least one model")
    if len(panel) > max_size:
        raise ConfigError(
            f"a panel has at most {max_size} members, got {len(panel)} (Fusion(max_panel=...) allows more)"
        )
    seen: set[str] = set()
    for member in panel:
        if member.name in seen:
            raise ConfigError(f"duplicate panel member {member.name!r}")
        seen.add(member.name)
