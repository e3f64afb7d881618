"""The evaluation protocols: KNN and linear probes, MIL, survival, few-shot, retrieval
and the baselines they are compared with."""
