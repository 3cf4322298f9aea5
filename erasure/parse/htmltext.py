"""HTML bodies -> the text a person reads."""

from __future__ import annotations

import html.parser
import re


class _HTMLText(html.parser.HTMLParser):
    """Visible text of an HTML body, with blockquotes marked as quotes so they are not read."""

    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre", "hr", "blockquote", "dd", "dt"}
    _SKIP = {"script", "style", "head", "title", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.quote_depth = 0
        self.skip_depth = 0
        self.quote_stack: list[bool] = []

    def _newline(self) -> None:
        self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip_depth += 1
        if tag in self._BLOCK:
            self._newline()
        if tag in ("blockquote", "div"):
            classes = " ".join(v or "" for k, v in attrs if k == "class")
            quoting = tag == "blockquote" or "gmail_quote" in classes or "moz-cite-prefix" in classes
            self.quote_stack.append(quoting)
            self.quote_depth += quoting

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skip_depth:
            self.skip_depth -= 1
        if tag in ("blockquote", "div") and self.quote_stack:
            self.quote_depth -= self.quote_stack.pop()
        if tag in self._BLOCK:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        parts = data.replace("\r", "").split("\n")
        for i, piece in enumerate(parts):
            if i:
                self._newline()
            if self.quote_depth and not self.lines[-1].startswith(">"):
                self.lines[-1] = "> " + self.lines[-1]
            self.lines[-1] += piece


def html_to_text(markup: str) -> str:
    """HTML body -> plain text, good enough to find the documented id lines in it."""
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:
        return re.sub(r"<[^>]*>", " ", markup)
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in parser.lines]
    return "\n".join(lines)
