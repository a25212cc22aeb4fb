"""Where requests go: an `Endpoint` (base URL, key, how the key is sent, headers), resolved from the environment.

An endpoint is any OpenAI-compatible server (OpenRouter, OpenAI, Ollama, vLLM, a local llama.cpp
server); it differs from another only in its base URL, the env vars its key may come from, the
header and scheme the key is sent with, and a few headers. The key is a `Secret`, never shown.
Panel members and presets are `fusion_magic._base.config`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import ConfigError, MissingKeyError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEPTH_HEADER",
    "KEY_ENV_VARS",
    "Endpoint",
    "Secret",
    "check_base_url",
    "is_openrouter",
    "resolve_endpoint",
]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
KEY_ENV_VARS = ("FUSION_API_KEY", "OPENROUTER_API_KEY")
# How deep in a deliberation a request is (sent with every call; `fusion_magic._fronts.serve` refuses depth >= 1).
DEPTH_HEADER = "X-Fusion-Depth"


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
    """Where requests go: an OpenAI-compatible base URL, its key, how the key is sent, extra headers.

    The key goes in ``auth_header`` as ``"<auth_scheme> <key>"`` (``Authorization: Bearer ...`` by
    default; ``auth_header="api-key", auth_scheme=""`` for Azure OpenAI, ``"x-api-key"`` for others).
    ``headers`` are sent with every request and never shown (they may hold credentials too).
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: Secret | None = field(default=None, repr=False, compare=False)
    key_source: str | None = None  # the env var (or "argument") the key came from, for messages
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    # More servers answering for the same models (the local model's processes): each request
    # goes to the least busy of base_url and these.
    replicas: tuple[str, ...] = ()
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    # Which request dialect the server speaks for OpenRouter-only fields (reasoning as an object):
    # "openrouter" or "openai"; "" decides by the base URL's host.
    dialect: str = ""
    free: bool = False  # the user's own machine (the local model): its calls cost nothing
    # What answers are cached under when the URL is not the server's identity: the local model's
    # port is random on every start, so its answers are keyed on the weights (`model_identity`).
    cache_id: str | None = None

    @property
    def cache_base(self) -> str:
        "The endpoint part of a cache key: `cache_id`, else the base URL."
        return self.cache_id or self.base_url

    @property
    def is_openrouter(self) -> bool:
        return is_openrouter(self.base_url)

    @property
    def speaks_openrouter(self) -> bool:
        "True when OpenRouter's request fields (``reasoning: {effort | max_tokens}``) are understood."
        return self.dialect == "openrouter" if self.dialect else self.is_openrouter

    def auth_headers(self) -> dict[str, str]:
        "The extra headers plus the key in its header (no key: no auth header)."
        out = dict(self.headers)
        if self.api_key:
            out[self.auth_header] = f"{self.auth_scheme} {self.api_key.reveal()}".lstrip()
        return out

    @property
    def label(self) -> str:
        "The base URL without credentials, safe to show."
        return _without_credentials(self.base_url)

    def __repr__(self) -> str:
        key = f"set from {self.key_source}" if self.api_key else "none"
        return f"Endpoint({self.label!r}, key={key})"


