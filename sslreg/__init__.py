"""sslreg: self-supervised representation learning and its layer-by-layer benchmarks, as plugins."""

__version__ = "0.1.0"

#: Version of the plugin API. A plugin may declare the API it was written for as
#: ``SSLREG_API_VERSION`` in its entry-point module; any other value is refused at load.
API_VERSION = 1

from sslreg.backbone import Backbone, BackboneConfig, PoolSpec  # noqa: E402
from sslreg.component import Component, ComponentConfig  # noqa: E402
from sslreg.dataset import DatasetConfig, DatasetSource, DataSpec, Sample  # noqa: E402
from sslreg.evaluator import EvalContext, EvalResult, Evaluator, EvaluatorConfig, LayerScore  # noqa: E402
from sslreg.hookspecs import hookimpl  # noqa: E402
from sslreg.pretext import PretextConfig, PretextModel, PretextTask  # noqa: E402

__all__ = [
    "API_VERSION",
    "Backbone",
    "BackboneConfig",
    "Component",
    "ComponentConfig",
    "DataSpec",
    "DatasetConfig",
    "DatasetSource",
    "EvalContext",
    "EvalResult",
    "Evaluator",
    "EvaluatorConfig",
    "LayerScore",
    "PoolSpec",
    "PretextConfig",
    "PretextModel",
    "PretextTask",
    "Sample",
    "hookimpl",
    "__version__",
]
