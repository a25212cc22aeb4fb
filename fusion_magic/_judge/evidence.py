"""Checking the judge's quotes against the panel answers: local, fast, always on.

Every attribution in an analysis (a stance, a unique insight, a partial-coverage member, a
consensus supporter) carries a short verbatim quote the judge copied from that member's answer.
`verify` looks for the quote in that answer, case and spacing normalised and tolerant of small
differences (`rapidfuzz` partial alignment), and records ``verified`` and where it matched.

A quote found only in another member's answer is not moved to that member: the judge's claim
("B argues X") is what is being checked, and it did not hold. The item stays attributed as the
judge said, unverified, and ``match.model`` names the member whose answer holds the quote.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Mapping, Sequence
from functools import lru_cache

from rapidfuzz import fuzz

from .._values.analysis import quotes_of
from .._values.result import Analysis, Quote, QuoteMatch

__all__ = ["MIN_SCORE", "backed_by_tool", "check", "locate", "normalise", "reason", "verify"]

MIN_SCORE = 90.0  # partial-alignment score (0-100) a fuzzy match needs
_EXACT_BELOW = 16  # normalised fragments shorter than this must match exactly: short ones match anything
MIN_WORDS = 3  # a shorter quote proves nothing ("the lock"), unless it is the whole answer
_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
        "*": None,
        "_": None,
        "`": None,
    }
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|\u2026|\[\.\.\.\])\s*")


Normalised = tuple[str, Sequence[int]]  # normalised text, and where each of its characters came from
_TOKENS = re.compile(r"[^\s*_`]+|\s+")  # words (emphasis marks dropped between them) and spaces


def normalise(text: str) -> tuple[str, list[int]]:
    """``text`` case-folded, with typographic quotes and dashes unified, Markdown emphasis dropped
    and whitespace collapsed; plus, for each character kept, its index in ``text``."""
    out: list[str] = []
    where: list[int] = []
    space = True  # drop leading whitespace
    for token in _TOKENS.finditer(text):
        piece, start = token.group(), token.start()
        if piece[0].isspace():  # a run of spaces (emphasis marks inside it too) is one space
            if not space:
                out.append(" ")
                where.append(start)
            space = True
            continue
        folded = piece.translate(_FOLD).casefold()
        if len(folded) == len(piece):  # one character for one: the common case, done a word at a time
            out.append(folded)
            where.extend(range(start, start + len(piece)))
        else:  # a character that folds to several ("ß" -> "ss")
            for i, ch in enumerate(piece, start):
                for c in ch.translate(_FOLD).casefold():
                    out.append(c)
                    where.append(i)
        space = False
    if out and out[-1] == " ":
        out.pop()
        where.pop()
    return "".join(out), where


@lru_cache(maxsize=1024)
def _normalised_answer(answer: str) -> Normalised:
    "`normalise`, once per answer text (a cached re-run checks the same answers again); 5 bytes a character."
    text, where = normalise(answer)
    return text, array("I", where)


def _clean_quote(quote: str) -> list[str]:
    "The fragments of a quote to look for: surrounding quote marks dropped, split at ellipses."
    quote = quote.strip().strip("\"'\u201c\u201d\u2018\u2019> ").strip()
    return [f for f in (normalise(part)[0].strip(" .,;:") for part in _ELLIPSIS.split(quote)) if f]


@lru_cache(maxsize=4096)
def _fragments(quote: str) -> tuple[str, ...]:
    "`_clean_quote`, once per quote text (a cached re-run checks the judge's same quotes again)."
    return tuple(_clean_quote(quote))


def locate(quote: str, answer: str) -> tuple[int, int, float] | None:
    """Where ``quote`` occurs in ``answer``: (start, end, score) in ``answer``'s characters, or None.

    Fragments separated by an ellipsis must all occur, in order.
    """
    return _find(_clean_quote(quote), _normalised_answer(answer)) if answer else None


def _find(fragments: list[str], normalised: Normalised) -> tuple[int, int, float] | None:
    text, where = normalised
    if not fragments or not text:
        return None
    if sum(len(f.split()) for f in fragments) < MIN_WORDS and fragments != [text.strip(" .,;:")]:
        return None
    pos, spans, scores = 0, [], []
    for fragment in fragments:
        found = text.find(fragment, pos)
        if found >= 0:
            spans.append((found, found + len(fragment)))
            scores.append(100.0)
        elif len(fragment) >= _EXACT_BELOW:
            hit = fuzz.partial_ratio_alignment(fragment, text[pos:], score_cutoff=MIN_SCORE)
            # Near is not enough for figures: "5 minutes" does not back "50 minutes".
            if hit is None or not set(_NUMBER.findall(fragment)) <= set(
                _NUMBER.findall(text[pos + hit.dest_start - 2 : pos + hit.dest_end + 2])
            ):
                return None
            spans.append((pos + hit.dest_start, pos + hit.dest_end))
            scores.append(round(hit.score, 1))
        else:
            return None
        pos = spans[-1][1]
    start, end = spans[0][0], spans[-1][1]
    if end <= start:
        return None
    return where[start], where[end - 1] + 1, min(scores)


def check(
    quote: Quote, answers: Mapping[str, str], normalised: dict[str, tuple[str, Sequence[int]]] | None = None
) -> None:
    """Set ``quote.verified`` and ``quote.match``.

    The closest match over all answers wins, the attributed member on a tie: a quote that is
    exact in C's answer and only near in B's is C's. An exact match in the member's own answer
    ends the search.
    """
    quote.verified, quote.match = False, None
    fragments = list(_fragments(quote.quote))
    if not fragments:
        return
    normalised = normalised if normalised is not None else {m: _normalised_answer(a) for m, a in answers.items()}
    order = [quote.model] if quote.model in answers else []
    order += [m for m in answers if m != quote.model]
    best: tuple[float, bool, str, tuple[int, int, float]] | None = None
    for model in order:
        hit = _find(fragments, normalised[model])
        if hit is not None and (best is None or (hit[2], model == quote.model) > best[:2]):
            best = (hit[2], model == quote.model, model, hit)
            if model == quote.model and hit[2] >= 100:
                break
    if best is not None:
        _, own, model, (start, end, score) = best
        quote.match = QuoteMatch(model=model, start=start, end=end, score=score)
        quote.verified = own


def verify(
    analysis: Analysis, answers: Mapping[str, str], outputs: Mapping[str, Sequence[str]] | None = None
) -> Analysis:
    """Check every attribution of ``analysis`` against ``answers`` (member name -> answer), in place.

    Partial coverage gets one quote per listed member (an empty, unverified one where the judge gave
    none); consensus points record how many answers there were, so support reads k of n. ``outputs``
    (member name -> what its tool calls returned, in call order) backs a quote found in the
    attributed member's own tool output: verified, ``match.source == "tool"``.
    """
    for item in analysis.partial_coverage:
        given = {q.model: q for q in item.quotes}
        item.quotes = [given.get(m) or Quote(model=m) for m in item.models]
    analysis.consensus_support = [
        p if p.of else p.model_copy(update={"of": len(answers)}) for p in analysis.items("consensus")
    ]
    normalised = {model: _normalised_answer(answer) for model, answer in answers.items()}  # once per answer
    for section in analysis.SECTIONS:
        for item in analysis.items(section):
            for quote in quotes_of(item):
                check(quote, answers, normalised)
                backed_by_tool(quote, (outputs or {}).get(quote.model, ()))
    return analysis


def backed_by_tool(quote: Quote, outputs: Sequence[str]) -> None:
    "Mark ``quote`` as backed by execution when one of its member's tool ``outputs`` holds it."
    fragments = _clean_quote(quote.quote) if outputs else []
    for i, output in enumerate(outputs):
        hit = _find(fragments, normalise(output)) if fragments and output else None
        if hit is not None:
            start, end, score = hit
            quote.match = QuoteMatch(model=quote.model, start=start, end=end, score=score, source="tool", call=i)
            quote.verified = True
            return


def reason(quote: Quote) -> str:
    "Why an attribution is (not) verified, in a few words, for views and tooltips."
    if quote.verified and quote.match is not None and quote.match.source == "tool":
        number = f" {quote.match.call + 1}" if quote.match.call is not None else ""
        return f"quote found in the output of this member's tool call{number} (backed by execution)"
    if quote.verified:
        score = quote.match.score if quote.match else 100.0
        return "quote found in this member's answer" + ("" if score >= 100 else f" (match {score:.0f}%)")
    if not quote.quote.strip():
        return "no quote given"
    if sum(len(f.split()) for f in _clean_quote(quote.quote)) < MIN_WORDS:
        return f"quote too short to check (under {MIN_WORDS} words)"
    if quote.found_in:
        return f"quote is from {quote.found_in}'s answer, not {quote.model}'s"
    return f"quote not found in {quote.model}'s answer"
