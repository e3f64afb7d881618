"""SLPD prototypes: per-slide k-means, set-to-set slide similarity, the prototype bank.

Pure tensor functions (no runner, no registry); the prototype hook calls
:func:`build_bank`, or :func:`cluster_slides` per rank and then :func:`finish_bank`.
"""
from .bank import CKPT_KEY, PrototypeBank, bank_checkpoint_entry, bank_from_checkpoint
from .build import build_bank, cluster_slides, finish_bank
from .faiss_backend import faiss_kmeans
from .kmeans import KMeansResult, batched_kmeans
from .matching import match_prototypes, max_matching_score, set_similarity, set_similarity_paired
from .neighbors import find_neighbors
from .settings import REFRESH_CROP, REFRESH_DEFAULTS, RefreshSettings

__all__ = [
    'CKPT_KEY', 'KMeansResult', 'PrototypeBank', 'REFRESH_CROP', 'REFRESH_DEFAULTS',
    'RefreshSettings', 'bank_checkpoint_entry', 'bank_from_checkpoint', 'batched_kmeans',
    'build_bank', 'cluster_slides', 'faiss_kmeans', 'find_neighbors', 'finish_bank',
    'match_prototypes', 'max_matching_score', 'set_similarity', 'set_similarity_paired'
]
