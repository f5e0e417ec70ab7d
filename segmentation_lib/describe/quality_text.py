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
        f"- **As of:** {str(dq.get('as_of') or '-')[:10]}"
        + (" (the day after the last transaction)." if dq.get("as_of_inferred") else "."),
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


def customer_attributes_sentence(attrs: Mapping[str, Any]) -> str:
    """One sentence on the customer attributes join: matched, only in one table, null ids."""
    text = (f"Customer attributes: {fmt_value(attrs.get('matched'), 'int')} of {fmt_value(attrs.get('customers'), 'int')} "
            f"customers matched; {fmt_value(attrs.get('only_in_transactions'), 'int')} have transactions but no attributes, "
            f"{fmt_value(attrs.get('only_in_attributes'), 'int')} have attributes but no usable transactions")
    if attrs.get("attribute_null_ids"):
        text += f", {fmt_value(attrs.get('attribute_null_ids'), 'int')} attribute rows have no customer id"
    return text + "."
