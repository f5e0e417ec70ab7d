"""Step 6, validation: separation, stability, predictive validity, migration between snapshots, actionability and agreement with a known truth.

Modules: ``actionability``, ``calibration``, ``common``, ``drift``, ``headline``, ``movement``, ``predictive``, ``resampling``, ``separation``, ``truth``.
"""
