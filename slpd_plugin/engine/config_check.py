"""Check a config before anything is built: typos and wrong types name their key.

mmengine builds components lazily (the dataset when training starts, hooks after the
model), so a typo in a config or in ``--cfg-options`` surfaces late, as a bare
``TypeError: __init__() got an unexpected keyword argument``, or not at all (a
misspelt top-level key such as ``trian_cfg`` is silently ignored). :func:`check_config`
looks at the merged config first and raises one :class:`ConfigCheckError` listing every
problem by its dotted key, e.g.::

    default_hooks.prototype.num_clusterz: unknown argument of PrototypeHook (did you
    mean num_clusters?)

It checks (a) top-level keys against those mmengine's ``Runner.from_cfg`` and
``tools/train.py`` read (a key close to a known one is a typo; other unknown keys are
config variables such as ``max_epochs``), (b) every component's keys against its
class's signature (following ``**kwargs`` up the class hierarchy) and its ``type``
against the registry, (c) values whose parameter is annotated with ``int``, ``float``,
``str`` or ``bool`` (or a union of them with None), (d) settings that cannot work
together: ``PrototypeHook(embedding='cls')`` with a prototype head, and a dataset
store with holes (:meth:`~slpd_plugin.datasets.stores.FeatureStore.missing_cells`) under
a backbone that does not accept masks (no ``accepts_masks = True``).

Checkpoints of another architecture are refused by
:func:`slpd_plugin.engine.checkpoint_check.check_checkpoint_shapes`.
"""
from __future__ import annotations

import difflib
import inspect
import types
import typing
from typing import Any, Iterator

from mmengine.config import Config
from mmengine.registry import Registry
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from slpd_plugin import registry as R
from slpd_plugin.datasets.lattice import SlideLatticeDataset, SlideWindowViewsDataset
from slpd_plugin.datasets.stores import open_store
from slpd_plugin.models.backbones import accepts_masks
from slpd_plugin.prototypes.faiss_import import INSTALL_HINT, faiss_installed
from slpd_plugin.utils.cli import UserError

from .hooks.prototype_hook import CLS_WITH_PROTOTYPE_HEAD

RUNNER_EXTRAS = frozenset({
    'runner_type', 'custom_imports', 'model_wrapper_cfg', 'vis_backends', 'compile',
    'sync_bn', 'find_unused_parameters', 'work_dir', 'launcher', 'tf32'})
KNOWN_TOP_LEVEL = frozenset(inspect.signature(Runner.__init__).parameters) - {
    'self', 'cfg'} | RUNNER_EXTRAS
# Keys that mmengine's builders take out of a component's dict before building it.
BUILDER_KEYS = {'optim_wrapper': {'constructor', 'paramwise_cfg', 'optimizer'},
                'param_scheduler': {'convert_to_iter_based'},
                'train_cfg': {'by_epoch'},
                'dataloader': {'dataset', 'num_batch_per_epoch'}}
SIMPLE_TYPES = {int: 'int', float: 'float', str: 'str', bool: 'bool', type(None): 'None'}


class ConfigCheckError(ValueError):
    """A config holds unknown keys, unknown component types or values of the wrong type."""

    lists_problems = True  # tools print every problem, one per line (utils.cli.error_text)


def _close(word: str, options: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.75)
    return f' (did you mean {match[0]}?)' if match else ''


def _registered_names(registry: Registry) -> set[str]:
    names: set[str] = set()
    while registry is not None:
        names |= set(registry.module_dict)
        registry = registry.parent
    return names


def _parameters(target: Any) -> tuple[dict[str, Any], bool]:
    """Named parameters ``{name: annotation}`` of a class or function, and a catch-all flag.

    For a class, the ``__init__`` methods up its MRO are read while they forward
    ``**kwargs``. The flag says whether any keyword at all is accepted.
    """
    inits = ([k.__init__ for k in target.__mro__ if '__init__' in vars(k)]
             if inspect.isclass(target) else [target])
    params: dict[str, Any] = {}
    for init in inits:
        try:
            sig = inspect.signature(init)
        except (TypeError, ValueError):
            return params, True
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # an annotation that does not resolve: keep the raw strings
            hints = {}
        for name, p in sig.parameters.items():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != 'self':
                params.setdefault(name, hints.get(name, p.annotation))
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            return params, False
    return params, True


def _simple_types(annotation: Any) -> tuple[type, ...] | None:
    """The types of an ``int``/``float``/``str``/``bool``/None annotation, else None."""
    if isinstance(annotation, str):
        names = {v: k for k, v in SIMPLE_TYPES.items()}
        members = tuple(names.get(m.strip(), m) for m in annotation.split('|'))
    elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
    else:
        members = (annotation,)
    if members and all(m in SIMPLE_TYPES for m in members):
        return tuple(members)
    return None


