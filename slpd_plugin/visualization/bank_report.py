"""Text reports of a prototype bank: its health summary, and one slide in detail.

Reports are plain dicts (printable as JSON) with a ``format_*`` function each that turns
them into the lines ``tools/inspect_bank.py`` prints.

Letters: ``S`` slides, ``N`` regions, ``K`` prototypes per slide, ``D`` embedding dim,
``r`` neighbours per slide.
"""
from __future__ import annotations

import numpy as np

from slpd_plugin.checkpoints.reading import BankCheckpoint
from slpd_plugin.datasets.stores import SlideRecord


def bank_overview(loaded: BankCheckpoint, slide_ids: list[str] | None = None) -> dict:
    """Sizes and health of a checkpoint's bank.

    Args:
        loaded: The checkpoint's bank.
        slide_ids: The store's slide ids in store order, to name the slides; None
            lists indices. Defaults to None.

    Returns:
        dict: ``checkpoint``, ``epoch`` (the bank was built at its start), ``num_slides``
        S, ``num_regions`` N, ``num_prototypes`` K, ``embedding_dim`` D,
        ``num_neighbors`` r, ``valid_slides``, ``slides_with_prototypes`` (their indices),
        ``slide_ids_with_prototypes`` (their ids; None without ``slide_ids``) and
        ``summary`` (the scalars that :meth:`PrototypeBank.summary` logs after a
        refresh).
    """
    bank = loaded.bank
    num_slides, num_k, dim = bank.centroids.shape
    return dict(checkpoint=str(loaded.path), epoch=loaded.epoch, num_slides=num_slides,
                num_regions=len(bank.assignments), num_prototypes=num_k, embedding_dim=dim,
                num_neighbors=bank.neighbors.shape[1], valid_slides=int(bank.valid.sum()),
                slides_with_prototypes=bank.valid.nonzero().flatten().tolist(),
                slide_ids_with_prototypes=None if slide_ids is None else [
                    slide_ids[i] for i in bank.valid.nonzero().flatten().tolist()],
                summary=bank.summary())


def format_bank_overview(overview: dict, max_listed: int = 30) -> list[str]:
    """The lines that present :func:`bank_overview`.

    Args:
        overview: Output of :func:`bank_overview`.
        max_listed: Most slides listed as having prototypes. Defaults to 30.
    """
    ids = overview.get('slide_ids_with_prototypes')
    listed = ids if ids is not None else overview['slides_with_prototypes']
    what = 'ids' if ids is not None else 'indices; --store names them'
    more = f' ... ({len(listed) - max_listed} more)' if len(listed) > max_listed else ''
    lines = [
        f'checkpoint: {overview["checkpoint"]}',
        f'bank built at the start of epoch {overview["epoch"]} (0-based)',
        f'slides: {overview["num_slides"]} ({overview["valid_slides"]} with prototypes)',
        f'slides with prototypes ({what}): {" ".join(map(str, listed[:max_listed]))}{more}',
        f'regions: {overview["num_regions"]}',
        f'prototypes per slide (K): {overview["num_prototypes"]}, '
        f'dim {overview["embedding_dim"]}',
        f'neighbours per slide (r): {overview["num_neighbors"]}',
        'summary:',
    ]
    width = max(map(len, overview['summary']))
    lines += [f'  {key:<{width}}  {value:.6g}' for key, value in overview['summary'].items()]
    return lines


def slide_report(loaded: BankCheckpoint, slide: int, records: list[SlideRecord]) -> dict:
    """One slide's prototypes, assignments and neighbours.

    Args:
        loaded: The checkpoint's bank.
        slide: The slide's position in the store.
        records: The store's slide records (ids, offsets, counts).

    Returns:
        dict: ``index``, ``slide_id``, ``offset``, ``num_regions``, ``has_prototypes``,
        ``inertia`` (None without prototypes), ``prototypes`` (per prototype: ``k``,
        ``size``, ``norm``), ``assignments`` (prototype of each region, in order; -1
        without prototypes) and ``neighbors`` (per neighbour: ``rank``, ``index``,
        ``slide_id``, ``similarity``, ``matched``: for each prototype ``k`` of the slide,
        the neighbour's prototype it is matched to).
    """
    bank, rec = loaded.bank, records[slide]
    valid = bool(bank.valid[slide])
    report = dict(index=slide, slide_id=rec.slide_id, offset=rec.offset,
                  num_regions=rec.count, has_prototypes=valid,
                  inertia=float(bank.inertia[slide]) if valid else None,
                  prototypes=[], neighbors=[],
                  assignments=bank.assignments[rec.offset:rec.offset + rec.count].tolist())
    if not valid:
        return report
    norms = bank.centroids[slide].norm(dim=-1).tolist()
    report['prototypes'] = [dict(k=k, size=int(size), norm=norms[k])
                            for k, size in enumerate(bank.cluster_sizes[slide].tolist())]
    for j, nb in enumerate(bank.neighbors[slide].tolist()):
        if nb < 0:
            continue
        report['neighbors'].append(dict(
            rank=j + 1, index=nb, slide_id=records[nb].slide_id,
            similarity=float(bank.neighbor_similarity[slide, j]),
            matched=bank.matched[slide, :, j].tolist()))
    return report


def format_slide_report(report: dict) -> list[str]:
    """The lines that present :func:`slide_report`."""
    lines = [f'slide {report["index"]}: {report["slide_id"]} ({report["num_regions"]} '
             f'regions, store regions {report["offset"]}..'
             f'{report["offset"] + report["num_regions"] - 1})']
    if not report['has_prototypes']:
        return lines + ['  no prototypes (fewer regions than min_regions): this slide only '
                        'gets the DINO loss']
    lines += [f'  k-means inertia: {report["inertia"]:.6g}', '  prototypes:',
              '    k  regions  norm']
    lines += [f'    {p["k"]}  {p["size"]:>7}  {p["norm"]:.4f}' for p in report['prototypes']]
    assignments = np.asarray(report['assignments'])
    lines.append('  assignments (prototype of each region, in store order):')
    lines += [f'    {" ".join(map(str, row))}' for row in np.array_split(
        assignments, max(1, int(np.ceil(len(assignments) / 32))))]
    if not report['neighbors']:
        lines.append('  neighbours: none (no other slide has prototypes)')
    for nb in report['neighbors']:
        pairs = ', '.join(f'{k}->{m}' for k, m in enumerate(nb['matched']))
        lines += [f'  neighbour {nb["rank"]}: slide {nb["index"]}: {nb["slide_id"]}, '
                  f'similarity {nb["similarity"]:.4f}',
                  f'    matched prototypes (this slide -> neighbour): {pairs}']
    return lines
