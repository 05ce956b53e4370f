"""Measuring: ``lra-bench``, speed and peak memory of attention methods (LRA Table 2 protocol).
Each point runs in a fresh process (:mod:`lra.bench.worker`); the tables are the report's."""
