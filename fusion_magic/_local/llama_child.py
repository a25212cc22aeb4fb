"""The local model server process: a GGUF model behind an OpenAI-compatible API on 127.0.0.1.

`fusion_magic._local.server` runs this module (``python -m``) in a child process; the package never imports
it (it needs ``cyllama``, which is optional). llama.cpp runs through cyllama's binding, whose wheels carry a
built llama.cpp (nothing to compile at install), and aiohttp (a core dependency) serves the HTTP. It:

- exits when its parent does: the parent holds the write end of our stdin, so EOF on stdin means
  the parent is gone, however it died (SIGKILL and kernel restarts included, on every OS);
- answers ``GET /v1/models`` and ``POST /v1/chat/completions``, streamed or not, in OpenAI's shapes:
  ``usage`` on every reply, and as a last chunk (``choices: []``) of a stream that asked for it with
  ``stream_options.include_usage``;
- honours ``response_format`` (``json_schema``, ``json_object`` with or without a schema) with a llama.cpp
  grammar, after fitting the schema to llama.cpp and to a very small model (`_tame`);
- answers one request at a time and queues the others (a panel sends several at once), and stops
  generating for a client that went away;
- reads every prompt from scratch: reusing the previous request's KV cache changes the batch shapes,
  hence the logits' last bits, and temperature 0 would then answer differently depending on which
  request came before;
- loads weights without CPU-specific repacking (llama.cpp's AMX kernels crash on this model).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import inspect
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._base.openai_shapes import error_body
from .chat_request import BadRequest, Job, Reply
from .free_cpus import FreeCpus, usable_cpus

__all__ = ["main"]

_BATCH = 512  # prompt tokens per decode call
_RETHREAD = 16  # tokens between two looks at how many CPUs are free


def _exit_with_parent() -> None:
    "Block on stdin until EOF (the parent closed it or died), then exit at once."
    try:
        while sys.stdin.buffer.read(65536):
            pass
    finally:
        os._exit(0)


class Model:
    """The loaded weights and one context; `generate` runs one job at a time (the caller serialises)."""

    def __init__(
        self, path: str, n_ctx: int, threads: int, batch_threads: int, template: str | None, free: FreeCpus | None
    ) -> None:
        from cyllama.llama import llama_cpp

        self.lib = llama_cpp
        llama_cpp.disable_logging()
        params = llama_cpp.LlamaModelParams()
        params.n_gpu_layers = 0
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False  # no AMX repacking: those kernels crash on SmolLM2's small matrices
        self.model = llama_cpp.LlamaModel(path, params)
        self.vocab = self.model.get_vocab()
        context = llama_cpp.LlamaContextParams()
        context.n_ctx, context.n_batch = n_ctx, _BATCH
        context.n_threads, context.n_threads_batch = threads, batch_threads
        self.context = llama_cpp.LlamaContext(self.model, context)
        self.n_ctx, self.most, self.free = n_ctx, (threads, batch_threads), free
        # cyllama 0.7 asks for the vocabulary size where 0.2 does not.
        penalties = inspect.signature(llama_cpp.LlamaSampler.add_penalties).parameters
        self.penalty_vocab = {"n_vocab": self.vocab.n_vocab} if "n_vocab" in penalties else {}
        # llama.cpp reads the model's template and picks its built-in form (SmolLM2's is ChatML). "chatml"
        # is asked for by name for the default model: its own template adds a system prompt when none is given.
        self.template = template or self.model.get_default_chat_template() or "chatml"

    def prompt(self, job: Job) -> list[int]:
        chat = [self.lib.LlamaChatMessage(role=role, content=content) for role, content in job.messages]
        try:
            text = self.model.chat_apply_template(self.template, chat, True)
        except (ValueError, RuntimeError) as error:
            raise BadRequest(f"the model's chat template cannot hold these messages: {error}", "messages") from None
        return self.vocab.tokenize(text, add_special=False, parse_special=True)

    def grammar(self, job: Job) -> str | None:
        "The llama.cpp grammar of the job's schema (None for free text)."
        if job.schema is None:
            return None
        try:
            return str(self.lib.json_schema_to_grammar(job.schema))
        except (ValueError, RuntimeError) as error:
            raise BadRequest(f"response_format: {error}", "response_format") from None

    def sampler(self, job: Job, grammar: str | None) -> Any:
        chain = self.lib.LlamaSampler(self.lib.LlamaSamplerChainParams())
        if grammar is not None:
            chain.add_grammar(self.vocab, grammar, "root")
        if job.repeat_penalty != 1.0:
            chain.add_penalties(
                **self.penalty_vocab,
                penalty_last_n=64,
                penalty_repeat=job.repeat_penalty,
                penalty_freq=0.0,
                penalty_present=0.0,
            )
        if job.temperature == 0:
            chain.add_greedy()
        else:
            chain.add_top_k(job.top_k)
            chain.add_top_p(job.top_p, 1)
            chain.add_min_p(job.min_p, 1)
            chain.add_temp(job.temperature)
            chain.add_dist(job.seed)
        return chain

    def generate(
        self, job: Job, prompt: list[int], grammar: str | None, emit: Callable[[str], None]
    ) -> tuple[str, int]:
        """Write the answer to ``prompt``, passing text to ``emit`` as it comes; return (finish_reason, tokens)."""
        lib, vocab, context = self.lib, self.vocab, self.context
        room = self.n_ctx - len(prompt)
        limit = room if job.max_tokens is None else min(job.max_tokens, room)
        chain = self.sampler(job, grammar)
        context.kv_cache_clear()
        for start in range(0, len(prompt), _BATCH):
            if job.cancelled.is_set():
                return "stop", 0
            self._rethread()
            context.decode(lib.llama_batch_get_one(prompt[start : start + _BATCH], start))
        written = Written(vocab, job.stop, emit)
        tokens: list[int] = []
        while len(tokens) < limit and not job.cancelled.is_set():
            token = chain.sample(context, -1)
            if vocab.is_eog(token):
                written.end()
                return "stop", len(tokens)
            tokens.append(token)
            if written.add(tokens):
                return "stop", len(tokens)
            if len(tokens) % _RETHREAD == 1:
                self._rethread()
            context.decode(lib.llama_batch_get_one([token], len(prompt) + len(tokens) - 1))
        written.end()
        return "length", len(tokens)

    def _rethread(self) -> None:
        "Run on as many threads as other work leaves CPUs free (when the server adapts)."
        if self.free is not None:
            threads, batch = self.most
            self.context.set_n_threads(self.free.threads(threads), self.free.threads(batch))


class Written:
    """The answer's text as tokens come: passed on whole characters only, held back where a stop may begin."""

    def __init__(self, vocab: Any, stop: list[str], emit: Callable[[str], None]) -> None:
        self.vocab, self.stop, self.emit = vocab, stop, emit
        self.hold = max((len(s) for s in stop), default=1) - 1
        self.text, self.sent = "", 0

    def add(self, tokens: list[int]) -> bool:
        "Take the tokens so far; True when a stop sequence ended the answer."
        # The whole answer is decoded again each time: a token may hold part of a character (shown
        # as U+FFFD) that the next completes. Answers here are a few hundred tokens.
        self.text = self.vocab.detokenize(tokens, text_len_max=32 * len(tokens) + 64)
        found = [i for i in (self.text.find(s, max(0, self.sent - len(s))) for s in self.stop) if i >= 0]
        if found:
            self._send(min(found))
            return True
        self._send(len(self.text.rstrip("\ufffd")) - self.hold)
        return False

    def end(self) -> None:
        self._send(len(self.text))

    def _send(self, upto: int) -> None:
        if upto > self.sent:
            self.emit(self.text[self.sent : upto])
            self.sent = upto


