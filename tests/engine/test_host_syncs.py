"""No host sync per training step: ops that make the host wait for a GPU run only where
the logger logs, and the NaN guard still names the first bad step and saves nothing after.

The Runner trains the tiny configs in this process. Test hooks bracket every training
iteration (``before_train_iter`` of the first hook to ``after_train_iter`` of the last,
backward included: CPU autograd runs on the calling thread) with a dispatch mode that
records the aten ops forcing a sync on CUDA and a function mode that records the
Python-level conversions (``.tolist()``, ``.numpy()``, ``.cpu()``, ``float()``...), which
on CPU tensors never reach the dispatcher.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from slpd_plugin.engine.hooks import NonFiniteLossError
from slpd_plugin.engine.hooks.weights_only_checkpoint_hook import decode_message_hub
from slpd_plugin.engine.launch import build_runner, prepare_config
from tests.mask_stores import holey_slides, write_holey_store
from tests.utils import ROOT, TINY_CONFIG, logged_scalars

pytestmark = pytest.mark.slow
SLPD_CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd.py'
MASKS_CONFIG = ROOT / 'tests' / 'configs' / 'tiny_slpd_masks.py'
LOG_INTERVAL = 3
SYNC_OPS = {'_local_scalar_dense', 'nonzero', 'masked_select', 'equal', 'is_nonzero',
            'bincount', 'histc'}
BOOL_INDEX_OPS = {'index', 'index_put', 'index_put_', '_index_put_impl_'}
SYNC_METHODS = {'item', 'tolist', 'numpy', 'cpu', '__bool__', '__float__', '__int__',
                '__index__'}


def forces_sync(func, args: tuple, kwargs: dict) -> bool:
    """Whether this aten call makes the host wait for a CUDA device."""
    name = func.overloadpacket.__name__
    if name in SYNC_OPS or name.lstrip('_').startswith('unique'):
        return True
    if name == 'repeat_interleave':  # the Tensor overloads size their output on the host
        return func._overloadname.endswith('Tensor') and kwargs.get('output_size') is None
    if name in BOOL_INDEX_OPS:  # x[mask] runs nonzero inside the op
        return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                   for i in args[1] if i is not None)
    return False


class SyncOps(TorchDispatchMode):
    """Records the aten ops that force a host sync on CUDA."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if forces_sync(func, args, kwargs):
            self.ops.append(str(func))
        return func(*args, **kwargs)


class SyncMethods(TorchFunctionMode):
    """Records tensor-to-Python conversions (host copies on CUDA)."""

    def __init__(self, ops: list[str]) -> None:
        super().__init__()
        self.ops = ops

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, '__name__', None) in SYNC_METHODS:
            self.ops.append(f'Tensor.{func.__name__}')
        return func(*args, **(kwargs or {}))


class StepWatch:
    """Per training iteration: the sync-forcing ops and the outputs, via two hooks."""

    def __init__(self) -> None:
        self.ops: dict[int, list[str]] = {}  # runner.iter -> ops
        self.batch_idx: dict[int, int] = {}
        self.outputs: dict[int, dict[str, torch.Tensor]] = {}  # detached: no sync
        self._modes: tuple[SyncOps, SyncMethods] | None = None

    def start(self, runner, batch_idx: int) -> None:
        dispatch = SyncOps()
        self._modes = (dispatch, SyncMethods(dispatch.ops))
        for mode in self._modes:
            mode.__enter__()
        self.batch_idx[runner.iter] = batch_idx

    def stop(self, runner=None) -> None:
        if self._modes is None:
            return
        for mode in reversed(self._modes):
            mode.__exit__(None, None, None)
        if runner is not None:
            self.ops[runner.iter] = self._modes[0].ops
        self._modes = None

    def hooks(self) -> list[tuple[Hook, str]]:
        watch = self

        class First(Hook):
            def before_train_iter(self, runner, batch_idx, data_batch=None):
                watch.start(runner, batch_idx)

            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                watch.outputs[runner.iter] = {k: v.detach() for k, v in outputs.items()}

        class Last(Hook):
            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                watch.stop(runner)

        return [(First(), 'HIGHEST'), (Last(), 'LOWEST')]


def build(work: Path, store: Path, options: dict, config: Path = TINY_CONFIG):
    """The config's runner, built in this process by ``tools/train.py``'s own steps."""
    options = {'train_dataloader.dataset.store': str(store),
               'experiment_name': work.parent.name, **options}
    return build_runner(prepare_config(str(config), work_dir=str(work), cfg_options=options))


def train(work: Path, store: Path, watch: StepWatch, options: dict,
          config: Path = TINY_CONFIG):
    """Train with the watch's hooks added; returns the runner."""
    runner = build(work, store, options, config)
    for hook, priority in watch.hooks():
        runner.register_hook(hook, priority)
    try:
        runner.train()
    finally:
        watch.stop()  # a raise inside an iteration leaves the modes entered
    return runner


def losses(watch: StepWatch, key: str) -> list[float]:
    """Every step's value of ``key``, in order."""
    return [float(out[key]) for _, out in sorted(watch.outputs.items()) if key in out]


@pytest.fixture(scope='module')
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('syncs') / 'store'  # generated by the first run


def is_log_point(batch_idx: int, iters_per_epoch: int) -> bool:
    return (batch_idx + 1) % LOG_INTERVAL == 0 or batch_idx + 1 == iters_per_epoch


