"""Live text in a real kernel: the cell's display updates carry a member's words while it still
streams, then the judge's answer as it is written, and the cell ends with the result shown once."""

from __future__ import annotations

import re

import pytest

from fusion_magic.__main__ import kernel_env, kernel_manager
from fusion_magic.emulator import Emulator, Reply

pytest.importorskip("ipykernel")

HEAD = "Alpha begins with the schema."
TAIL = "Alpha ends with the backups."
SLOW = " ".join([HEAD, *(f"Then step {i} of the plan." for i in range(1, 13)), TAIL])


def _line_of(plain: str, model: str) -> tuple[str, str]:
    "The progress line of ``model`` in a live block's text/plain, and the preview line under it ('' if none)."
    lines = plain.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{model}  "):
            below = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("    › ") else ""
            return line, below
    return "", ""


def test_a_member_s_words_show_in_the_cell_before_it_finishes(tmp_path):
    with Emulator() as emu:
        emu.script("a/x", Reply(content=SLOW, tokens_per_s=25))  # ~100 tokens: about four seconds
        emu.script("c/z", Reply(tokens_per_s=120))  # the judge's JSON streams too
        env = {"FUSION_BASE_URL": emu.base_url, "FUSION_CACHE_DIR": str(tmp_path / "cache")}
        with kernel_manager() as km:
            km.start_kernel(env=kernel_env(env))
            kc = km.client()
            kc.start_channels()
            try:
                kc.wait_for_ready(timeout=60)
                messages: list[tuple[str, dict, dict]] = []  # (type, data, transient)

                def keep(msg: dict) -> None:
                    kind = msg["msg_type"]
                    if kind in ("display_data", "update_display_data", "execute_result"):
                        content = msg["content"]
                        messages.append((kind, content.get("data", {}), content.get("transient", {})))

                assert kc.execute_interactive("%load_ext fusion_magic", timeout=60)["content"]["status"] == "ok"
                reply = kc.execute_interactive(
                    "%%fusion --panel a/x,b/y -j c/z\nHow do we migrate?", output_hook=keep, timeout=120
                )
                assert reply["content"]["status"] == "ok", reply["content"]
            finally:
                kc.stop_channels()
                km.shutdown_kernel(now=True)

    live = [(data, t) for kind, data, t in messages if kind in ("display_data", "update_display_data")]
    assert live, messages
    block_id = live[0][1].get("display_id")
    assert block_id and all(t.get("display_id") == block_id for _, t in live)  # one block, updated in place

    # While a/x streams, an update shows its first words and not yet its last ones, under its line.
    partial = []
    for i, (data, _) in enumerate(live):
        line, below = _line_of(data.get("text/plain", ""), "a/x")
        html = data.get("text/html", "")
        if "streaming" in line and below and HEAD in html and TAIL not in html:
            partial.append(i)
    assert partial, [d.get("text/plain") for d, _ in live]
    done = [i for i, (d, _) in enumerate(live) if "done in" in _line_of(d.get("text/plain", ""), "a/x")[0]]
    assert done and partial[0] < done[0]  # seen before the member finished
    assert len({live[i][0]["text/html"] for i in partial}) >= 2  # and growing, update after update

    # The judge's answer as it is written: its words, never its JSON.
    drafts = [d["text/html"] for d, _ in live if "answer so far" in d.get("text/html", "")]
    assert drafts and any("Synthesis by c/z" in h for h in drafts)
    assert not any(re.search(r"&quot;(consensus|answer)&quot;\s*:", h) for h in drafts)

    # The end: the live block is cleared and the result is the cell's one output.
    assert live[-1][0] == {"text/plain": ""}
    results = [data for kind, data, _ in messages if kind == "execute_result"]
    assert len(results) == 1 and "fm-root" in results[0]["text/html"] and "Synthesis by c/z" in results[0]["text/html"]
    assert HEAD in results[0]["text/html"] and TAIL in results[0]["text/html"]
