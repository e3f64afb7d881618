"""tools/ingest.py and tools/export.py: exit codes, one-line errors, no password in output."""
from __future__ import annotations

import h5py
import numpy as np
import torch


def _grids(n=2, c=8):
    return np.random.default_rng(0).standard_normal((n, c, 16, 16)).astype(np.float32)


def test_ingest_export_cli_round_trip(src, tmp_path, write_slide, load_tool, capsys):
    xy = np.array([[0, 4096], [8192, 0]])
    write_slide(src, 'a', 'hipt_h5', _grids(), coords=xy)
    store = str(tmp_path / 'store')
    assert load_tool('ingest').main([str(src), '--store', store, '--dtype', 'float32',
                                     '--no-progress', '--verify']) == 0
    out = capsys.readouterr().out
    assert 'wrote 1 slide(s), 2 regions' in out and 'verified 2 regions' in out
    assert load_tool('export').main(['--store', store, '--out', str(tmp_path / 'out'),
                                     '--format', 'h5', '--no-progress']) == 0
    with h5py.File(tmp_path / 'out' / 'a.h5', 'r') as f:
        np.testing.assert_array_equal(f['features'][()], _grids())
        np.testing.assert_array_equal(f['coords'][()], xy)


def test_ingest_cli__bad_file_is_one_line(src, tmp_path, load_tool, capsys):
    torch.save(torch.zeros(2, 7, 8), src / 'bad.pt')
    assert load_tool('ingest').main([str(src), '--store', str(tmp_path / 's'),
                                     '--no-progress']) == 1
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and err.startswith('ingest.py: error: ') and 'bad.pt' in err


def test_ingest_cli__validates_arguments_first(tmp_path, load_tool, capsys):
    cli = load_tool('ingest')
    for argv, match in [(['--store', str(tmp_path)], 'give SRC to ingest, or --verify'),
                        ([str(tmp_path / 'nope'), '--store', 'x'], 'no such file or folder'),
                        ([str(tmp_path), '--store', 'redis://h/0?bogus=1'], 'unknown query')]:
        assert cli.main(argv) == 2 and match in capsys.readouterr().err
    assert not (tmp_path / 'x').exists()


def test_cli__redis_errors_hide_the_password(src, redis_server, write_slide, load_tool,
                                             monkeypatch, capsys):
    write_slide(src, 'a', 'slpd_pt', _grids())
    monkeypatch.setenv('BAD_PW', 'wrong-secret')
    uri = f'redis://127.0.0.1:{redis_server.port}/0?prefix=cli&password_env=BAD_PW'
    assert load_tool('ingest').main([str(src), '--store', uri, '--no-progress']) == 1
    assert load_tool('export').main(['--store', uri, '--out', str(src / 'o')]) == 1
    captured = capsys.readouterr()
    assert 'authentication failed' in captured.err
    assert 'wrong-secret' not in captured.err + captured.out
