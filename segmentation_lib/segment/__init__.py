"""Step 3, segmentation: RFM scores and named segment maps, value/engagement cells, rule-based tiers, behavioural clustering, segment names and surrogate rules.

Modules: ``clustering``, ``preprocessing``, ``profiles``, ``rfm``, ``rfm_maps``, ``rules``, ``sampling``, ``surrogate``, ``value_engagement``.
"""
