"""Training checkpoints: reading, rebuilding the model, embedding, HIPT export.

Checkpoints are read weights-only; the embedding pass is the teacher's.

- :mod:`.reading`: the checkpoint, its config, store, prototype settings and bank, and
  the model rebuilt from them (:func:`build_model`, :func:`load_encoder`);
- :mod:`.embed`: :func:`embed_grids`, the one frozen-encoder embedding pass;
- :mod:`.hipt_export`: the region encoder in the layout of HIPT's ``vit4k_xs_dino.pth``.

Files are loaded by :func:`slpd_plugin.utils.weights.load_weights_only` (below the models
in the layering, since the models' Pretrained initialisation needs it too).
"""
from .embed import embed_grids
from .hipt_export import HIPT_VIT4K_XS, describe_vit4k, export_hipt_teacher
from .reading import (
                      BankCheckpoint,
                      build_model,
                      checkpoint_config,
                      checkpoint_store,
                      load_bank,
                      load_checkpoint,
                      load_encoder,
                      prototype_settings,
)

__all__ = [
    'BankCheckpoint', 'HIPT_VIT4K_XS', 'build_model', 'checkpoint_config',
    'checkpoint_store', 'describe_vit4k', 'embed_grids', 'export_hipt_teacher',
    'load_bank', 'load_checkpoint', 'load_encoder', 'prototype_settings',
]
