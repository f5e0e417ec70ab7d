"""Step 7, description: per-segment tables and the plain-language text and numbers the reports show.

Modules: ``activity``, ``captions``, ``clustering_text``, ``experiment_text``, ``exploration_text``, ``feedback_text``, ``format``, ``glossary``, ``history_text``, ``index_text``, ``notes_text``, ``projection``, ``purchase_mix_text``, ``quality_text``, ``rfm_page_text``, ``rfm_text``, ``run_summary``, ``segment_stats``, ``tables``, ``usage_wording``, ``validation_text``, ``value_text``.
"""
