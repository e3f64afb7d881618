"""The demo's pretraining recipes, as a table: name -> configs and slide-embedding route.

Adding a recipe to the comparison is one entry of :data:`METHODS` (and its two configs,
``configs/demo_bench_*.py`` for the full preset and ``configs/demo_quick_*.py`` for
``--quick``), e.g.::

    'DINO-4K+iBOT': Method('configs/demo_bench_dino4k_ibot.py',
                           'configs/demo_quick_dino4k_ibot.py', base='DINO-4K'),

Every method is trained with the same benchmark store, seeds and budget (the configs
set epochs and batch), embedded with its frozen teacher and evaluated on the same
splits. ``base`` names the method it adds to: the report then shows the paired
difference ``method − base`` (every method is also compared with
:data:`REFERENCE_METHOD`). ``slide`` is a key of :data:`SLIDE_ROUTES`.

Rows of the comparison mode beside each trained method (:func:`random_init_row`) and
the supervised baseline (:data:`ABMIL_ROW`) are named here too, so that the pipeline and
the report agree on them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ['ABMIL_PROTOCOL', 'ABMIL_ROW', 'DATA', 'DEFAULT_METHODS', 'METHODS', 'Method',
           'RAW_MEAN_ROW', 'REFERENCE_METHOD', 'SLIDE_ROUTES', 'SlideRoute', 'planned_pairs',
           'random_init_row']


@dataclass(frozen=True)
class SlideRoute:
    """How the slide embeddings of a trained encoder are made.

    Attributes:
        description: For the report.
        extract_args: Arguments of ``tools/extract_embeddings.py`` beyond the config,
            checkpoint, ``--store`` and ``--out``; ``()`` is the region extraction the
            demo runs in-process; None: this checkout has no such route yet (a method
            using it stops with an error naming the route).
        folder: Glob, relative to ``--out``, of the folder of slide (or region)
            embeddings the protocols read. Defaults to '.' (``--out`` itself).
    """

    description: str
    extract_args: tuple[str, ...] | None
    folder: str = '.'


#: Slide-embedding routes by key (:attr:`Method.slide`).
SLIDE_ROUTES: dict[str, SlideRoute] = {
    'mean': SlideRoute('mean of the region embeddings (HIPT)', ()),
    'whole': SlideRoute('whole-slide encoding of the slide lattice (TITAN/MOOZY)',
                        ('--level', 'slide')),
}
#: Where a method trains from (:attr:`Method.data`): the benchmark's region store, or its
#: slides written as a TRIDENT folder (every patch of the store's regions, no holes), read
#: in place as slide lattices.
DATA = ('regions', 'lattice')


@dataclass(frozen=True)
class Method:
    """One pretraining recipe of the demo.

    Attributes:
        full: Training config of the full preset (relative to the checkout).
        quick: Training config of ``--quick``.
        slide: Key of :data:`SLIDE_ROUTES`. Defaults to 'mean'.
        base: The method this one adds to (paired difference ``this − base``); None for
            none. Defaults to None.
        data: One of :data:`DATA`: what the method trains from and is embedded from.
            Defaults to 'regions'.
    """

    full: str
    quick: str
    slide: str = 'mean'
    base: str | None = None
    data: str = 'regions'

    def config(self, preset: str) -> str:
        """The training config of ``preset`` (``'full'`` or ``'quick'``)."""
        return self.quick if preset == 'quick' else self.full


METHODS: dict[str, Method] = {
    'DINO-4K': Method('configs/demo_bench_dino4k.py', 'configs/demo_quick_dino4k.py'),
    'SLPD': Method('configs/demo_bench_slpd.py', 'configs/demo_quick_slpd.py',
                   base='DINO-4K'),
    'iBOT-ALiBi': Method('configs/demo_bench_ibot_alibi.py', 'configs/demo_quick_ibot_alibi.py',
                         slide='whole', data='lattice'),
    'SLPD+iBOT-ALiBi': Method('configs/demo_bench_slpd_ibot_alibi.py',
                              'configs/demo_quick_slpd_ibot_alibi.py', slide='whole',
                              base='iBOT-ALiBi', data='lattice'),
}
#: What ``tools/run_demo.py`` trains without ``--methods``/``--compare`` (the README's demo).
DEFAULT_METHODS = ('DINO-4K', 'SLPD')
#: Every other method is compared with this one.
REFERENCE_METHOD = 'DINO-4K'
#: Row names of the references and baselines.
RAW_MEAN_ROW = 'raw mean features'
ABMIL_ROW = 'ABMIL on raw features (supervised)'
ABMIL_PROTOCOL = 'abmil'


def random_init_row(method: str) -> str:
    """Row name of ``method``'s untrained encoder."""
    return f'{method} (random init)'


def planned_pairs(methods: Sequence[str], baselines: bool
                  ) -> list[tuple[str, str, str | None]]:
    """The paired differences the report shows, as ``(base row, other row, base protocol)``.

    ``other − base`` for: every method vs :data:`REFERENCE_METHOD` and vs its
    :attr:`Method.base`; with ``baselines`` also vs its random init, vs the raw mean
    features and vs :data:`ABMIL_ROW` (each probe of the frozen encoder against the
    supervised model's AUC on the same split). ``base protocol`` is None for the same
    protocol, else the base row's protocol (:data:`ABMIL_PROTOCOL`).
    """
    pairs: list[tuple[str, str, str | None]] = []
    for name in methods:
        bases = [b for b in (REFERENCE_METHOD, METHODS[name].base) if b is not None]
        for base in dict.fromkeys(b for b in bases if b in methods and b != name):
            pairs.append((base, name, None))
        if baselines:
            pairs += [(random_init_row(name), name, None), (RAW_MEAN_ROW, name, None),
                      (ABMIL_ROW, name, ABMIL_PROTOCOL)]
    return pairs
