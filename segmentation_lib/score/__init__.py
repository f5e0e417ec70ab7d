"""Step 5, scoring: saved segmentation models (with their metadata) and scoring customers with a saved model.

Modules: ``persistence``, ``scoring``.
"""
