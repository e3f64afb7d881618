"""Check that every rank holds the same model state (student, teacher, centres, bank)."""
from __future__ import annotations

import hashlib
import json
import os

import torch
from mmengine.dist import all_reduce, get_rank, is_distributed
from mmengine.hooks import Hook

from slpd_plugin.registry import HOOKS
from slpd_plugin.utils.model import unwrap


def state_fingerprints(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """A 63-bit fingerprint (sha256 prefix) of the exact bytes of every tensor."""
    out = {}
    for name, t in state.items():
        data = t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
        out[name] = int.from_bytes(hashlib.sha256(data).digest()[:8], 'little') >> 1
    return out


@HOOKS.register_module()
class StateConsistencyHook(Hook):
    """After every ``interval`` epochs, compare the model's state across ranks.

    Every tensor of the model's ``state_dict`` (student, teacher, loss centres) and of its
    prototype bank (``bank.*``) is fingerprinted; min and max of each fingerprint are
    all-reduced (no pickled objects cross ranks). A mismatch raises ``RuntimeError`` naming
    the tensors. With ``dump``, each rank writes ``{work_dir}/consistency/rank{r}.json``
    so runs can be audited.

    Args:
        interval: Check every this many epochs. Defaults to 1.
        dump: Write the per-rank fingerprint files. Defaults to False.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1, dump: bool = False) -> None:
        self.interval = interval
        self.dump = dump

    def after_train_epoch(self, runner) -> None:
        """Fingerprint the model and bank, optionally dump them, and compare across ranks."""
        if not self.every_n_epochs(runner, self.interval):
            return
        model = unwrap(runner.model)
        state = dict(model.state_dict())
        if getattr(model, 'bank', None) is not None:
            state.update({f'bank.{k}': v for k, v in model.bank.state_dict().items()})
        prints = state_fingerprints(state)
        if self.dump:
            folder = os.path.join(runner.work_dir, 'consistency')
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f'rank{get_rank()}.json'), 'w') as f:
                json.dump(dict(epoch=runner.epoch + 1, fingerprints=prints), f)
        if not is_distributed():
            return
        values = torch.tensor(list(prints.values()), dtype=torch.int64)
        lo, hi = values.clone(), values.clone()
        all_reduce(lo, op='min')  # mmengine moves it to the backend's device
        all_reduce(hi, op='max')
        differ = [n for n, a, b in zip(prints, lo.tolist(), hi.tolist()) if a != b]
        if differ:
            raise RuntimeError(f'model state differs across ranks after epoch '
                               f'{runner.epoch + 1} in {len(differ)} tensors: {differ[:10]}')
        runner.logger.info(f'state consistent across ranks: {len(prints)} tensors')
