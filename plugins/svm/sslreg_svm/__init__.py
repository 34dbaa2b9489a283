"""sslreg-svm: linear-SVM benchmarks (VOC07 SVM, low-shot VOC07) on frozen trunk features."""

from __future__ import annotations

SSLREG_API_VERSION = 1