def _without_credentials(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//", url)


def is_openrouter(base_url: str) -> bool:
    "True when ``base_url`` is on openrouter.ai (by host name, not by substring)."
    host = (urlsplit(base_url).hostname or "").lower()
    return host == "openrouter.ai" or host.endswith(".openrouter.ai")


def resolve_endpoint(
    base_url: str | None = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    auth_header: str | None = None,
    auth_scheme: str | None = None,
) -> Endpoint:
    """Build the endpoint from arguments, then env vars, then built-ins.

    Surrounding whitespace (a trailing newline from ``export X=$(cat file)``) is stripped from the
    base URL and the key. Raises `ConfigError` naming the setting for a malformed base URL or key,
    and `MissingKeyError` when OpenRouter is the target and no key is found, or when
    ``api_key_env`` names a variable that is not set.
    ``headers`` go with every request (over the built-in ones); ``auth_header``/``auth_scheme``
    say how the key is sent (default ``Authorization: Bearer <key>``).
    """
    env = os.environ if env is None else env
    if base_url is not None and base_url.strip():
        base = check_base_url(base_url, "base_url")
    elif (env.get("FUSION_BASE_URL") or "").strip():
        base = check_base_url(env["FUSION_BASE_URL"], "FUSION_BASE_URL")
    else:
        base = DEFAULT_BASE_URL
    key, source = None, None
    named = (api_key_env or "").strip()
    if api_key is not None and api_key.strip():
        key, source = api_key.strip(), "argument"
    else:
        for name in (named,) if named else KEY_ENV_VARS:
            if (env.get(name) or "").strip():
                key, source = env[name].strip(), name
                break
    if key is not None:
        _check_key(key, source or "")
    extra = dict(headers or {})
    for name, value in extra.items():
        if (
            not isinstance(name, str)
            or not isinstance(value, str)
            or not _HEADER_NAME.match(name)
            or "\n" in value
            or "\r" in value
        ):
            raise ConfigError(f"headers must map header names to one-line strings, got {name!r}")
    scheme = "Bearer" if auth_scheme is None else auth_scheme
    if not isinstance(scheme, str) or not re.fullmatch(r"[A-Za-z0-9_.-]*", scheme):
        raise ConfigError(f"auth_scheme must be one word (e.g. Bearer) or empty, got {auth_scheme!r}")
    auth_name = auth_header or "Authorization"
    if not isinstance(auth_name, str) or not _HEADER_NAME.match(auth_name):
        raise ConfigError(f"auth_header must be a header name, got {auth_header!r}")
    endpoint = Endpoint(
        base_url=base,
        api_key=Secret(key) if key else None,
        key_source=source,
        headers={**_default_headers(base), **extra},
        auth_header=auth_name,
        auth_scheme=scheme,
    )
    if named and not key:
        # An explicitly named variable that is unset is a mistake, whatever the server.
        raise MissingKeyError(f"no API key: {named} (named by api_key_env / --api-key-env) is not set")
    if endpoint.is_openrouter and not key:
        wanted = " or ".join(reversed(KEY_ENV_VARS))
        raise MissingKeyError(
            f"no API key: set {wanted} (or pass api_key=...), or point FUSION_BASE_URL at another "
            "OpenAI-compatible server (the `local` preset runs a model on this machine)"
        )
    return endpoint


def check_base_url(value: str, setting: str) -> str:
    """``value`` as a clean base URL (whitespace stripped, no trailing /), or `ConfigError` naming ``setting``.

    Credentials in the URL (``https://user:pw@host``) are refused: a key belongs in FUSION_API_KEY
    (or ``api_key=``), where it is never shown; the message never repeats them.
    """
    url = value.strip().rstrip("/")
    shown = _without_credentials(url)[:120]
    if not re.match(r"^https?://", url, re.IGNORECASE):
        raise ConfigError(f"{setting} must start with http:// or https://, got {shown!r}")
    if re.search(r"[\s\x00-\x1f\x7f]", url):
        raise ConfigError(f"{setting} contains a space or control character: {shown!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", a non-numeric port
        raise ConfigError(f"{setting} is not a valid URL ({exc}): {shown!r}") from None
    if "@" in parts.netloc:
        raise ConfigError(
            f"{setting} contains credentials (user:password@host); remove them and put the key in "
            "FUSION_API_KEY (or pass api_key=...)"
        )
    if not parts.hostname:
        raise ConfigError(f"{setting} has no host: {shown!r}")
    if port == 0:
        raise ConfigError(f"{setting} has port 0; use a port from 1 to 65535: {shown!r}")
    return url


def _check_key(key: str, source: str) -> None:
    # Never show the key itself: only where it came from and what is wrong with it.
    where = "the api_key argument" if source == "argument" else f"the API key in {source}"
    if re.search(r"[\s\x00-\x1f\x7f]", key):
        raise ConfigError(f"{where} contains a space or control character inside it; check its value")
    if not key.isascii():
        raise ConfigError(f"{where} contains a character that is not plain ASCII; check its value")


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)


def _default_headers(base_url: str) -> dict[str, str]:
    if is_openrouter(base_url):
        return {"HTTP-Referer": "https://pypi.org/project/fusion-magic/", "X-OpenRouter-Title": "fusion_magic"}
    return {}
