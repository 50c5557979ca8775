"""``main.py`` as other tools call it: a real subprocess, its exit code and both streams."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]


def run_main(*args: str, cwd: Path | None = None, timeout: float = 300,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python main.py ARGS`` with this interpreter, the test's environment (plus ``env``), text output."""
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


def run_cli_captured(capsys, *argv: str) -> tuple[int, str, str]:
    """``core.cli.run_cli(argv)`` in this process: (exit code, stdout, stderr) as capsys saw them."""
    capsys.readouterr()
    code = run_cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
