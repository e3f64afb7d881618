"""Unit tests of single hooks, the way mmengine tests its own: a real mmengine Runner
trains :class:`~tests.engine.hooks.toy.ToyModel` on eight fixed inputs for a few
iterations, and each test looks at one hook's observable effect."""
from __future__ import annotations

from functools import partial
from typing import Callable

import pytest
from mmengine.runner import Runner

from tests.engine.hooks.toy import make_runner


@pytest.fixture
def toy_runner(tmp_path) -> Callable[..., Runner]:
    """:func:`~tests.engine.hooks.toy.make_runner` with work dirs under ``tmp_path``."""
    return partial(make_runner, tmp_path)
