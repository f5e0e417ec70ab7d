"""Notes of the RFM page (02) that the other RFM text functions do not cover.

>>> score_notes_markdown({"monetary": "only 2 distinct values: scores 1 and 5 are used."})
'**Note on monetary:** only 2 distinct values: scores 1 and 5 are used.'
"""
from __future__ import annotations

from typing import Mapping


def score_notes_markdown(degenerate: Mapping[str, str] | None) -> str:
    """One note per column with fewer distinct values than score levels (``RFMScorer.degenerate_``); "" when none."""
    return "\n\n".join(f"**Note on {column}:** {message}" for column, message in (degenerate or {}).items())
