"""Step 2, features: one row per customer (recency, frequency, spend, spacing, trends, returns), the BTYD summary and cohort tables.

Modules: ``btyd``, ``cohorts``, ``common``, ``customer``, ``encoding``, ``purchase_mix``, ``usage``.
"""
