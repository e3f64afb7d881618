"""Per-slide ``.pt`` files -> mean-pooled slide embeddings; missing slides reported."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from slpd_plugin.evaluation import (
    index_embedding_dir,
    load_region_embeddings,
    load_slide_embeddings,
    report_missing,
)


def test_mean_pooling_tensor_dict_and_svs_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(size=(n, 4)).astype(np.float32) for n in (3, 1, 7))
    torch.save(torch.from_numpy(a), tmp_path / 'A.pt')
    torch.save({'features': torch.from_numpy(b), 'coords': torch.zeros(1, 2)},
               tmp_path / 'B.svs.pt')
    torch.save(torch.from_numpy(c).double(), tmp_path / 'C.pt')
    (tmp_path / 'notes.txt').write_text('ignored')

    emb = load_slide_embeddings(tmp_path)
    assert emb.ids == ['A', 'B', 'C']
    assert emb.num_regions == [3, 1, 7]
    assert emb.dim == 4
    expected = np.stack([a.mean(0), b.mean(0), c.mean(0)])
    np.testing.assert_allclose(emb.features, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(emb.take(['C', 'A']), expected[[2, 0]], atol=1e-6)

    only = load_slide_embeddings(tmp_path, ['B', 'Z'])
    assert only.ids == ['B'] and 'B' in only and 'A' not in only


@pytest.mark.parametrize('obj, match', [
    (torch.zeros(0), r'shape \(N, D\)'),  # a (D,) slide vector is accepted, an empty one not
    (torch.zeros(0, 4), r'N >= 1'),
    (torch.zeros(2, 3, 4), r'shape \(N, D\)'),
    ({'feats': torch.zeros(2, 4)}, 'without a "features" key'),
    ([torch.zeros(2, 4)], 'expected a tensor'),
    (torch.tensor([[0.0, float('nan')]]), 'NaN'),
])
def test_malformed_files(tmp_path: Path, obj: object, match: str) -> None:
    torch.save(obj, tmp_path / 'x.pt')
    with pytest.raises(ValueError, match=match):
        load_region_embeddings(tmp_path / 'x.pt')


def test_dim_mismatch_and_duplicate_ids(tmp_path: Path) -> None:
    torch.save(torch.zeros(2, 4), tmp_path / 'a.pt')
    torch.save(torch.zeros(2, 5), tmp_path / 'b.pt')
    with pytest.raises(ValueError, match='differs'):
        load_slide_embeddings(tmp_path)
    torch.save(torch.zeros(2, 4), tmp_path / 'a.svs.pt')
    with pytest.raises(ValueError, match="two embedding files for slide 'a'"):
        index_embedding_dir(tmp_path)
    with pytest.raises(FileNotFoundError):
        index_embedding_dir(tmp_path / 'absent')


def test_report_missing_warns_with_count_and_ids(tmp_path: Path) -> None:
    wanted = [f's{i:02d}' for i in range(10)]
    with pytest.warns(UserWarning, match=r'7 slide\(s\) in the splits have no embeddings'
                                         r'.*s00, s01, s02, s03, s04, \.\.\.'):
        report = report_missing(wanted, ['s07', 's08', 's09', 'extra'])
    assert report.count == 7
    assert report.first == ['s00', 's01', 's02', 's03', 's04']
    assert report.as_dict() == {'count': 7, 'first': report.first}


def test_report_missing_silent_when_complete(recwarn: pytest.WarningsRecorder) -> None:
    report = report_missing(['a', 'b'], ['a', 'b', 'c'])
    assert report.count == 0 and not recwarn.list
