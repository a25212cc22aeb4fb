"""The quickstart notebook run through JupyterLab's UI in a real Chromium, with the emulator as the server.

What is asserted is what a person sees: the result header's literal dollar amounts, `<details>`
sections that open, the widget as controls whose Run updates the status live and leaves a saved
output, and no dialog from hostile model output. Screenshots go to tests/artifacts/browser/.

Needs Debian's `chromium` (/usr/bin/chromium), `playwright` and `jupyterlab` (the `browser` extra).
Skipped where they are missing, except under CI (CI=true), where a missing piece is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fusion_magic.__main__ import PRESET_ENV, example
from fusion_magic.emulator import Emulator, Reply

CHROMIUM = Path(os.environ.get("FUSION_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "browser"
BUDGET = ["openai/gpt-5-mini", "google/gemini-2.5-flash", "deepseek/deepseek-chat"]
ANSWER = "Synthesis by openai/gpt-4.1-mini"  # how the emulator's judge starts its synthesized answer
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Every way model text could try to run script in the page.
HOSTILE = (
    "Use Postgres. <script>alert('script')</script> <img src=x onerror=\"alert('img')\"> "
    "<svg onload=\"alert('svg')\"></svg> [a link](javascript:alert('link')) "
    "<a href=\"javascript:alert('href')\">raw link</a> <iframe src=\"javascript:alert('iframe')\"></iframe>"
)
UI_TIMEOUT_MS = 90_000  # a busy 2-core machine: generous, never a timing assertion


def _missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[browser]')"
    return None


why = _missing()
if why:
    if os.environ.get("CI"):
        raise RuntimeError(f"the browser test cannot run in CI: {why}")
    pytest.skip(why, allow_module_level=True)

from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.timeout(600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"jupyter lab did not answer {url} within {limit:g} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def emulator():
    with Emulator() as emu:
        for model in BUDGET:
            emu.script(model, Reply(latency=0.3, tokens_per_s=300))
        emu.script("deepseek/deepseek-chat", Reply(content=HOSTILE, latency=0.3, tokens_per_s=300))
        yield emu


@pytest.fixture(scope="module")
def lab(tmp_path_factory, emulator):
    "JupyterLab on 127.0.0.1 serving a folder that holds a copy of the quickstart notebook."
    root = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("home")
    with example("quickstart.ipynb") as source:
        shutil.copy(source, root / "quickstart.ipynb")
    port, token = _free_port(), "fusion-browser-test"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "FUSION_", "OPENROUTER"))}
    env.update(
        {
            "HOME": str(home),
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "FUSION_BASE_URL": emulator.base_url,
            "FUSION_CACHE_DIR": str(home / "cache"),
            PRESET_ENV: "budget",
        }
    )
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--allow-root",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.extension_manager=readonly",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    # No "official Jupyter news?" toast over the notebook.
    (home / "config" / "labconfig").mkdir(parents=True)
    (home / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    log = root.parent / f"{root.name}-lab.log"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/api/status?token={token}", proc, log)
        yield {"base": base, "token": token, "root": root, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser(lab):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):  # only this run's screenshots
        old.unlink()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    "A page of its own for each test: nothing another test left open (a running notebook) holds it back."
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS / 3)
    page.dialogs = []  # every alert/confirm/prompt the page tries to open
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    try:
        yield page
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def open_alone(page: Page, lab, name: str) -> None:
    "Open notebook ``name`` in a fresh workspace of its own: no tab another test left open takes the menu's commands."
    workspace = name.removesuffix(".ipynb")
    page.goto(f"{lab['base']}/lab/workspaces/{workspace}/tree/{name}?reset&token={lab['token']}")


def menu(page: Page, top: str, command: str) -> None:
    "Click a JupyterLab menu item the way a person does: the menu bar entry, then the item."
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').first.click()


def save(page: Page) -> None:
    "File > Save Notebook, then wait until the tab shows no unsaved changes."
    menu(page, "File", "docmanager:save")
    expect(page.locator(".jp-mod-dirty")).to_have_count(0)


def saved_notebook(lab) -> dict:
    return json.loads((lab["root"] / "quickstart.ipynb").read_text(encoding="utf-8"))


def cell_outputs(notebook: dict, starts_with: str) -> list[dict]:
    cell = next(c for c in notebook["cells"] if "".join(c["source"]).startswith(starts_with))
    return cell.get("outputs", [])


class Checks:
    """Each step's assertions; a failed step is recorded (with a screenshot) and the next steps still run,
    so one run reports everything a person would see go wrong. The test fails if any step failed."""

    def __init__(self, page: Page) -> None:
        self.page, self.failed = page, []

    @contextlib.contextmanager
    def step(self, name: str):
        try:
            yield
        except (AssertionError, PlaywrightError) as exc:
            self.failed.append(f"{name}: {' '.join(str(exc).split())[:600]}")
            shot(self.page, f"failed-{name}")


def literal_text(page: Page, markup: str, selector: str) -> list[str]:
    "The text that ``markup`` means for each ``selector`` match (parsed off-page: nothing typesets it)."
    return page.evaluate(
        """([markup, selector]) => Array.from(
            new DOMParser().parseFromString(markup, "text/html").querySelectorAll(selector),
            (e) => e.textContent.replace(/\\s+/g, " ").trim())""",
        [markup, selector],
    )


def test_quickstart_through_jupyterlab(page: Page, lab, emulator):
    checks = Checks(page)
    open_alone(page, lab, "quickstart.ipynb")
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook.locator(".jp-Cell").first).to_be_visible()
    expect(page.locator(".jp-KernelName")).to_have_text(re.compile("Python"))
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle")
    shot(page, "01-opened")
    page.evaluate("alert('probe')")  # the dialog listener works: a real alert is caught
    assert page.dialogs == ["probe"]
    page.dialogs.clear()

    # Run All, as a person does; the tagged mistake cell does not stop the run.
    menu(page, "Run", "runmenu:run-all")
    widget = notebook.locator(".jp-OutputArea-output .widget-vbox:has(textarea)").first
    expect(widget.locator(".widget-textarea textarea")).to_be_visible()
    expect(notebook.locator(".jp-InputArea-prompt", has_text="[*]")).to_have_count(0)
    shot(page, "02-ran-all")
    save(page)
    result = notebook.locator(".jp-OutputArea-output .fm-root").first

    with checks.step("header-dollars"):
        # The result header shows the literal dollar amounts: never typeset by MathJax.
        head = result.locator(".fm-head")
        head.scroll_into_view_if_needed()
        expect(head).to_contain_text(re.compile(r"\$\d+\.\d+ \(estimate \$\d+\.\d+\)"), use_inner_text=True)
        assert result.locator("mjx-container, .MathJax, math").count() == 0, "MathJax typeset part of the result"
        saved = next(
            o for o in cell_outputs(saved_notebook(lab), "%%fusion -p $preset\n") if "text/html" in o.get("data", {})
        )
        meant = literal_text(page, "".join(saved["data"]["text/html"]), ".fm-head .fm-fact")
        shown = [" ".join(t.split()) for t in head.locator(".fm-fact").all_inner_texts()]
        assert meant and shown == meant, (shown, meant)
        shot(page, "03-result-header")

    with checks.step("costs-dollars"):
        # `%fusion costs`: the totals line keeps its dollars too.
        total = notebook.locator(".jp-OutputArea-output", has_text="Total:").first
        total.scroll_into_view_if_needed()
        expect(total).to_contain_text(re.compile(r"\$\d+\.\d+ spent, \$\d+(\.\d+)? saved"), use_inner_text=True)
        assert total.locator("mjx-container").count() == 0, "MathJax typeset the costs table"

    with checks.step("details-open"):
        # <details> sections open on a click and show their text.
        sections = result.locator("details")
        expect(sections.first).to_be_attached()
        k = next(i for i in range(sections.count()) if sections.nth(i).get_attribute("open") is None)
        section = sections.nth(k)  # the first closed one; document order does not change on opening
        section.locator("summary").click()
        expect(section).to_have_attribute("open", "")
        body = section.locator(":scope > :not(summary)").first
        expect(body).to_be_visible()
        assert body.inner_text().strip(), "an opened section shows its text"
        hostile = result.locator("details", has=page.locator("summary", has_text="deepseek")).first
        if hostile.get_attribute("open") is None:
            hostile.locator("summary").click()
        expect(hostile.get_by_text("Use Postgres.").first).to_be_visible()
        for link in hostile.locator("a").all():  # links that survived sanitizing lead nowhere dangerous
            href = (link.get_attribute("href") or "").strip().lower()
            assert not href.startswith("javascript:"), href
            link.click(modifiers=["Shift"], no_wait_after=True)
        hostile.scroll_into_view_if_needed()
        shot(page, "04-details-open")

    with checks.step("widget-controls"):
        # The widget is controls, not a text repr.
        widget.scroll_into_view_if_needed()
        expect(widget.locator(".widget-toggle-buttons")).to_be_visible()
        expect(widget.locator("select[multiple]")).to_be_visible()
        expect(widget.locator("button", has_text=re.compile(r"^\s*Run\s*$"))).to_be_enabled()
        assert "FusionWidget(children=" not in notebook.locator(".jp-Cell").last.inner_text()
        shot(page, "05-widget")

    with checks.step("widget-estimate-dollars"):
        label = widget.locator(".widget-html, .widget-label", has_text="Estimated cost").first
        expect(label).to_contain_text(re.compile(r"about \$\d+\.\d+ \(\$\d+\.\d+ to \$\d+\.\d+\)"), use_inner_text=True)
        assert label.locator("mjx-container").count() == 0, "MathJax typeset the estimate"

    with checks.step("widget-run-live"):
        # Run: the status changes while the panel works (slower members, so there is a "while").
        for model in BUDGET:
            emulator.script(model, Reply(latency=1.5, tokens_per_s=40))
        widget.locator(".widget-textarea textarea").fill("Is SQLite enough for a team wiki? One sentence.")
        page.evaluate(
            """(root) => {
                window.fusionStatus = [];
                new MutationObserver(() => {
                    const text = root.innerText;
                    if (window.fusionStatus.at(-1) !== text) window.fusionStatus.push(text);
                }).observe(root, {subtree: true, childList: true, characterData: true, attributes: true});
            }""",
            widget.element_handle(),
        )
        widget.locator("button", has_text=re.compile(r"^\s*Run\s*$")).click()
        expect(widget.locator("button", has_text="Running")).to_be_visible()
        shot(page, "06-widget-running")
        expect(widget.locator("button", has_text=re.compile(r"^\s*Run\s*$"))).to_be_enabled()
        # The result shows once: in the output below the controls, not in the widget too.
        widget_cell = notebook.locator(".jp-Cell", has=page.locator(".widget-vbox:has(textarea)")).first
        expect(widget_cell.locator(".jp-OutputArea-output .fm-root").get_by_text(ANSWER).first).to_be_visible()
        assert widget.locator(".fm-root").count() == 0 and widget.get_by_text(ANSWER).count() == 0
        assert widget_cell.locator(".fm-root .fm-answer").count() == 1
        states = page.evaluate("window.fusionStatus")
        live = [s for s in states if re.search(r"\b(waiting|streaming)\b", s)]
        assert len(live) >= 2, states  # redrawn while it ran, not only once at the end
        assert re.search(r"\bdone\b", states[-1]), states[-1]
        shot(page, "07-widget-done")

    with checks.step("widget-saved-output"):
        # When the widget finishes, its result is also an ordinary output, kept in the saved file.
        save(page)
        outputs = cell_outputs(saved_notebook(lab), "%fusion config -p $preset\n%fusion widget")
        kept = [o for o in outputs if ANSWER in "".join(o.get("data", {}).get("text/html", ""))]
        assert kept, f"no saved output holds the widget's result: {[sorted(o.get('data', {})) for o in outputs]}"

    with checks.step("no-dialog"):
        assert page.dialogs == [], f"hostile output opened dialogs: {page.dialogs}"
    assert not checks.failed, "\n".join(checks.failed)


LIVE_HEAD = "Alpha begins with the schema."
LIVE_TAIL = "Alpha ends with the backups."
LIVE_SLOW = " ".join([LIVE_HEAD, *(f"Then step {i} of the plan." for i in range(1, 13)), LIVE_TAIL])
LIVE_CELLS = [
    "%load_ext fusion_magic",
    "%%fusion --panel live/slow,live/fast -j live/judge\nHow do we migrate the wiki?",
    "from fusion_magic import FusionWidget\nui = FusionWidget(panel='live/slow,live/fast', judge='live/judge')\nui",
]
# Records the live text each time the page changes: the cell's live block, the widget's rows.
WATCH = """(selector) => {
    window.fusionLive = [];
    new MutationObserver(() => {
        const text = Array.from(document.querySelectorAll(selector), (e) => e.innerText).join("\\n");
        if (text && window.fusionLive.at(-1) !== text) window.fusionLive.push(text);
    }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def test_live_text_appears_while_the_run_is_in_progress(page: Page, lab, emulator):
    "The words of a slow member show in the cell, then in the widget, while the run works; the result once."
    import nbformat

    emulator.script("live/slow", Reply(content=LIVE_SLOW, tokens_per_s=20))  # ~5 s of streaming
    emulator.script("live/judge", Reply(latency=0.3, tokens_per_s=200))
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in LIVE_CELLS])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, lab["root"] / "live.ipynb")
    checks = Checks(page)
    open_alone(page, lab, "live.ipynb")
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook.locator(".jp-Cell").first).to_be_visible()
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle")
    page.evaluate(WATCH, ".fusion-progress")
    menu(page, "Run", "runmenu:run-all")
    cell = notebook.locator(".jp-Cell").nth(1)
    with checks.step("cell-live-block"):
        expect(cell.locator(".fusion-progress")).to_contain_text(LIVE_HEAD)  # visible while it runs
        shot(page, "09-live-cell-running")
    expect(cell.locator(".jp-OutputArea-output .fm-root")).to_have_count(1)
    expect(notebook.locator(".jp-InputArea-prompt", has_text="[*]")).to_have_count(0)
    shot(page, "10-live-cell-done")

    with checks.step("cell-live-text"):
        seen = page.evaluate("window.fusionLive")
        partial = [t for t in seen if LIVE_HEAD in t and LIVE_TAIL not in t]
        assert partial, seen[-5:]  # the member's first words, before its last ones existed
        assert any("streaming" in t for t in partial)
        assert any("answer so far" in t for t in seen), seen[-3:]  # then the judge's answer as written

    with checks.step("cell-result-once"):
        assert cell.locator(".fusion-progress").count() == 0  # the live block is gone
        assert cell.locator(".fm-root .fm-answer").count() == 1
        expect(cell.locator(".fm-answer")).to_contain_text("Synthesis by live/judge")

    with checks.step("stances-model-column"):
        # The contradictions table's first column fits its words: "Model" and each model id on one line,
        # nothing spilling into the next column (JupyterLab's fixed table layout squeezed it to a letter).
        table = cell.locator("table.fm-stances").first
        table.scroll_into_view_if_needed()
        cells = table.evaluate(
            """(t) => Array.from(t.querySelectorAll("th:first-child, td:first-child"), (c) => {
                const r = document.createRange(); r.selectNodeContents(c);
                const tops = new Set(Array.from(r.getClientRects(), (b) => Math.round(b.top)));
                return [c.innerText.trim(), tops.size, c.scrollWidth <= c.clientWidth];
            })"""
        )
        assert cells[0][0] == "Model" and len(cells) >= 3, cells
        assert all(lines == 1 and fits for _, lines, fits in cells), cells
        shot(page, "11-stances")

    with checks.step("widget-live-text"):
        widget = notebook.locator(".jp-Cell").nth(2).locator(".widget-vbox:has(textarea)").first
        widget.locator(".widget-textarea textarea").fill("And the attachments?")
        page.evaluate(WATCH, ".widget-vbox:has(textarea)")
        widget.locator("button", has_text=re.compile(r"^\s*Run\s*$")).click()
        expect(widget.locator("button", has_text="Running")).to_be_visible()
        expect(widget.get_by_text(LIVE_HEAD).first).to_be_visible()  # in its row while it runs
        widget.get_by_text(LIVE_HEAD).first.scroll_into_view_if_needed()
        shot(page, "12-widget-live")
        expect(widget.locator("button", has_text=re.compile(r"^\s*Run\s*$"))).to_be_enabled()
        seen = page.evaluate("window.fusionLive")
        assert any(LIVE_HEAD in t and LIVE_TAIL not in t and "Running" in t for t in seen), seen[-3:]
        widget_cell = notebook.locator(".jp-Cell").nth(2)
        expect(widget_cell.locator(".jp-OutputArea-output .fm-root .fm-answer")).to_have_count(1)
        assert widget.locator(".fm-root").count() == 0  # the result once: below the controls only
        assert widget.get_by_text(LIVE_HEAD).count() == 0  # the live rows are cleared
        shot(page, "13-widget-done")
    assert page.dialogs == []
    assert not checks.failed, "\n".join(checks.failed)
