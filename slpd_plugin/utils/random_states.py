"""A process's random generator states as one byte tensor, and back.

The states of the torch CPU generator, numpy's and Python's global generators and, when
this process has initialised CUDA, every CUDA device's generator are packed into one
``uint8`` tensor, so a checkpoint that holds them still loads with
``torch.load(weights_only=True)``.

Layout (int64 little-endian header, then the parts back to back)::

    [-n, size_0, ..., size_{n-1}] part_0 ... part_{n-1}

Parts 0-5 are torch CPU, numpy key, numpy (pos, has_gauss), numpy gauss, Python state,
Python gauss (NaN for None); parts 6.. are CUDA devices 0, 1, ... The first header
value is negative to tell this layout from the older one, ``[size_0, ..., size_5]`` with
no CUDA part, which :func:`unpack` still reads.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

__all__ = ['RandomStates', 'apply_states', 'capture_states', 'pack', 'unpack']

HOST_PARTS = 6


@dataclass
class RandomStates:
    """One process's generator states.

    Attributes:
        torch_cpu: ``torch.get_rng_state()``, uint8.
        numpy: ``np.random.get_state()`` (a 5-tuple, MT19937).
        python: ``random.getstate()`` (a 3-tuple).
        cuda: ``torch.cuda.get_rng_state_all()``, one uint8 tensor per device; empty when
            CUDA was not initialised.

    Example:
        >>> states = unpack(pack(capture_states()))
        >>> apply_states(states)  # the draws that follow repeat
    """

    torch_cpu: Tensor
    numpy: tuple
    python: tuple
    cuda: list[Tensor] = field(default_factory=list)


def capture_states() -> RandomStates:
    """This process's generator states (CUDA only if CUDA is initialised)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return RandomStates(torch.get_rng_state(), np.random.get_state(), random.getstate(),
                        [s.cpu() for s in cuda])


def apply_states(states: RandomStates) -> list[str]:
    """Set this process's generators to ``states``.

    Returns:
        list[str]: Problems met (empty when every generator was set), e.g. CUDA states
        saved for a number of devices that this process does not have.
    """
    torch.set_rng_state(states.torch_cpu.clone())
    np.random.set_state(states.numpy)
    random.setstate(states.python)
    problems = []
    if torch.cuda.is_available():
        devices = torch.cuda.device_count()
        if not states.cuda and torch.cuda.is_initialized():
            problems.append('no CUDA generator states in the checkpoint (written without '
                            'CUDA or by an older version): CUDA draws will differ')
        elif len(states.cuda) != devices:
            problems.append(f'CUDA generator states for {len(states.cuda)} device(s), this '
                            f'process sees {devices}: devices 0..'
                            f'{min(devices, len(states.cuda)) - 1} restored by index')
        for device, state in enumerate(states.cuda[:devices]):
            torch.cuda.set_rng_state(state.clone(), device)
    return problems


def _bytes(t: Tensor) -> Tensor:
    return t.contiguous().view(torch.uint8).flatten()


def pack(states: RandomStates) -> Tensor:
    """``states`` as one uint8 tensor (layout in the module docstring)."""
    _, keys, pos, has_gauss, gauss = states.numpy
    _, py_state, py_gauss = states.python
    parts = [states.torch_cpu.flatten(),
             torch.from_numpy(np.asarray(keys, dtype='<u4').view(np.uint8).copy()),
             _bytes(torch.tensor([pos, has_gauss], dtype=torch.int64)),
             _bytes(torch.tensor([gauss], dtype=torch.float64)),
             _bytes(torch.tensor(py_state, dtype=torch.int64)),
             _bytes(torch.tensor([np.nan if py_gauss is None else py_gauss],
                                 dtype=torch.float64)),
             *(s.flatten() for s in states.cuda)]
    header = torch.tensor([-len(parts), *(len(p) for p in parts)], dtype=torch.int64)
    return torch.cat([_bytes(header), *parts])


def unpack(packed: Tensor) -> RandomStates:
    """Inverse of :func:`pack`; also reads the older layout without CUDA parts.

    Trailing bytes after the last part are ignored (ranks' tensors are padded to one
    length when gathered).
    """
    packed = packed.cpu().flatten()
    first = int(packed[:8].clone().view(torch.int64))
    num_parts, start = (-first, 8) if first < 0 else (HOST_PARTS, 0)
    header_end = start + 8 * num_parts
    if num_parts < HOST_PARTS or header_end > len(packed):
        raise ValueError(f'not a packed random state ({len(packed)} bytes, header says '
                         f'{num_parts} parts)')
    sizes = packed[start:header_end].clone().view(torch.int64).tolist()
    if header_end + sum(sizes) > len(packed):
        raise ValueError(f'packed random state truncated: {len(packed)} bytes, header '
                         f'needs {header_end + sum(sizes)}')
    parts = [p.clone() for p in torch.split(packed[header_end:header_end + sum(sizes)], sizes)]
    pos, has_gauss = parts[2].view(torch.int64).tolist()
    gauss = float(parts[3].view(torch.float64))
    py_gauss = float(parts[5].view(torch.float64))
    return RandomStates(
        torch_cpu=parts[0],
        numpy=('MT19937', parts[1].numpy().view('<u4'), pos, has_gauss, gauss),
        python=(3, tuple(parts[4].view(torch.int64).tolist()),
                None if np.isnan(py_gauss) else py_gauss),
        cuda=parts[HOST_PARTS:])
