from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from fusion_magic._base.errors import ProviderError
from fusion_magic._engine.pricing import (
    JUDGE_OVERHEAD_TOKENS,
    Estimate,
    ModelPrice,
    PricingWarning,
    cost_from_tokens,
    count_tokens,
    estimate,
    find_price,
    load_models,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "openrouter" / "or_models_list_trimmed.json"
KEY = "sk-or-v1-" + "feedface" * 8
HEADERS = {"Authorization": f"Bearer {KEY}", "X-OpenRouter-Title": "fusion_magic"}
LOCAL_BODY = {
    "object": "list",
    "data": [
        {"id": "smollm2-135m-instruct", "object": "model", "owned_by": "llamacpp", "meta": {"n_ctx_train": 8192}},
        {"id": "llama3:8b", "object": "model", "created": 1700000000, "owned_by": "library"},
    ],
}


def fixture_prices() -> dict[str, ModelPrice]:
    body = json.loads(FIXTURE.read_text())
    return {m.id: m for m in (ModelPrice.from_api(i) for i in body["data"])}


# -- parsing ---------------------------------------------------------------------------------------
def test_parses_openrouter_decimal_strings() -> None:
    prices = fixture_prices()
    assert set(prices) == {"anthropic/claude-sonnet-4", "openai/gpt-4.1-mini", "openai/gpt-4o", "openai/gpt-3.5-turbo"}
    sonnet = prices["anthropic/claude-sonnet-4"]
    assert sonnet.name == "Anthropic: Claude Sonnet 4"
    assert sonnet.context_length == 1_000_000
    assert sonnet.prompt == pytest.approx(3e-6) and sonnet.completion == pytest.approx(1.5e-5)
    assert sonnet.request == 0.0  # absent from the fixture: costs nothing
    assert sonnet.known and not sonnet.free
    assert sonnet.raw["pricing"]["web_search"] == "0.01"
    assert prices["openai/gpt-3.5-turbo"].completion == pytest.approx(1.5e-6)


def test_long_context_override_and_odd_prices() -> None:
    sonnet = fixture_prices()["anthropic/claude-sonnet-4"]
    assert sonnet.rates(1000) == pytest.approx((3e-6, 1.5e-5))
    assert sonnet.rates(250_000) == pytest.approx((6e-6, 2.25e-5))
    free = ModelPrice.from_api({"id": "x/y:free", "pricing": {"prompt": "0", "completion": "0"}})
    assert free.free and cost_from_tokens(free, 10_000, 10_000) == 0.0
    router = ModelPrice.from_api({"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}})
    assert not router.known and cost_from_tokens(router, 10, 10) is None
    pricing = {"prompt": "0.000001", "completion": "0.000002", "request": "0.005"}
    per_request = ModelPrice.from_api({"id": "p/q", "pricing": pricing})
    assert cost_from_tokens(per_request, 1000, 1000) == pytest.approx(0.001 + 0.002 + 0.005)


def test_servers_without_pricing_are_unknown_not_free() -> None:
    local = [ModelPrice.from_api(i) for i in LOCAL_BODY["data"]]
    assert [m.id for m in local] == ["smollm2-135m-instruct", "llama3:8b"]
    assert local[0].context_length == 8192
    assert all(m.prompt is None and m.completion is None and m.request is None for m in local)
    assert not local[0].known and not local[0].free
    assert cost_from_tokens(local[0], 100, 100) is None
    assert cost_from_tokens(None, 100, 100) is None


def test_cost_from_tokens() -> None:
    prices = fixture_prices()
    assert cost_from_tokens(prices["anthropic/claude-sonnet-4"], 1000, 500) == pytest.approx(0.003 + 0.0075)
    assert cost_from_tokens(prices["openai/gpt-4o"], None, 100) == pytest.approx(0.001)


def test_count_tokens_is_about_four_chars_per_token() -> None:
    assert count_tokens("") == 0
    assert count_tokens("abcd" * 10) == 10
    assert count_tokens("abcde") == 2


def test_find_price_handles_variants() -> None:
    prices = fixture_prices()
    assert find_price(prices, "openai/gpt-4o") is prices["openai/gpt-4o"]
    assert find_price(prices, "openai/gpt-4o:nitro") is prices["openai/gpt-4o"]
    assert find_price(prices, "openai/gpt-4o:free") is None  # a free listing is its own model
    assert find_price(prices, "nobody/none") is None


# -- estimates -------------------------------------------------------------------------------------
def test_estimate_members_and_judge() -> None:
    prices = fixture_prices()
    panel = ["openai/gpt-4o", "openai/gpt-4.1-mini", "mystery/model"]
    est = estimate(1000, panel, "anthropic/claude-sonnet-4", prices)
    assert isinstance(est, Estimate)
    gpt4o = 1000 * 2.5e-6 + 600 * 1e-5
    mini = 1000 * 4e-7 + 600 * 1.6e-6
    judge_in = 1000 + 3 * 600 + JUDGE_OVERHEAD_TOKENS
    judge = judge_in * 3e-6 + 1200 * 1.5e-5
    assert est.members == [
        ("openai/gpt-4o", pytest.approx(gpt4o)),
        ("openai/gpt-4.1-mini", pytest.approx(mini)),
        ("mystery/model", None),
    ]
    assert est.judge == ("anthropic/claude-sonnet-4", pytest.approx(judge))
    assert est.total == pytest.approx(gpt4o + mini + judge)
    assert est.unknown == ["mystery/model"] and not est.complete
    assert est.low < est.total < est.high
    assert "mystery/model" in str(est) and str(est).startswith("about $")


def test_estimate_respects_max_tokens_and_repeated_members() -> None:
    prices = fixture_prices()
    est = estimate(500, ["openai/gpt-4o", "openai/gpt-4o"], "openai/gpt-4o", prices, max_tokens=200)
    member = 500 * 2.5e-6 + 200 * 1e-5
    judge = (500 + 2 * 200 + JUDGE_OVERHEAD_TOKENS) * 2.5e-6 + 400 * 1e-5
    assert est.completion_tokens == 200
    assert [c for _, c in est.members] == [pytest.approx(member)] * 2
    assert est.total == pytest.approx(2 * member + judge)
    assert est.high == pytest.approx(est.total)  # with max_tokens the worst case is the cap
    assert est.complete


def test_estimate_with_no_prices_is_all_unknown() -> None:
    est = estimate(100, ["a", "b", "a"], "a", {})
    assert est.total == 0.0 and est.unknown == ["a", "b"]


# -- /models over real HTTP --------------------------------------------------------------------------
class ModelsServer:
    """A loopback HTTP server answering GET /api/v1/models with a configurable status and body."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = FIXTURE.read_bytes()
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
                ok = self.path.rstrip("/").endswith("/models")
                body = server.body if ok else b'{"error":{"code":404,"message":"Resource not found"}}'
                self.send_response(server.status if ok else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelsServer]:
    monkeypatch.setenv("FUSION_CACHE_DIR", str(tmp_path))
    srv = ModelsServer()
    srv.thread.start()
    yield srv
    srv.close()


def load(base_url: str, **kwargs: Any) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(timeout=5) as http:
            return await load_models(http, base_url, HEADERS, **kwargs)

    return asyncio.run(go())


def test_load_models_fetches_then_uses_the_disk_copy(server: ModelsServer, tmp_path: Path) -> None:
    models = load(server.base_url)
    assert len(server.requests) == 1
    assert server.requests[0] == {"path": "/api/v1/models", "auth": f"Bearer {KEY}"}
    assert models["openai/gpt-4o"].prompt == pytest.approx(2.5e-6)
    assert len(models) == 4 and not models.stale and models.fetched_at
    files = list(tmp_path.glob("models-*.json"))
    assert len(files) == 1
    assert KEY not in files[0].read_text() and "feedface" not in files[0].read_text()

    again = load(server.base_url)
    assert len(server.requests) == 1, "a fresh copy on disk needs no request"
    assert again.keys() == models.keys() and again["openai/gpt-4o"] == models["openai/gpt-4o"]

    load(server.base_url, refresh=True)
    load(server.base_url, max_age=0)
    assert len(server.requests) == 3


def test_damaged_disk_copy_is_fetched_again(server: ModelsServer, tmp_path: Path) -> None:
    load(server.base_url)
    (copy,) = tmp_path.glob("models-*.json")
    copy.write_text("{not json")
    models = load(server.base_url)
    assert len(server.requests) == 2 and not models.stale
    assert models["openai/gpt-4o"].completion == pytest.approx(1e-5)
    assert json.loads(copy.read_text())["body"]["data"][0]["id"] == "anthropic/claude-sonnet-4"


def test_each_base_url_has_its_own_copy(server: ModelsServer, tmp_path: Path) -> None:
    load(server.base_url)
    server.body = json.dumps(LOCAL_BODY).encode()
    local = load(server.base_url.replace("127.0.0.1", "localhost"))
    assert len(server.requests) == 2
    assert len(list(tmp_path.glob("models-*.json"))) == 2
    assert local["smollm2-135m-instruct"].prompt is None
    est = estimate(100, ["smollm2-135m-instruct"], "smollm2-135m-instruct", local)
    assert est.unknown == ["smollm2-135m-instruct"] and est.total == 0.0


def test_failed_refresh_falls_back_to_the_stale_copy(server: ModelsServer) -> None:
    load(server.base_url)
    server.status = 503
    with pytest.warns(PricingWarning, match="using a copy from 0 h ago") as seen:
        models = load(server.base_url, refresh=True)
    assert models.stale and "HTTP 503" in models.note
    assert models["anthropic/claude-sonnet-4"].completion == pytest.approx(1.5e-5)
    assert KEY not in str(seen[0].message)

    server.status, server.body = 200, b"<html>maintenance</html>"
    with pytest.warns(PricingWarning):
        assert load(server.base_url, refresh=True).stale


def test_failure_without_any_copy_raises_a_clear_error(server: ModelsServer) -> None:
    server.status = 401
    with pytest.raises(ProviderError, match=r"HTTP 401") as err:
        load(server.base_url)
    assert err.value.status_code == 401 and not err.value.retryable
    server.close()  # nothing listens any more
    with pytest.raises(ProviderError, match="check the base URL") as err:
        load(f"http://u:{KEY}@127.0.0.1:{server.httpd.server_address[1]}/v1")
    assert KEY not in str(err.value) and "u:" not in str(err.value)
