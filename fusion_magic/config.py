"""Endpoints, panel members and presets: plain data, plus the checks run before anything is sent.

An endpoint is any OpenAI-compatible server (OpenRouter, OpenAI, Ollama, vLLM, a local llama.cpp
server); it differs from another only in its base URL, the env vars its key may come from and a
few headers. Presets name a panel and a judge.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import ConfigError, MissingKeyError

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_PANEL",
    "PRESETS",
    "Endpoint",
    "Member",
    "Preset",
    "Secret",
    "add_preset",
    "parse_members",
    "resolve_endpoint",
]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
KEY_ENV_VARS = ("FUSION_API_KEY", "OPENROUTER_API_KEY")
MAX_PANEL = 16
DEPTH_HEADER = "X-Fusion-Depth"

# Model ids that are themselves a deliberation: a panel of them would nest fusion inside fusion.
_FUSION_MODELS = re.compile(r"^(openrouter/fusion(-[\w.-]+)?|fusion)$", re.IGNORECASE)
# OpenRouter ids: vendor/model, ~vendor/family-latest, optional :variant suffixes.
_OPENROUTER_ID = re.compile(r"^~?[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*(:[\w.\-]+)*$")
# Any other server: one token without spaces or the separators used by --panel.
_GENERIC_ID = re.compile(r"^[^\s,|{}<>]+$")


class Secret:
    """An API key. Its repr and str never show the value; call ``reveal()`` to send it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an API key cannot be pickled")


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: an OpenAI-compatible base URL, its key and extra headers."""

    base_url: str = DEFAULT_BASE_URL
    api_key: Secret | None = field(default=None, repr=False, compare=False)
    key_source: str | None = None  # the env var (or "argument") the key came from, for messages
    headers: Mapping[str, str] = field(default_factory=dict)
    # More servers answering for the same models (the local model's processes): each request
    # goes to the least busy of base_url and these.
    replicas: tuple[str, ...] = ()

    @property
    def is_openrouter(self) -> bool:
        return "openrouter.ai" in self.base_url

    @property
    def label(self) -> str:
        "The base URL without credentials, safe to show."
        return re.sub(r"//[^/@]*@", "//", self.base_url)


def resolve_endpoint(
    base_url: str | None = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Endpoint:
    """Build the endpoint from arguments, then env vars, then built-ins.

    Raises `MissingKeyError` when OpenRouter is the target and no key is found.
    """
    env = os.environ if env is None else env
    base = (base_url or env.get("FUSION_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    if not re.match(r"^https?://[^\s/]+", base):
        raise ConfigError(f"base URL must start with http:// or https://, got {base!r}")
    key, source = None, None
    if api_key:
        key, source = api_key, "argument"
    else:
        names = (api_key_env,) if api_key_env else KEY_ENV_VARS
        for name in names:
            if env.get(name):
                key, source = env[name], name
                break
    endpoint = Endpoint(
        base_url=base,
        api_key=Secret(key) if key else None,
        key_source=source,
        headers=_default_headers(base),
    )
    if endpoint.is_openrouter and not key:
        wanted = api_key_env or " or ".join(reversed(KEY_ENV_VARS))
        raise MissingKeyError(
            f"no API key: set {wanted} (or pass api_key=...), or point FUSION_BASE_URL at another "
            "OpenAI-compatible server (the `local` preset runs a model on this machine)"
        )
    return endpoint


def _default_headers(base_url: str) -> dict[str, str]:
    if "openrouter.ai" in base_url:
        return {"HTTP-Referer": "https://pypi.org/project/fusion-magic/", "X-OpenRouter-Title": "fusion_magic"}
    return {}


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

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", "|".join((self.model, *self.fallbacks)))

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
    endpoint: str | None = None  # "local": served by the local model server (see fusion_magic.local)
    max_tokens: int | None = None  # default answer length for the panel (a flag or argument wins)


def _members(*ids: str) -> tuple[Member, ...]:
    return tuple(Member(i) for i in ids)


_LOCAL_MODEL = "smollm2-135m-instruct"

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
                Member(_LOCAL_MODEL, name="smollm2 (plain)", temperature=0.0,
                       system="You are a helpful assistant. Answer briefly."),
                Member(_LOCAL_MODEL, name="smollm2 (sceptic)", temperature=0.4,
                       system="You are a careful sceptic. Answer briefly and name one caveat."),
                Member(_LOCAL_MODEL, name="smollm2 (teacher)", temperature=0.7,
                       system="You are a patient teacher. Answer briefly with one example."),
            ),
            Member(_LOCAL_MODEL, name="smollm2 (judge)", temperature=0.0),
            "ONE small local model (SmolLM2-135M) with three system prompts: a demo, not three opinions",
            endpoint="local",
            max_tokens=300,  # a 135M model rambles; reading long answers is what makes its judge slow
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
            ids = [p.strip() for p in item.split("|")]
            member = Member(ids[0], tuple(ids[1:]))
        else:
            raise ConfigError(f"{what} entries must be model ids (strings), got {type(item).__name__}")
        for model in member.models:
            check_model_id(model, what=what, openrouter=openrouter)
        members.append(member)
    return tuple(members)


def check_model_id(model: str, *, what: str = "panel", openrouter: bool = True) -> None:
    "Raise `ConfigError` for an empty, malformed or self-nesting model id."
    if not model:
        raise ConfigError(f"empty model id in {what}")
    if _FUSION_MODELS.match(model.split(":")[0]):
        raise ConfigError(
            f"{model!r} is itself a deliberation; fusion_magic does not nest fusion inside fusion"
        )
    pattern = _OPENROUTER_ID if openrouter else _GENERIC_ID
    if not pattern.match(model):
        shape = "vendor/model (e.g. openai/gpt-4o, ~openai/gpt-latest, meta-llama/llama-3.3-70b-instruct:free)"
        raise ConfigError(
            f"malformed model id {model!r} in {what}; expected {shape if openrouter else 'one word without spaces'}"
        )


def check_prompt(prompt: object) -> str:
    "Return the prompt stripped, or raise `ConfigError` when it is not text or is empty."
    if not isinstance(prompt, str):
        raise ConfigError(f"the prompt must be text, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ConfigError("empty prompt: write the question in the cell body (or pass it to run())")
    return prompt.strip()


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