def _type_ok(value: Any, allowed: tuple[type, ...]) -> bool:
    for t in allowed:
        if t is bool and isinstance(value, bool):
            return True
        if t in (int, float) and isinstance(value, (int, float)) and not isinstance(
                value, bool) and (t is float or isinstance(value, int)):
            return True
        if t in (str, type(None)) and isinstance(value, t):
            return True
    return False


def _check_keys(path: str, cfg: dict, target: Any, name: str,
                extra: set[str] = frozenset()) -> Iterator[str]:
    """Problems of the keys of ``cfg`` as keyword arguments of ``target``."""
    params, open_kwargs = _parameters(target)
    for key, value in cfg.items():
        if key in ('type', '_scope_') or key in extra:
            continue
        if key not in params:
            if not open_kwargs:
                yield (f'{path}.{key}: unknown argument of {name}'
                       f'{_close(key, set(params) | extra)}')
            continue
        allowed = _simple_types(params[key])
        if allowed is not None and not _type_ok(value, allowed):
            expected = ' or '.join(SIMPLE_TYPES[t] for t in allowed)
            yield (f'{path}.{key}: {name} expects {expected}, got '
                   f'{type(value).__name__} {value!r}')


def _check_component(path: str, cfg: Any, registry: Registry, default_type: Any = None,
                     extra: set[str] = frozenset(), recurse: bool = False
                     ) -> Iterator[str]:
    """Problems of one ``dict(type=..., **kwargs)`` built from ``registry``."""
    if not isinstance(cfg, dict):
        return
    kind = cfg.get('type', default_type)
    if kind is None:
        return
    if isinstance(kind, str):
        target = registry.get(kind)
        if target is None:
            yield (f'{path}.type: {kind!r} is not registered (registry {registry.name!r})'
                   f'{_close(kind, _registered_names(registry))}')
            return
    else:
        target = kind
    yield from _check_keys(path, cfg, target, getattr(target, '__name__', str(kind)), extra)
    if recurse:
        for key, value in cfg.items():
            if isinstance(value, dict) and 'type' in value and key != 'init_cfg':
                yield from _check_component(f'{path}.{key}', value, registry, recurse=True)


def _check_dataloader(path: str, cfg: Any) -> Iterator[str]:
    if not isinstance(cfg, dict):
        return
    yield from _check_keys(path, cfg, DataLoader, 'DataLoader', BUILDER_KEYS['dataloader'])
    yield from _check_component(f'{path}.dataset', cfg.get('dataset'), R.DATASETS)
    for key in ('sampler', 'batch_sampler'):
        yield from _check_component(f'{path}.{key}', cfg.get(key), R.DATA_SAMPLERS)
    yield from _check_component(f'{path}.collate_fn', cfg.get('collate_fn'), R.FUNCTIONS)


def _prototype_hook_problems(cfg: Config | dict) -> Iterator[str]:
    """Prototype-hook settings that would fail at the first refresh, after warm-up.

    ``PrototypeHook(embedding='cls')`` next to a prototype head, and
    ``PrototypeHook(backend='faiss')`` without faiss installed.
    """
    model = cfg.get('model')
    with_head = isinstance(model, dict) and bool(model.get('prototype_head'))
    hooks = [(f'default_hooks.{name}', h)
             for name, h in (cfg.get('default_hooks') or {}).items()]
    hooks += [(f'custom_hooks[{i}]', h) for i, h in enumerate(cfg.get('custom_hooks') or [])]
    for path, hook in hooks:
        if not isinstance(hook, dict):
            continue
        kind = hook.get('type')
        if getattr(kind, '__name__', kind) != 'PrototypeHook':
            continue
        if with_head and hook.get('embedding') == 'cls':
            yield f"{path}.embedding='cls': {CLS_WITH_PROTOTYPE_HEAD}"
        if hook.get('backend') == 'faiss' and not faiss_installed():
            yield f"{path}.backend='faiss': faiss is not installed: {INSTALL_HINT}"


def _store_with_holes(dataset: dict) -> str | None:
    """``"LOCATION has holes (...)"`` when the configured dataset's samples have holes.

    None when they have none. A region store counts its cells without a patch; a
    :class:`SlideLatticeDataset` (or :class:`SlideWindowViewsDataset`) is built (as
    training would) and has holes in window mode or when a region of its tiling misses
    a patch. None also when the store cannot be opened (building the dataset reports
    that, naming the store).
    """
    location = dataset.get('store')
    if not isinstance(location, str):
        return None
    kind = dataset.get('type')
    lattices = {cls.__name__: cls for cls in (SlideLatticeDataset, SlideWindowViewsDataset)}
    if getattr(kind, '__name__', kind) in lattices:
        options = {k: v for k, v in dataset.items() if k != 'type'}
        try:
            lattice = lattices[getattr(kind, '__name__', kind)](**options)
        except (UserError, OSError, TypeError):
            return None
        return (f'{lattice.location} has holes (lattice {lattice.mode} with cells without '
                f'a patch)') if lattice.has_holes else None
    try:
        store = open_store(location)
    except (UserError, OSError):
        return None
    try:
        missing = store.missing_cells()
    finally:
        store.close()
    return f'{store.location} has holes ({missing} grid cells without a patch)' if missing \
        else None


