"""No function in `bot/`, `flows/` or `storage/` is too complex to read: radon ranks every one A or B
(complexity 10 or less)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "flows", "storage")


def test_no_function_in_the_tree_is_ranked_c_or_worse() -> None:
    found = subprocess.run(
        [
            sys.executable,
            "-m",
            "radon",
            "cc",
            "--min",
            "C",
            "--show-complexity",
            *(str(ROOT / p) for p in PACKAGES),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "", f"too complex (split them up):\n{found.stdout}"


def test_the_check_would_see_a_complex_function(tmp_path: Path) -> None:
    branches = "\n".join(f"    if x == {n}:\n        return {n}" for n in range(12))
    (tmp_path / "knotted.py").write_text(f"def knotted(x):\n{branches}\n    return -1\n")
    found = subprocess.run(
        [sys.executable, "-m", "radon", "cc", "--min", "C", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "knotted" in found.stdout