@dataclass
class Server:
    model: Model
    alias: str
    worker: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="generate")
    )

    async def models(self, request: Any) -> Any:
        from aiohttp import web

        entry = {"id": self.alias, "object": "model", "created": 0, "owned_by": "local"}
        return web.json_response({"object": "list", "data": [{**entry, "context_length": self.model.n_ctx}]})

    async def chat(self, request: Any) -> Any:
        from aiohttp import web

        try:
            try:
                body = json.loads(await request.read())
            except ValueError:
                raise BadRequest("the request body is not valid JSON") from None
            job = Job.parse(body)
            prompt = self.model.prompt(job)
            if len(prompt) >= self.model.n_ctx:
                raise BadRequest(
                    f"the prompt is {len(prompt)} tokens; this server's context holds {self.model.n_ctx}",
                    "messages",
                    "context_length_exceeded",
                )
            grammar = self.model.grammar(job)
        except BadRequest as error:
            return web.json_response(error_body(str(error), param=error.param, code=error.code), status=400)
        reply = Reply(self.alias, len(prompt), job.include_usage)
        if job.stream:
            return await self._stream(request, job, prompt, grammar, reply)
        parts: list[str] = []
        try:
            finish, written = await self._run(job, prompt, grammar, parts.append)
        except asyncio.CancelledError:
            job.cancelled.set()  # the client went away: stop generating for it
            raise
        except Exception as error:  # llama.cpp failed mid-answer: a 500 in OpenAI's error shape
            return web.json_response(_failed(error), status=500)
        return web.json_response(reply.whole("".join(parts), finish, written))

    async def _run(
        self, job: Job, prompt: list[int], grammar: str | None, emit: Callable[[str], None]
    ) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.worker, self.model.generate, job, prompt, grammar, emit)

    async def _stream(self, request: Any, job: Job, prompt: list[int], grammar: str | None, reply: Reply) -> Any:
        from aiohttp import web

        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str] = asyncio.Queue()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        def emit(text: str) -> None:  # on the generating thread
            loop.call_soon_threadsafe(pieces.put_nowait, text)

        run = asyncio.ensure_future(self._run(job, prompt, grammar, emit))
        try:
            await _event(response, reply.chunk({"role": "assistant", "content": ""}))
            while not run.done() or not pieces.empty():
                getter = asyncio.ensure_future(pieces.get())
                await asyncio.wait({getter, run}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    await _event(response, reply.chunk({"content": getter.result()}))
                else:
                    getter.cancel()
            finish, written = run.result()
            await _event(response, reply.chunk({}, finish))
            if job.include_usage:
                await _event(response, reply.usage_chunk(written))
            await response.write(b"data: [DONE]\n\n")
        except (asyncio.CancelledError, ConnectionError):
            job.cancelled.set()  # the client went away: stop generating for it
            raise
        except Exception as error:  # a failure after the headers went out: say so in the stream
            job.cancelled.set()
            await _event(response, _failed(error))
        return response


def _failed(error: Exception) -> dict:
    return error_body(f"generation failed: {error}", type="server_error")


async def _event(response: Any, data: dict) -> None:
    await response.write(b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n")


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
    parser.add_argument("--adapt-threads", action="store_true", help="fewer threads while other work is busy")
    args = parser.parse_args(argv)
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()

    from aiohttp import web

    try:
        free = FreeCpus(usable_cpus()).start() if args.adapt_threads else None
        model = Model(args.model, args.n_ctx, args.threads, args.batch_threads, args.chat_format, free)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"Failed to load model from {args.model}: {error}", flush=True)
        raise SystemExit(1) from None
    server = Server(model, args.alias)
    app = web.Application(client_max_size=64 << 20)
    app.router.add_get("/v1/models", server.models)
    app.router.add_post("/v1/chat/completions", server.chat)
    web.run_app(app, host=args.host, port=args.port, print=None, handler_cancellation=True, access_log=None)


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
