"""The judge's synthesized answer read out of its reply while the reply is still being written.

The judge replies with one JSON object whose ``answer`` field comes first. While it streams, the
reply is a prefix of that object, perhaps after a code fence or a few words. pydantic's ``jiter``
parses such a prefix in its partial mode, keeping the string being written as far as it goes, so
the live views and `serve` can show the answer as it grows. What `partial_answer` returns is a
draft: the result's answer is read from the whole reply by `fusion_magic._judge.verdict`.
"""

from __future__ import annotations

from typing import Any

import jiter

from .verdict_keys import SECTIONS, WRAPPERS, normalise_key

__all__ = ["partial_answer", "partial_json"]

# A cut can fall inside an escape (``\``, ``\u20``): at most this many bytes are dropped to parse.
_ESCAPE_TAIL = 6
_NESTING = 2  # {"analysis": {"answer": ...}}: wrappers looked into, at most this deep


def partial_answer(text: str) -> str:
    """The ``answer`` string of the JSON object that ``text`` begins to write ('' when none yet).

    Any label a judge may use for the answer (``final_answer``, ``synthesis``...) counts, at the
    top level or inside a wrapper such as ``analysis``. Text that is not JSON gives ''.
    """
    return _answer_in(partial_json(text), 0)


def partial_json(text: str) -> Any:
    """The JSON object that ``text`` begins to write, as far as it goes (None when there is none).

    What comes before the first ``{`` (a code fence, a few words) is skipped; the string being
    written is kept up to its last whole character; a cut inside an escape drops the escape.
    """
    start = text.find("{")
    return _parse(text[start:].encode()) if start >= 0 else None


def _parse(raw: bytes) -> Any:
    "The partial JSON value of ``raw``, or None when no prefix of it parses."
    for cut in range(_ESCAPE_TAIL + 1):
        if cut >= len(raw):
            break
        try:
            return jiter.from_json(raw[: len(raw) - cut] if cut else raw, partial_mode="trailing-strings")
        except ValueError:
            continue
    # Chatter or a closing fence after the object: parse up to its last brace.
    end = raw.rfind(b"}")
    if end > 0:
        try:
            return jiter.from_json(raw[: end + 1], partial_mode="trailing-strings")
        except ValueError:
            return None
    return None


def _answer_in(value: Any, depth: int) -> str:
    if not isinstance(value, dict):
        return ""
    for key, item in value.items():
        if SECTIONS.get(normalise_key(key)) == "answer" and isinstance(item, str):
            return item
    if depth < _NESTING:
        for key, item in value.items():
            if normalise_key(key) in WRAPPERS and (found := _answer_in(item, depth + 1)):
                return found
    return ""
