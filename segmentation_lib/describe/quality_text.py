"""The data-quality section in plain words: what each rule found and what was done."""
from __future__ import annotations

from typing import Any, Mapping
from segmentation_lib.describe.format import fmt_value



def quality_markdown(dq: Mapping[str, Any]) -> str:
    """The data-quality summary (``DataQualityReport.to_dict()``) as Markdown: totals, then one row per rule."""
    lines = [
        f"- **Rows:** {fmt_value(dq.get('rows_in'), 'int')} read, {fmt_value(dq.get('rows_out'), 'int')} used, "
        f"{fmt_value(dq.get('rows_excluded'), 'int')} excluded.",
        f"- **Customers:** {fmt_value(dq.get('customers_in'), 'int')} found, {fmt_value(dq.get('customers_out'), 'int')} kept"
        + (f", {fmt_value(dq.get('customers_dropped'), 'int')} dropped because none of their rows was usable."
           if dq.get("customers_dropped") else "."),
        f"- **As of:** {str(dq.get('as_of') or '-')[:10]}{as_of_note(dq)}.",
        "",
        "| rule | what it checks | rows found | rows excluded | action |",
        "|---|---|---:|---:|---|",
    ]
    for r in dq.get("rules", []):
        lines.append(f"| {r.get('rule')} | {r.get('description')} | {fmt_value(r.get('rows'), 'int')} | "
                     f"{fmt_value(r.get('excluded'), 'int')} | {r.get('action')} |")
    for note in dq.get("notes") or []:
        lines.append(f"\n*Note: {note}*")
    attrs = dq.get("customer_attributes")
    if attrs:
        lines.append(f"\n{customer_attributes_sentence(attrs)}")
    return "\n".join(lines)


def as_of_note(dq: Mapping[str, Any]) -> str:
    """How the analysis date was chosen, as a parenthesis after the date ("" when it was configured).

    >>> as_of_note({"as_of_today": True})
    ' (today, the date of the run: run again on another day and the recency figures change)'
    """
    if dq.get("as_of_inferred"):
        return " (the day after the last transaction)"
    if dq.get("as_of_today"):
        return " (today, the date of the run: run again on another day and the recency figures change)"
    return ""


def as_of_record(dq: Mapping[str, Any]) -> dict[str, Any]:
    """The analysis date for the manifest: the date and how it was chosen.

    >>> as_of_record({"as_of": "2024-01-02T00:00:00+00:00", "as_of_today": True})
    {'date': '2024-01-02', 'chosen': 'today (run.as_of: today)'}
    """
    chosen = ("the day after the last transaction (run.as_of: null)" if dq.get("as_of_inferred")
              else "today (run.as_of: today)" if dq.get("as_of_today") else "configured (run.as_of)")
    return {"date": str(dq.get("as_of") or "")[:10] or None, "chosen": chosen}


def customer_attributes_sentence(attrs: Mapping[str, Any]) -> str:
    """One sentence on the customer attributes join: matched, only in one table, null ids."""
    text = (f"Customer attributes: {fmt_value(attrs.get('matched'), 'int')} of {fmt_value(attrs.get('customers'), 'int')} "
            f"customers matched; {fmt_value(attrs.get('only_in_transactions'), 'int')} have transactions but no attributes, "
            f"{fmt_value(attrs.get('only_in_attributes'), 'int')} have attributes but no usable transactions")
    if attrs.get("attribute_null_ids"):
        text += f", {fmt_value(attrs.get('attribute_null_ids'), 'int')} attribute rows have no customer id"
    return text + "."
