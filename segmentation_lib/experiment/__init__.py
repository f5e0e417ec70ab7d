"""Step 7, experiments read by segment: exposures, outcomes after each exposure, segments as of the start, the readout per segment (lift, SRM, heterogeneity, CUPED), several variants and the Simpson's paradox check.

Modules: ``assignment``, ``exposures``, ``outcomes``, ``readout``, ``simpson``, ``variants``.
"""
