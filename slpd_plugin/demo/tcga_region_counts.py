"""Region counts of real TCGA slides, to give synthetic slides realistic sizes.

Derived from ``shared/data/slpd/tcga_brca_4k_subset.json`` (SLPD's region index for
TCGA-BRCA: one entry per 4096-px region with ``slide_id``, ``slide_index``,
``region_index``, ``dataset_index``). That file covers the first 180 BRCA slides
(``slide_index`` 0-179 of ``tcga_brca_WSI.json``, 9,734 regions); the count of a slide
is its number of distinct ``region_index`` values, listed here in ``slide_index`` order:
min 6, median 51, mean 54.1, max 124. Derivation::

    per = {}
    for r in json.load(open('tcga_brca_4k_subset.json')).values():
        per.setdefault(r['slide_index'], set()).add(r['region_index'])
    counts = [len(per[i]) for i in sorted(per)]

The ``*_WSI.json`` files map ids to slides only (one entry per slide), so they give no
per-slide counts. For TCGA-NSCLC only the total is known: 1,041 slides
(``tcga_lung_WSI.json``) and 62,853 regions (the BRCA regions' ``dataset_index`` starts
at 62,853, after the lung regions), a mean of 60.4 regions per slide.
"""
from __future__ import annotations

BRCA_REGION_COUNTS: tuple[int, ...] = (
    68, 19, 50, 87, 59, 82, 38, 10, 61, 54, 44, 20, 92, 49, 124, 74, 24, 37,
    64, 79, 24, 55, 59, 72, 76, 49, 28, 16, 29, 47, 57, 71, 49, 51, 40, 56,
    18, 38, 36, 45, 23, 40, 8, 79, 95, 27, 94, 87, 33, 87, 66, 12, 19, 85,
    46, 93, 72, 45, 13, 55, 57, 33, 50, 47, 45, 55, 77, 70, 66, 29, 114, 80,
    86, 48, 34, 47, 43, 65, 112, 17, 55, 38, 38, 51, 26, 47, 7, 73, 90, 67,
    67, 80, 67, 11, 95, 99, 80, 38, 62, 33, 66, 14, 70, 17, 118, 9, 18, 71,
    16, 36, 65, 23, 90, 90, 43, 34, 54, 70, 37, 79, 44, 94, 42, 47, 11, 43,
    105, 118, 41, 55, 54, 68, 104, 23, 84, 22, 59, 41, 43, 57, 52, 76, 97, 40,
    98, 50, 82, 62, 80, 68, 27, 12, 34, 30, 61, 63, 109, 106, 47, 93, 75, 42,
    29, 30, 89, 32, 6, 19, 24, 32, 60, 46, 58, 14, 48, 54, 65, 36, 13, 71,
)
