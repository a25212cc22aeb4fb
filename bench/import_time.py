"""What `%load_ext fusion_magic` costs: the time to `import fusion_magic` in a fresh interpreter.

    python bench/import_time.py [--runs 15] [--target-ms 100]

Each run is a new `python -c` that times the import itself (so interpreter start-up is not counted);
the whole process is also timed next to `python -c pass`. Also shown, for information: loading the magics into
an in-process IPython shell (`%load_ext`), and the first `Fusion(...)`, which pulls in the HTTP stack
and pydantic. Exits non-zero when the median `import fusion_magic` is above the target.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from _common import ROOT

_TIMED = """
import time
{setup}
t = time.perf_counter()
{stmt}
print(time.perf_counter() - t)
"""

SHELL = "from IPython.testing.globalipapp import start_ipython\nshell = start_ipython()"
CASES = {  # name: (untimed setup, timed statement)
    "import fusion_magic": ("", "import fusion_magic"),
    "import + %load_ext in a shell": (SHELL, "import fusion_magic\nfusion_magic.load_ipython_extension(shell)"),
    "import + first Fusion()": ("", "import fusion_magic\nfusion_magic.Fusion('budget', api_key='sk-bench')"),
}


def timed(setup: str, stmt: str) -> float:
    code = _TIMED.format(setup=setup, stmt=stmt)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def process(code: str) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - began


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--target-ms", type=float, default=100.0)
    args = ap.parse_args()
    medians = {}
    for name, (setup, stmt) in CASES.items():
        samples = [timed(setup, stmt) for _ in range(args.runs)]
        medians[name] = statistics.median(samples) * 1000
        print(
            f"{name:<34} median {medians[name]:7.1f} ms  (min {min(samples) * 1000:.1f}, "
            f"max {max(samples) * 1000:.1f}, {args.runs} runs)"
        )
    for code in ("pass", "import fusion_magic"):
        whole = statistics.median(process(code) for _ in range(args.runs)) * 1000
        print(f"{'whole process: python -c ' + repr(code):<34} median {whole:7.1f} ms")
    ok = medians["import fusion_magic"] <= args.target_ms
    print(f"import fusion_magic: {'within' if ok else 'OVER'} the {args.target_ms:.0f} ms target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
