"""The evaluation protocols and the baselines they are compared with.

KNN and linear probes, MIL, survival, few-shot and retrieval.
"""
