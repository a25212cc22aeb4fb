"""Rendering: structure of the HTML/Markdown/text views, and hostile model text made harmless."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from fusion_magic._render import to_html, to_markdown, to_text
from fusion_magic._render.facts import fmt_cost, fmt_secs
from fusion_magic._render.sanitize import markdown_to_safe_html
from fusion_magic._values.result import (
    Analysis,
    Contradiction,
    FusionResult,
    PartialCoverage,
    Response,
    Stance,
    UniqueInsight,
)

VOID = {"br", "hr", "img", "input", "meta", "link", "col", "area", "base", "wbr", "source"}
SAFE_SCHEMES = {"http", "https", "mailto"}


class Dom(HTMLParser):
    """Collects tags, attributes and visible text, and checks that non-void tags balance."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.feed(markup)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> does not close {self.stack[-1:] or 'anything'}")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()

    def handle_data(self, data):
        if not self.stack or self.stack[-1] != "style":
            self.text.append(data)

    @property
    def visible(self) -> str:
        return "".join(self.text)


def worst_case_markdown_renderer(text: str) -> str:
    """Markdown -> HTML the way a permissive viewer would: raw HTML on, no link validation."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.validateLink = lambda url: True
    return md.render(text)


def assert_inert(markup: str, *, own_style: bool) -> Dom:
    dom = Dom(markup)
    assert not dom.errors, dom.errors
    forbidden = {"script", "iframe", "svg", "math", "form", "object", "embed", "img", "frame", "base"}
    assert not forbidden & set(dom.tags)
    assert dom.tags.count("style") == (1 if own_style else 0)
    for tag, name, value in dom.attrs:
        assert not name.startswith("on"), (tag, name, value)
        if name in {"href", "src", "action", "formaction", "xlink:href"}:
            url = re.sub(r"[\x00-\x20]+", "", value).lower()
            scheme = re.match(r"([a-z][a-z0-9+.\-]*):", url)
            assert scheme is None or scheme.group(1) in SAFE_SCHEMES, (tag, name, value)
    return dom


# -- fixtures -----------------------------------------------------------------------------------------


def full_analysis() -> Analysis:
    return Analysis(
        consensus=["Use **indexes** on foreign keys", "Measure before tuning"],
        contradictions=[
            Contradiction(
                topic="Which database",
                stances=[
                    Stance(model="openai/gpt-4o", stance="Postgres"),
                    Stance(model="anthropic/claude", stance="SQLite"),
                ],
            )
        ],
        partial_coverage=[PartialCoverage(models=["openai/gpt-4o"], point="connection pooling")],
        unique_insights=[UniqueInsight(model="google/gemini", insight="WAL mode matters")],
        blind_spots=["Backups"],
    )


def member(name: str, latency: float, tokens: tuple[int, int], cost: float, **kw) -> Response:
    return Response(
        model=name,
        content=kw.pop("content", f"Answer from {name}."),
        latency_s=latency,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        cost_usd=cost,
        **kw,
    )


def ok_result(**kw) -> FusionResult:
    defaults = dict(
        prompt="Which database?",
        status="ok",
        preset="quality",
        elapsed_s=2.31,
        answer="## Verdict\n\nUse **Postgres**.",
        analysis=full_analysis(),
        responses=[
            member("openai/gpt-4o", 1.0, (100, 100), 0.001),
            member("anthropic/claude", 2.0, (100, 300), 0.002),
            member("google/gemini", 4.0, (100, 700), 0.004),
        ],
        judge=member("openai/o3", 3.0, (900, 200), 0.0053, content='{"consensus": []}'),
    )
    return FusionResult(**{**defaults, **kw})


def partial_result() -> FusionResult:
    return ok_result(
        status="partial",
        responses=[
            member("openai/gpt-4o", 1.0, (100, 100), 0.001),
            Response(
                model="anthropic/claude", status="failed", error="HTTP 500 from provider: overloaded", latency_s=0.4
            ),
            Response(
                model="google/gemini",
                status="timed_out",
                error="no answer within 30 s",
                latency_s=30.0,
                content="half an ans",
            ),
        ],
    )


def judge_failed_result() -> FusionResult:
    return ok_result(
        status="judge_failed",
        answer="",
        analysis=Analysis(),
        error="judge reply was not valid JSON",
        judge_raw='{"consensus": ["a" <b>oops</b>',
    )


def error_result() -> FusionResult:
    return FusionResult(
        prompt="q",
        status="error",
        error="every panel member failed; check your key",
        responses=[Response(model="a/x", status="failed", error="HTTP 401: bad key")],
    )


def details_summaries(markup: str) -> list[str]:
    return re.findall(r"<details[^>]*><summary>(.*?)</summary>", markup, re.S)


# -- HTML structure -----------------------------------------------------------------------------------


def test_html_order_answer_then_analysis_then_members_then_judge():
    out = to_html(ok_result())
    head, answer = out.index('class="fm-head"'), out.index("Use <strong>Postgres</strong>")
    consensus, member_ = out.index("fm-sec-consensus"), out.index('class="fm-d fm-member"')
    assert head < answer < consensus < member_ < out.index("fm-judge")
    assert "<script" not in out.lower() and "javascript" not in out.lower()


def test_html_one_details_per_section_member_and_judge():
    out = to_html(ok_result())
    summaries = details_summaries(out)
    assert len(summaries) == 5 + 3 + 1 == out.count("<details")
    assert [s.split("<")[0] for s in summaries[:5]] == [
        "Consensus",
        "Contradictions",
        "Partial coverage",
        "Unique insights",
        "Blind spots",
    ]
    assert '<span class="fm-count">2</span>' in summaries[0]
    stances = re.search(r'<table class="fm-stances">.*?</table>', out, re.S).group(0)
    assert "<td>openai/gpt-4o</td><td>Postgres" in stances and "SQLite" in stances


def test_html_empty_analysis_sections_collapsed_with_none():
    out = to_html(ok_result(analysis=Analysis()))
    sections = re.findall(r"<details class=\"fm-d fm-sec[^\"]*\"( open)?><summary>([^<]*)", out)
    assert len(sections) == 5
    assert all(opened == "" for opened, _ in sections)
    assert out.count("— none</span>") == 5


def test_html_bars_proportional_to_the_member_maximum():
    out = to_html(ok_result())
    member_summaries = details_summaries(out)[5:8]

    def widths(kind):
        return [float(re.search(rf'fm-{kind}"><span style="width:([\d.]+)%"', s).group(1)) for s in member_summaries]

    assert widths("lat") == [25.0, 50.0, 100.0]
    assert widths("tok") == [25.0, 50.0, 100.0]
    assert widths("cost") == [25.0, 50.0, 100.0]
    judge = details_summaries(out)[8]
    assert "width:75.0%" in judge  # 3.0 s against the slowest member's 4.0 s


def test_html_header_facts_and_cost_formatting():
    out = to_html(ok_result())
    head = re.search(r'<div class="fm-head">.*?</div>', out).group(0)
    assert "fusion · ok" in head and "preset quality" in head and "2.31 s" in head
    assert "$0.0123" in head  # 0.001 + 0.002 + 0.004 + 0.0053
    assert "2,500 tokens" in head and "3/3 answered" in head
    assert ">$0.0020<" in out and "400 tok" in out


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (0, "$0"),
        (0.00004, "<$0.0001"),
        (0.0123, "$0.0123"),
        (1.5, "$1.50"),
        (1234.5, "$1,234.50"),
        (float("nan"), "–"),
        ("junk", "–"),
    ],
)
def test_fmt_cost(value, text):
    assert fmt_cost(value) == text


def test_fmt_secs():
    assert [fmt_secs(0.85), fmt_secs(2.314), fmt_secs(65), fmt_secs(None)] == ["850 ms", "2.31 s", "1m 05.0s", "–"]
    assert fmt_secs(2.314, compact=True) == "2.31s"


def test_html_partial_shows_errors_instead_of_content():
    out = to_html(partial_result())
    head = re.search(r'<div class="fm-head">.*?</div>', out).group(0)
    assert "fusion · partial" in head and "1/3 answered" in head
    assert "1 failed" in head and "1 timed out" in head
    failed, timed_out = details_summaries(out)[6:8]
    assert "✗" in failed and "failed: HTTP 500 from provider: overloaded" in failed
    assert "⏱" in timed_out and "timed out: no answer within 30 s" in timed_out
    assert "Partial output received before it stopped" in out and "half an ans" in out


def test_html_judge_failed_says_so_first_and_shows_raw_text():
    out = to_html(judge_failed_result())
    banner = out.index("The judge failed")
    assert banner < out.index("Raw judge output") < out.index('class="fm-d fm-member"')
    assert "%fusion rejudge" in out and "judge reply was not valid JSON" in out
    assert '<pre class="fm-pre">{&quot;consensus&quot;: [&quot;a&quot; &lt;b&gt;oops&lt;/b&gt;</pre>' in out
    assert "fm-sec-consensus" not in out  # no verdict, so no empty analysis pretending there is one
    assert "fusion · judge failed" in out


def test_html_error_shown_first():
    out = to_html(error_result())
    assert "fm-s-error" in out
    assert out.index("every panel member failed; check your key") < out.index("<details")
    assert "HTTP 401: bad key" in out


def test_html_cached_member_tagged_and_free():
    result = ok_result(responses=[member("a/x", 1.0, (10, 10), 0.5, cached=True), member("b/y", 2.0, (10, 10), 0.01)])
    out = to_html(result)
    cached = details_summaries(out)[5]
    assert '<span class="fm-tag">cached</span>' in cached and ">$0<" in cached
    assert "1 cached" in out
    assert '<span class="fm-tag">cached</span>' not in details_summaries(out)[6]


@pytest.mark.parametrize(("called", "phrase"), [(True, "called fusion"), (False, "answered directly")])
def test_tool_mode_says_whether_fusion_was_called(called, phrase):
    result = ok_result(tool={"primary": "openai/gpt-4o", "called": called})
    for out in (to_html(result), to_markdown(result), to_text(result)):
        assert "openai/gpt-4o" in out and phrase in out


@pytest.mark.parametrize("make", [ok_result, partial_result, judge_failed_result, error_result])
def test_html_is_well_formed(make):
    dom = assert_inert(to_html(make()), own_style=True)
    assert dom.tags.count("details") == dom.tags.count("summary")


def test_css_is_scoped_and_there_is_no_javascript():
    out = to_html(ok_result())
    css = re.search(r"<style>(.*?)</style>", out, re.S).group(1)
    rules = [r.strip() for r in css.split("}") if r.strip()]
    assert rules and all(all(sel.strip().startswith(".fm-root") for sel in r.split("{")[0].split(",")) for r in rules)
    assert out.startswith('<div class="fm-root tex2jax_ignore mathjax_ignore">')


# -- Markdown and legit content ------------------------------------------------------------------------

LEGIT = """## Heading