def _mask_problems(cfg: Config | dict) -> Iterator[str]:
    """A store with holes under a backbone that does not accept masks.

    A hole is a False cell of a tissue mask; such a backbone would train on the
    zero-filled cells as if they were tissue.
    """
    model = cfg.get('model')
    backbone = model.get('backbone') if isinstance(model, dict) else None
    kind = backbone.get('type') if isinstance(backbone, dict) else None
    target = R.MODELS.get(kind) if isinstance(kind, str) else kind
    if target is None or accepts_masks(target):
        return
    name = getattr(target, '__name__', str(kind))
    for split in ('train', 'val', 'test'):
        dataset = (cfg.get(f'{split}_dataloader') or {}).get('dataset')
        found = _store_with_holes(dataset) if isinstance(dataset, dict) else None
        if found:
            yield (f'{split}_dataloader.dataset.store: {found}, but model.backbone {name} '
                   f'does not accept masks (no `accepts_masks = True`), so it would read the '
                   f'zero-filled cells as tissue; use a backbone that takes masks (ViT4K, '
                   f'PooledMLP), give {name} `accepts_masks = True` and a '
                   f'`forward(x, mask=None)`, or ingest again with --min-tissue 1 (a lattice: '
                   f'regions with min_tissue=1)')


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def config_problems(cfg: Config | dict) -> list[str]:
    """Every problem :func:`check_config` would raise for, one line each."""
    problems = [f'{key}: unknown top-level key{_close(key, KNOWN_TOP_LEVEL)}'
                for key in cfg if key not in KNOWN_TOP_LEVEL and not key.startswith('_')
                and _close(key, KNOWN_TOP_LEVEL)]
    problems += _check_component('model', cfg.get('model'), R.MODELS, recurse=True)
    for name, hook in (cfg.get('default_hooks') or {}).items():
        problems += _check_component(f'default_hooks.{name}', hook, R.HOOKS)
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        problems += _check_component(f'custom_hooks[{i}]', hook, R.HOOKS)
    for split in ('train', 'val', 'test'):
        problems += _check_dataloader(f'{split}_dataloader', cfg.get(f'{split}_dataloader'))
    wrapper = cfg.get('optim_wrapper')
    if isinstance(wrapper, dict) and ('type' in wrapper or 'optimizer' in wrapper):
        problems += _check_component('optim_wrapper', wrapper, R.OPTIM_WRAPPERS,
                                     'OptimWrapper', BUILDER_KEYS['optim_wrapper'])
        problems += _check_component('optim_wrapper.optimizer', wrapper.get('optimizer'),
                                     R.OPTIMIZERS)
    schedulers = cfg.get('param_scheduler')
    for i, sched in enumerate(_as_list(schedulers) if schedulers else []):
        problems += _check_component(f'param_scheduler[{i}]', sched, R.PARAM_SCHEDULERS,
                                     extra=BUILDER_KEYS['param_scheduler'])
    train_cfg = cfg.get('train_cfg')
    if isinstance(train_cfg, dict):
        loop = 'EpochBasedTrainLoop' if train_cfg.get('by_epoch', True) else 'IterBasedTrainLoop'
        problems += _check_component('train_cfg', train_cfg, R.LOOPS, loop,
                                     BUILDER_KEYS['train_cfg'])
    problems += _check_component('visualizer', cfg.get('visualizer'), R.VISUALIZERS)
    for i, backend in enumerate(cfg.get('vis_backends') or []):
        problems += _check_component(f'vis_backends[{i}]', backend, R.VISBACKENDS)
    problems += _check_component('log_processor', cfg.get('log_processor'),
                                 R.LOG_PROCESSORS, 'LogProcessor')
    problems += _prototype_hook_problems(cfg)
    problems += _mask_problems(cfg)
    return problems


def check_config(cfg: Config | dict) -> None:
    """Raise before training if ``cfg`` has unknown keys or values of the wrong type.

    Args:
        cfg: The merged config (after ``--cfg-options``).

    Raises:
        ConfigCheckError: listing every problem, one per line, each starting with the
            dotted key (``model.backbone.arch``, ``default_hooks.prototype.num_clusters``).
    """
    problems = config_problems(cfg)
    if problems:
        raise ConfigCheckError('config check failed (fix the config or --cfg-options):\n  '
                               + '\n  '.join(problems))
