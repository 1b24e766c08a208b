"""Untrusted text made inert in GitHub-flavoured Markdown: the one escaping helper.

Markdown passes raw HTML through, so an SLO name, fault label, experiment name, note
or Prometheus URL containing ``<script>`` or ``<img onerror=…>`` would run in every
viewer that renders the report (CI summaries, PR comments, wikis). Every value a
report, game-day report, status table or gate summary did not compute itself goes
through ``md_text``, in prose and table cells alike (no inline code: a value in a
code span could still close it with its own backticks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Markdown's inline syntax: emphasis, code, links/images, strikethrough, table pipes, and
# the backslash itself (CommonMark lets any ASCII punctuation be backslash-escaped).
_MARKUP = set("\\`*_[]|~")


def md_text(value: Any) -> str:
    """``value`` as literal text on one line: HTML characters as entities, Markdown's
    inline markup and table pipes backslash-escaped, line breaks joined by spaces."""
    out = []
    for char in " ".join(str(value).split()):
        if char in _HTML:
            out.append(_HTML[char])
        elif char in _MARKUP:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def md_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A GFM table whose every cell is ``md_text``."""

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(md_text(c) for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])
