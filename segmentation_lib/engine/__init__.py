"""Step 7, engine: the same quality rules, features, segments and scores on Apache Spark, for logs that live in a data lake or warehouse.

Modules: ``spark_features``, ``spark_read``, ``spark_segments``, ``spark_session``, ``spark_stage``.
"""
