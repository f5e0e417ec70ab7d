"""Step 3, prediction (between features and segments): BTYD models (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma) fitted on the BTYD summary give each customer a probability alive, expected purchases, expected spend, CLV and a churn-risk tier.

Modules: ``common``, ``counts``, ``spend``, ``sufficiency``, ``value``.
"""
