# Ablation: inter-slide prototype distillation only.
_base_ = ['slpd_lung.py']
model = dict(prototype_head=dict(loss_type='inter'))
