"""The untrained encoder of a training config, saved as a checkpoint the extraction loads.

A pretrained slide encoder only helps if it beats the same architecture with random
weights: a random projection of good patch features, mean-pooled, is often a strong
baseline. :func:`save_random_init` builds a config's model the way ``tools/train.py``
starts a run (the config completed by
:func:`~slpd_plugin.engine.launch.prepare_config`, ``set_random_seed(seed)``, the model
built and ``init_weights()`` called), and saves it with the completed config, so
:func:`~slpd_plugin.checkpoints.load_encoder` and ``tools/extract_embeddings.py`` read it
like a trained run's checkpoint.

Example::

    config, ckpt = save_random_init('configs/demo_quick_slpd.py', 0, 'work/random_init',
                                    {'train_dataloader.dataset.store': 'bench/store'})
    model = load_encoder(config, ckpt)  # the teacher is the untrained student's copy
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import set_random_seed
from torch import nn

from slpd_plugin.engine.launch import prepare_config
from slpd_plugin.registry import MODELS

__all__ = ['CHECKPOINT_NAME', 'build_initial_model', 'save_random_init']

CHECKPOINT_NAME = 'random_init.pth'


def build_initial_model(config: str | os.PathLike, seed: int,
                        cfg_options: dict | None = None, work_dir: str | os.PathLike | None = None
                        ) -> tuple[nn.Module, Config]:
    """The model of ``config`` as a training run with ``seed`` builds and initialises it.

    Args:
        config: A training config file.
        seed: The run's ``randomness.seed``.
        cfg_options: ``--cfg-options`` of the run (e.g. the store). Defaults to None.
        work_dir: The config's ``work_dir`` (created by ``prepare_config``). Defaults to
            None (``work_dirs/<config name>``).

    Returns:
        The :class:`~slpd_plugin.models.SLPD` model on the CPU, and the completed config.
    """
    cfg = prepare_config(str(config), work_dir=None if work_dir is None else str(work_dir),
                         cfg_options={**(cfg_options or {}), 'randomness.seed': seed})
    set_random_seed(seed)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope') or 'slpd_plugin'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    return model, cfg


def save_random_init(config: str | os.PathLike, seed: int, out_dir: str | os.PathLike,
                     cfg_options: dict | None = None) -> tuple[Path, Path]:
    """Save the untrained model of ``config`` (see :func:`build_initial_model`).

    Writes ``out_dir/<config name>`` (the completed config) and
    ``out_dir/random_init.pth`` (``state_dict`` of the whole model and ``meta`` with the
    config text, the seed and ``untrained=True``).

    Returns:
        The config path and the checkpoint path.
    """
    out = Path(out_dir)
    model, cfg = build_initial_model(config, seed, cfg_options, work_dir=out)
    saved = out / Path(config).name
    cfg.dump(str(saved))
    ckpt = out / CHECKPOINT_NAME
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(cfg=cfg.pretty_text, seed=seed, untrained=True)), ckpt)
    return saved, ckpt
