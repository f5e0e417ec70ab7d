"""Files of a run folder: deterministic JSON (floats to 12 significant digits) and SHA-256 fingerprints.

>>> stable_floats({"x": 0.1 + 0.2})
{'x': 0.3}
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from segmentation_lib.score.persistence import sha256_file  # the one file hash (model files record theirs)

__all__ = ["sha256_file", "file_hashes", "json_default", "stable_floats", "write_json", "read_json"]


# --------------------------------------------------------------------------- inputs and fingerprints


def file_hashes(folder: Path, skip: tuple[str, ...] = ("manifest.json", "index.html")) -> dict[str, str]:
    """SHA-256 of every file directly in ``folder`` (but ``skip``), by name: the manifest's ``sha256``
    record that ``load_model`` checks a run's model file against.

    >>> file_hashes(Path("no-such-folder"))
    {}
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name not in skip}


def json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


#: significant digits of floats written to JSON: parallel float sums differ between runs in the last
#: one or two of their ~16 digits; 12 keep every reported figure and make reruns byte-identical
JSON_DIGITS = 12


def stable_floats(value: Any) -> Any:
    """``value`` with every float rounded to ``JSON_DIGITS`` significant digits (recursively).

    >>> stable_floats({"share": 0.5905900603557512, "n": [3, 17598.989999999998]})
    {'share': 0.590590060356, 'n': [3, 17598.99]}
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return float(f"{value:.{JSON_DIGITS}g}") if value == value and abs(value) != float("inf") else value
    if isinstance(value, dict):
        return {k: stable_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stable_floats(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return stable_floats(value.item())
    return value


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented, key-sorted JSON (dates and numpy scalars converted, floats to
    ``JSON_DIGITS`` significant digits so that identical runs write identical files)."""
    text = json.dumps(stable_floats(payload), indent=2, sort_keys=True, default=json_default)
    path.write_text(text + "\n", encoding="utf-8")
    return path


_RAISE = object()


def read_json(path: Path, default: Any = _RAISE) -> Any:
    """The JSON document at ``path`` (UTF-8), as written by :func:`write_json`.

    With ``default`` given, a missing or unreadable file gives ``default`` instead of an error
    (the index pages list runs whose files may be incomplete).

    >>> read_json(Path("no-such-file.json"), default=None) is None
    True
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        if default is _RAISE:
            raise
        return default
