"""Serve the emulator until killed: ``python -m fusion_magic.emulator --port 8765 [--script FILE.json]``."""

from __future__ import annotations

import argparse
import json
import os
import threading

from . import Emulator

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    "Parse the flags, start the emulator and print its base URL."
    parser = argparse.ArgumentParser(prog="python -m fusion_magic.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--script", metavar="FILE.json", help='{"model": [{Reply fields}, ...], ...}')
    parser.add_argument("--credits", type=float, default=None, help="USD balance; 402 once spent")
    parser.add_argument("--api-key-env", metavar="VAR", help="require the key held in this env variable")
    parser.add_argument(
        "--mode",
        choices=("openrouter", "spec"),
        default="openrouter",
        help="spec: OpenAI's contract (usage only when stream_options asks, no cost, OpenAI error bodies)",
    )
    args = parser.parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            parser.error(f"set {args.api_key_env} to the key clients must send, or drop --api-key-env")
    emu = Emulator(api_key=api_key, credits=args.credits, port=args.port, mode=args.mode)
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            for model, replies in json.load(f).items():
                emu.script(model, *(replies if isinstance(replies, list) else [replies]))
    emu.start()
    print(emu.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()


if __name__ == "__main__":
    main()
