"""The anchors' virtual environment: ``.bench-venv/`` at the repository root (git-ignored).

Made with this interpreter's ``venv`` module and filled from ``requirements-anchors.txt``; a stamp
holding the requirements it was made from means it is reinstalled only when they change. The
anchors never enter the product's dependencies.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".bench-venv"
REQUIREMENTS = Path(__file__).with_name("requirements-anchors.txt")
STAMP = VENV / ".requirements"


def python() -> Path:
    return VENV / "bin" / "python"


def is_ready() -> bool:
    return STAMP.exists() and STAMP.read_text() == REQUIREMENTS.read_text()


def ensure() -> Path:
    """The anchors' interpreter, after creating or updating the venv if needed."""
    if is_ready():
        return python()
    if not python().exists():
        print(f"creating {VENV.relative_to(ROOT)} for the anchors", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print(f"installing {REQUIREMENTS.name} into {VENV.relative_to(ROOT)}", flush=True)
    pip = [str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    STAMP.write_text(REQUIREMENTS.read_text())
    return python()
