"""A small document model rendered as Markdown, as one self-contained HTML page, and tables as plain text.

Every report of the project (``optical compare``, the study report, the demo's
summary) is built once as blocks and rendered from them, so ``report.md`` and
``report.html`` cannot disagree and every table is drawn by one function. The
HTML embeds every PNG as a base64 data URI so it can be mailed or archived as
a single file (links to other files stay links). Hand-written rather than a templating library: seven block kinds
and two output formats need no more.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]

    def text(self) -> str:
        """The table aligned in columns for a terminal.

        >>> print(Table(["system", "MRR@10"], [["ot", "0.712"]]).text())
        system  MRR@10
        ------  ------
        ot      0.712
        """
        rows = [self.header, *self.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)


@dataclass
class Image:
    path: Path  # relative to the report dir
    alt: str


@dataclass
class Links:
    """A lead-in and links to files beside the report (relative paths), e.g. the pages of a long figure."""

    lead: str
    links: list[tuple[str, Path]]


@dataclass
class Code:
    """Verbatim text, e.g. a YAML block to paste into a config."""

    text: str
    language: str = ""


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> None:
        self.blocks.extend(blocks)

    def markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for block in self.blocks:
            if isinstance(block, Heading):
                lines += ["#" * block.level + " " + block.text, ""]
            elif isinstance(block, Paragraph):
                lines += [block.text, ""]
            elif isinstance(block, Bullets):
                lines += [f"- {item}" for item in block.items] + [""]
            elif isinstance(block, Table):
                lines.append("| " + " | ".join(block.header) + " |")
                lines.append("|" + "---|" * len(block.header))
                lines += ["| " + " | ".join(row) + " |" for row in block.rows]
                lines.append("")
            elif isinstance(block, Image):
                lines += [f"![{block.alt}]({block.path.as_posix()})", ""]
            elif isinstance(block, Links):
                lines += [f"{block.lead}: " + ", ".join(f"[{text}]({path.as_posix()})" for text, path in block.links) + ".", ""]
            elif isinstance(block, Code):
                lines += [f"```{block.language}", block.text.rstrip("\n"), "```", ""]
        return "\n".join(lines)

    def html(self, base_dir: Path) -> str:
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for block in self.blocks:
            if isinstance(block, Heading):
                body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
            elif isinstance(block, Paragraph):
                body.append(f"<p>{html.escape(block.text)}</p>")
            elif isinstance(block, Bullets):
                body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "</ul>")
            elif isinstance(block, Table):
                head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
                rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block.rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif isinstance(block, Code):
                body.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
            elif isinstance(block, Links):
                anchors = ", ".join(
                    f'<a href="{html.escape(path.as_posix())}">{html.escape(text)}</a>' for text, path in block.links
                )
                body.append(f"<p>{html.escape(block.lead)}: {anchors}.</p>")
            elif isinstance(block, Image):
                data = base64.b64encode((base_dir / block.path).read_bytes()).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(block.alt)}</figcaption></figure>"
                )
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
            "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
            "td,th{border:1px solid #bbb;padding:3px 6px;text-align:left}th{background:#eee}"
            "img{max-width:100%}"
        )
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{style}</style></head>\n<body>\n"
            + "\n".join(body)
            + "\n</body></html>\n"
        )
