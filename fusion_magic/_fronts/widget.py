"""`FusionWidget`: a deliberation as a form built from stock ipywidgets (no custom JavaScript).

Run never blocks the kernel: a click submits `Fusion.arun` to the session's background loop and a
poller on that loop copies the tracker into traits 4x a second: status lines (`progress_html`) and
the text as it streams (`widget_live`). Traits may be set from any thread; `with output:` may not.
The result is shown once: in the output below the controls (kept when saved), or in the widget's
own sections (`_render.widget`) when it sits inside another layout with no output below.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import os
import time
import warnings
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from .._base.config import DEFAULT_BASE_URL, PRESETS, Endpoint, check_prompt, get_preset, resolve_endpoint
from .._base.errors import ConfigError, FusionError, MissingKeyError
from .._base.settings import DEFAULTS
from .._engine.client import ChatClient
from .._engine.pricing import ModelPrice, PricingWarning, count_tokens, estimate, find_price, load_models
from .._engine.runner import DeliberationCancelled, background_loop, run_sync
from .._fusion import Fusion
from .._render.facts import NO_MATH, estimate_text, price_label
from .._render.progress import Tracker, progress_html
from .._render.widget import answer_block, result_parts
from .._values.result import FusionResult
from . import session
from .widget_live import LiveText, section_box

__all__ = ["FusionWidget"]

POLL_S = 0.25  # four redraws a second, however many members stream
_RED, _GREY = "#c62828", "#757575"


class FusionWidget(widgets.VBox):
    """Prompt, preset, panel, judge, timeout, cost estimate and Run; live status; the result in sections.

    Usage (in a notebook cell):

        ui = FusionWidget(preset="budget")   # keyword arguments go to `Fusion` (base_url, max_cost, ...)
        ui                                    # type, pick, click Run; or ui.run_button.click()
        ui.wait()                             # the FusionResult (also ui.result)
    """

    def __init__(
        self,
        preset: str = "quality",
        panel: str | list[str] | None = None,
        judge: str | None = None,
        *,
        timeout: float = DEFAULTS["timeout"],
        models_timeout: float = 10.0,
        **fusion_kwargs: Any,
    ) -> None:
        get_preset(preset)  # an unknown preset is a user mistake: fail here, before any widget exists
        self._fusion_kwargs = fusion_kwargs
        self.future: concurrent.futures.Future[FusionResult | None] | None = None
        self.tracker: Tracker | None = None
        self.error: str | None = None
        self._result: FusionResult | None = None
        self._task: asyncio.Task[Any] | None = None
        self._stop_requested = False
        self._saved_outputs: list[Any] = []  # display handles: where finished results go as outputs

        self.prompt = widgets.Textarea(placeholder="Ask the panel…", rows=4, layout=widgets.Layout(width="100%"))
        self.preset = widgets.ToggleButtons(
            options=list(PRESETS),
            value=preset,
            description="Preset",
            tooltips=[p.description for p in PRESETS.values()],
        )
        self.panel = widgets.SelectMultiple(options=[], rows=8, description="Panel", layout=widgets.Layout(width="60%"))
        self.judge = widgets.Dropdown(options=[], description="Judge", layout=widgets.Layout(width="95%"))
        self.timeout = widgets.BoundedFloatText(
            value=timeout, min=1, max=3600, step=10, description="Timeout (s)", tooltip="per-member deadline"
        )
        self.models_note = widgets.HTML()
        # HTML, not Label: a Label is typeset by MathJax, and two dollar amounts would become maths.
        self.estimate_label = widgets.HTML()
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", disabled=True, tooltip="cancel; the answers that arrived are kept"
        )
        self.error_label = widgets.HTML()
        self.status = widgets.HTML()
        self.answer = widgets.HTML()
        self.sections = widgets.VBox()
        self.live = LiveText(self.sections, self.answer)  # the text as it streams, while a run works

        self.prices: Mapping[str, ModelPrice] = {}
        self._load_models(models_timeout)
        self._select_preset(preset)
        if panel or judge:  # a starting choice other than the preset's
            ids = [p.strip() for p in panel.split(",")] if isinstance(panel, str) else list(panel or [])
            chosen, judge = tuple(ids) or self.panel.value, judge or self.judge.value
            self._set_options([v for _, v in self.panel.options] + ids + [judge], first=[*chosen, judge])
            self.panel.value, self.judge.value = chosen, judge
        self.preset.observe(lambda change: self._select_preset(change["new"]), names="value")
        for control in (self.prompt, self.panel, self.judge):
            control.observe(lambda _change: self._update_estimate(), names="value")
        self.run_button.on_click(lambda _button: self.run())
        self.stop_button.on_click(lambda _button: self.stop())
        self._update_estimate()
        super().__init__(
            [
                self.prompt,
                self.preset,
                widgets.HBox(
                    [self.panel, widgets.VBox([self.judge, self.timeout], layout=widgets.Layout(width="40%"))]
                ),
                self.models_note,
                widgets.HBox([self.run_button, self.stop_button, self.estimate_label]),
                self.error_label,
                self.status,
                self.answer,
                self.sections,
            ]
        )

    # -- display -----------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        """Show the controls and, below them, an ordinary output that each finished run fills.

        Widget state is not a result: a saved notebook, its HTML export or a viewer without the
        widget manager shows that output, the same static HTML `%%fusion` shows.
        """
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
        shown = self._result if self._result is not None else {"text/plain": ""}
        self._saved_outputs.append(display(shown, raw=self._result is None, display_id=True))

    def __repr__(self) -> str:
        # What a saved notebook shows where the controls were: say so rather than dump child widgets.
        return "FusionWidget: interactive controls (need a live kernel); results show as outputs below"

    # -- models and prices -------------------------------------------------------------------
    def _endpoint(self) -> Endpoint:
        kw = self._fusion_kwargs
        try:
            return resolve_endpoint(kw.get("base_url"), kw.get("api_key"), kw.get("api_key_env"))
        except MissingKeyError as exc:
            # /models needs no key: show the prices anyway, and say now why Run will fail.
            self._show_error(str(exc))
            base = kw.get("base_url") or os.environ.get("FUSION_BASE_URL") or DEFAULT_BASE_URL
            return Endpoint(base_url=base.rstrip("/"))

    def _load_models(self, timeout: float) -> None:
        try:
            endpoint = self._endpoint()
            client = ChatClient(endpoint, transport=self._fusion_kwargs.get("transport"))

            async def fetch() -> Mapping[str, ModelPrice]:
                with warnings.catch_warnings():  # a stale copy is reported in the note instead
                    warnings.simplefilter("ignore", PricingWarning)
                    listing = load_models(client.http, endpoint.base_url, client.headers())
                    return await asyncio.wait_for(listing, timeout)

            self.prices = run_sync(fetch())
        except (FusionError, OSError, asyncio.TimeoutError) as exc:
            reason = str(exc) or "no answer in time"
            self._note(f"model list unavailable ({reason}); showing the presets' models, prices unknown")
        else:
            self._note(getattr(self.prices, "note", "") or f"{len(self.prices)} models from {endpoint.label}/models")
        ids = sorted(self.prices)
        self._set_options(ids)

    def _note(self, text: str) -> None:
        self.models_note.value = f'<small style="color:{_GREY}">{html.escape(text)}</small>'

    def _label(self, model: str) -> str:
        return price_label(model, find_price(self.prices, model))

    def _set_options(self, ids: list[str], first: list[str] | tuple[str, ...] = ()) -> None:
        "Fill both lists (this resets their values); ``first`` go on top, so a selection is never hidden."
        # Every preset's models stay selectable even when /models does not list them.
        extra = [m.model for p in PRESETS.values() for m in (*p.panel, p.judge)]
        ids = list(dict.fromkeys([*first, *ids, *sorted(set(extra) - set(ids))]))
        options = [(self._label(i), i) for i in ids]
        self.panel.options = options
        self.judge.options = options

    def _select_preset(self, name: str) -> None:
        preset = get_preset(name)
        chosen = tuple(dict.fromkeys(m.model for m in preset.panel))
        # The preset's models on top of the list, so none of them sits selected below its scroll.
        known = sorted(self.prices) or [v for _, v in self.panel.options]
        self._set_options(known, first=[*chosen, preset.judge.model])
        self.panel.value = chosen
        self.judge.value = preset.judge.model

    def _update_estimate(self) -> None:
        panel, judge = list(self.panel.value), self.judge.value
        if not panel or not judge:
            self._set_estimate("choose a panel and a judge")
            return
        est = estimate(
            count_tokens(self.prompt.value), panel, judge, self.prices, max_tokens=self._fusion_kwargs.get("max_tokens")
        )
        self._set_estimate(estimate_text(est, {*panel, judge}))

    def _set_estimate(self, text: str) -> None:
        self.estimate_text = f"Estimated cost: {text}"
        self.estimate_label.value = f'<span class="{NO_MATH}">{html.escape(self.estimate_text)}</span>'

    # -- running -----------------------------------------------------------------------------
    def _choices(self) -> tuple[str, list[str] | None, str | None]:
        "(preset, panel, judge) as chosen; panel/judge are None where they are the preset's own."
        preset = get_preset(self.preset.value)
        panel, judge = list(self.panel.value), self.judge.value
        if not panel:
            raise ConfigError("the panel is empty: select at least one model")
        if not judge:
            raise ConfigError("no judge: choose one in the Judge list")
        # The preset's own seats keep their names, system prompts and fallbacks.
        same_panel = set(panel) == {m.model for m in preset.panel}
        return preset.name, None if same_panel else panel, None if judge == preset.judge.model else judge

    def build_fusion(self) -> Fusion:
        "The `Fusion` the current choices describe (raises `ConfigError` for a user mistake)."
        preset, panel, judge = self._choices()
        return Fusion(preset, panel=panel, judge=judge, **{**self._fusion_kwargs, "timeout": self.timeout.value})

    def run(self) -> concurrent.futures.Future[FusionResult | None] | None:
        "What the Run button does: check, set the session defaults, start in the background."
        if self.future is not None and not self.future.done():
            return self.future
        self._show_error(None)
        try:
            prompt = check_prompt(self.prompt.value)
            fusion = self.build_fusion()
        except FusionError as exc:
            self._show_error(str(exc))
            return None
        preset, panel, judge = self._choices()
        # None removes a default, so an earlier `%fusion config --panel` does not outlive this choice.
        session.set_defaults(
            preset=preset, panel=",".join(panel) if panel else None, judge=judge, timeout=fusion.timeout
        )
        self._result, self._stop_requested = None, False
        self.live.clear()
        self.tracker = fusion.tracker()
        self._set_running(True)
        self.future = asyncio.run_coroutine_threadsafe(self._drive(fusion, prompt, self.tracker), background_loop())
        return self.future

    def stop(self) -> None:
        "Cancel the running deliberation; the answers that arrived are kept and shown."
        self._stop_requested = True
        background_loop().call_soon_threadsafe(self._cancel_task)

    def _cancel_task(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def wait(self, timeout: float | None = None) -> FusionResult | None:
        "Block until the run ends; the result, or None after an error (raises TimeoutError when late)."
        if self.future is None:
            return self._result
        try:
            return self.future.result(timeout)
        except concurrent.futures.CancelledError:
            return self._result
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"the deliberation is still running after {timeout:g}s") from None

    @property
    def result(self) -> FusionResult | None:
        "The last finished run's result (None before the first one, or after an error)."
        return self._result

    async def _drive(self, fusion: Fusion, prompt: str, tracker: Tracker) -> FusionResult | None:
        # Runs on the background loop: the deliberation plus a poller, then the final display.
        started = time.perf_counter()
        poller = asyncio.ensure_future(self._poll(tracker, started))
        result: FusionResult | None = None
        stopped: list[DeliberationCancelled] = []  # read here: a cancelled task may drop its exception

        async def deliberation() -> FusionResult:
            try:
                return await fusion.arun(prompt, tracker=tracker)
            except DeliberationCancelled as exc:
                stopped.append(exc)
                raise

        try:
            if self._stop_requested:
                raise asyncio.CancelledError
            self._task = asyncio.ensure_future(deliberation())
            result = await self._task
        except asyncio.CancelledError:
            result = stopped[0].result if stopped else None  # the answers that arrived, if any
            self._show_error("stopped: the answers that arrived are kept (and cached)")
        except FusionError as exc:
            self._show_error(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must still re-enable Run and say what broke
            self._show_error(f"unexpected {type(exc).__name__}: {exc}")
        finally:
            poller.cancel()
            self._task = None
        try:
            self.live.clear()
            if result is not None:
                self._result = result
                self._show_result(result)
            self.status.value = progress_html(tracker, time.perf_counter() - started, drafts=False)
        except Exception as exc:  # noqa: BLE001 - the result is paid for: keep it reachable
            self._show_error(f"could not display the result ({type(exc).__name__}: {exc}); it is in .result")
        finally:
            self._set_running(False)
        return result

    async def _poll(self, tracker: Tracker, started: float) -> None:
        while True:
            self.status.value = progress_html(tracker, time.perf_counter() - started, drafts=False)
            self.live.update(tracker)
            await asyncio.sleep(POLL_S)

    def _set_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.run_button.description = "Running…" if running else "Run"
        self.stop_button.disabled = not running

    def _show_error(self, text: str | None) -> None:
        self.error = text
        line = html.escape(" ".join((text or "").split()))
        self.error_label.value = f'<span style="color:{_RED}">{line}</span>' if text else ""

    # -- the result --------------------------------------------------------------------------
    def _show_result(self, result: FusionResult) -> None:
        "The result, once: as the output below the controls (kept when saved), else in the widget."
        for handle in self._saved_outputs:
            handle.update(result)
        if not self._saved_outputs:  # placed inside another layout: no output below to show it
            self.answer.value = answer_block(result)
            self.sections.children = tuple(section_box(*part) for part in result_parts(result))
