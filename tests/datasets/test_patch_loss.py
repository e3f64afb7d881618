"""What ingest drops: patches in regions below ``min_tissue`` are counted against the
patches in the file, per slide and in total, by the ingest summary and inspect_store,
with a warning naming each slide that lost more than 10 % of them."""
from __future__ import annotations

import re

import numpy as np
from patch_files import write_trident

from slpd_plugin.datasets.stores.report import patch_loss_lines

G = 16  # patches per region side


def _slide(isolated: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """One full region of G x G patches, and ``isolated`` patches far apart, each alone
    in a region of its own (tissue 1/256, below any min_tissue)."""
    block = [(c, r) for r in range(G) for c in range(G)]
    lonely = [(3 * G * (i + 1), 3 * G * (i + 1)) for i in range(isolated)]
    coords = np.array(block + lonely, dtype=np.int64) * 256
    return coords, rng.standard_normal((len(coords), 4)).astype(np.float32)


def test_ingest_and_inspect_report_patches_dropped(tmp_path, load_tool, capsys):
    rng = np.random.default_rng(0)
    lost = {'lossy': 40, 'fine': 5}  # 40 of 296 (13.5 %) and 5 of 261 (1.9 %)
    for name, isolated in lost.items():
        write_trident(tmp_path / 'src' / f'{name}.h5', *_slide(isolated, rng))
    assert load_tool('ingest').main([str(tmp_path / 'src'), '--format', 'trident',
                                     '--store', str(tmp_path / 'st'), '--no-progress']) == 0
    out = capsys.readouterr().out
    total = 2 * G * G + sum(lost.values())
    kept = 2 * G * G
    assert (f'patches: {total:,} in the files, {kept:,} kept in regions '
            f'({100 * kept / total:.1f} %)') in out
    warning = re.search(r'warning: (\d+) slide\(s\) lost more than 10% .*', out).group(0)
    assert warning.startswith('warning: 1 slide(s)')  # 'fine' lost under 10 %
    assert f'lossy lost 40 of {G * G + 40} (14 %)' in warning and 'fine lost' not in warning

    assert load_tool('inspect_store').main([str(tmp_path / 'st')]) == 0
    report = capsys.readouterr().out
    assert warning in report
    assert re.search(rf'^  lossy\s.*\s{G * G}/{G * G + 40}\s', report, flags=re.M)
    assert re.search(rf'^  fine\s.*\s{G * G}/{G * G + 5}\s', report, flags=re.M)


def test_patch_loss_lines_threshold_and_silence():
    assert patch_loss_lines([]) == []
    lines = patch_loss_lines([('a', 100, 90), ('b', 100, 89)], threshold=0.10)
    assert lines[0] == 'patches: 200 in the files, 179 kept in regions (89.5 %)'
    assert lines[1].endswith('b lost 11 of 100 (11 %)')  # a lost exactly 10 %: not named
