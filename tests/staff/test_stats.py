"""`reportbot stats`: counts by month, motivation, kind and channel, with no free text; and the chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.staff import months_between
from tests.staff.conftest import Made


def stats(config: Path, *args: str) -> int:
    return main(["--config", str(config), "stats", *args])


def test_stats_counts_by_month_motivation_kind_and_channel(
    staff_config_path: Path, made: Made, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stats(staff_config_path) == 0
    out = capsys.readouterr().out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert lines[0] == "Report Hate: 3 reports (all reports)"
    # B was sent at 00:30 on 3 April London time: April, not March.
    for expected in (
        "2026-03 1",
        "2026-04 1",
        "2026-05 1",
        "Race or nationality 1",
        "Religion or belief 1",
        "Disability 1",
        "Verbal abuse or threats 1",
        "Damage to property 1",
        "Online abuse 1",
        "Physical attack 1",
        "Console 3",
        "new 3",
    ):
        assert expected in lines, (expected, out)
    for words in ("shouted", "Tall man", "High Street", "Sam Jones", "crowd", "bus driver"):
        assert words not in out, "stats never show what people typed"


def test_stats_filters_by_date_and_fills_empty_months(
    staff_config_path: Path, made: Made, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stats(staff_config_path, "--since", "2026-03-01", "--until", "2026-03-31") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Report Hate: 1 report (submitted 2026-03-01 to 2026-03-31)"
    assert "Religion or belief" not in out
    assert stats(staff_config_path, "--since", "2026-03-18") == 0
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert [line for line in lines if line.startswith("2026-")] == ["2026-03 1", "2026-04 1", "2026-05 1"]
    assert months_between("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]


def test_stats_chart_is_a_png(staff_config_path: Path, made: Made, tmp_path: Path) -> None:
    chart = tmp_path / "stats.png"
    assert stats(staff_config_path, "--chart", str(chart)) == 0
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    from matplotlib import image  # here: only this test needs it (about a second to import)

    pixels = image.imread(chart)
    height, width = pixels.shape[:2]
    assert width > 1000 and height > 700
    assert pixels[..., :3].std() > 0.05, "the chart is not a blank page"


def test_stats_refuses_a_chart_in_a_missing_folder(
    staff_config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stats(staff_config_path, "--chart", str(tmp_path / "nope" / "c.png")) == 1
    assert "does not exist" in capsys.readouterr().err
