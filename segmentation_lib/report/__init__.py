"""Step 8, reports: run folders, the four report stages, papermill execution, HTML pages and plots.

Modules: ``context``, ``files``, ``history``, ``html``, ``pages``, ``pipeline``, ``plots``, ``runs``, ``stages``.
"""
