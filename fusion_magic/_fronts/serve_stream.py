"""`serve`'s event stream while a deliberation runs: progress comments and the answer as it is written.

`pump` waits for the deliberation, writing SSE comments (what each member is doing, a heartbeat)
and, as soon as the judge starts writing its answer, ``chat.completion.chunk`` events carrying it.
`AnswerStream` decides what of the judge's answer may go out early: the answer so far is read out
of the judge's partial JSON (`Tracker.draft`), and text is sent only while it continues what was
sent, less a short tail held back (the end of a draft, or a closing tag, is where a judge's stray
markup sits, which the result's answer drops). `AnswerStream.ending` then sends the rest of the
result's answer and the finish chunk, so the streamed content is the result's answer. If the final
answer does not continue what was sent (a judge re-asked or replaced by its fallback after it
began), a one-line notice and the whole final answer follow: nothing sent is taken back unsaid.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import TYPE_CHECKING, Any

from .._render.progress import JUDGE, Tracker
from . import openai_api as api

if TYPE_CHECKING:
    from aiohttp import web

    from .._values.result import FusionResult

__all__ = ["DRAFT_EVERY", "HOLD_CHARS", "REVISED", "AnswerStream", "progress_lines", "pump", "sse"]

DRAFT_EVERY = 0.25  # s between looks at the judge's answer (four chunks a second at most)
PROGRESS_EVERY = 1.0  # s between progress comments while the panel works
HEARTBEAT_EVERY = 10.0  # s: a comment at least this often, so proxies keep the stream open
HOLD_CHARS = 24  # the draft's last characters wait for the next look (or the end)
REVISED = "\n\n(The judge's answer was revised after it began; the final answer follows.)\n\n"
_CLOSING_TAG = re.compile(r"<\s*/")


def sse(event: dict[str, Any]) -> bytes:
    "One ``data:`` event."
    return b"data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class AnswerStream:
    """The answer's chunks for one streamed request: early ones from the judge's draft, then the rest.

    With ``live`` false (server-tool mode: the primary, not the judge, writes the answer) nothing
    goes out early and `ending` is the whole answer.
    """

    def __init__(
        self, tracker: Tracker, model: str, cid: str, *, live: bool = True, include_usage: bool = False
    ) -> None:
        self.tracker, self.model, self.cid, self.live = tracker, model, cid, live
        self.include_usage = include_usage  # the request's stream_options.include_usage
        self.created = int(time.time())
        self.sent = ""  # the answer text sent so far
        self.opened = False  # the role chunk has gone out
        self.stopped = False  # the draft stopped continuing what was sent: wait for the result

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return api._chunk(self.cid, self.model, self.created, delta, finish, include_usage=self.include_usage)

    def drafts(self) -> list[dict[str, Any]]:
        "Chunks for the answer text written since the last call (none when nothing new is safe to send)."
        if not self.live or self.stopped:
            return []
        draft = stable_part(self.tracker.draft(JUDGE))
        if len(draft) <= len(self.sent):
            return []  # nothing new (or a re-asked judge starting over: wait and see)
        if not draft.startswith(self.sent):
            self.stopped = True
            return []
        new, self.sent = draft[len(self.sent) :], draft
        opening = [] if self.opened else [self._chunk({"role": "assistant", "content": ""})]
        self.opened = True
        return [*opening, self._chunk({"content": new})]

    def ending(self, result: FusionResult) -> list[dict[str, Any]]:
        "The chunks that finish the answer: what was not sent yet, then `closing_chunks` (finish, usage if asked)."
        if not self.opened:
            return api.answer_chunks(result, self.model, self.cid, include_usage=self.include_usage)
        final = result.answer or ""
        rest = final[len(self.sent) :] if final.startswith(self.sent) else REVISED + final
        closing = api.closing_chunks(result, self.model, self.cid, include_usage=self.include_usage)
        return [*([self._chunk({"content": rest})] if rest else []), *closing]


def stable_part(draft: str) -> str:
    "The part of a draft answer that may be sent now: up to a closing tag, less the last few characters."
    tag = _CLOSING_TAG.search(draft)
    end = tag.start() if tag else len(draft)
    return draft[: max(0, min(end, len(draft) - HOLD_CHARS))]


async def pump(resp: web.StreamResponse, task: asyncio.Future[Any], tracker: Tracker, answer: AnswerStream) -> None:
    "Until ``task`` ends: the answer's chunks as the judge writes it, progress comments, a heartbeat."
    shown: dict[str, tuple[str, str]] = {}
    quiet = since_progress = 0.0
    while not task.done():
        await asyncio.wait({task}, timeout=DRAFT_EVERY)
        out = b"".join(sse(chunk) for chunk in answer.drafts())
        since_progress += DRAFT_EVERY
        quiet = 0.0 if out else quiet + DRAFT_EVERY
        if since_progress >= PROGRESS_EVERY:
            since_progress = 0.0
            lines = progress_lines(tracker, shown)
            quiet = 0.0 if lines else quiet
            if not lines and quiet >= HEARTBEAT_EVERY:
                lines, quiet = ["working"], 0.0
            out += "".join(f": fusion {line}\n" for line in lines).encode() + (b"\n" if lines else b"")
        if out:
            await resp.write(out)


def progress_lines(tracker: Tracker, shown: dict[str, tuple[str, str]]) -> list[str]:
    "Progress lines of the members whose state changed since the last call (streaming counts once)."
    lines = []
    for key, state in tracker.keyed():
        mark = (state.state, state.note)
        if shown.get(key) != mark:
            shown[key] = mark
            line = state.line()
            lines.append(("judge: " + line) if key == JUDGE else line)
    return lines
