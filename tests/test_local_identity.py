"""The local model's answers are cached under the weights' identity, not the server's random port."""

from __future__ import annotations

import dataclasses

from helpers import panel_fusion

from fusion_magic._base.endpoint import Endpoint
from fusion_magic._local.model import model_identity
from fusion_magic.emulator import Emulator


def test_identity_is_the_weights_not_where_they_are(tmp_path):
    one, two, other = tmp_path / "1" / "m.gguf", tmp_path / "2" / "m.gguf", tmp_path / "3" / "m.gguf"
    for path, data in ((one, b"weights" * 1000), (two, b"weights" * 1000), (other, b"other!!" * 1000)):
        path.parent.mkdir()
        path.write_bytes(data)
    assert model_identity(one) == model_identity(two)
    assert model_identity(one) != model_identity(other)
    assert model_identity(one).startswith("local://m.gguf/sha256-")
    assert "127.0.0.1" not in model_identity(one)


def test_cache_base_is_the_identity_when_there_is_one():
    assert Endpoint(base_url="http://127.0.0.1:4242/v1").cache_base == "http://127.0.0.1:4242/v1"
    assert Endpoint(base_url="http://127.0.0.1:4242/v1", cache_id="local://m").cache_base == "local://m"


def test_a_restarted_server_on_another_port_answers_from_the_cache(monkeypatch, tmp_path):
    "As a new kernel would: same weights, a new port; every answer comes back from the cache."
    monkeypatch.setenv("FUSION_CACHE_DIR", str(tmp_path / "cache"))
    results = []
    for _ in range(2):
        with Emulator() as emu:  # a fresh server, so a fresh port
            fusion = panel_fusion(base_url=emu.base_url, api_key="unused")
            fusion.endpoint = dataclasses.replace(fusion.endpoint, cache_id="local://m.gguf/sha256-abc")
            results.append((emu.base_url, fusion.run("Which index for time series?"), len(emu.chats())))
    (url1, first, sent1), (url2, second, sent2) = results
    assert url1 != url2 and sent1 == 4  # three members and the judge
    assert sent2 == 0 and all(r.cached for r in second.responses) and second.answer == first.answer
