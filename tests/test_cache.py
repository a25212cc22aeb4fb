from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from fusion_magic._base.scrub import REDACTED, canonical_base_url, scrub
from fusion_magic._engine.cache import Cache, CacheWarning, cache_dir, cache_key

KEY = "sk-or-v1-" + "0123456789abcdef" * 4
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"}]
BASE = "https://openrouter.ai/api/v1"


def record(content: str = "Rayleigh scattering.", cost: float = 0.01) -> dict:
    return {
        "content": content,
        "model": "openai/gpt-4o",
        "served_model": "openai/gpt-4o-2024-08-06",
        "prompt_tokens": 20,
        "completion_tokens": 5,
        "cost_usd": cost,
        "latency_s": 1.5,
        "created_at": 1_700_000_000.0,
    }


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FUSION_CACHE_DIR", str(tmp_path))
    return tmp_path


# -- keys ------------------------------------------------------------------------------------------
def test_key_is_stable_and_ignores_order_none_and_transport_params() -> None:
    a = cache_key(BASE, "openai/gpt-4o", MESSAGES, {"temperature": 0.2, "max_tokens": 100})
    b = cache_key(
        BASE + "/",
        "openai/gpt-4o",
        MESSAGES,
        {"max_tokens": 100, "temperature": 0.2, "top_p": None, "stream": True, "timeout": 30},
    )
    assert a == b
    assert len(a) == 64 and int(a, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"model": "openai/gpt-4o-mini"},
        {"messages": [MESSAGES[0], {"role": "user", "content": "Why is the sea blue?"}]},
        {"params": {"temperature": 0.3, "max_tokens": 100}},
        {"params": {"temperature": 0.2, "max_tokens": 100, "seed": 7}},
        {"params": {"temperature": 0.2, "max_tokens": 100, "response_format": {"type": "json_object"}}},
        {"base_url": "http://127.0.0.1:8080/v1"},
    ],
)
def test_key_changes_with_what_changes_the_answer(change: dict) -> None:
    args = {
        "base_url": BASE,
        "model": "openai/gpt-4o",
        "messages": MESSAGES,
        "params": {"temperature": 0.2, "max_tokens": 100},
    }
    assert cache_key(**args) != cache_key(**{**args, **change})


def test_key_never_depends_on_credentials() -> None:
    plain = cache_key(BASE, "m/x", MESSAGES, {})
    params = {"api_key": KEY, "headers": {"Authorization": f"Bearer {KEY}"}, "extra_headers": {}}
    secret_url = f"https://user:{KEY}@openrouter.ai/api/v1?api_key={KEY}"
    assert cache_key(secret_url, "m/x", MESSAGES, params) == plain
    assert (
        canonical_base_url(f"HTTPS://u:{KEY}@OpenRouter.ai:8443/api/v1/?key=abc&api-version=2024")
        == "https://openrouter.ai:8443/api/v1?api-version=2024"
    )


def test_key_accepts_pydantic_response_formats() -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    k1 = cache_key(BASE, "m/x", MESSAGES, {"response_format": Answer})
    assert k1 == cache_key(BASE, "m/x", MESSAGES, {"response_format": Answer})
    assert k1 != cache_key(BASE, "m/x", MESSAGES, {})


# -- storage ---------------------------------------------------------------------------------------
def test_default_location_and_lazy_creation(cache_env: Path) -> None:
    assert cache_dir() == cache_env
    cache = Cache()
    assert cache.path == cache_env / "cache.sqlite3"
    assert cache.get("nope") is None
    assert cache.info()["entries"] == 0
    assert not cache.path.exists(), "reading must not create the database"
    cache.put("k", record())
    assert cache.path.exists()


def test_put_get_roundtrip_persists_across_objects(cache_env: Path) -> None:
    key = cache_key(BASE, "openai/gpt-4o", MESSAGES, {"temperature": 0})
    with Cache() as first:
        first.put(key, record())
    again = Cache()
    assert again.get(key) == record()
    assert again.get("other") is None


def test_put_replaces_record_and_keeps_hits(cache_env: Path) -> None:
    cache = Cache()
    cache.put("k", record("old", cost=0.02))
    assert cache.get("k")["content"] == "old"
    cache.put("k", record("new", cost=0.02))
    assert cache.get("k")["content"] == "new"
    info = cache.info()
    assert info["entries"] == 1 and info["hits"] == 2


def test_info_counts_hits_and_money_saved(cache_env: Path) -> None:
    cache = Cache()
    cache.put("a", record(cost=0.01))
    cache.put("b", record(cost=0.25))
    cache.put("c", {"content": "local answer"})  # no cost: a free local model
    for key in ("a", "a", "b", "c"):
        assert cache.get(key) is not None
    assert cache.get("a", hit=False) is not None  # a look-up that serves nothing is not a hit
    info = cache.info()
    assert info["path"] == str(cache_env / "cache.sqlite3")
    assert info["entries"] == 3 and info["hits"] == 4
    assert info["saved_usd"] == pytest.approx(0.27)
    cache.record_hit("b")  # served after all
    cache.record_hit("missing")  # nothing to count
    info = cache.info()
    assert info["hits"] == 5 and info["saved_usd"] == pytest.approx(0.52)
    assert info["size_bytes"] > 0
    # the counts live in the file: another kernel sees them
    assert Cache().info()["saved_usd"] == pytest.approx(0.52)


