"""The prototype bank: every slide's prototypes, region assignments and neighbours.

Shapes: S = slides, K = prototypes per slide, D = embedding dim, N = regions,
r = neighbour slides per slide.

In a training checkpoint the bank is the entry :data:`CKPT_KEY`: its tensors
(:meth:`PrototypeBank.state_dict`) plus ``epoch``, the 0-based epoch it was built for
(:func:`bank_checkpoint_entry`, :func:`bank_from_checkpoint`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

#: Key of the prototype bank in a training checkpoint.
CKPT_KEY = 'prototype_bank'


@dataclass
class PrototypeBank:
    """SLPD's prototypes and what the prototype losses look up in them.

    Rebuilt at each refresh by :func:`~slpd_plugin.prototypes.build.build_bank` (or
    ``cluster_slides`` on shards + ``finish_bank``); identical on every rank and saved
    in checkpoints through :meth:`state_dict`.

    Attributes:
        centroids: Prototypes ``c_{s,k}`` with shape (S, K, D), L2-normalised; zeros for
            invalid slides.
        valid: Whether each slide has prototypes (enough regions), shape (S,), bool.
        assignments: Prototype of each region within its slide, shape (N,), long in
            [0, K); -1 for regions of invalid slides.
        neighbors: The r most similar other slides, shape (S, r), long, best first; -1
            where undefined.
        matched: For prototype k of slide s and its j-th neighbour, the index of the
            nearest prototype in that neighbour, shape (S, K, r), long; -1 where
            undefined.
        neighbor_similarity: Set similarity with each neighbour, shape (S, r); NaN where
            undefined.
        inertia: k-means inertia of each slide, shape (S,); NaN for invalid slides.
        cluster_sizes: Regions assigned to each prototype, shape (S, K), long.
    """

    centroids: Tensor
    valid: Tensor
    assignments: Tensor
    neighbors: Tensor
    matched: Tensor
    neighbor_similarity: Tensor
    inertia: Tensor
    cluster_sizes: Tensor

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the bank's tensors, as used by :meth:`state_dict`."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def state_dict(self) -> dict[str, Tensor]:
        """The bank as plain tensors, loadable with ``torch.load(weights_only=True)``."""
        return {name: getattr(self, name) for name in self.field_names()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> PrototypeBank:
        """A bank from the output of :meth:`state_dict`.

        Args:
            state: Tensors by field name; extra keys are not allowed.

        Returns:
            PrototypeBank: The bank, on the device of the given tensors.
        """
        names = set(cls.field_names())
        if set(state) != names:
            raise ValueError(f'state must have exactly the keys {sorted(names)}; missing '
                             f'{sorted(names - set(state))}, unexpected '
                             f'{sorted(set(state) - names)}')
        return cls(**{name: state[name] for name in cls.field_names()})

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Replace this bank's tensors by those of ``state``, on this bank's device.

        Args:
            state: Output of :meth:`state_dict`.
        """
        loaded = self.from_state_dict(state).to(self.centroids.device)
        for name in self.field_names():
            setattr(self, name, getattr(loaded, name))

    def to(self, device: torch.device | str) -> PrototypeBank:
        """A copy of the bank with every tensor on ``device``."""
        return PrototypeBank(**{k: v.to(device) for k, v in self.state_dict().items()})

    def summary(self) -> dict[str, float]:
        """Scalars to log after a refresh; NaN where there is nothing to average.

        Returns:
            dict[str, float]: ``num_slides``, ``num_regions``, ``valid_fraction``,
            ``cluster_size_mean``/``_min``/``_max`` (over prototypes of valid slides),
            ``neighbor_similarity_mean`` (over defined neighbours) and ``inertia_mean``
            (over valid slides).
        """
        sizes = self.cluster_sizes[self.valid].float()
        similarity = self.neighbor_similarity[self.neighbors >= 0].float()
        nan = float('nan')
        return {
            'num_slides': float(len(self.valid)),
            'num_regions': float(len(self.assignments)),
            'valid_fraction': self.valid.float().mean().item() if len(self.valid) else nan,
            'cluster_size_mean': sizes.mean().item() if sizes.numel() else nan,
            'cluster_size_min': sizes.min().item() if sizes.numel() else nan,
            'cluster_size_max': sizes.max().item() if sizes.numel() else nan,
            'neighbor_similarity_mean': similarity.mean().item(),
            'inertia_mean': self.inertia[self.valid].float().mean().item(),
        }


def bank_checkpoint_entry(bank: PrototypeBank, epoch: int) -> dict[str, Tensor]:
    """The checkpoint entry ``checkpoint[CKPT_KEY]`` of a bank built for ``epoch``.

    Returns:
        The bank's tensors on the CPU, plus ``epoch`` as a 0-d int64 tensor (loadable
        with ``torch.load(weights_only=True)``).
    """
    state = {k: v.cpu() for k, v in bank.state_dict().items()}
    return dict(state, epoch=torch.tensor(epoch))


def bank_from_checkpoint(checkpoint: dict) -> tuple[PrototypeBank, int] | None:
    """The bank saved in a training checkpoint and the epoch it was built for.

    Args:
        checkpoint: A loaded checkpoint.

    Returns:
        ``(bank, epoch)`` on the device the tensors were loaded to, or None when the
        checkpoint has no bank (saved before the first refresh, or a DINO-only run).

    Raises:
        ValueError: if the entry is not a bank (wrong keys, no ``epoch``).
    """
    state = dict(checkpoint.get(CKPT_KEY) or {})
    if not state:
        return None
    if 'epoch' not in state:
        raise ValueError(f'the {CKPT_KEY!r} entry has no "epoch"')
    epoch = int(state.pop('epoch'))
    return PrototypeBank.from_state_dict(state), epoch
