# DINO-4K (HIPT's region-level pretraining): ViT-4K-XS on 16x16 grids of 384-d features.
model = dict(
    type='SLPD',
    data_preprocessor=dict(
        type='GridMultiCropPreprocessor',
        num_global=2, global_size=14, num_local=8, local_size=6, hflip_prob=0.5),
    backbone=dict(type='ViT4K', arch='xs', in_channels=384, drop_path_rate=0.1),
    head=dict(type='DINOHead', hidden_dims=2048, bottleneck_dims=256, out_channels=65536),
    loss=dict(type='DINOLoss', output_dim=65536, student_temp=0.1, center_momentum=0.9),
)
