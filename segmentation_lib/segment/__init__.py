"""Step 4, segmentation: RFM scores and named segment maps, value/engagement cells, rule-based tiers, behavioural clustering, segment names and surrogate rules.

Modules: ``assign``, ``clustering``, ``matching``, ``predicted``, ``preprocessing``, ``profiles``, ``rfm``, ``rfm_maps``, ``rules``, ``sampling``, ``sizes``, ``surrogate``, ``value_engagement``.
"""
