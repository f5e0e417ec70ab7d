"""The words of the "Since last run" page: the comparison's intro, top flows, size changes, drift, matching.

Every function takes plain tables and dicts, so the text is tested without a run.

>>> import polars as pl
>>> flows = pl.DataFrame({"from_segment": ["Loyal"], "to_segment": ["At Risk"], "count": [412]})
>>> flows_sentences(flows)
['412 Loyal customers became At Risk.']
"""
from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from segmentation_lib.describe.format import md_table
from segmentation_lib.formatting import fmt_number

#: the methods compared, in page order, and how the page names them
METHOD_TITLES = {"rfm": "RFM segments", "value_engagement": "Value/engagement cells", "rules": "Rule tiers",
                 "behavioural": "Behavioural segments"}


def _n(x: Any) -> str:
    return fmt_number(int(x), 0) if x is not None else "n/a"


def first_run_text(name: str | None = None) -> str:
    """What the page says when there is no earlier run to compare with.

    >>> first_run_text("demo")
    "There is no earlier run of the configuration 'demo' in this reports folder, so there is nothing to compare with yet. The next run will show who moved where since this one."
    """
    which = f" of the configuration '{name}'" if name else ""
    return (f"There is no earlier run{which} in this reports folder, so there is nothing to compare with yet. "
            "The next run will show who moved where since this one.")


def intro_text(summary: Mapping[str, Any]) -> str:
    """One paragraph: which run this is compared with, customers in both, new and no longer present.

    >>> print(intro_text({"previous_folder": "2026-01-01_000000_ab", "previous_as_of": "2026-01-01", "as_of": "2026-04-01",
    ...                   "customers_in_both": 90, "appeared": 10, "disappeared": 5, "frozen": True}))  # doctest: +ELLIPSIS
    Compared with the run 2026-01-01_000000_ab (data as of 2026-01-01; this run: 2026-04-01). 90 customers are in both, ...
    """
    mode = (" Customers were scored with the earlier run's frozen model, RFM edges, segment map and rules, so a "
            "segment means the same thing in both runs." if summary.get("frozen") else
            " This run fitted its segments afresh; behavioural segments were matched to the earlier ones by shared customers.")
    return (f"Compared with the run {summary.get('previous_folder')} (data as of {summary.get('previous_as_of')}; this run: "
            f"{summary.get('as_of')}). {_n(summary.get('customers_in_both'))} customers are in both, "
            f"{_n(summary.get('appeared'))} are new since last run and {_n(summary.get('disappeared'))} are no longer "
            f"present.{mode}")


def flows_sentences(flows: pl.DataFrame) -> list[str]:
    """One sentence per flow (``from_segment, to_segment, count``): "412 Loyal customers became At Risk."."""
    def who(name: str) -> str:
        return name if str(name).lower().endswith("customers") else f"{name} customers"

    return [f"{_n(r['count'])} {who(r['from_segment'])} became {r['to_segment']}." for r in flows.iter_rows(named=True)]


def method_text(title: str, summary: Mapping[str, Any], flows: pl.DataFrame) -> str:
    """A method's paragraph: changed share and the largest moves as a list.

    >>> f = pl.DataFrame({"from_segment": ["A"], "to_segment": ["B"], "count": [3]})
    >>> method_text("RFM segments", {"changed": 3, "customers_in_both": 10}, f)
    '**RFM segments**: 3 of 10 customers in both runs (30.0%) changed segment. The largest moves:\\n\\n- 3 A customers became B.'
    """
    both, changed = summary.get("customers_in_both") or 0, summary.get("changed") or 0
    share = f" ({100 * changed / both:.1f}%)" if both else ""
    head = f"**{title}**: {_n(changed)} of {_n(both)} customers in both runs{share} changed segment."
    lines = flows_sentences(flows)
    if not lines:
        return head + " Nobody moved."
    return head + " The largest moves:\n\n" + "\n".join(f"- {s}" for s in lines)


def changes_markdown(changes: pl.DataFrame) -> str:
    """The size and revenue change per segment as a Markdown table."""
    return md_table(changes, rename={"segment": "Segment", "customers_before": "Customers before",
                                     "customers_now": "Customers now", "customers_change": "Change",
                                     "revenue_before": "Revenue before", "revenue_now": "Revenue now",
                                     "revenue_change": "Revenue change"})


def drift_text(summary: Mapping[str, Any] | None) -> str:
    """The keep/refit recommendation and its reasons in words.

    >>> print(drift_text({"recommendation": "keep", "reasons": [], "psi_max": 0.04, "psi_max_feature": "n_orders",
    ...                   "share_shift_max": 0.02, "ari_frozen_vs_fresh": 0.9}))  # doctest: +ELLIPSIS
    **Recommendation: keep the frozen model.** The largest feature shift is n_orders (PSI 0.04; ...
    """
    if not summary:
        return ""
    rec = summary.get("recommendation")
    head = "**Recommendation: keep the frozen model.**" if rec == "keep" else "**Recommendation: refit the segments.**"
    parts = [head]
    if summary.get("psi_max") is not None:
        parts.append(f"The largest feature shift is {summary['psi_max_feature']} (PSI {summary['psi_max']:.2f}; below 0.1 "
                     "is no real change, above 0.25 a large one).")
    if summary.get("share_shift_max") is not None:
        parts.append(f"The largest change of a behavioural segment's share is {100 * summary['share_shift_max']:.1f} points.")
    if summary.get("ari_frozen_vs_fresh") is not None:
        parts.append(f"A fresh fit on this data agrees with the frozen assignment at ARI {summary['ari_frozen_vs_fresh']:.2f}.")
    if summary.get("reasons"):
        parts.append("Refit because " + "; ".join(summary["reasons"]) + ".")
    return " ".join(parts)


def matching_text(table: pl.DataFrame | None, vanished: list[str] | None = None) -> str:
    """How a refit's segments were matched to the earlier run's (kept, split, new, vanished).

    >>> t = pl.DataFrame({"name": ["Loyal", "Big (new)"], "status": ["matched", "new"], "overlap_share": [0.9, None]})
    >>> matching_text(t, ["Lapsed"])
    'The refit found 2 behavioural segments: 1 kept its earlier id and name, 1 is new. No longer found: Lapsed.'
    """
    if table is None or table.height == 0:
        return ""
    counts = {s: int((table["status"] == s).sum()) for s in ("matched", "split", "new")}
    parts = [f"{counts['matched']} kept its earlier id and name" if counts["matched"] == 1
             else f"{counts['matched']} kept their earlier ids and names"]
    if counts["split"]:
        parts.append(f"{counts['split']} split off an earlier segment")
    if counts["new"]:
        parts.append(f"{counts['new']} {'is' if counts['new'] == 1 else 'are'} new")
    text = f"The refit found {table.height} behavioural segments: " + ", ".join(parts) + "."
    if vanished:
        text += " No longer found: " + ", ".join(vanished) + "."
    return text


def exports_text(files: Mapping[str, int], movers: int) -> str:
    """Where the lists for action are.

    >>> exports_text({"exports/rfm/champions.csv": 12}, 3)
    'Lists for action: 1 segment files in exports/ (12 rows) and movers.csv (3 customer moves between segments).'
    """
    return (f"Lists for action: {len(files)} segment files in exports/ ({_n(sum(files.values()))} rows) and "
            f"movers.csv ({_n(movers)} customer moves between segments).")
