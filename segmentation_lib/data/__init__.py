"""Step 1, the data: read what users have (transaction logs, customer attributes), check it and count every exclusion; the demo data with a known truth.

Modules: ``demo``, ``demo_experiment``, ``demo_usage``, ``events``, ``quality``, ``read``.
"""
