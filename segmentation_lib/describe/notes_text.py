"""The "Notes on this run" paragraph: warnings the library raised while a page computed, in plain words.

>>> print(run_notes_markdown(["rule 'vip' matches no customer in this table.", "rule 'vip' matches no customer in this table."]))
**Notes on this run.** The library raised this warning while computing this page:
<BLANKLINE>
- rule 'vip' matches no customer in this table. (2 times)
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable


def run_notes_markdown(messages: Iterable[str]) -> str:
    """Markdown listing each distinct message once (first-seen order, repeats counted); "" when there are none."""
    counts = Counter(" ".join(str(m).split()) for m in messages if str(m).strip())
    if not counts:
        return ""
    one = len(counts) == 1
    lines = [f"- {text}" + (f" ({n} times)" if n > 1 else "") for text, n in counts.items()]
    head = (f"**Notes on this run.** The library raised {'this warning' if one else 'these warnings'} "
            "while computing this page:")
    return "\n".join([head, "", *lines])
