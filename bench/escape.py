"""Untrusted text (names and reasons read from results files, uploads, workers) made safe to show:
for a terminal (no control characters, so no escape sequences, no line rewriting), for markdown
files (no table breaks, no HTML, no links or emphasis injected) and for the dashboard, whose every
text element and widget label is Markdown with Streamlit's extras (page_text). Pure; raises
nothing."""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
"""C0/C1 controls (tab and newline excepted), DEL, zero-width, bidirectional overrides, BOM."""
_MARKDOWN = re.compile(r"([\\`*\[\]|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")
"""Characters that start markdown syntax in the middle of a line (HTML's < > & become entities;
an underscore inside a word, as in x4plus_anime_6B, is literal already)."""


_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
"""Every ASCII punctuation character: CommonMark lets a backslash make each one literal."""
_AUTOLINK = re.compile(r"(?i)(?<=https)(?=\\:)|(?<=http)(?=\\:)|(?<=www)(?=\\\.)|(?=\\@)")
"""Where GitHub's autolinks (found in the text after escapes are resolved: 'http://', 'www.',
'name@host') start, in page_text's output: a WORD JOINER (U+2060, invisible) goes there."""


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def terminal_text(text: object) -> str:
    """text with every control character written as an escape ('\\x1b', '\\u202e'); newlines and
    tabs are kept."""
    return _CONTROL.sub(_escaped, str(text))


def one_line_text(text: object) -> str:
    """terminal_text on one line: runs of whitespace (newlines included) become one space."""
    return " ".join(terminal_text(str(text).replace("\r", " ")).split())


def markdown_text(text: object) -> str:
    """text as literal markdown on one line: HTML entities for < > &, backslashes before markdown
    punctuation (| ends a table cell), control characters escaped."""
    return _MARKDOWN.sub(r"\\\1", html.escape(one_line_text(text), quote=False))


def page_text(text: object) -> str:
    """text as literal Markdown for a Streamlit element or label, on one line: a backslash before
    every ASCII punctuation character, so no image, link, emphasis, heading, HTML,
    `:color[...]` directive, `:icon:` or KaTeX (`$`) is made of it, and an invisible word joiner
    where an autolink would start (`http://`, `www.`, `a@b`: GitHub's autolinks ignore escapes)."""
    return _AUTOLINK.sub("\u2060", _PUNCTUATION.sub(r"\\\1", one_line_text(text)))