- first
- second

1. one
2. two

```python
print(1 + 2)
```

| a | b |
|---|--:|
| 1 | 2 |

**bold** and *em* and `code`, see [site](https://example.org) or [mail](mailto:a@example.org).
"""


def test_legit_markdown_renders_in_html():
    out = markdown_to_safe_html(LEGIT)
    for piece in (
        "<h2>Heading</h2>",
        "<li>first</li>",
        "<ol>",
        "<pre><code>print(1 + 2)",
        "<table>",
        '<th style="text-align:right">b</th>',
        "<strong>bold</strong>",
        "<em>em</em>",
        "<code>code</code>",
        'href="mailto:a@example.org"',
    ):
        assert piece in out, piece
    link = re.search(r'<a href="https://example.org"[^>]*>site</a>', out).group(0)
    assert 'rel="noopener noreferrer nofollow"' in link


def test_safe_html_drops_relative_and_unknown_scheme_links_and_does_not_fetch_images():
    out = markdown_to_safe_html("[r](/api/contents) [f](ftp://x.org/a) ![pixel](https://evil.example/p.png?q=secret)")
    assert "/api/contents" not in out and "ftp:" not in out
    assert "<img" not in out and "[image: pixel]" in out  # a click, not an automatic request


def test_legit_markdown_survives_to_markdown():
    md = to_markdown(ok_result(answer=LEGIT))
    for piece in (
        "## Heading",
        "- first",
        "```python\nprint(1 + 2)\n```",
        "| a | b |",
        "**bold**",
        "[site](https://example.org)",
    ):
        assert piece in md, piece
    html_out = worst_case_markdown_renderer(md)
    assert '<a href="https://example.org">site</a>' in html_out and "<table>" in html_out


def test_markdown_structure():
    md = to_markdown(partial_result())
    # A dollar amount is a code span: Jupyter drops the backslash of `\$`, then MathJax pairs the dollars.
    # A member timed out: its call may have been billed, so the known total is a lower bound ("≥").
    assert md.startswith("**fusion · partial** · preset quality · ≥ `$0.0063` · 2.31 s")
    order = [md.index(s) for s in ("### Answer", "### Analysis", "**Consensus** (2)", "### Panel answers", "### Judge")]
    assert order == sorted(order)
    assert "<details" not in md and "**Blind spots** (1)" in md
    assert "✗ **anthropic/claude** · 400 ms · – · – · failed: HTTP 500 from provider: overloaded" in md
    assert "> Answer from openai/gpt-4o." in md  # panel answers are quoted blocks
    assert "- **Which database**\n  - openai/gpt-4o: Postgres" in md


def test_markdown_judge_failed_and_unclosed_fence_contained():
    md = to_markdown(ok_result(answer="```python\nnever closed", status="ok"))
    rendered = worst_case_markdown_renderer(md)
    assert "<h3>Analysis</h3>" in rendered  # the model's open fence did not swallow the rest
    md = to_markdown(judge_failed_result())
    assert "The judge failed" in md and "%fusion rejudge" in md
    assert '> {"consensus": ["a" &lt;b>oops&lt;/b>' in md


# -- plain text --------------------------------------------------------------------------------------


def test_text_summary():
    text = to_text(partial_result())
    lines = text.splitlines()
    assert lines[0] == "FusionResult(status='partial', members=1 ok/2 failed, cost=≥ $0.0063, elapsed=2.31s)"
    assert any(line.startswith("  answer: ## Verdict Use **Postgres**.") for line in lines)
    row = next(line for line in lines if line.startswith("  anthropic/claude"))
    assert "failed" in row and "400ms" in row and "HTTP 500" in row
    assert any(line.strip().startswith("judge openai/o3") for line in lines)
    assert repr(partial_result()) == text


def test_text_lists_every_section_by_its_shape():
    lines = to_text(partial_result()).splitlines()
    sections = lines[lines.index("  answer: ## Verdict Use **Postgres**.") + 1 : lines.index("  Blind spots (1):") + 2]
    assert sections == [
        "  Consensus (2):",
        "    - Use **indexes** on foreign keys",
        "    - Measure before tuning",
        "  Contradictions (1):",
        "    - Which database (openai/gpt-4o: Postgres; anthropic/claude: SQLite)",
        "  Partial coverage (1):",
        "    - connection pooling (openai/gpt-4o)",
        "  Unique insights (1):",
        "    - google/gemini: WAL mode matters",
        "  Blind spots (1):",
        "    - Backups",
    ]
    empty = to_text(ok_result(analysis=Analysis()))
    assert "  Consensus: none" in empty and "  Blind spots: none" in empty
    # No verdict, no sections: "none" five times would suggest the judge found nothing.
    assert "Consensus" not in to_text(judge_failed_result())


def test_text_bounds_long_sections():
    many = Analysis(blind_spots=[f"gap {i}" for i in range(12)])
    text = to_text(ok_result(analysis=many))
    assert "  Blind spots (12):" in text and "    - gap 4" in text and "gap 5" not in text
    assert "    ... and 7 more" in text


def test_text_answer_preview_is_bounded_and_control_free():
    text = to_text(ok_result(answer="\x1b[2J\x1b]0;owned\x07" + "word " * 10_000))
    answer = next(line for line in text.splitlines() if line.startswith("  answer: "))
    assert len(answer) <= len("  answer: ") + 300 and answer.endswith("…")
    assert "\x1b" not in text and "\x07" not in text


class Exploding:
    status = "ok"

    @property
    def responses(self):
        return self

    def __iter__(self):
        raise RuntimeError("boom")


def test_renderers_never_raise_on_odd_data():
    odd = FusionResult(
        prompt="q",
        status="weird",
        answer=None,
        analysis=None,  # type: ignore[arg-type]
        responses=[None, "junk", Response(model=None, latency_s="x", cost_usd="y")],  # type: ignore[list-item]
        elapsed_s=None,
        judge=None,
        tool="not a dict",
    )  # type: ignore[arg-type]
    assert to_text(odd).startswith("FusionResult(status='weird'")
    assert_inert(to_html(odd), own_style=True)
    assert to_markdown(odd).startswith("**fusion · weird**")
    assert to_text(Exploding()) == "FusionResult(status='ok', <unrenderable: RuntimeError>)"  # type: ignore[arg-type]
    assert "rich display failed: RuntimeError" in to_html(Exploding())  # type: ignore[arg-type]
    assert "rich display failed: RuntimeError" in to_markdown(Exploding())  # type: ignore[arg-type]


# -- hostile model text -------------------------------------------------------------------------------

BIG = "x" * 2_000_000
HOSTILE = [
    ("<script>alert(1)</script>", "alert(1)"),
    ("<img src=x onerror=alert(1)>", "onerror=alert(1)"),
    ("[click me](javascript:alert(1))", "click me"),
    ('<a href="JaVaScRiPt:alert(1)">hi there</a>', "hi there"),
    ("[ent](&#106;avascript&colon;alert(1)) and <javascript:alert(2)>", "ent"),
    ("<svg onload=alert(1)>", "onload=alert(1)"),
    ('<iframe src="https://evil.example/"></iframe>', "evil.example"),
    ("[data link](data:text/html;base64,PHNjcmlwdD4=) ![img](data:image/svg+xml,abc)", "data link"),
    ("\x1b[31mred\x1b[0m \x1b]0;title\x07text", "red"),
    ("bad\ud800half", "half"),
    (BIG, "xxxxxxxx"),
]
POSITIONS = ["answer", "content", "consensus", "stance", "name", "error", "judge_raw"]


def hostile_result(position: str, payload: str) -> FusionResult:
    result = partial_result()
    if position == "answer":
        result.answer = payload
    elif position == "content":
        result.responses[0].content = payload
    elif position == "consensus":
        result.analysis.consensus.append(payload)
    elif position == "stance":
        result.analysis.contradictions[0].stances.append(Stance(model=payload, stance=payload))
    elif position == "name":
        result.responses[1].model = payload
        result.analysis.unique_insights.append(UniqueInsight(model=payload, insight="noted"))
    elif position == "error":
        result.responses[1].error = payload
        result.status, result.error = "error", payload
    elif position == "judge_raw":
        result.status, result.judge_raw = "judge_failed", payload
    return result


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize(("payload", "visible"), HOSTILE, ids=lambda v: repr(v[:24]) if isinstance(v, str) else v)
def test_hostile_text_is_inert_everywhere(position, payload, visible):
    result = hostile_result(position, payload)
    html_out, md_out = to_html(result), to_markdown(result)
    for out in (html_out, md_out):
        lowered = out.lower()
        for needle in ("<script", "onerror=", "onload=", "javascript:", "<iframe", "<svg", "\x1b"):
            assert needle not in lowered, needle
        out.encode("utf-8")  # no lone surrogate left to crash the notebook writer
        assert len(out) < 400_000
    assert "rich display failed" not in html_out + md_out
    for dom in (
        assert_inert(html_out, own_style=True),
        assert_inert(worst_case_markdown_renderer(md_out), own_style=False),
    ):
        assert visible in dom.visible
    if payload is BIG and position in ("answer", "content", "judge_raw"):
        where = {"answer": "result.answer", "content": "result.responses[0].content", "judge_raw": "result.judge_raw"}
        assert f"(truncated, 2,000,000 characters; full text in {where[position]})" in html_out
        assert f"truncated, 2,000,000 characters; full text in {where[position]}" in md_out


def test_money_in_markdown_is_never_a_maths_delimiter():
    result = ok_result()
    result.estimate_usd = 0.0086
    md = to_markdown(result)
    header = md.splitlines()[0]
    assert "(estimate `$0.0086`)" in header and "\\(" not in header and "\\$" not in header
    outside_code = re.sub(r"`[^`]*`", "", header)
    assert "$" not in outside_code  # every dollar sits in a code span, which MathJax skips
    rendered = worst_case_markdown_renderer(md)
    assert "<code>$0.0086</code>" in rendered


def test_html_result_is_kept_from_mathjax_and_wraps_long_words():
    result = ok_result(answer="x" * 500 + " and https://example.org/" + "a" * 400)
    out = to_html(result)
    assert out.startswith('<div class="fm-root tex2jax_ignore mathjax_ignore">')
    css = re.search(r"<style>(.*?)</style>", out, re.S).group(1)
    assert re.search(r"\.fm-root\{[^}]*overflow-wrap:anywhere", css)
    assert re.search(r"\.fm-root \.fm-md[^{]*\{[^}]*overflow-wrap:anywhere", css)


def test_dollar_amounts_in_model_markdown_become_code_spans_but_maths_and_code_stay():
    answer = "It costs $5 to $1,200.50 a month; the rate is $x^2$.\n\n```\ntotal = $5\n```\nInline `$9` stays."
    md = to_markdown(ok_result(answer=answer))
    assert "It costs `$5` to `$1,200.50` a month; the rate is $x^2$." in md
    assert "```\ntotal = $5\n```" in md and "Inline `$9` stays." in md
