"""A real ingest process killed mid-way leaves an incomplete store; a re-run completes it.

The source list names three slide files and then a FIFO: the ingest commits the three
slides and blocks opening the FIFO, where the test SIGKILLs it (no test hooks in the
code under test). The FIFO is then replaced by a real file and the ingest re-run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from slpd_plugin.datasets.ingest import verify_store
from slpd_plugin.datasets.stores import StoreError, open_store, parse_redis_uri

REPO = Path(__file__).resolve().parents[2]


def _committed(store: str, redis_server) -> int:
    if store.startswith('redis://'):
        return redis_server.client().llen(f'{parse_redis_uri(store).prefix}:journal')
    journal = Path(store) / 'journal.jsonl'
    return len(journal.read_text().splitlines()) if journal.exists() else 0


@pytest.mark.parametrize('backend', ['memmap', 'redis'])
def test_killed_ingest_resumes(backend, tmp_path, make_slides, write_slide, load_tool, request):
    redis_server = request.getfixturevalue('redis_server') if backend == 'redis' else None
    store = (request.getfixturevalue('redis_store_uri') if backend == 'redis'
             else str(tmp_path / 'store'))
    src, truth = make_slides('slpd_pt', counts=(3, 4, 2))
    fifo = src / 'slide-3.pt'
    os.mkfifo(fifo)
    listing = tmp_path / 'slides.txt'
    listing.write_text(''.join(f'src/slide-{i}.pt\n' for i in range(4)))

    proc = subprocess.Popen([sys.executable, str(REPO / 'tools' / 'ingest.py'), str(listing),
                             '--store', store, '--no-progress'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while _committed(store, redis_server) < 3:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, 'ingest did not commit 3 slides in 60 s'
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -9
    with pytest.raises(StoreError, match='incomplete: an ingest into it was interrupted'):
        open_store(store)

    fifo.unlink()
    last = np.random.default_rng(3).standard_normal((5, 8, 16, 16)).astype(np.float32)
    write_slide(src, 'slide-3', 'slpd_pt', last)
    truth['slide-3'] = (last, None)
    argv = [str(listing), '--store', store, '--no-progress', '--verify']
    assert load_tool('ingest').main(argv) == 0

    done = open_store(store)
    assert done.slide_ids == [f'slide-{i}' for i in range(4)]
    assert done.num_regions == 3 + 4 + 2 + 5
    for i, (grids, _) in enumerate(truth.values()):
        np.testing.assert_array_equal(done.read_slide(i), grids.astype(np.float16))
    assert verify_store(store, progress=False) == 14
    if backend == 'memmap':
        lines = (Path(store) / 'journal.jsonl').read_text().splitlines()
        assert [json.loads(x)['record']['slide_id'] for x in lines] == done.slide_ids
