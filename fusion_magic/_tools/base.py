"""The one shape every panel tool has: a name, a description, a JSON schema, and an async `run`.

A tool's `run` takes the arguments the model wrote (already parsed into a dict) and returns the text
the model is given back. It raises `ToolError` for an outcome the model should see as an error (a
refused query, a failed computation, a page that could not be read); the loop turns that into the
tool result, and the member goes on. Anything else a tool raises is a defect, reported the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_OUTPUT_CHARS", "Tool", "ToolError"]

MAX_OUTPUT_CHARS = 8_000  # what one tool result may put in front of the model (and in the record)


class ToolError(Exception):
    "A tool's outcome that the model sees as an error; the message is the tool result."


@dataclass(frozen=True)
class Tool:
    """A function a panel member may call (OpenAI function calling)."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    run: Callable[[dict[str, Any]], Awaitable[str]] = field(compare=False, repr=False)
    # What makes two runs of this tool differ beyond its description (a data fingerprint, a version):
    # part of the cache key, so a changed frame is never answered from an old cached step.
    identity: str = ""

    def spec(self) -> dict[str, Any]:
        "The tool as a chat request's `tools` entry."
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }
