"""Embed every region of a store with a trained, frozen region encoder.

Output folder (read by :mod:`slpd_plugin.evaluation` and HIPT's slide-level code)::

    {slide_id}.pt            float32 tensor (N, D): the slide's region embeddings in
                             store order (HIPT's naming and content)
    coords/{slide_id}.pt     int64 tensor (N, 2): region top-left (x, y) in level-0
                             pixels, when the store knows them (a subfolder, so that
                             ``*.pt`` in the main folder are embeddings only)
    slide_embeddings.npz     slide_id (S,) str, features (S, D) float32 = mean of each
                             slide's region embeddings, num_regions (S,) int64
    extraction.json          config, checkpoint, encoder, level ('region'), crop, store,
                             counts, D, time

With ``fmt='trident'`` the per-slide files are written in TRIDENT's layout instead
(:mod:`.trident`: ``features_<name>/<slide>.h5`` with coords and
``slide_features_<name>/<slide>.h5``); the table and ``extraction.json`` are the same.
The slide embedding here is the mean of the region embeddings (HIPT's); one pass of a
slide encoder over the whole slide is :mod:`.slide_extract`'s.

Letters: S slides, N regions of one slide, B batch, C channels, G grid side, D
embedding size.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from slpd_plugin.checkpoints.embed import embed_grids
from slpd_plugin.datasets.stores import FeatureStore
from slpd_plugin.prototypes.settings import REFRESH_CROP
from slpd_plugin.utils.progress import progress_bar

from .trident import TridentWriter

__all__ = ['CROPS', 'FORMATS', 'META_FILE', 'TABLE_FILE', 'check_slide_ids', 'check_width',
           'embed_store', 'encoder_backbone', 'extract_embeddings']

#: ``'full'`` grid (HIPT's evaluation) or the ``'center'`` crop the prototype refresh
#: embeds (:data:`~slpd_plugin.prototypes.settings.REFRESH_CROP`), by crop side.
CROPS = {'full': None, 'center': REFRESH_CROP}
FORMATS = ('hipt', 'trident')
TABLE_FILE, META_FILE, COORDS_DIR = 'slide_embeddings.npz', 'extraction.json', 'coords'


def encoder_backbone(model: nn.Module, encoder: str) -> nn.Module | None:
    """The backbone of an SLPD model's ``encoder`` (``'teacher'``/``'student'``), or None."""
    encoders = getattr(model, encoder, None)  # SLPD: ModuleDict(backbone=, head=)
    return encoders['backbone'] if isinstance(encoders, nn.ModuleDict) else None


def check_slide_ids(slide_ids: list[str], location: str) -> None:
    """Refuse slide ids that cannot be file names (empty, with a separator, hidden)."""
    bad = [s for s in slide_ids if not s or os.sep in s or s.startswith('.')]
    if bad:
        raise ValueError(f'{location}: slide ids that cannot be file names: {bad[:3]}')


def check_width(backbone: nn.Module | None, channels: int, location: str) -> None:
    """Refuse features of ``channels`` for a backbone trained on another width."""
    width = getattr(backbone, 'in_channels', None)
    if width is not None and width != channels:
        raise ValueError(f'--store {location} holds {channels}-d features, but '
                         f'the checkpoint\'s model was trained on {width}-d features '
                         '(model.backbone.in_channels): embed a store of the features it '
                         'was trained on')


class _Chunks(Dataset):
    """Consecutive blocks of regions ``[lo, hi)``, read in one store request each.

    Items are ``{'inputs': (b, C, G, G)}``, plus ``'masks'`` ``(b, G, G)`` when the
    store has holes.
    """

    def __init__(self, store: FeatureStore, batch_size: int) -> None:
        self.store = store
        self.has_holes = store.has_holes
        self.bounds = list(range(0, store.num_regions, batch_size)) + [store.num_regions]

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        block = np.arange(self.bounds[i], self.bounds[i + 1])
        chunk = dict(inputs=torch.from_numpy(np.ascontiguousarray(self.store.read(block))))
        if self.has_holes:
            chunk['masks'] = torch.from_numpy(self.store.read_masks(block))
        return chunk


@torch.no_grad()
def embed_store(model: nn.Module, store: FeatureStore, encoder: str = 'teacher',
                crop: str = 'full', batch_size: int = 64, device: str = 'cpu',
                num_workers: int = 0, progress: bool = True
                ) -> Iterator[tuple[int, torch.Tensor]]:
    """Embed every region, yielding one slide at a time.

    Args:
        model: An :class:`~slpd_plugin.models.SLPD` (its ``embed`` is used).
        store: The feature store.
        encoder: ``'teacher'`` or ``'student'``. Defaults to 'teacher'.
        crop: ``'full'`` grid or ``'center'`` crop (:data:`CROPS`). Defaults to 'full'.
        batch_size: Regions per forward pass ``B``. Defaults to 64.
        device: Torch device. Defaults to 'cpu'.
        num_workers: DataLoader workers reading the store. Defaults to 0.
        progress: Show a progress bar over regions. Defaults to True.

    Yields:
        ``(slide position in store.slides, float32 CPU tensor (N, D))`` in store order.
    """
    if crop not in CROPS:
        raise ValueError(f'crop must be one of {tuple(CROPS)}, got {crop!r}')
    check_width(encoder_backbone(model, encoder), store.channels, store.location)
    chunks = _Chunks(store, batch_size)
    store.close()  # reopened lazily in whichever process reads
    loader = DataLoader(chunks, batch_size=None,
                        num_workers=num_workers, pin_memory=device.startswith('cuda'))
    counts = [rec.count for rec in store.slides]
    slide, buffer, buffered = 0, [], 0
    bar = progress_bar(total=store.num_regions, unit='region', desc='embedding',
                       disable=not progress)
    for chunk in loader:
        grids = chunk['inputs'].to(device, non_blocking=True)  # (B, C, G, G)
        masks = chunk.get('masks')  # (B, G, G) bool, from a store with holes
        masks = None if masks is None else masks.to(device, non_blocking=True)
        buffer.append(embed_grids(model, grids, CROPS[crop], 'cls', encoder, masks).cpu())
        buffered += len(grids)
        bar.update(len(grids))
        while slide < len(counts) and buffered >= counts[slide]:
            feats = torch.cat(buffer)
            yield slide, feats[:counts[slide]].clone()
            buffer, buffered = [feats[counts[slide]:]], buffered - counts[slide]
            slide += 1
    bar.close()


def extract_embeddings(model: nn.Module, store: FeatureStore, out_dir: str | os.PathLike,
                       encoder: str = 'teacher', crop: str = 'full', batch_size: int = 64,
                       device: str = 'cpu', num_workers: int = 0, progress: bool = True,
                       provenance: dict | None = None, fmt: str = 'hipt',
                       name: str | None = None) -> dict:
    """Write per-slide embeddings, coords and the slide table (module docstring).

    Args:
        model: The model returned by :func:`~slpd_plugin.checkpoints.reading.load_encoder`.
        store: The feature store to embed.
        out_dir: Output folder (created).
        encoder: ``'teacher'`` or ``'student'``. Defaults to 'teacher'.
        crop: ``'full'`` or ``'center'``. Defaults to 'full'.
        batch_size: Regions per forward pass. Defaults to 64.
        device: Torch device. Defaults to 'cpu'.
        num_workers: Store-reading workers. Defaults to 0.
        progress: Show a progress bar. Defaults to True.
        provenance: Extra entries for ``extraction.json`` (config, checkpoint).
            Defaults to None.
        fmt: ``'hipt'`` (``{slide_id}.pt``) or ``'trident'``. Defaults to 'hipt'.
        name: Encoder name of the TRIDENT folders. Defaults to None
            (``slpd_{encoder}``).

    Returns:
        The content of ``extraction.json``.

    Raises:
        ValueError: if a slide id cannot be a file name.
    """
    check_slide_ids(store.slide_ids, store.location)
    if fmt not in FORMATS:
        raise ValueError(f'format must be one of {FORMATS}, got {fmt!r}')
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    coords = store.coords()
    trident = (TridentWriter(out, name or f'slpd_{encoder}', store.provenance)
               if fmt == 'trident' else None)
    if coords is not None and trident is None:
        (out / COORDS_DIR).mkdir(exist_ok=True)
    model = model.to(device).eval()
    start = time.time()
    means, dim = [], 0
    for s, feats in embed_store(model, store, encoder, crop, batch_size, device,
                                num_workers, progress):
        rec = store.slides[s]
        if trident is not None:
            span = None if coords is None else coords[rec.offset:rec.offset + rec.count]
            trident.write(rec.slide_id, feats.numpy(), span, rec.source)
        else:
            torch.save(feats, out / f'{rec.slide_id}.pt')
        if coords is not None and trident is None:
            torch.save(torch.from_numpy(coords[rec.offset:rec.offset + rec.count].copy()),
                       out / COORDS_DIR / f'{rec.slide_id}.pt')
        means.append(feats.mean(dim=0).numpy())
        dim = feats.shape[1]
    np.savez(out / TABLE_FILE, slide_id=np.array(store.slide_ids),
             features=np.stack(means).astype(np.float32),
             num_regions=np.array([r.count for r in store.slides], dtype=np.int64))
    meta = dict(provenance or {}, store=store.location, encoder=encoder, level='region',
                crop=crop, num_slides=store.num_slides, num_regions=store.num_regions,
                embedding_dim=int(dim), coords=coords is not None, device=device, format=fmt,
                batch_size=batch_size, seconds=round(time.time() - start, 2))
    (out / META_FILE).write_text(json.dumps(meta, indent=1))
    return meta
