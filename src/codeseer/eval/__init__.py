"""Retrieval evaluation: BEIR-format datasets and trec_eval-compatible IR metrics.

Kept dependency-light (numpy only) so scores can be computed anywhere codeseer
runs, yet they agree with the pytrec_eval numbers BEIR/MTEB/CoIR report.
"""
