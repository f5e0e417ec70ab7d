"""Step 6, validation: separation, stability, predictive validity, migration between snapshots, actionability and agreement with a known truth.

Modules: ``actionability``, ``calibration``, ``common``, ``drift``, ``feedback``, ``headline``, ``movement``, ``predictive``, ``resampling``, ``separation``, ``truth``.
"""