def test_the_watch_sees_backward():
    """Backward runs inside the watch's modes (on CPU, on the calling thread)."""

    class ItemInBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: torch.Tensor) -> torch.Tensor:
            return x.clone()

        @staticmethod
        def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
            grad.sum().item()
            return grad

    x = torch.ones(3, requires_grad=True)
    loss = ItemInBackward.apply(x).sum()
    with SyncOps() as watch:
        loss.backward()
    assert watch.ops == ['aten._local_scalar_dense.default']


@pytest.mark.parametrize('config', [TINY_CONFIG, SLPD_CONFIG, MASKS_CONFIG],
                         ids=['dino4k', 'slpd', 'slpd_masks'])
def test_sync_ops_only_at_logging_iterations(config, store, tmp_path):
    watch = StepWatch()
    work = tmp_path / 'work'
    if config == MASKS_CONFIG:  # a store with holes: masks, min_tissue crops, masked ViT
        store = Path(write_holey_store(tmp_path / 'holey', holey_slides(
            num_slides=8, regions=6, channels=32)))
    runner = train(work, store, watch, {'default_hooks.logger.interval': LOG_INTERVAL},
                   config)
    per_epoch = len(runner.train_dataloader)
    assert per_epoch > LOG_INTERVAL + 1 and len(watch.ops) == runner.max_iters
    logged = {it for it, b in watch.batch_idx.items() if is_log_point(b, per_epoch)}
    quiet = {it: ops for it, ops in watch.ops.items() if it not in logged and ops}
    assert not quiet, f'host syncs between logging points (iteration: ops): {quiet}'
    assert all(watch.ops[it] for it in logged), 'the watch saw no sync where the log is read'
    if config != TINY_CONFIG:  # the prototype terms ran under the watch
        assert losses(watch, 'loss_intra')

    # Every step's value reached the message hub, in order; the log's window means of them.
    window = runner.cfg.log_processor.window_size
    rows = [r for r in logged_scalars(work) if 'loss' in r]
    assert [r['iter'] for r in rows] == sorted(it + 1 for it in logged)
    for key in watch.outputs[runner.max_iters - 1]:
        values = losses(watch, key)
        assert runner.message_hub.get_scalar(f'train/{key}').data[0].tolist() == values
        if key == 'loss':
            for row in rows:
                recent = values[max(row['iter'] - window, 0):row['iter']]
                assert row[key] == pytest.approx(sum(recent) / len(recent), rel=1e-6)


def test_checkpoint_between_logging_points_holds_every_step(store, tmp_path):
    """Logs every 4 iterations, saves every 3: the checkpoint's message hub (re-encoded
    for weights-only loading) still holds every step's values up to the save."""
    watch = StepWatch()
    work = tmp_path / 'work'
    train(work, store, watch, {
        'default_hooks.logger.interval': 4, 'default_hooks.checkpoint.by_epoch': False,
        'default_hooks.checkpoint.interval': 3, 'train_cfg.max_epochs': 1})
    saved = torch.load(work / 'iter_3.pth', weights_only=True)
    state = decode_message_hub(saved['message_hub'])
    for key in ('loss', 'loss_dino'):
        assert state['log_scalars'][f'train/{key}'].data[0].tolist() == losses(watch, key)[:3]


def test_nan_guard_names_first_bad_step_and_saves_nothing_after_it(store, tmp_path):
    """Checkpoints every 3 iterations, logs every 5: the guard fires at the first save
    after the bad step, in ``before_save_checkpoint``, so that save never happens."""
    watch = StepWatch()
    work = tmp_path / 'work'
    with pytest.raises(NonFiniteLossError) as err:
        train(work, store, watch, {
            'default_hooks.logger.interval': 5, 'default_hooks.checkpoint.by_epoch': False,
            'default_hooks.checkpoint.interval': 3, 'optim_wrapper.optimizer.lr': 1e30,
            'optim_wrapper.clip_per_tensor': None})
    bad = min(it for it, out in watch.outputs.items()
              if not all(math.isfinite(float(v)) for k, v in out.items() if 'loss' in k))
    last = max(watch.outputs)
    assert last > bad, 'the guard should have waited for the next save or logging point'
    message = str(err.value)
    assert f'iteration {bad + 1}:' in message and f'after iteration {last + 1};' in message
    assert "'loss_dino':" in message and 'synthetic-' in message  # terms and slide ids
    assert (last + 1) % 3 == 0 and (last + 1) % 5 != 0  # stopped by the save, not the log
    log = next(work.glob('*/*.log')).read_text()
    assert f'Saving checkpoint at {last + 1} iterations' in log
    assert not list(work.glob('*.pth'))  # that save (and any later one) never happened
    assert not list(work.glob('.*.tmp'))


@pytest.mark.cuda
def test_cuda_steps_between_logging_points_do_not_sync(store, tmp_path):
    """On a GPU, ``set_sync_debug_mode('error')`` raises at any synchronising call."""

    class SyncDebug(Hook):
        priority = 'HIGHEST'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if batch_idx > 0 and not is_log_point(batch_idx, len(runner.train_dataloader)):
                torch.cuda.set_sync_debug_mode('error')  # batch 0 may initialise lazily

    class SyncDebugOff(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            torch.cuda.set_sync_debug_mode(0)

    runner = build(tmp_path / 'work', store, {
        'default_hooks.logger.interval': LOG_INTERVAL, 'train_dataloader.pin_memory': True},
        SLPD_CONFIG)
    runner.register_hook(SyncDebug())
    runner.register_hook(SyncDebugOff())
    try:
        runner.train()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert next(runner.model.parameters()).is_cuda
