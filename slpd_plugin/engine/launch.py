"""Turn a config file and command-line choices into a ready Runner."""
from __future__ import annotations

import gc
import os
import os.path as osp

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.runner import Runner

from slpd_plugin.datasets.samplers import check_slide_batch_size
from slpd_plugin.datasets.stores.redis_uri import move_password_to_env
from slpd_plugin.registry import RUNNERS

from .config_check import check_config
from .feature_width import fill_feature_width

AMP_DTYPES = {'bf16': 'bfloat16', 'fp16': 'float16'}  # --amp NAME -> autocast_dtype


def set_tf32(enabled: bool) -> None:
    """Let fp32 matrix products and convolutions on Ampere and newer GPUs use TF32, or not.

    TF32 rounds the inputs to a 10-bit mantissa and accumulates in fp32.

    The default of our runs (``tf32 = True`` in ``configs/_base_/default_runtime.py``):
    it speeds up what runs in fp32 -- runs without ``--amp`` and the refresh's embedding
    pass -- several-fold, at a relative error of about 1e-3 per product, which
    self-supervised pretraining does not notice. Set ``tf32 = False`` (or
    ``--cfg-options tf32=False``) for bit-exact fp32. Only CUDA reads these flags.

    Uses torch's ``fp32_precision`` settings (``'tf32'`` or ``'ieee'``), as the losses do
    for their strict-fp32 block: torch raises when code reads a mix of these and the
    older ``allow_tf32`` flags.
    """
    precision = 'tf32' if enabled else 'ieee'
    torch.backends.cuda.matmul.fp32_precision = precision
    torch.backends.cudnn.conv.fp32_precision = precision
    torch.backends.cudnn.rnn.fp32_precision = precision  # cuDNN's flags stay one value


def check_local_rank(local_rank: int, device_count: int) -> None:
    """Raise a clear error when this process's GPU does not exist.

    This replaces CUDA's "invalid device ordinal" from ``torch.cuda.set_device``.
    """
    if not 0 <= local_rank < device_count:
        visible = os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')
        raise RuntimeError(
            f'LOCAL_RANK={local_rank} but this node has {device_count} visible CUDA '
            f'device(s) (CUDA_VISIBLE_DEVICES={visible}): start at most {device_count} '
            f'process(es) per node (tools/dist_train.sh CONFIG {device_count}), or set '
            f"CUDA_VISIBLE_DEVICES='' to run on the CPU with gloo")


def init_cpu_distributed() -> None:
    """Start a gloo process group from torchrun's environment (CPU-only DDP).

    mmengine's ``launcher='pytorch'`` would call ``torch.cuda.set_device``; with a
    process group already present, the Runner skips its own initialisation.
    """
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', init_method='env://')


def prepare_config(config: str, work_dir: str | None = None, resume: str | None = None,
                   amp: bool | str | None = None, cfg_options: dict | None = None,
                   launcher: str = 'none') -> Config:
    """Load ``config`` and apply ``tools/train.py``'s options.

    Args:
        config: Path of an mmengine config file.
        work_dir: Output folder; default ``work_dirs/<config name>``.
        resume: None, ``'auto'`` (latest checkpoint of ``work_dir``) or a checkpoint path.
        amp: Autocast in the optimizer wrapper: ``'bf16'`` (True means the same) or
            ``'fp16'`` (with a loss scaler); None or False: fp32.
        cfg_options: Dotted-key overrides (``--cfg-options``).
        launcher: ``'none'``, ``'pytorch'`` (torchrun) or ``'slurm'``. With CUDA, one
            GPU per process (``LOCAL_RANK``) and the config's backend (NCCL by default);
            without, gloo on the CPU.

    With CUDA, TF32 is switched on or off as the config's ``tf32`` says (default on,
    see :func:`set_tf32`).
    """
    amp = 'bf16' if amp is True else amp
    if amp and amp not in AMP_DTYPES:
        raise ValueError(f'amp must be one of {sorted(AMP_DTYPES)}, got {amp!r}')
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_config(cfg)  # typos and wrong types, named by their dotted key, before any work
    changed = fill_feature_width(cfg)  # D from the store, unless the config pins it
    if changed:
        print(changed, flush=True)
    dataset = cfg.train_dataloader.dataset
    dataset.store = move_password_to_env(dataset.store)  # never dumped, logged or saved
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(config))[0])
    if resume is not None:
        cfg.resume = True
        cfg.load_from = None if resume == 'auto' else resume
    if amp:
        cfg.optim_wrapper.autocast_dtype = AMP_DTYPES[amp]
    check_slide_batch_size(cfg.train_dataloader)
    cfg.launcher = launcher
    tf32 = cfg.get('tf32', True)
    if not isinstance(tf32, bool):
        raise ValueError(f'{config}: tf32 must be True or False, got {tf32!r}')
    if torch.cuda.is_available():
        set_tf32(tf32)
    if launcher != 'none' and torch.cuda.is_available():
        # mmengine calls torch.cuda.set_device(LOCAL_RANK) and starts the config's
        # backend (NCCL unless a config says otherwise).
        local_rank = os.environ.get('LOCAL_RANK', os.environ.get('SLURM_LOCALID', 0))
        check_local_rank(int(local_rank), torch.cuda.device_count())
    elif launcher != 'none':
        init_cpu_distributed()
        cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None)
    os.makedirs(cfg.work_dir, exist_ok=True)
    return cfg


def shutdown_distributed() -> None:
    """End a distributed run cleanly: wait for every rank, then destroy the process group.

    Rank 0 may still be writing the last checkpoint; destroying the group joins its
    collective threads before the interpreter shuts down.

    Call it after the last reference to the runner is gone: DDP holds the process group,
    and a gloo worker thread that outlives it may release a finished collective's tensors
    during interpreter shutdown, when it can no longer take the GIL (the process then
    aborts with "terminate called without an active exception").
    """
    if dist.is_initialized():
        dist.barrier()
        gc.collect()  # the runner, its DDP wrapper and their process-group references
        dist.destroy_process_group()


def build_runner(cfg: Config) -> Runner:
    """Build the config's runner (``runner_type``, default mmengine's ``Runner``)."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
