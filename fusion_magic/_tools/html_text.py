"""A web page's readable text, with the standard library's HTML parser (no extra dependency).

Scripts, styles, templates, SVG and other non-text elements are dropped with their content;
block elements (paragraphs, headings, list items, table rows) start new lines, table cells are
separated by " | ", list items get a bullet; runs of whitespace collapse. The page's <title>
comes first.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_SKIP = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas", "head"}
_BLOCK = {
    "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "br", "hr", "tr", "table",
    "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "figure", "figcaption", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "li", "address", "details", "summary", "caption",
}  # fmt: skip
_VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.skip = 0  # depth inside elements whose content is not text
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in _SKIP:
            if tag not in _VOID:
                self.skip += 1
        elif not self.skip:
            if tag in _BLOCK:
                self.parts.append("\n")
            if tag == "li":
                self.parts.append("- ")
            elif tag in ("td", "th"):
                self.parts.append(" | ")
            elif tag in ("h1", "h2", "h3"):
                self.parts.append("#" * int(tag[1]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif not self.skip and tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    "The readable text of an HTML document."
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = []
    for line in "".join(parser.parts).splitlines():
        line = re.sub(r"[ \t\r\f\v\xa0]+", " ", line).strip()
        line = re.sub(r"^\| ", "", line)
        if line:
            lines.append(line)
    title = " ".join(" ".join(parser.title).split())
    body = "\n".join(lines)
    return f"{title}\n\n{body}" if title else body
