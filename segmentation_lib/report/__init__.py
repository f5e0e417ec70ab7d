"""Step 8, reports: run folders, the four report stages, papermill execution, HTML pages and plots.

Modules: ``context``, ``experiment``, ``files``, ``history``, ``html``, ``pages``, ``pipeline``, ``plots``, ``progress``, ``runs``, ``stages``, ``timings``.
"""
