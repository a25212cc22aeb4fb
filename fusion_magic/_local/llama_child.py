"""The local model server process: llama.cpp's OpenAI-compatible app plus what fusion_magic needs.

`fusion_magic._local.server` runs this file as a script in a child process; the package never imports it
(it needs ``llama_cpp``, which is optional). On top of ``llama_cpp.server`` it:

- exits when its parent does: the parent holds the write end of our stdin, so EOF on stdin means
  the parent is gone, however it died (SIGKILL and kernel restarts included, on every OS);
- accepts OpenAI's ``response_format={"type": "json_schema", "json_schema": {"schema": S}}``
  (llama_cpp.server only knows ``{"type": "json_object", "schema": S}``), and drops length bounds
  large enough to crash llama.cpp's grammar engine;
- ends every stream with a usage chunk (``choices: []``, as OpenAI's ``include_usage``), so token
  counts survive streaming;
- loads weights without CPU-specific repacking (llama.cpp's AMX kernels crash on this model);
- queues concurrent requests instead of cutting the running stream short (llama_cpp.server's
  default), because a panel sends several requests to the one model at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any

__all__ = ["main"]


def _exit_with_parent() -> None:
    "Block on stdin until EOF (the parent closed it or died), then exit at once."
    try:
        while sys.stdin.buffer.read(65536):
            pass
    finally:
        os._exit(0)


def _openai_response_format(body: bytes) -> bytes:
    "Rewrite a json_schema response_format into the json_object+schema shape llama_cpp understands."
    try:
        request = json.loads(body)
    except ValueError:
        return body  # let the server report the bad JSON itself
    fmt = request.get("response_format") if isinstance(request, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
        return body
    holder = (fmt.get("json_schema") or {}) if fmt["type"] == "json_schema" else fmt
    schema = holder.get("schema")
    request["response_format"] = {"type": "json_object", **({"schema": _tame(schema)} if schema else {})}
    return json.dumps(request).encode()


_MAX_BOUND = 256


_SMALL_LIST = 4  # a 135M model asked for a list tends to repeat its last item until max_tokens


def _tame(schema: Any) -> Any:
    """Fit a schema to llama.cpp and to a very small model.

    Drops maxLength/maxItems above _MAX_BOUND (llama.cpp nests one grammar rule per unit and
    segfaults), and adds guard rails the model needs but hosted APIs may not accept: non-empty
    strings and short lists. The client still validates what comes back.
    """
    if isinstance(schema, dict):
        tamed = {
            k: _tame(v)
            for k, v in schema.items()
            if not (k in ("maxLength", "maxItems") and isinstance(v, int) and v > _MAX_BOUND)
        }
        if tamed.get("type") == "string" and "enum" not in tamed:
            tamed.setdefault("minLength", 1)
        if tamed.get("type") == "array":
            tamed.setdefault("maxItems", _SMALL_LIST)
        return tamed
    if isinstance(schema, list):
        return [_tame(v) for v in schema]
    return schema


class _OpenAIShapes:
    "ASGI middleware applying `_openai_response_format` to chat completion requests."

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/completions"):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # client went away; let the app see it
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = _openai_response_format(b"".join(chunks))
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()  # later calls wait for http.disconnect, as before
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _count_usage(llama_cpp: Any) -> None:
    "Patch Llama so streamed chat completions end with a usage chunk."
    llama_class = llama_cpp.Llama
    generate, chat = llama_class.generate, llama_class.create_chat_completion

    def counting_generate(self: Any, tokens: Any, *args: Any, **kwargs: Any) -> Iterator[int]:
        # Requests are serialised by the server's lock, so one counter per model is enough.
        self._fm_usage = [len(tokens), 0]
        # Evaluate every prompt from scratch: reusing the KV cache of the previous request changes
        # the batch shapes, hence the logits' last bits, and temperature 0 would then answer
        # differently depending on which request came before. Prompts here are short; it is cheap.
        self.reset()
        for token in generate(self, tokens, *args, **kwargs):
            if not llama_cpp.llama_vocab_is_eog(self._model.vocab, token):
                self._fm_usage[1] += 1
            yield token

    def chat_with_usage(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = chat(self, *args, **kwargs)
        return _stream_with_usage(self, result) if kwargs.get("stream") else result

    llama_class.generate = counting_generate
    llama_class.create_chat_completion = chat_with_usage


def _stream_with_usage(llama: Any, chunks: Iterator[dict]) -> Iterator[dict]:
    last = None
    for chunk in chunks:
        last = chunk
        yield chunk
    if last is not None:
        prompt, completion = getattr(llama, "_fm_usage", (0, 0))
        yield {
            "id": last["id"],
            "object": "chat.completion.chunk",
            "created": last["created"],
            "model": last["model"],
            "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }


def _no_weight_repacking(llama_cpp: Any) -> None:
    """Load weights in their plain layout, without the CPU's "extra" buffer types.

    On CPUs with AMX tiles (recent Xeons) llama.cpp repacks the weights for its AMX kernels, and
    those kernels crash (SIGSEGV) on SmolLM2's small matrices. The plain layout is what every
    other CPU runs; for a 135M model the speed difference does not show.
    """
    defaults = llama_cpp.llama_model_default_params

    def params() -> Any:
        chosen = defaults()
        if hasattr(chosen, "use_extra_bufts"):
            chosen.use_extra_bufts = False
        return chosen

    llama_cpp.llama_model_default_params = params
    llama_cpp.llama.llama_cpp.llama_model_default_params = params  # the name Llama() looks up


def _forget_settings_env(*settings: Any) -> None:
    "Drop env vars pydantic-settings would read (API_KEY, MODEL, PORT...): every setting here is explicit."
    # An API_KEY meant for something else would otherwise make the server demand it on every request.
    names = {name.upper() for cls in settings for name in cls.model_fields} | {"CONFIG_FILE"}
    for key in [k for k in os.environ if k.upper() in names]:
        del os.environ[key]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="fusion_magic local server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n-ctx", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch-threads", type=int, required=True)
    parser.add_argument("--chat-format", default=None)
    args = parser.parse_args(argv)
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()

    import llama_cpp
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    _count_usage(llama_cpp)
    _no_weight_repacking(llama_cpp)
    _forget_settings_env(ModelSettings, ServerSettings)
    model = ModelSettings(
        model=args.model,
        model_alias=args.alias,
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        n_threads_batch=args.batch_threads,
        chat_format=args.chat_format,
        logits_all=False,  # True keeps n_ctx x vocab floats (~800 MB at 4096) for logprobs we never ask
        use_mlock=False,  # locking pages fails under common memlock limits and only adds warnings
        verbose=False,
    )
    server = ServerSettings(host=args.host, port=args.port, interrupt_requests=False)
    app = create_app(server_settings=server, model_settings=[model])
    uvicorn.run(_OpenAIShapes(app), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: the watchdog thread is blocked reading stdin, and finalising
    # with it there aborts the process (SIGABRT) instead of exiting with our code.
    os._exit(code)
