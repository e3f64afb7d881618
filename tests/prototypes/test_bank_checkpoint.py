"""The bank's checkpoint entry: written by the hook, read by the hook and the tools."""
from __future__ import annotations

import pytest
import torch

from slpd_plugin.prototypes import CKPT_KEY, bank_checkpoint_entry, bank_from_checkpoint, build_bank


def test_entry_round_trips_weights_only_with_its_epoch(regions, tmp_path):
    embeddings, slide_index = regions([9, 7, 12], dim=8, seed=0)
    bank = build_bank(embeddings, slide_index, num_clusters=2, min_regions=4)
    torch.save({CKPT_KEY: bank_checkpoint_entry(bank, epoch=5)}, tmp_path / 'c.pth')
    loaded, epoch = bank_from_checkpoint(torch.load(tmp_path / 'c.pth', weights_only=True))
    assert epoch == 5
    for name, value in bank.state_dict().items():
        assert torch.equal(getattr(loaded, name), value), name


def test_no_entry_is_none_and_a_bad_entry_is_an_error(regions):
    assert bank_from_checkpoint({'state_dict': {}}) is None
    embeddings, slide_index = regions([6, 6], dim=4, seed=1)
    state = build_bank(embeddings, slide_index, num_clusters=2, min_regions=3).state_dict()
    with pytest.raises(ValueError, match='no "epoch"'):
        bank_from_checkpoint({CKPT_KEY: state})
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        bank_from_checkpoint({CKPT_KEY: dict(state, epoch=torch.tensor(0),
                                             extra=torch.zeros(1))})
