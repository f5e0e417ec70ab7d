"""Step 7, reports: run folders, the four report stages, papermill execution, HTML pages and plots.

Modules: ``context``, ``files``, ``html``, ``pipeline``, ``plots``, ``runs``, ``stages``.
"""