def test_clear_removes_everything(cache_env: Path) -> None:
    cache = Cache()
    for i in range(5):
        cache.put(f"k{i}", record(cost=0.001))
    cache.get("k0")
    assert cache.clear() == 5
    info = cache.info()
    assert (info["entries"], info["hits"], info["saved_usd"]) == (0, 0, 0.0)
    assert cache.get("k0") is None
    assert Cache(cache_env / "elsewhere.sqlite3").clear() == 0


# -- secrets ---------------------------------------------------------------------------------------
def test_scrub_replaces_key_like_strings() -> None:
    dirty = {
        "content": f"use {KEY} then Bearer abcdefghijklmnop and sk-proj-{'x' * 30}",
        "nested": [{"api_key": "mysecretvalue"}, ("Authorization", "fine")],
        "local": "token=hunter2hunter2",
        "n": 3,
    }
    clean = scrub(dirty, secrets=["hunter2hunter2"])
    text = repr(clean)
    assert KEY not in text and "abcdefghijklmnop" not in text and "sk-proj-" not in text
    assert "mysecretvalue" not in text and "hunter2" not in text
    assert clean["content"] == f"use {REDACTED} then {REDACTED} and {REDACTED}"
    assert clean["nested"][0] == {"api_key": REDACTED}
    assert clean["n"] == 3
    harmless = "sk-or is a prefix; skills and sketches stay"
    assert scrub(harmless) == harmless


def test_put_never_writes_a_key_to_disk(cache_env: Path) -> None:
    cache = Cache()
    echoed = {**record(f"echo: Authorization: Bearer {KEY}"), "request_key": KEY}
    cache.put("k", echoed, secrets=["plainlocalkey"])
    cache.put("k2", record("the local key is plainlocalkey"), secrets=["plainlocalkey"])
    cache.close()
    raw = b"".join(p.read_bytes() for p in cache_env.iterdir() if p.is_file())
    assert KEY.encode() not in raw and b"0123456789abcdef" not in raw
    assert b"plainlocalkey" not in raw
    assert Cache().get("k")["content"] == f"echo: Authorization: {REDACTED}"


# -- failures never stop a deliberation --------------------------------------------------------------
def test_corrupt_file_is_set_aside_with_one_warning(cache_env: Path) -> None:
    path = cache_env / "cache.sqlite3"
    path.write_bytes(b"this is not a database" * 200)
    cache = Cache()
    with pytest.warns(CacheWarning, match="moved it to cache.sqlite3.corrupt-"):
        assert cache.get("k") is None
    aside = list(cache_env.glob("cache.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    cache.put("k", record())
    assert cache.get("k") == record()
    assert cache.info()["entries"] == 1


def test_unusable_path_warns_once_and_degrades(tmp_path: Path) -> None:
    blocker = tmp_path / "cache.sqlite3"
    blocker.mkdir()  # a directory where the file should be: SQLite cannot open it
    cache = Cache(blocker)
    with pytest.warns(CacheWarning) as seen:
        cache.put("k", record())
        assert cache.get("k") is None
        cache.put("k2", record())
        assert cache.info()["entries"] == 0
    assert len(seen) == 1
    assert "going on without it" in str(seen[0].message)


# -- concurrency -----------------------------------------------------------------------------------
def _writer(path: str, worker: int, n: int) -> None:
    cache = Cache(path)
    for i in range(n):
        cache.put(f"w{worker}-{i}", record(f"answer {worker}/{i}", cost=0.001))
        cache.put("shared", record(f"shared by {worker}", cost=0.001))
        assert cache.get(f"w{worker}-{i}")["content"] == f"answer {worker}/{i}"


def test_two_processes_write_concurrently_without_loss(tmp_path: Path) -> None:
    path = str(tmp_path / "cache.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 150)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    info = Cache(path).info()
    assert info["entries"] == 2 * 150 + 1
    assert info["hits"] == 2 * 150
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        keys = {k for (k,) in conn.execute("SELECT key FROM answers")}
    conn.close()
    assert {f"w{w}-{i}" for w in (1, 2) for i in range(150)} <= keys


def test_one_cache_shared_by_threads(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite3")
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(50):
                cache.put(f"{t}-{i}", record(cost=0.002))
                assert cache.get(f"{t}-{i}") is not None
        except BaseException as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    info = cache.info()
    assert info["entries"] == 200 and info["hits"] == 200
    assert info["saved_usd"] == pytest.approx(0.4)


def test_cached_rerun_is_fast(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    keys = [cache_key(BASE, f"m/{i}", MESSAGES, {}) for i in range(4)]  # 3 members + judge
    writer = Cache(path)
    for k in keys:
        writer.put(k, record())
    writer.close()
    start = time.perf_counter()
    cache = Cache(path)  # a fresh object, as a new deliberation would open it
    assert all(cache.get(k) is not None for k in keys)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.25, f"open + 4 cached reads took {elapsed * 1000:.0f} ms"
