"""What a prototype refresh is built with, and its defaults, in one place.

:class:`~slpd_plugin.engine.hooks.PrototypeHook` takes its defaults from
:data:`REFRESH_DEFAULTS`, and the tools that read a checkpoint fill what its config does
not set from the same object, so the two cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Side of the centre crop the teacher embeds at a prototype refresh: 14x14 cells of
#: the 16x16 region grid, the side of the global views (HIPT's ViT-4K crops), so the
#: prototypes live in the space of the views they are distilled into.
REFRESH_CROP = 14


@dataclass(frozen=True)
class RefreshSettings:
    """The settings that define a prototype bank.

    Attributes:
        num_clusters: Prototypes per slide ``K``.
        min_regions: Fewest regions a slide needs to get prototypes.
        num_neighbors: Neighbour slides per slide ``r``.
        embedding: ``'z'`` (normalised head bottleneck) or ``'cls'`` (backbone output).
        crop: Side of the centre crop the teacher embeds.
        assignment: How a region picks its prototype, ``'l2'`` or ``'cosine'``.

    Example:
        >>> RefreshSettings(num_clusters=2).crop
        14
    """

    num_clusters: int = 4
    min_regions: int = 32
    num_neighbors: int = 1
    embedding: str = 'z'
    crop: int = REFRESH_CROP
    assignment: str = 'l2'


#: The defaults of :class:`~slpd_plugin.engine.hooks.PrototypeHook` (NSCLC: K = 4).
REFRESH_DEFAULTS = RefreshSettings()
