"""The package and its examples pass mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    examples = ROOT / "examples"
    if not examples.is_dir() or not any(examples.glob("*.py")):
        pytest.skip("examples/ does not exist yet")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "python/db_pool",
            "examples",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
