"""Published numbers to compare a run with: the experiment's ``reference:`` blocks, and which of them apply.

A block gives a source (the citation), a row label, the numbers as evaluator -> metric -> layer -> value, and
optionally ``when``: dotted config paths and the values they must have for the block to apply (so one sweep
can hold the paper's row of each point it reproduces). Result tables then show the paper's row beside ours
and the difference (ours - paper).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Marks a path that is not in the config (a ``when`` on it never matches).
_ABSENT = object()


class Reference(BaseModel):
    """One published row: where it comes from, its label, its numbers, and the configs it applies to."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, description="Citation: paper, table and row, e.g. 'Goyal et al. 2019, Table 2'.")
    label: str = Field("paper", min_length=1, description="Row name in result tables, e.g. 'Jigsaw YFCC-100M'.")
    when: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted config path -> value: the block applies only to runs (sweep points) whose resolved config"
        " has these values, e.g. {pretrain.data.subset: 100000000}; empty: always.",
    )
    scores: dict[str, dict[str, dict[str, float]]] = Field(
        description="evaluator name -> metric (as the evaluator reports it, e.g. 'VOC07 SVM mAP') -> layer -> number."
    )

    @field_validator("scores")
    @classmethod
    def _numbers(cls, scores: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
        if not scores or not all(metrics and all(layers for layers in metrics.values()) for metrics in scores.values()):
            raise ValueError("needs at least one number: evaluator -> metric -> layer -> number")
        for evaluator, metrics in scores.items():
            for metric, layers in metrics.items():
                for layer, value in layers.items():
                    if not math.isfinite(value):
                        raise ValueError(f"{evaluator} / {metric} / {layer}: {value} is not a finite number")
        return scores

    @field_validator("when")
    @classmethod
    def _paths(cls, when: dict[str, Any]) -> dict[str, Any]:
        from sslreg.experiment import PathError, parse_path

        for path in when:
            try:
                parse_path(path)
            except PathError as error:
                raise ValueError(str(error)) from None
        return when

    def applies_to(self, config: dict[str, Any]) -> bool:
        """Whether every ``when`` path of this block has its value in ``config`` (a resolved experiment dump)."""
        return all(_value_at(config, path) == value for path, value in self.when.items())

    def number(self, evaluator: str, metric: str, layer: str) -> float | None:
        """The published number for one (evaluator, metric, layer), or None."""
        return self.scores.get(evaluator, {}).get(metric, {}).get(layer)


def _value_at(config: Any, dotted: str) -> Any:
    from sslreg.experiment import parse_path

    node = config
    for part in parse_path(dotted):
        if isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and str(part).isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _ABSENT
    return node


def applicable(references: list[Reference], config: dict[str, Any]) -> list[Reference]:
    """The blocks of ``references`` that apply to the resolved experiment ``config``."""
    return [reference for reference in references if reference.applies_to(config)]


__all__ = ["Reference", "applicable"]
