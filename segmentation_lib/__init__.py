"""segmentation_lib: turn a transaction log into customer segments a business can act on.

The public functions are importable from the package top level; modules load on first use so
that ``import segmentation_lib`` and the ``segment`` command stay fast. The subpackages follow the
data flow, and imports only point down it (``tests/test_architecture.py`` keeps it so):

``data`` (read, check, demo) -> ``features`` -> ``predict`` (BTYD models) -> ``segment`` (RFM, rules, clusters, names) ->
``score`` (saved models) -> ``validate`` -> ``describe`` (tables, plain-language text) ->
``report`` (run folders, notebooks, HTML, plots) -> ``cli``. ``errors``, ``config`` and ``paths``
sit below everything.

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
    "read_transactions": "data.read", "read_customers": "data.read", "attach_customers": "data.read",
    "PRESETS": "data.read",
    "QualityPolicy": "data.quality", "DataQualityReport": "data.quality", "clean_transactions": "data.quality",
    "load_transactions": "data.quality",
    "make_transactions": "data.demo", "write_demo_data": "data.demo",
    # predicted value (BTYD models)
    "BetaGeoModel": "predict.counts", "ModifiedBetaGeoModel": "predict.counts", "ParetoNBDModel": "predict.counts",
    "GammaGammaModel": "predict.spend", "predicted_value_table": "predict.value",
    "check_data_sufficiency": "predict.sufficiency",
    # features, RFM, rules
    "btyd_summary": "features.btyd", "customer_features": "features.customer",
    "RFMScorer": "segment.rfm", "load_segment_map": "segment.rfm_maps", "validate_segment_map": "segment.rfm_maps",
    "assign_rfm_segments": "segment.rfm_maps", "value_engagement_matrix": "segment.value_engagement",
    "assign_rule_segments": "segment.rules", "validate_rules": "segment.rules",
    "segment_summary": "describe.tables", "with_actions": "describe.tables", "describe_summary": "describe.tables",
    "rescale_segment_map": "segment.rfm_maps", "value_engagement_cuts": "segment.value_engagement", "value_engagement_summary": "segment.value_engagement",
    "describe_measure": "describe.rfm_text", "describe_scores": "describe.rfm_text", "describe_cut_points": "describe.rfm_text",
    "describe_value_engagement": "describe.rfm_text", "describe_segment_map": "describe.rfm_text", "score_ranges": "describe.rfm_text",
    "score_axis_labels": "describe.rfm_text",
    "cohort_table": "features.cohorts", "retention_curve": "features.cohorts", "describe_retention": "features.cohorts",
    # clustering and profiles
    "make_preprocessor": "segment.preprocessing",
    "CustomerSegmenter": "segment.clustering", "sweep_k": "segment.clustering", "recommend_k": "segment.clustering",
    "segment_profiles": "segment.profiles", "name_segments": "segment.profiles", "SurrogateRules": "segment.surrogate",
    "crosstab": "segment.profiles",
    "save_model": "score.persistence", "load_model": "score.persistence", "score_customers": "score.persistence",
    # validation
    "internal_quality": "validate.separation", "stability": "validate.resampling", "predictive_validity": "validate.predictive",
    "migration": "validate.movement", "actionability_checks": "validate.actionability",
    "ground_truth_agreement": "validate.truth", "headline_metrics": "validate.headline",
    # experiments read by segment
    "read_exposures": "experiment.exposures", "outcomes_from_transactions": "experiment.outcomes",
    "segments_as_of": "experiment.assignment", "read_experiment": "experiment.readout",
    "recommendations": "experiment.variants", "simpson_check": "experiment.simpson",
    # reports
    "run_pipeline": "report.pipeline",
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
