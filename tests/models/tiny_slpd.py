"""A tiny SLPD (PooledMLP backbone, 8 input channels) for loss-level tests."""
import torch

from slpd_plugin.registry import MODELS


def tiny_slpd(bottleneck_dims: int, out_channels: int) -> torch.nn.Module:
    """SLPD with the prototype head, seeded, in eval mode; teacher temperature 0.04."""
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SLPD', data_preprocessor=dict(type='GridMultiCropPreprocessor', num_local=2),
        backbone=dict(type='PooledMLP', in_channels=8, embed_dims=24, hidden_dims=32),
        head=dict(type='DINOHead', hidden_dims=32, bottleneck_dims=bottleneck_dims,
                  out_channels=out_channels),
        loss=dict(type='DINOLoss', output_dim=out_channels),
        prototype_head=dict(type='PrototypeDistillHead'))).eval()
    model.teacher_temp = 0.04
    return model
