# DINO-4K of tools/run_demo.py on the synthetic WSI benchmark's store (made by the demo's
# benchmark step; run_demo.py sets the store path under --out and the seed).
_base_ = ['demo_dino4k.py']
train_dataloader = dict(
    dataset=dict(_delete_=True, type='RegionFeatureDataset',
                 store='work_dirs/demo/benchmark/store', channels=384))
