"""Padding regions by slide against a plain loop."""
from __future__ import annotations

import torch

from slpd_plugin.prototypes.packing import pack_slides, slide_layout


def test_pack_equals_loop(regions):
    embeddings, slide_index = regions([3, 0, 5, 1, 4], dim=4, seed=0)
    layout = slide_layout(slide_index, 5)
    slides = torch.tensor([4, 0, 1, 2])
    points, mask, region_ids = pack_slides(embeddings, layout, slides, length=5)
    for row, s in enumerate(slides.tolist()):
        members = [i for i in range(len(slide_index)) if slide_index[i] == s]
        assert region_ids[row, :len(members)].tolist() == members
        assert (region_ids[row, len(members):] == -1).all()
        assert mask[row].tolist() == [i < len(members) for i in range(5)]
        assert torch.equal(points[row, :len(members)], embeddings[members])
