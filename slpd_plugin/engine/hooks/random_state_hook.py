"""Save every rank's RNG states in checkpoints so a resumed run repeats the same steps."""
from __future__ import annotations

import torch
from mmengine.dist import all_gather, get_dist_info
from mmengine.hooks import Hook
from torch.utils.data import DataLoader

from slpd_plugin.registry import HOOKS
from slpd_plugin.utils.random_states import apply_states, capture_states, pack, unpack

from .resume_detection import checkpoint_iter, is_resume_of

CKPT_KEY = 'random_state'


def gather_packed_states() -> torch.Tensor:
    """Every rank's packed generator states, zero-padded to one length, (W, bytes)."""
    local = pack(capture_states())
    longest = max(int(n) for n in all_gather(torch.tensor([len(local)])))
    return torch.stack(all_gather(torch.cat([local, local.new_zeros(longest - len(local))])))


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Put each rank's RNG states into epoch-end checkpoints and restore them on resume.

    Saved per rank: torch CPU, numpy and Python generators and, when the process uses
    CUDA, every CUDA device's generator (crops, dropout and stochastic depth draw from
    them). States are gathered at the end of every epoch (all ranks take part) and
    written by rank 0. When the run resumes from such a checkpoint with the same world
    size, each rank takes its own states back in ``before_train``, so the resumed run
    takes the same steps as the uninterrupted one. With ``load_from`` (weights only) the
    states are left alone. Resume is told from ``load_from`` by the loop's iteration
    (set from the checkpoint on resume, 0 otherwise), so the hook works under mmengine's
    plain ``Runner`` as well as ``SLPDRunner``.

    The train DataLoader gets its own ``torch.Generator`` (seeded with the run's seed)
    unless it has one: otherwise each new loader iterator draws its workers' base seed
    from the global torch generator, once per epoch without persistent workers but only
    once per run with them, so a resumed run (whose iterator is new) would be one draw
    ahead. With it, the global stream is the same for any ``num_workers`` and
    ``persistent_workers``.

    Example:
        >>> default_hooks = dict(random_state=dict(type='RandomStateHook'))
    """

    priority = 'HIGH'  # gathered before CheckpointHook (VERY_LOW) saves

    def __init__(self) -> None:
        self._states: torch.Tensor | None = None  # (W, bytes)
        self._iter = -1
        self._loaded: tuple[int, torch.Tensor | None] | None = None  # (iter, states)

    def before_train(self, runner) -> None:
        """Seed the loader's generator; on a resume, restore this rank's generators."""
        loader = runner.train_loop.dataloader
        if isinstance(loader, DataLoader) and loader.generator is None:
            loader.generator = torch.Generator().manual_seed(runner.seed)  # see class doc
        if self._loaded is not None:
            loaded_iter, states = self._loaded
            self._loaded = None
            if is_resume_of(runner, loaded_iter):
                self.restore(runner, states)

    def after_train_epoch(self, runner) -> None:
        """Gather every rank's generator states for the epoch-end checkpoint."""
        self._states = gather_packed_states()
        self._iter = runner.iter

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Save the gathered states when they belong to this iteration."""
        if self._states is not None and self._iter == runner.iter:
            checkpoint[CKPT_KEY] = self._states.clone()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the checkpoint's states until :meth:`before_train` knows if it is a resume."""
        # Resume or load_from? Only known in before_train, once the loop has its iteration.
        self._loaded = (checkpoint_iter(checkpoint), checkpoint.get(CKPT_KEY))

    def restore(self, runner, states: torch.Tensor | None) -> None:
        """Set this rank's generators from a checkpoint's ``(W, bytes)`` states."""
        rank, world = get_dist_info()
        if states is None:
            runner.logger.warning('resumed from a checkpoint without RNG states (not written '
                                  'at the end of an epoch): the resumed run will not repeat '
                                  'the same random draws')
            return
        if len(states) != world:
            runner.logger.warning(f'RNG states not restored: the checkpoint holds them for '
                                  f'{len(states)} rank(s), this run has {world}; the resumed '
                                  f'run will not repeat the same random draws')
            return
        for problem in apply_states(unpack(states[rank])):
            runner.logger.warning(f'RNG states of rank {rank}: {problem}')
