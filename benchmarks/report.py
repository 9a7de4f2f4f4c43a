"""Results of one benchmark and the Markdown page that collects them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.timing import Series


@dataclass
class SummaryRow:
    """One headline figure: its measured value as text, its target and whether it was met.

    ``met`` is None when the figure has no target.
    """

    figure: str
    value: str
    target: str = ""
    met: bool | None = None

    @property
    def status(self) -> str:
        if self.met is None:
            return "-"
        return "met" if self.met else "**missed**"


@dataclass
class Section:
    """The outcome of one benchmark: what it compares, its measurements and its notes."""

    title: str
    description: str
    series: list[Series] = field(default_factory=list)
    summary: list[SummaryRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None


def format_number(value: float) -> str:
    """Three significant digits for small numbers, thousands separators for large ones."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def series_table(series: list[Series]) -> list[str]:
    lines = [
        "| Configuration | Median | Min | Max | Unit | Repetitions |",
        "| --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for item in series:
        lines.append(
            f"| {item.label} | {format_number(item.median)} | {format_number(item.minimum)} | "
            f"{format_number(item.maximum)} | {item.unit} | {len(item.seconds)} |"
        )
    return lines


def render_page(intro: list[str], run_lines: list[str], machine: dict[str, str],
                sections: list[Section]) -> str:
    """Return the whole Markdown page."""
    lines = ["# Benchmarks", "", *intro, "", "## Run", "", *run_lines, "", "## Machine", ""]
    lines += ["| Item | Value |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in machine.items()]
    lines += ["", "## Summary", ""]
    lines += ["| Benchmark | Figure | Measured | Target | Result |",
              "| --- | --- | --- | --- | --- |"]
    for section in sections:
        if section.skipped is not None:
            lines.append(f"| {section.title} | - | not run | - | - |")
            continue
        for row in section.summary:
            lines.append(
                f"| {section.title} | {row.figure} | {row.value} | {row.target or '-'} | "
                f"{row.status} |"
            )
    for section in sections:
        lines += ["", f"## {section.title}", "", section.description, ""]
        if section.skipped is not None:
            lines += [f"Not run: {section.skipped}"]
            continue
        if section.series:
            lines += series_table(section.series) + [""]
        for note in section.notes:
            lines += [f"- {note}"]
    return "\n".join(lines).rstrip() + "\n"


def write_page(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
