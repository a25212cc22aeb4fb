"""Turn untrusted model text into safe HTML or inert Markdown.

Everything a model writes is hostile until proven otherwise: it may carry `<script>`, event handlers,
`javascript:` links, terminal escapes, lone surrogates or megabytes of text. HTML goes through
markdown-it (raw HTML disabled, so tags arrive escaped) and then nh3 with an explicit allow-list, which
is the real guarantee. Markdown output cannot be sanitized after rendering (the reader's renderer does
that), so it is neutralised at the source: nothing tag-like, no unsafe link targets, no image fetches.
markdown-it and nh3 load when the first text is rendered, not when fusion_magic is imported.
"""

from __future__ import annotations

import html
import re
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import nh3
    from markdown_it import MarkdownIt

__all__ = [
    "MAX_CHARS",
    "clean_line",
    "clean_text",
    "defang_html",
    "inline_markdown",
    "markdown_to_safe_html",
    "neutralize_markdown",
    "plain_markdown",
    "safe_pre",
]

MAX_CHARS = 100_000  # above this a panel answer is a runaway generation, not something to read inline

_ANSI = re.compile(
    r"""\x1b\[[0-?]*[ -/]*[@-~]            # CSI: colours, cursor movement, screen clearing
      | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?  # OSC: window titles, terminal hyperlinks
      | \x1b[PX^_][^\x1b]*(?:\x1b\\)?       # DCS / SOS / PM / APC strings
      | \x1b[@-Z\\-_]                       # two-byte escapes
      | \x9b[0-?]*[ -/]*[@-~]               # 8-bit CSI
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # keeps \t and \n (\r is normalised first)
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")  # overrides that can visually reorder a label
_SPACES = re.compile(r"\s+")

# Visible text that merely *mentions* a handler or a script URL is re-encoded so the raw output never
# contains those byte sequences; browsers decode the entity, so readers still see the original text.
_SCRIPT_SCHEME = re.compile(r"(?i)\b((?:java|vb|live)script)(\s*):")
_HANDLER = re.compile(r"(?i)\b(on(?!(?:e|ce|ly)=)[a-z]+)(\s*)=")
# Markdown output has no tags left for a handler to live in, so only the exact pattern is re-encoded
# there, sparing `el.onclick = f` in code blocks (where an entity would show literally).
_HANDLER_TIGHT = re.compile(r"(?i)\b(on(?!(?:e|ce|ly)=)[a-z]+)=")


def _image_as_link(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    """Render an image as a link: an auto-fetched URL can leak prompt data, a click cannot."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    src = str(token.attrGet("src") or "")
    label = html.escape(f"[image: {alt or src}]")
    return f'<a href="{html.escape(src)}">{label}</a>'


@cache
def _markdown_it() -> MarkdownIt:
    "The Markdown parser, built on first use (markdown-it loads only when something is rendered)."
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable(["table", "strikethrough"])
    md.add_render_rule("image", _image_as_link)
    return md


_TAGS = "p br hr h1 h2 h3 h4 h5 h6 strong em b i s del code pre blockquote ul ol li a table thead tbody tr th td"
# Removed with everything inside them, not just unwrapped.
_DROPPED = "script style iframe object embed svg math template noscript textarea title form select"


@cache
def _cleaner() -> nh3.Cleaner:
    "The nh3 allow-list, built on first use."
    import nh3

    return nh3.Cleaner(
        tags=set(_TAGS.split()),
        clean_content_tags=set(_DROPPED.split()),
        attributes={"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}},
        filter_style_properties={"text-align"},  # markdown-it's table alignment, nothing else
        url_schemes={"http", "https", "mailto"},
        url_relative="deny",  # a relative link in a notebook would resolve against the Jupyter server
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


def clean_text(value: object) -> str:
    """Any value as a str with surrogates repaired, ANSI escapes and control characters removed."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Pairs recombine into the real character; lone halves become U+FFFD instead of crashing
        # the notebook's JSON writer later.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", _ANSI.sub("", text))


def clean_line(value: object, limit: int = 200) -> str:
    """A label (model name, error message): one cleaned line, whitespace collapsed, bounded length."""
    if isinstance(value, str) and len(value) > limit * 8:
        value = value[: limit * 8]  # labels are short; cleaning a 2 MB "name" would only waste time
    text = _SPACES.sub(" ", _BIDI.sub("", clean_text(value))).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _truncate(text: str, limit: int, where: str) -> tuple[str, str | None]:
    if len(text) <= limit:
        return text, None
    return text[:limit], f"… (truncated, {len(text):,} characters; full text in {where})"


def defang_html(markup: str) -> str:
    """Re-encode text that spells `javascript:` or `onxxx=` so no byte pattern of either survives."""
    markup = _SCRIPT_SCHEME.sub(r"\1\2&#58;", markup)
    return _HANDLER.sub(r"\1\2&#61;", markup)


def markdown_to_safe_html(
    text: object, *, where: str = "the FusionResult", limit: int = MAX_CHARS, inline: bool = False
) -> str:
    """Render untrusted Markdown to sanitized HTML (allow-listed tags, http/https/mailto links only)."""
    body, note = _truncate(clean_text(text), limit, where)
    rendered = _markdown_it().renderInline(body) if inline else _markdown_it().render(body)
    out = defang_html(_cleaner().clean(rendered))
    if note:
        out += f'<p class="fm-trunc">{html.escape(note)}</p>'
    return out


def safe_pre(text: object, *, where: str = "the FusionResult", limit: int = MAX_CHARS) -> str:
    """Untrusted text verbatim in a `<pre>` (escaped, cleaned, truncated with a note)."""
    body, note = _truncate(clean_text(text), limit, where)
    out = f'<pre class="fm-pre">{defang_html(html.escape(body))}</pre>'
    if note:
        out += f'<p class="fm-trunc">{html.escape(note)}</p>'
    return out


# -- Markdown output ---------------------------------------------------------------------------------

_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # the only ways an HTML tag, comment or PI can begin
_INLINE_DEST = re.compile(r"(\]\(\s*)(<[^>\n]*>|(?:[^\s()]|\([^\s()]*\))+)")
# A link reference definition; its destination may sit on the next line.
_REF_DEST = re.compile(r"^((?:[ >]*)\[[^\]\n]+\]:[ \t]*(?:\n[ \t>]*)?)(<[^>\n]*>|\S+)", re.MULTILINE)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)")
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_SAFE_SCHEMES = {"http", "https", "mailto"}


def _unsafe_destination(dest: str) -> bool:
    # Decode the way a Markdown renderer and then a browser would before deciding: backslash
    # escapes, entities (`&#106;avascript`), and whitespace browsers drop inside URLs.
    decoded = html.unescape(re.sub(r"\\(.)", r"\1", dest.strip("<>")))
    decoded = re.sub(r"[\x00-\x20\u200b]+", "", decoded).lower()
    match = _SCHEME.match(decoded)
    return match is not None and match.group(1) not in _SAFE_SCHEMES


def _defang_links(text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        dest = match.group(2)
        return match.group(1) + ("#unsafe-link-removed" if _unsafe_destination(dest) else dest)

    return _REF_DEST.sub(fix, _INLINE_DEST.sub(fix, text))


def _no_images(text: str) -> str:
    """Every image CommonMark has made literal text, so rendering the Markdown fetches nothing.

    Inline images, full, collapsed and shortcut references (``![x][r]``, ``![r][]``, ``![r]`` with a
    ``[r]: https://...`` definition), alt text with brackets or over several lines: all start with
    ``![``, which becomes ``!\\[`` outside code. Code blocks come from markdown-it's tokens (not
    guessed), so ``vec![1]`` in a Rust block stays as written; so do inline code spans.
    """
    if "![" not in text:
        return text
    code: set[int] = set()
    for token in _markdown_it().parse(text):
        if token.type in ("fence", "code_block") and token.map:
            code.update(range(*token.map))
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if i in code or "![" not in line:
            continue
        spans = [m.span() for m in _CODE_SPAN.finditer(line)]
        out, at = [], 0
        for start, end in [*spans, (len(line), len(line))]:
            out += [line[at:start].replace("![", "!\\["), line[start:end]]
            at = end
        lines[i] = "".join(out)
    return "\n".join(lines)


def _close_fences(text: str) -> str:
    """Close a code fence the model left open, so it cannot swallow the rest of the document."""
    opened: str | None = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if not match:
            continue
        fence, rest = match.groups()
        if opened is None:
            if not (fence[0] == "`" and "`" in rest):
                opened = fence
        elif fence[0] == opened[0] and len(fence) >= len(opened) and not rest.strip():
            opened = None
    return text if opened is None else f"{text}\n{opened}"


_MONEY = re.compile(r"(?<![\\\w$])\$\d[\d,]*(?:\.\d+)?(?![\w$])")  # $5, $1,200.50 (not $5x$ or \$5)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def _money_as_code(text: str) -> str:
    """Dollar amounts in model text as code spans (outside code), so Jupyter's MathJax leaves them be.

    "$5 to $10" would otherwise be typeset as the maths "5 to 10"; `$x^2$` stays maths.
    """
    if "$" not in text:
        return text
    out, fence = [], None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
        elif not line.startswith(("    ", "\t")):  # an indented code block shows backticks literally
            line = _money_in_line(line)
        out.append(line)
    return "\n".join(out)


def _money_in_line(line: str) -> str:
    parts, last = [], 0
    for span in _CODE_SPAN.finditer(line):
        parts += [_MONEY.sub(_as_code, line[last : span.start()]), span.group(0)]
        last = span.end()
    return "".join([*parts, _MONEY.sub(_as_code, line[last:])])


def _as_code(match: re.Match[str]) -> str:
    return f"`{match.group(0)}`"


def neutralize_markdown(
    text: object, *, where: str = "the FusionResult", limit: int = MAX_CHARS, quote: bool = False
) -> str:
    """Untrusted Markdown made inert: no HTML, no unsafe links, no auto-fetched images, fences closed."""
    body, note = _truncate(clean_text(text), limit, where)
    body = _defang_links(body)
    body = _no_images(body)
    body = _TAG_START.sub("&lt;", body)
    # A zero-width space before the colon breaks the scheme even inside a link we failed to spot.
    body = _SCRIPT_SCHEME.sub("\\1\\2\u200b:", body)
    body = _HANDLER_TIGHT.sub(r"\1&#61;", body)
    body = _money_as_code(_close_fences(body.strip("\n")))
    if note:
        body += f"\n\n*{note}*"
    if quote:
        body = "\n".join(f"> {line}".rstrip() for line in body.split("\n"))
    return body


_MD_PUNCT = re.compile(r"([\\`*_\[\]#|~!>{}])")  # `(` stays: `\(` is a maths delimiter in Jupyter
# A dollar amount (or a lone `$`) becomes a code span: the one Markdown form every front end shows
# literally. `\$` does not survive Jupyter (its Markdown renderer drops the backslash, then MathJax
# pairs the dollars), and an HTML entity decodes to the same `$` before MathJax reads it.
_DOLLARS = re.compile(r"([~<]{0,2}\$[\d.,]*\d|\$)")


def _plain_piece(text: str) -> str:
    text = _TAG_START.sub("&lt;", _MD_PUNCT.sub(r"\\\1", text))
    text = _SCRIPT_SCHEME.sub("\\1\\2\u200b:", text)
    return _HANDLER_TIGHT.sub(r"\1&#61;", text)


def plain_markdown(value: object, limit: int = 200) -> str:
    """A label shown literally in Markdown: one line, Markdown syntax escaped, `$` amounts as code spans."""
    pieces = _DOLLARS.split(clean_line(value, limit))
    return "".join(f"`{p}`" if i % 2 else _plain_piece(p) for i, p in enumerate(pieces))


def inline_markdown(value: object, limit: int = 2000) -> str:
    """A short untrusted Markdown snippet (analysis item, error) as one neutralised line."""
    return neutralize_markdown(clean_line(value, limit), limit=limit)
