"""Our own prompt scaffolding out of what a judge writes: `unscaffold`.

The judge's prompt wraps each panel answer in ``<answer member="A"> ... </answer id="...">`` tags,
the question in ``<question>`` and a jury's analysis in ``<analysis>``. A small judge echoes that
markup, or makes up more of it (``</response> <output type=``), or a chat template's tokens
(``<|im_end|>``), and a grammar-constrained reply then ends in the middle of a tag. None of it is
part of an answer: a leading tag is removed, and at the first tag after some text the text ends
(what follows a leaked tag is more leaked prompt), with the stray brackets and pipes before it. A
code fence left open at the end goes too, as does a fence around the whole text. A tag name
written as code (`` `<output>` ``, ``&lt;answer&gt;``) is text about HTML, and stays.
"""

from __future__ import annotations

import re

__all__ = ["SCAFFOLD_TAGS", "unscaffold"]

# The tags of our prompts, and those small models make up around them.
SCAFFOLD_TAGS = ("answer", "question", "analysis", "response", "output", "verdict", "judge", "member", "panel")
# `<` or `</`, a tag name of ours, then up to the closing `>` (or the line's end: a tag cut off).
_TAG = re.compile(rf"<\s*/?\s*(?:{'|'.join(SCAFFOLD_TAGS)})\b[^<>\n]{{0,200}}(?:>|$|(?=\n))", re.IGNORECASE)
# A chat template's special tokens: <|im_end|>, <|endoftext|>, <|eot_id|> ...
_SPECIAL = re.compile(r"<\|[A-Za-z0-9_:. -]{1,40}\|>")
_LEADING = re.compile(rf"^(?:\s*(?:{_TAG.pattern}|{_SPECIAL.pattern}))+", re.IGNORECASE)
# What a leak leaves behind before its tag: empty brackets, closing brackets, pipes, a dangling fence.
_TRAILING = re.compile(r"(?:\s*(?:\(\s*\)|\[\s*\]|\{\s*\}|[|}\]>]|`{3,}[\w-]*))+\s*$")
_FENCE_LINE = re.compile(r"^[ \t]*`{3,}[\w-]*[ \t]*$", re.MULTILINE)


def unscaffold(text: str) -> str:
    """``text`` without our prompt's tags, chat-template tokens and stray fences (see the module)."""
    if not text or ("<" not in text and "`" not in text):
        return text.strip() if text else text
    out = _LEADING.sub("", text)
    cut = _first_tag(out)
    if cut is not None:
        out = _TRAILING.sub("", out[:cut])
    return _fences(out).strip()


def _first_tag(text: str) -> int | None:
    "Where the first of our tags (or a special token) starts, unless it is written as code."
    starts = [m.start() for p in (_TAG, _SPECIAL) for m in p.finditer(text) if not _quoted(text, m.start())]
    return min(starts, default=None)


def _quoted(text: str, at: int) -> bool:
    "The tag is inside inline code or a fenced block (text about markup, not markup)."
    before = text[:at]
    if before.endswith("`") or len(_FENCE_LINE.findall(before)) % 2 == 1:
        return True
    line = before[before.rfind("\n") + 1 :]
    return line.count("`") % 2 == 1


def _fences(text: str) -> str:
    "Drop a fence around the whole text and a fence left open at its end."
    fences = list(_FENCE_LINE.finditer(text))
    stripped = text.strip()
    if len(fences) >= 2 and stripped.startswith(fences[0].group().strip()) and stripped.endswith("```"):
        inner = text[fences[0].end() : fences[-1].start()]
        if not _FENCE_LINE.search(inner):  # one block around everything, no code inside it
            return inner
    if len(fences) % 2 == 1 and not text[fences[-1].end() :].strip():
        return text[: fences[-1].start()]
    return text
