"""segmentation_lib: turn a transaction log into customer segments a business can act on.

The public functions are importable from the package top level; modules load on first use so
that ``import segmentation_lib`` and the ``segment`` command stay fast.

>>> import segmentation_lib as seg
>>> demo = seg.make_transactions(n_customers=200, seed=1)
>>> feats = seg.customer_features(demo.transactions.drop_nulls("customer_id"), as_of="2025-01-01")
>>> feats.height
200
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # configuration and errors
    "load_config": "config", "resolve_config": "config",
    "SegmentationError": "errors", "DataError": "errors", "ConfigError": "errors",
    "ModelError": "errors", "PipelineError": "errors",
    # data contract
    "read_transactions": "transactions", "read_customers": "transactions", "attach_customers": "transactions",
    "PRESETS": "transactions",
    "QualityPolicy": "quality", "DataQualityReport": "quality", "clean_transactions": "quality",
    "load_transactions": "quality",
    "make_transactions": "demo", "write_demo_data": "demo",
    # features, RFM, rules
    "btyd_summary": "features", "customer_features": "features",
    "RFMScorer": "rfm", "load_segment_map": "rfm", "validate_segment_map": "rfm",
    "assign_rfm_segments": "rfm", "value_engagement_matrix": "rfm",
    "assign_rule_segments": "rules", "validate_rules": "rules",
    "segment_summary": "summary", "with_actions": "summary", "describe_summary": "summary",
    "rescale_segment_map": "rfm", "value_engagement_cuts": "rfm", "value_engagement_summary": "rfm",
    "describe_measure": "rfm", "describe_scores": "rfm", "describe_cut_points": "rfm",
    "describe_value_engagement": "rfm", "describe_segment_map": "rfm", "score_ranges": "rfm",
    "score_axis_labels": "rfm",
    "cohort_table": "cohorts", "retention_curve": "cohorts", "describe_retention": "cohorts",
    # clustering and profiles
    "make_preprocessor": "preprocessing",
    "CustomerSegmenter": "clustering", "sweep_k": "clustering", "recommend_k": "clustering",
    "segment_profiles": "profiles", "name_segments": "profiles", "SurrogateRules": "profiles",
    "crosstab": "profiles",
    "save_model": "persistence", "load_model": "persistence", "score_customers": "persistence",
    # validation
    "internal_quality": "validation", "stability": "validation", "predictive_validity": "validation",
    "migration": "validation", "actionability_checks": "validation",
    "ground_truth_agreement": "validation", "headline_metrics": "validation",
    # reports
    "run_pipeline": "pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'segmentation_lib' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
