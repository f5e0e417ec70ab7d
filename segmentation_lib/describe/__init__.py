"""Step 6, description: per-segment tables and the plain-language text and numbers the reports show.

Modules: ``activity``, ``format``, ``projection``, ``quality_text``, ``rfm_text``, ``run_summary``, ``tables``.
"""
