"""Keeping credentials out of what fusion_magic writes to disk: `scrub` and `canonical_base_url`.

The answer cache and the price-list cache store records and endpoint URLs; before anything is
written, key-like strings (``sk-...``, ``Bearer ...``, fields named like a key) are replaced by
`REDACTED`, and a base URL loses its credentials and secret-looking query parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "SECRET_NAME", "canonical_base_url", "scrub"]

# A parameter or query name that carries a credential.
SECRET_NAME = re.compile(
    r"(^|[_-])(api[_-]?key|key|token|secret|password|passwd|auth|authorization|sig|signature)$", re.IGNORECASE
)
# Things that look like credentials in free text. Model output rarely contains these; when it does,
# losing the literal is a small price for never writing a real key to disk.
_SECRET_TEXT = re.compile(
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\bsk-[A-Za-z0-9_-]{16,}"  # OpenAI / OpenRouter (sk-or-v1-...) / Anthropic (sk-ant-...)
    r"|\b(?:gsk|hf|xai|pplx|ghp|github_pat)[_-][A-Za-z0-9_]{16,}"
    r"|\bAIza[0-9A-Za-z_-]{30,}"
)
_SECRET_FIELDS = re.compile(r"^(api[_-]?key|authorization|x-api-key|password|secret)$", re.IGNORECASE)
REDACTED = "[REDACTED]"


@lru_cache(maxsize=256)  # every cache key needs it; a session has a few endpoints
def canonical_base_url(base_url: str) -> str:
    "The base URL without credentials or secret-looking query parameters, lower-cased host, no trailing /."
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if not SECRET_NAME.search(k)))
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), query, ""))


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` with API-key-like strings (and the given exact ``secrets``) replaced."""
    exact = sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True)

    def walk(v: Any, name: str = "") -> Any:
        if isinstance(v, str):
            if name and _SECRET_FIELDS.match(name) and v:
                return REDACTED
            for s in exact:
                v = v.replace(s, REDACTED)
            return _SECRET_TEXT.sub(REDACTED, v)
        if isinstance(v, Mapping):
            return {k: walk(x, str(k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(value)
