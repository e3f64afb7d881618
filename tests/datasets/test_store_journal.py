"""The store journal (datasets/stores/journal.py): one format for both writers and the
store report; a torn last line is an uncommitted slide, a damaged earlier line an error."""
import json

import numpy as np
import pytest

from slpd_plugin.datasets import StoreError, open_store, open_writer
from slpd_plugin.datasets.stores import journal
from slpd_plugin.datasets.stores.report import store_report


def _grids(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 4, 16, 16)).astype(np.float32)


def _interrupted(path, counts=(3, 2)) -> None:
    writer = open_writer(str(path), channels=4)
    for s, n in enumerate(counts):
        writer.add_slide(f's{s}', _grids(n, s))


def test_writer_resumes_past_a_torn_last_line(tmp_path):
    path = tmp_path / 'store'
    _interrupted(path)
    lines = (path / journal.JOURNAL_FILE).read_text().splitlines()
    # slide s1's data is on disk but its journal line was cut by a crash
    (path / journal.JOURNAL_FILE).write_text(lines[0] + '\n' + lines[1][:25])
    assert [s['slide_id'] for s in store_report(path)['slides']] == ['s0']
    writer = open_writer(str(path), channels=4)
    assert [r.slide_id for r in writer.records] == ['s0']
    writer.add_slide('s1', _grids(2, 1))
    writer.finalize()
    store = open_store(str(path))
    assert store.slide_ids == ['s0', 's1'] and store.verify() == []
    np.testing.assert_array_equal(store.read_slide(1), _grids(2, 1).astype(np.float16))


def test_a_damaged_earlier_line_is_an_error(tmp_path):
    path = tmp_path / 'store'
    _interrupted(path, counts=(3, 2, 2))
    lines = (path / journal.JOURNAL_FILE).read_text().splitlines()
    lines[1] = lines[1][:25]
    (path / journal.JOURNAL_FILE).write_text('\n'.join(lines) + '\n')
    for read in (lambda: open_writer(str(path), channels=4), lambda: store_report(path)):
        with pytest.raises(StoreError, match=r'journal line 2 of 3 is not JSON'):
            read()


def test_entries_round_trip_with_masks_and_provenance(tmp_path):
    path = tmp_path / 'store'
    writer = open_writer(str(path), channels=4)
    writer.set_provenance(dict(encoder='conch', patch_px=256))
    masks = np.ones((3, 16, 16), np.uint8)
    masks[0, :2] = 0
    writer.add_slide('s0', _grids(3, 0), masks=masks)
    [entry] = journal.parse_lines((path / journal.JOURNAL_FILE).read_text().splitlines(),
                                  str(path))
    assert entry['has_masks'] and entry['provenance'] == dict(encoder='conch', patch_px=256)
    assert journal.entry_record(entry) == writer.records[0]
    line = journal.encode_entry(writer.records[0], channels=4, dtype=np.dtype('<f2'),
                                has_coords=False, grid_size=16,
                                provenance=entry['provenance'])
    assert json.loads(line) == entry


@pytest.mark.parametrize('kwargs, message', [
    (dict(channels=8), r'holds C=4, writer asked for C=8'),
    (dict(dtype='float32'), r'holds float16 grids, writer asked for float32'),
    (dict(grid_size=8), r'holds 16x16 grids, writer asked for G=8'),
])
def test_writer_refuses_other_settings(tmp_path, kwargs, message):
    path = tmp_path / 'store'
    _interrupted(path)
    with pytest.raises(StoreError, match=message):
        open_writer(str(path), **{'channels': 4, **kwargs})
