"""Rewrite the ``Modules:`` line of every step's ``__init__.py`` docstring from the files present.

Run after adding or removing a module (``tests/test_architecture.py`` fails until the list is
complete): ``python scripts/package_docs.py``.
"""
from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "segmentation_lib"

for init in sorted(PACKAGE.glob("*/__init__.py")):
    text = init.read_text(encoding="utf-8")
    mods = sorted(p.stem for p in init.parent.glob("*.py") if p.stem != "__init__")
    line = "Modules: " + ", ".join(f"``{m}``" for m in mods) + "."
    new = re.sub(r"Modules: [^\n]*(?:\n(?!\"\"\")[^\n]+)*", line, text, count=1)
    if new != text:
        init.write_text(new, encoding="utf-8")
        print("updated", init.relative_to(PACKAGE.parent))
