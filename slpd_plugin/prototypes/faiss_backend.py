"""k-means through faiss, slide by slide, with the original SLPD settings.

Shapes: S = slides, L = padded regions per slide, D = embedding dim, K = clusters.

faiss has no batched k-means, so this loops over slides; it reuses one index (reset
between slides). When faiss was built with GPU support and CUDA is available the index
lives on the rank's own GPU (torch's current device, or the device of the input), and
the ``StandardGpuResources`` (faiss's temporary memory, outside torch's allocator) are
made once per process and device and reused by every call. It returns the same
``KMeansResult`` as :func:`~slpd_plugin.prototypes.kmeans.batched_kmeans`, so the two
are interchangeable.

faiss is optional (see :mod:`.faiss_import`); for this backend install exactly one:
``pip install -e '.[cpu]'`` (faiss-cpu) or ``'.[gpu]'`` (faiss-gpu >= 1.14, CUDA 12
wheels); both provide the module ``faiss``.
"""
from __future__ import annotations

from typing import Callable, Generic, Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor

from .faiss_import import faiss_installed, load_faiss
from .kmeans import KMeansResult

BACKEND = 'the faiss k-means backend'

R = TypeVar('R')


class FlatIndex(Protocol):
    """The part of a faiss flat L2 index (``IndexFlatL2`` or ``GpuIndexFlatL2``) used here."""

    def reset(self) -> None:
        """Remove every vector."""

    def add(self, x: np.ndarray) -> None:
        """Append the rows of ``x`` ``(n, D)`` float32."""

    def reconstruct_n(self, start: int, count: int) -> np.ndarray:
        """Vectors ``start .. start + count - 1``, ``(count, D)``."""

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Squared distances and ids of the ``k`` nearest vectors of each row, ``(n, k)``."""


class PerDeviceCache(Generic[R]):
    """One object per CUDA device index, made by ``factory(device)`` on first use.

    Example:
        >>> cache = PerDeviceCache(lambda device: object())
        >>> cache.get(0) is cache.get(0)
        True
    """

    def __init__(self, factory: Callable[[int], R]) -> None:
        self.factory = factory
        self._items: dict[int, R] = {}

    def get(self, device: int) -> R:
        """The object of CUDA device ``device``, made on the first call."""
        if device not in self._items:
            self._items[device] = self.factory(device)
        return self._items[device]


def faiss_info() -> dict:
    """The installed faiss: ``version``, ``gpu_build`` and ``num_gpus``.

    ``version`` is None when faiss is not installed, ``gpu_build`` says whether it has
    GPU support, ``num_gpus`` counts the GPUs it sees (0 for a CPU build).
    """
    if not faiss_installed():
        return dict(version=None, gpu_build=False, num_gpus=0)
    faiss = load_faiss(BACKEND)
    gpu_build = hasattr(faiss, 'StandardGpuResources')
    return dict(version=faiss.__version__, gpu_build=gpu_build,
                num_gpus=faiss.get_num_gpus() if gpu_build else 0)


def faiss_gpu_device(device: torch.device) -> int | None:
    """The CUDA device faiss should cluster data of ``device`` on, or None for the CPU.

    That is ``device`` itself for CUDA data and torch's current GPU for CPU data; None
    without a GPU build of faiss or without CUDA.
    """
    info = faiss_info()
    if not info['gpu_build'] or info['num_gpus'] == 0 or not torch.cuda.is_available():
        return None
    if device.type == 'cuda' and device.index is not None:
        return device.index
    return torch.cuda.current_device()


def _gpu_resources(device: int) -> object:
    return load_faiss(BACKEND).StandardGpuResources()  # binds its per-device state on first use


GPU_RESOURCES = PerDeviceCache(_gpu_resources)  # reused by every call of this process


def describe_refresh(backend: str, device: torch.device) -> tuple[str, str | None]:
    """A log line naming the refresh's k-means, its faiss and device, and a warning or None.

    The warning is given when the faiss backend of a CUDA run would fall back to the
    CPU because the installed faiss has no GPU support.

    Args:
        backend: The refresh's k-means backend, ``'torch'`` or ``'faiss'``.
        device: The device of the model (and of the refresh's embeddings).
    """
    if backend == 'faiss':
        load_faiss(BACKEND)
    info = faiss_info()
    build = (f"GPU build, sees {info['num_gpus']} GPU(s)" if info['gpu_build']
             else 'CPU build')
    faiss_text = (f"faiss {info['version']} ({build})" if info['version']
                  else 'faiss not installed, needed')
    if backend != 'faiss':
        return (f'prototype refresh: k-means backend {backend} on {device}; {faiss_text} '
                f'only for the neighbour shortlist'), None
    gpu = faiss_gpu_device(device) if device.type == 'cuda' else None
    where = 'cpu' if gpu is None else f'cuda:{gpu}'
    line = f'prototype refresh: k-means backend {faiss_text} on {where}'
    if device.type == 'cuda' and gpu is None:
        return line, (f'{faiss_text} cannot use the GPU: the faiss k-means of this CUDA '
                      "run falls back to the CPU. Install faiss-gpu instead of faiss-cpu: "
                      "pip uninstall -y faiss-cpu && pip install -e '.[gpu]'")
    return line, None


def _flat_l2_index(dim: int, device: int | None) -> FlatIndex:
    """A flat L2 index on GPU ``device``, or on the CPU when ``device`` is None.

    A GPU index uses this process's cached resources of that device.
    """
    faiss = load_faiss(BACKEND)
    if device is None:
        return faiss.IndexFlatL2(dim)
    config = faiss.GpuIndexFlatConfig()
    config.device = device
    return faiss.GpuIndexFlatL2(GPU_RESOURCES.get(device), dim, config)


def faiss_kmeans(x: Tensor, mask: Tensor, k: int, iters: int = 10, restarts: int = 5,
                 seed: int = 0) -> KMeansResult:
    """k-means of each slide with ``faiss.Clustering`` (L2, random init), as SLPD does.

    faiss keeps the restart with the lowest objective. A slide with fewer than ``k``
    valid points (faiss refuses those) gets its points repeated cyclically as centroids;
    a slide with none gets zero centroids. The returned assignments and inertia are
    recomputed against the returned centroids.

    Args:
        x: Points with shape (S, L, D). Values at masked positions are ignored.
        mask: Validity of each point with shape (S, L), bool.
        k: Number of clusters K.
        iters: Lloyd iterations (faiss ``niter``). Defaults to 10.
        restarts: faiss ``nredo``. Defaults to 5.
        seed: faiss ``seed``, the same for every slide. Defaults to 0.

    Returns:
        KMeansResult: centroids (S, K, D), assignments (S, L), inertia (S,), on the
        device of ``x``.
    """
    if x.dim() != 3 or mask.shape != x.shape[:2]:
        raise ValueError(f'x must be (S, L, D) and mask (S, L), got {tuple(x.shape)} '
                         f'and {tuple(mask.shape)}')
    if k < 1 or iters < 0 or restarts < 1:
        raise ValueError(f'need k >= 1, iters >= 0, restarts >= 1; got k={k}, '
                         f'iters={iters}, restarts={restarts}')
    faiss = load_faiss(BACKEND)
    num_slides, length, dim = x.shape
    points = x.detach().float().cpu().numpy()
    valid = mask.cpu().numpy()
    centroids = np.zeros((num_slides, k, dim), dtype=np.float32)
    assignments = np.full((num_slides, length), -1, dtype=np.int64)
    inertia = np.zeros(num_slides, dtype=np.float32)
    index = _flat_l2_index(dim, faiss_gpu_device(x.device))
    for s in range(num_slides):
        xs = np.ascontiguousarray(points[s][valid[s]])
        if len(xs) == 0:
            continue
        index.reset()
        if len(xs) < k:
            index.add(xs[np.arange(k) % len(xs)])
        else:
            clustering = faiss.Clustering(dim, k)
            clustering.niter = iters
            clustering.nredo = restarts
            clustering.seed = seed
            # Only silences faiss' "please provide at least K*39 points" warning.
            clustering.min_points_per_centroid = 1
            clustering.train(xs, index)
        centroids[s] = index.reconstruct_n(0, k)
        dist, nearest = index.search(xs, 1)
        assignments[s, valid[s]] = nearest[:, 0]
        inertia[s] = dist.sum()
    return KMeansResult(
        torch.from_numpy(centroids).to(x.device),
        torch.from_numpy(assignments).to(x.device),
        torch.from_numpy(inertia).to(x.device))
