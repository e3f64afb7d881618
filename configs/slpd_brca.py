# SLPD on TCGA-BRCA region grids: K=2 prototypes per slide (slides with >= 16 regions).
_base_ = ['slpd_lung.py']
train_dataloader = dict(dataset=dict(store='data/tcga_brca_store'))
default_hooks = dict(prototype=dict(num_clusters=2, min_regions=16))
