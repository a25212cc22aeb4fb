"""The account side of OpenRouter: model prices, /models entries, /key and /credits payloads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .wire import provider_for

__all__ = ["DEFAULT_PRICES", "credits_info", "key_info", "model_object", "price_string", "prices_for"]

DEFAULT_PRICES = ("0.000001", "0.000002")  # USD per prompt / completion token for unlisted models
_PRICE_KEYS = ("prompt", "completion", "request", "image", "web_search", "internal_reasoning",
               "input_cache_read", "input_cache_write")  # fmt: skip


def prices_for(models: dict[str, dict[str, Any]], model: str) -> tuple[Decimal, Decimal]:
    "USD per prompt and completion token: configured, free for unlisted `:free` ids, else the default."
    cfg = models.get(model)
    if cfg is None and model.endswith(":free"):
        return Decimal(0), Decimal(0)
    cfg = cfg or {}
    prompt, completion = cfg.get("prompt", DEFAULT_PRICES[0]), cfg.get("completion", DEFAULT_PRICES[1])
    return Decimal(str(prompt)), Decimal(str(completion))


def price_string(value: Any) -> str:
    'A USD-per-token price as OpenRouter\'s decimal string ("0.000003", never "3e-06").'
    return format(Decimal(str(value)).normalize(), "f")


def model_object(model_id: str, models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    "A /models entry shaped like or_models_list_trimmed.json; the config may override top-level fields."
    cfg = models.get(model_id, {})
    vendor, _, slug = model_id.lstrip("~").partition("/")
    context = int(cfg.get("context_length", 128000))
    prompt, completion = prices_for(models, model_id)
    pricing = {"prompt": price_string(prompt), "completion": price_string(completion), "request": "0",
               "image": "0", "web_search": "0", "internal_reasoning": "0"}  # fmt: skip
    pricing.update({k: price_string(v) for k, v in cfg.items() if k in _PRICE_KEYS[2:]})
    obj: dict[str, Any] = {
        "id": model_id,
        "canonical_slug": model_id,
        "hugging_face_id": "",
        "name": f"{provider_for(model_id)}: {(slug or vendor).replace('-', ' ').title()}",
        "created": 1750000000,
        "description": f"{model_id}, served by the fusion_magic emulator.",
        "context_length": context,
        "architecture": {
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "tokenizer": "Other",
            "instruct_type": None,
        },  # fmt: skip
        "pricing": pricing,
        "top_provider": {
            "context_length": context,
            "is_moderated": False,
            "max_completion_tokens": cfg.get("max_completion_tokens", 16384),
        },  # fmt: skip
        "per_request_limits": None,
        "supported_parameters": [
            "max_tokens",
            "temperature",
            "top_p",
            "stop",
            "seed",
            "response_format",
            "structured_outputs",
            "tools",
            "tool_choice",
        ],  # fmt: skip
        "default_parameters": {"temperature": None, "top_p": None, "frequency_penalty": None},
        "supported_voices": None,
        "knowledge_cutoff": None,
        "expiration_date": None,
        "links": {"details": f"/api/v1/models/{model_id}/endpoints"},
    }
    obj.update({k: v for k, v in cfg.items() if k in obj and k not in ("pricing", "context_length")})
    return obj


def key_info(credits: float | None, used: float) -> dict[str, Any]:
    "The GET /key payload for a key with `credits` USD (None: unlimited) of which `used` is spent."
    return {
        "data": {
            "label": "fusion_magic emulator",  # never the key itself
            "limit": credits,
            "limit_reset": None,
            "limit_remaining": None if credits is None else max(0.0, credits - used),
            "include_byok_in_limit": False,
            **dict.fromkeys(("usage", "usage_daily", "usage_weekly", "usage_monthly"), used),
            **dict.fromkeys(("byok_usage", "byok_usage_daily", "byok_usage_weekly", "byok_usage_monthly"), 0),
            "is_free_tier": False,
            "is_management_key": False,
            "is_provisioning_key": False,
            "expires_at": None,
            "creator_user_id": "user_emulator",
            "rate_limit": {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."},
        }
    }


def credits_info(credits: float | None, used: float) -> dict[str, Any]:
    "The GET /credits payload."
    return {"data": {"total_credits": credits if credits is not None else 0.0, "total_usage": used}}
