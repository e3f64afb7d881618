"""Registries of the ``slpd_plugin`` scope.

Every root registry of mmengine that a config can touch gets a child here, so that
``default_scope='slpd_plugin'`` finds our classes first and falls back to mmengine's own
(``Runner``, ``CheckpointHook``, ``AdamW``, ...) without the "Failed to search registry"
warning. ``locations`` lets mmengine import the modules that register into each child
lazily, the first time a config asks for a name from it.
"""
from mmengine import registry as mmengine_registry
from mmengine.registry import Registry

SCOPE = 'slpd_plugin'


def _child(name: str, where: str) -> Registry:
    """The ``slpd_plugin`` child of mmengine's root registry ``name`` (same name string).

    The modules that register into it are imported from ``slpd_plugin.<where>`` on
    first use.
    """
    parent = getattr(mmengine_registry, name)
    return Registry(parent.name, parent=parent, scope=SCOPE,
                    locations=[f'slpd_plugin.{where}'])


RUNNERS = _child('RUNNERS', 'engine')
LOOPS = _child('LOOPS', 'engine')
HOOKS = _child('HOOKS', 'engine.hooks')
LOG_PROCESSORS = _child('LOG_PROCESSORS', 'engine')

DATASETS = _child('DATASETS', 'datasets')
DATA_SAMPLERS = _child('DATA_SAMPLERS', 'datasets.samplers')
TRANSFORMS = _child('TRANSFORMS', 'datasets')
FUNCTIONS = _child('FUNCTIONS', 'datasets')

MODELS = _child('MODELS', 'models')
MODEL_WRAPPERS = _child('MODEL_WRAPPERS', 'models')

OPTIMIZERS = _child('OPTIMIZERS', 'engine.optimizers')
OPTIM_WRAPPERS = _child('OPTIM_WRAPPERS', 'engine.optimizers')
OPTIM_WRAPPER_CONSTRUCTORS = _child('OPTIM_WRAPPER_CONSTRUCTORS', 'engine.optimizers')
PARAM_SCHEDULERS = _child('PARAM_SCHEDULERS', 'engine.optimizers')

METRICS = _child('METRICS', 'evaluation')
VISUALIZERS = _child('VISUALIZERS', 'engine')
VISBACKENDS = _child('VISBACKENDS', 'engine')
