"""SLPD end to end: prototype refresh, resume after a refresh, DDP, no valid slide."""
import json
import shutil

import pytest
from mmengine.config import Config

from tests.utils import ROOT, logged_scalars, run_train, shared_run

pytestmark = pytest.mark.slow
CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd.py'


def train(work, store, *options, **kw):
    return run_train(work, f'train_dataloader.dataset.store={store}', 'train_cfg.max_epochs=3',
                     *options, config=CONFIG, **kw)


def fingerprints(work, rank=0):
    return json.loads((work / 'consistency' / f'rank{rank}.json').read_text())


@pytest.fixture(scope='module')
def slpd_run(tmp_path_factory):
    return shared_run(tmp_path_factory, 'train_cfg.max_epochs=3', config=CONFIG)


def test_prototype_losses_start_after_warm_up(slpd_run):
    rows = [r for r in logged_scalars(slpd_run / 'work') if 'loss' in r]
    per_epoch = len(rows) // 3
    assert not any('loss_intra' in r for r in rows[:per_epoch])
    later = rows[per_epoch:]
    # The prototype terms are part of the loss that was optimised. Logged values are
    # means over the last `window` steps, so the sum holds once the window of `loss` no
    # longer reaches into the warm-up (whose steps have no prototype terms).
    window = Config.fromfile(CONFIG).get('log_processor', {}).get('window_size', 10)
    assert len(later) >= window + 2
    for r in later[window - 1:]:
        assert r['loss'] == pytest.approx(r['loss_dino'] + r['loss_intra'] + r['loss_inter'],
                                          rel=1e-5)
    for key in ('loss_intra', 'loss_inter'):  # computed per step, not a constant
        assert len({round(r[key], 6) for r in later}) > 1, key
    for r in rows[:per_epoch]:  # warm-up: the DINO term alone
        assert r['loss'] == pytest.approx(r['loss_dino'], rel=1e-5)
    log = next((slpd_run / 'work').glob('*/*.log')).read_text()
    assert log.count('prototype bank:') == 2  # refreshed at epochs 1 and 2 (0-based)
    health = [r for r in logged_scalars(slpd_run / 'work') if 'prototypes/valid_fraction' in r]
    assert len(health) == 2
    for key in ('cluster_size_p50', 'neighbor_similarity_mean', 'inertia_mean'):
        assert all(f'prototypes/{key}' in r for r in health), key
    assert 'prototypes/churn' in health[1] and 0 <= health[1]['prototypes/churn'] <= 1
    assert list((slpd_run / 'work').glob('*/vis_data/events.out.tfevents.*'))  # TensorBoard


def test_resume_after_a_refresh_gives_same_bank_and_same_losses(slpd_run, tmp_path):
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    shutil.copy(slpd_run / 'work' / 'epoch_2.pth', resumed / 'epoch_2.pth')
    train(resumed, slpd_run / 'store', extra_args=('--resume', str(resumed / 'epoch_2.pth')))
    full, again = fingerprints(slpd_run / 'work'), fingerprints(resumed)
    assert full['epoch'] == again['epoch'] == 3
    bank_keys = [k for k in full['fingerprints'] if k.startswith('bank.')]
    assert 'bank.centroids' in bank_keys and 'bank.assignments' in bank_keys
    assert {k: full['fingerprints'][k] for k in bank_keys} == \
        {k: again['fingerprints'][k] for k in bank_keys}
    before = {r['iter']: r for r in logged_scalars(slpd_run / 'work') if 'loss' in r}
    after = {r['iter']: r for r in logged_scalars(resumed) if 'loss' in r}
    assert after and min(after) > max(before) * 2 // 3
    for it, row in after.items():
        for key in ('loss_dino', 'loss_intra', 'loss_inter'):
            assert row[key] == pytest.approx(before[it][key], rel=1e-5), (it, key)


def test_two_process_ddp_refresh_gives_identical_banks(tmp_path):
    work = tmp_path / 'ddp'
    train(work, tmp_path / 'store', nproc=2)
    r0, r1 = fingerprints(work, 0), fingerprints(work, 1)
    assert r0 == r1 and 'bank.centroids' in r0['fingerprints']
    rows = [r for r in logged_scalars(work) if 'loss_intra' in r]
    assert rows and all(r['loss_inter'] > 0 for r in rows)


def test_no_slide_with_enough_regions_warns_once_and_trains_as_dino(tmp_path):
    work = tmp_path / 'work'
    train(work, tmp_path / 'store', 'default_hooks.prototype.min_regions=1000')
    log = next(work.glob('*/*.log')).read_text()
    assert log.count('no slide has >= 1000 regions') == 1
    rows = [r for r in logged_scalars(work) if 'loss' in r]
    assert len(rows) > 6 and not any('loss_intra' in r for r in rows)


def test_memory_bank_source_reuses_step_embeddings_under_ddp(tmp_path):
    work = tmp_path / 'ddp'
    train(work, tmp_path / 'store', 'default_hooks.prototype.source=memory', nproc=2)
    r0, r1 = fingerprints(work, 0), fingerprints(work, 1)
    assert r0 == r1 and 'bank.centroids' in r0['fingerprints']
    log = next(work.glob('*/*.log')).read_text()
    assert log.count('prototype refresh: reused') == 2
    rows = [r for r in logged_scalars(work) if 'loss_intra' in r]
    assert rows and all(r['loss_inter'] > 0 for r in rows)
