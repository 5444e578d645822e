"""The statistics chart for partnership meetings: four plain bar charts on one page, as a PNG.

matplotlib with the Agg backend (no display needed). Counts only: the chart carries no free text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

BAR = "#2f6db5"


def _wrap(label: str, width: int = 28) -> str:
    words, lines, line = label.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)


def _month(key: str) -> str:
    """ "2026-03" -> "Mar 2026"."""
    try:
        return datetime.strptime(key, "%Y-%m").strftime("%b %Y")
    except ValueError:
        return key


def _bars(ax: Any, title: str, rows: Sequence[tuple[str, int]], *, horizontal: bool) -> None:
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    if not rows:
        ax.text(0.5, 0.5, "No reports", ha="center", va="center", transform=ax.transAxes, color="#5f6368")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    labels = [_wrap(str(k)) for k, _ in rows]
    values = [int(v) for _, v in rows]
    top = max(values) or 1
    if horizontal:
        positions = list(range(len(rows)))[::-1]  # biggest at the top
        bars = ax.barh(positions, values, color=BAR)
        ax.set_yticks(positions, labels, fontsize=9)
        ax.set_xlim(0, top * 1.15)
        ax.xaxis.get_major_locator().set_params(integer=True)
        for bar, value in zip(bars, values, strict=True):
            ax.text(
                bar.get_width() + top * 0.01,
                bar.get_y() + bar.get_height() / 2,
                str(value),
                va="center",
                fontsize=9,
            )
    else:
        positions = list(range(len(rows)))
        bars = ax.bar(positions, values, color=BAR)
        ax.set_xticks(
            positions,
            labels,
            fontsize=9,
            rotation=45 if len(rows) > 6 else 0,
            ha="right" if len(rows) > 6 else "center",
        )
        ax.set_ylim(0, top * 1.15)
        ax.yaxis.get_major_locator().set_params(integer=True)
        for bar, value in zip(bars, values, strict=True):
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                bar.get_height() + top * 0.01,
                str(value),
                ha="center",
                va="bottom",
                fontsize=9,
            )


def draw(
    path: Path,
    title: str,
    sections: Sequence[tuple[str, Sequence[tuple[str, int]]]],
) -> None:
    """Draw the first four sections (month, motivation, kind, channel) as bar charts into a PNG."""
    fig, axes = plt.subplots(2, 2, figsize=(14, 10), layout="constrained")
    try:
        fig.suptitle(title, fontsize=15, fontweight="bold")
        (month_ax, motive_ax), (kind_ax, channel_ax) = axes
        named = dict(sections)
        months = [(_month(k), v) for k, v in named.get("By month", [])]
        _bars(month_ax, "Reports by month", months, horizontal=False)
        _bars(motive_ax, "Why people think it happened", named.get("By motivation", []), horizontal=True)
        _bars(kind_ax, "What happened", named.get("By kind of incident", []), horizontal=True)
        _bars(channel_ax, "How people reported", named.get("By channel", []), horizontal=False)
        fig.text(
            0.01,
            0.002,
            "One report can give several reasons and several kinds of incident, so those charts can add up "
            "to more than the number of reports.",
            fontsize=9,
            color="#5f6368",
        )
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
