"""Rule-based segments: first match wins, explicit default, safe parsing, validation."""
from __future__ import annotations

import warnings

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError
from segmentation_lib.segment.rules import assign_rule_segments, validate_rules

T = pl.DataFrame({
    "customer_id": ["a", "b", "c", "d", "e"],
    "total_spend": [6000.0, 1500.0, 250.0, 10.0, None],
    "n_orders": [10, 5, 4, 1, 0],
    "plan_tier": ["basic", "premium", "premium", "basic", None],
})
CFG = {"segment_col": "tier", "default": "Bronze", "rules": [
    {"name": "Platinum", "when": "total_spend >= 5000"},
    {"name": "Gold", "when": "total_spend >= 1000"},
    {"name": "Silver", "when": "total_spend >= 200"},
]}


def test_first_match_wins_and_default():
    out = assign_rule_segments(T, CFG)
    assert out["tier"].to_list() == ["Platinum", "Gold", "Silver", "Bronze", "Bronze"]  # null spend -> default


def test_string_and_boolean_conditions():
    cfg = {"default": "Other", "rules": [
        {"name": "Premium active", "when": "plan_tier == 'premium' and n_orders > 4"},
        {"name": "Premium", "when": "plan_tier = 'premium'"},
        {"name": "Big or busy", "when": "(total_spend > 5000 or n_orders >= 10) and not plan_tier is null"},
    ]}
    out = assign_rule_segments(T, cfg)
    assert out["segment"].to_list() == ["Big or busy", "Premium active", "Premium", "Other", "Other"]


def test_lazy_input_is_supported():
    out = assign_rule_segments(T.lazy(), CFG).collect()
    assert out["tier"].to_list()[0] == "Platinum"


def test_unknown_column_names_rule_and_lists_columns():
    cfg = {"default": "x", "rules": [{"name": "Gold", "when": "total_spent >= 1000"}]}
    with pytest.raises(ConfigError) as err:
        assign_rule_segments(T, cfg)
    msg = str(err.value)
    assert "Gold" in msg and "total_spent" in msg and "total_spend" in msg and "n_orders" in msg


def test_shadowed_and_never_matching_rules_are_reported():
    rules = [
        {"name": "Gold", "when": "total_spend >= 1000"},
        {"name": "Platinum", "when": "total_spend >= 5000"},  # all its rows already Gold
        {"name": "Huge", "when": "n_orders > 100"},           # nobody
    ]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        v = validate_rules(rules, T)
    assert v.shadowed == ["Platinum"] and v.never_match == ["Huge"]
    assert v.matches == {"Gold": 2, "Platinum": 1, "Huge": 0}
    assert v.assigned == {"Gold": 2, "Platinum": 0, "Huge": 0} and v.default_rows == 3
    assert len(w) == 2 and not v.ok


def test_config_errors():
    with pytest.raises(ConfigError, match="default"):
        assign_rule_segments(T, {"rules": CFG["rules"]})
    with pytest.raises(ConfigError, match="name"):
        assign_rule_segments(T, {"default": "x", "rules": [{"when": "n_orders > 1"}]})
    with pytest.raises(ConfigError, match="cannot be parsed"):
        assign_rule_segments(T, {"default": "x", "rules": [{"name": "a", "when": "n_orders >>> 1"}]})
    with pytest.raises(ConfigError, match="two rules"):
        assign_rule_segments(T, {"default": "x", "rules": [{"name": "a", "when": "n_orders > 1"},
                                                           {"name": "a", "when": "n_orders > 2"}]})
