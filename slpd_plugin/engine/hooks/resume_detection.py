"""Tell a resume from ``load_from``, under any mmengine Runner.

mmengine calls ``after_load_checkpoint`` for both. On resume, the Runner then sets the
train loop's iteration to the checkpoint's (``meta.iter``); with ``load_from`` the loop
starts at 0. So a hook records the checkpoint's iteration when it is loaded and decides in
``before_train``, once the loop has its iteration.
"""
from __future__ import annotations

__all__ = ['checkpoint_iter', 'is_resume_of']


def checkpoint_iter(checkpoint: dict) -> int:
    """The training iteration a checkpoint was written at (0 if it does not say)."""
    return int(checkpoint.get('meta', {}).get('iter', 0))


def is_resume_of(runner, loaded_iter: int) -> bool:
    """Whether ``runner`` resumed from the checkpoint written at ``loaded_iter``.

    Call it in ``before_train`` or later: a resumed run continues at ``loaded_iter``, a
    run that only loaded weights starts at iteration 0.
    """
    return loaded_iter > 0 and runner.iter == loaded_iter
