"""The edges through `%%fusion` in a real kernel: a base URL ending in a newline, reference-style
images in `--format markdown`, an unset `--api-key-env`, a variable holding half an emoji."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from fusion_magic.__main__ import kernel_env, kernel_manager
from fusion_magic.emulator import Emulator

pytest.importorskip("ipykernel")

TRACKING = "https://tracker.example/pixel.gif"
ANSWER_WITH_IMAGES = f"See ![chart][ref] and ![ref] and ![ref][] and ![a [nested] alt][ref].\n\n[ref]: {TRACKING}\n"


def _execute(kc, code: str) -> tuple[dict, list[dict]]:
    "Run ``code``; return the shell reply's content and every display/result output."
    shown: list[dict] = []

    def keep(msg: dict) -> None:
        if msg["msg_type"] in ("display_data", "execute_result", "update_display_data"):
            shown.append(msg["content"].get("data", {}))

    reply = kc.execute_interactive(code, output_hook=keep, timeout=60, stop_on_error=False)
    return reply["content"], shown


def test_magic_edges_in_a_real_kernel(tmp_path):
    with Emulator() as emu:
        emu.script("a/x", ANSWER_WITH_IMAGES)
        env = {"FUSION_BASE_URL": emu.base_url + "\n", "FUSION_CACHE_DIR": str(tmp_path / "cache")}
        with kernel_manager() as km:
            km.start_kernel(env=kernel_env(env))
            kc = km.client()
            kc.start_channels()
            try:
                kc.wait_for_ready(timeout=60)
                assert _execute(kc, "%load_ext fusion_magic")[0]["status"] == "ok"

                # The base URL's trailing newline is stripped; no image form survives in Markdown.
                reply, shown = _execute(kc, "%%fusion --panel a/x,b/y -j c/z --format markdown\nShow me")
                assert reply["status"] == "ok", reply
                markdown = next(d["text/markdown"] for d in shown if "text/markdown" in d)
                assert "chart" in markdown and "nested" in markdown
                permissive = MarkdownIt("commonmark", {"html": True})
                permissive.validateLink = lambda url: True
                assert "<img" not in permissive.render(markdown)
                check = kc.execute_interactive(
                    "", user_expressions={"s": "_fusion.status"}, timeout=30, stop_on_error=False
                )
                assert check["content"]["user_expressions"]["s"]["data"]["text/plain"] == "'ok'"

                # An explicitly named key variable that is unset: one line, nothing sent.
                sent = len(emu.chats())
                reply, _ = _execute(kc, "%%fusion --panel a/x -j c/z --api-key-env NO_SUCH_KEY\nQ")
                assert reply["status"] == "error" and reply["ename"] == "UsageError"
                assert "NO_SUCH_KEY" in reply["evalue"] and "is not set" in reply["evalue"]

                # Half an emoji reaching the prompt through {name}: one line, nothing sent.
                assert _execute(kc, "half = chr(0xD83D)")[0]["status"] == "ok"
                reply, _ = _execute(kc, "%%fusion --panel a/x -j c/z\nWhat is {half}?")
                assert reply["status"] == "error" and reply["ename"] == "UsageError"
                assert "broken character" in reply["evalue"] and "\n" not in reply["evalue"]
                assert len(emu.chats()) == sent
            finally:
                kc.stop_channels()
                km.shutdown_kernel(now=True)
