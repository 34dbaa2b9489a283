"""sslreg plugin: object detection on a frozen trunk (docs/protocol.md#object-detection) and VOC box data."""

from sslreg import hookimpl
from sslreg_detection.demo import EmbeddedDetection
from sslreg_detection.evaluator import DetectionConfig, VocDetectionEvaluator
from sslreg_detection.voc_detection import VocDetection

SSLREG_API_VERSION = 1

__all__ = ["DetectionConfig", "EmbeddedDetection", "SSLREG_API_VERSION", "VocDetection", "VocDetectionEvaluator"]


@hookimpl
def sslreg_register(register) -> None:
    """Register the ``voc07_detection`` evaluator and the ``voc_detection`` / ``embedded_detection`` sources."""
    register(VocDetectionEvaluator)
    register(VocDetection)
    register(EmbeddedDetection)
