"""The endpoint carries the user's headers and how the key is sent; OpenRouter is known by host;
a `Fusion` can record into its own ledger."""

from __future__ import annotations

import pytest
from helpers import JUDGE, PANEL, panel_fusion

import fusion_magic
from fusion_magic._base.endpoint import is_openrouter, resolve_endpoint
from fusion_magic._base.errors import ConfigError
from fusion_magic._values.ledger import Ledger
from fusion_magic.emulator import Emulator


def test_headers_and_an_azure_style_key_reach_the_server(monkeypatch):
    with Emulator(api_key="sk-azure", auth_header="api-key", auth_scheme="") as emu:
        result = panel_fusion(
            base_url=emu.base_url,
            api_key="sk-azure",
            auth_header="api-key",
            auth_scheme="",
            headers={"X-Team": "research"},
        ).run("What is a mutex?")
        assert result.status == "ok"
        chats = emu.chats()
        assert len(chats) == len(PANEL) + 1
        assert all(r.headers["x-team"] == "research" and "authorization" not in r.headers for r in chats)
        assert all(r.headers["api-key"] == "REDACTED" for r in chats)  # sent, and only ever compared
        # The default scheme is refused by this server: the key really went in api-key, bare.
        bearer = panel_fusion(base_url=emu.base_url, api_key="sk-azure", cache=False).run("What is a mutex?")
        assert bearer.status == "error" and all(r.status == "failed" for r in bearer.responses)
        assert all(r.status == 401 for r in emu.chats()[len(chats) :])


def test_headers_never_show():
    endpoint = resolve_endpoint("http://127.0.0.1:9/v1", api_key="sk-x", headers={"X-Secret": "hunter2"})
    assert "hunter2" not in repr(endpoint) and "sk-x" not in repr(endpoint)
    assert endpoint.auth_headers() == {"X-Secret": "hunter2", "Authorization": "Bearer sk-x"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"headers": {"Bad Name": "x"}}, "headers must map header names"),
        ({"headers": {"X-A": "one\r\nX-B: two"}}, "headers must map header names"),
        ({"auth_scheme": "Bearer me"}, "auth_scheme must be one word"),
        ({"auth_header": "api key"}, "auth_header must be a header name"),
    ],
)
def test_bad_headers_are_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        resolve_endpoint("http://127.0.0.1:9/v1", api_key="k", **kwargs)


def test_openrouter_is_known_by_host_not_substring():
    assert is_openrouter("https://openrouter.ai/api/v1")
    assert is_openrouter("https://eu.openrouter.ai/api/v1")
    assert not is_openrouter("http://127.0.0.1:8000/openrouter.ai/v1")
    assert not is_openrouter("https://openrouter.ai.example.com/v1")
    proxy = resolve_endpoint("http://127.0.0.1:8000/openrouter.ai/v1", env={})
    assert proxy.headers == {}  # OpenRouter's attribution headers go to OpenRouter only


def test_a_fusion_records_into_its_own_ledger(emulator):
    own = Ledger()
    result = panel_fusion(ledger=own).run("What is a semaphore?")
    assert own.totals()["calls"] == 1 and own.totals()["cost_usd"] == pytest.approx(result.cost_usd)
    assert fusion_magic.ledger().totals()["calls"] == 0
    panel_fusion().run("What is a monitor?")
    assert fusion_magic.ledger().totals()["calls"] == 1 and own.totals()["calls"] == 1
    assert result.judge is not None and result.judge.model == JUDGE


def test_list_models_is_asked_of_the_resolved_endpoint(monkeypatch):
    prices = {"a/alpha": {"prompt": "0.000001", "completion": "0.000002"}}
    with Emulator(api_key="sk-x", models=prices) as emu:
        fusion = panel_fusion(base_url=emu.base_url, api_key="sk-x")
        listed = fusion.list_models()
        assert listed["a/alpha"].prompt == pytest.approx(1e-6)
        assert [r.path for r in emu.requests] == ["/api/v1/models"]
        assert fusion.endpoint is not None and fusion.endpoint.base_url == emu.base_url
