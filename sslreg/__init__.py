"""sslreg: self-supervised representation learning and its layer-by-layer benchmarks, as plugins."""

__version__ = "0.1.0"

#: Version of the plugin API. A plugin may declare the API it was written for as
#: ``SSLREG_API_VERSION`` in its entry-point module; any other value is refused at load.
API_VERSION = 1

from sslreg.backbone import Backbone, BackboneConfig, PoolSpec  # noqa: E402
from sslreg.component import Component, ComponentConfig  # noqa: E402
from sslreg.dataset import DatasetConfig, DatasetSource, DataSpec, Sample  # noqa: E402
from sslreg.errors import ConfigError, NoReadableImages, UserError  # noqa: E402
from sslreg.evaluator import (  # noqa: E402
    EvalContext,
    EvalResult,
    Evaluator,
    EvaluatorConfig,
    LabeledDataConfig,
    LayerScore,
    LrSteps,
    resolve_device,
)
from sslreg.hookspecs import hookimpl  # noqa: E402
from sslreg.pretext import PretextConfig, PretextModel, PretextTask, StepContext  # noqa: E402

#: The rest of the public API, imported on first use (keeps ``import sslreg`` and ``sslreg list`` fast).
_LAZY: dict[str, str] = {
    "FeatureSet": "sslreg.features",
    "Preprocess": "sslreg.inputs",
    "extract_features": "sslreg.features",
    "feature_cache_key": "sslreg.features",
    "pool_features": "sslreg.pooling",
    "IMAGENET_MEAN": "sslreg.inputs",
    "IMAGENET_STD": "sslreg.inputs",
    "InputContract": "sslreg.inputs",
    "build_trunk": "sslreg.trunk",
    "contract_of_file": "sslreg.trunk",
    "LoadReport": "sslreg.weights",
    "load_trunk_weights": "sslreg.weights",
    "read_weights": "sslreg.weights",
    "files_fingerprint": "sslreg.dataset",
    "Batch": "sslreg.data",
    "Collate": "sslreg.data",
    "EpochSampler": "sslreg.data",
    "make_loader": "sslreg.data",
    "sample_rng": "sslreg.data",
    "stack": "sslreg.data",
    "world": "sslreg.data",
    "Augment": "sslreg.augment",
    "AugmentSteps": "sslreg.augment",
    "build_pipeline": "sslreg.augment",
    "gather": "sslreg.distributed",
    "gather_with_grad": "sslreg.distributed",
    "batch_shuffle": "sslreg.distributed",
    "rank_and_world": "sslreg.distributed",
    "rank_offset": "sslreg.distributed",
    "PluginError": "sslreg.errors",
    "env_flag": "sslreg.env",
    "atomic_open": "sslreg.files",
    "atomic_write_bytes": "sslreg.files",
    "atomic_write_text": "sslreg.files",
    "cache_dir": "sslreg.files",
    "load_weights_only": "sslreg.files",
    "get_registry": "sslreg.plugins",
    "Registry": "sslreg.registry",
    "UnknownComponent": "sslreg.registry",
    "AmbiguousComponent": "sslreg.registry",
}


def __getattr__(name: str) -> object:
    """Import the lazily exported names of the public API on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sslreg' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "API_VERSION",
    "Backbone",
    "BackboneConfig",
    "Component",
    "ComponentConfig",
    "ConfigError",
    "DataSpec",
    "DatasetConfig",
    "DatasetSource",
    "EvalContext",
    "EvalResult",
    "Evaluator",
    "EvaluatorConfig",
    "LabeledDataConfig",
    "LrSteps",
    "LayerScore",
    "NoReadableImages",
    "PoolSpec",
    "PretextConfig",
    "PretextModel",
    "PretextTask",
    "Sample",
    "StepContext",
    "UserError",
    "__version__",
    "hookimpl",
    "resolve_device",
    *_LAZY,
]
