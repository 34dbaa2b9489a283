"""PNG plots of results (matplotlib, Agg): a run's pretext loss curve and per-layer comparison, and a sweep's
metric vs each numeric swept axis and per layer. Each file is written atomically, and only when it changes."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sslreg.evaluator import EvalResult

if TYPE_CHECKING:
    from sslreg.report import RunReport

LOSS_PLOT = "loss_curve.png"
LAYERS_PLOT = "layers.png"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    """Save ``figure`` as PNG at ``path`` (atomically, only if the bytes differ) and close it."""
    from sslreg.files import atomic_write_bytes

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    _pyplot().close(figure)
    data = buffer.getvalue()
    if not (path.is_file() and path.read_bytes() == data):
        atomic_write_bytes(path, data)
    return path


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


# --------------------------------------------------------------------------------------------------- one run


def logged_losses(run_dir: Path) -> list[tuple[int, float]]:
    """(iteration, loss) pairs mmengine logged in ``run_dir/<timestamp>/vis_data/scalars.json``, over every
    start of the run (a resume adds a folder; a later start's value wins for the same iteration)."""
    by_step: dict[int, float] = {}
    for path in sorted(run_dir.glob("*/vis_data/scalars.json")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                entry = json.loads(line)
                step, loss = int(entry["step"]), float(entry["loss"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line of a killed run, or a line without a loss
            by_step[step] = loss
    return sorted(by_step.items())


def loss_plot(run_dir: Path, losses: Sequence[tuple[int, float]], title: str) -> Path | None:
    """``loss_curve.png``: the pretext loss against iterations (None when nothing was logged)."""
    if not losses:
        return None
    plt = _pyplot()
    figure, plot = plt.subplots(figsize=(5.5, 3.6))
    plot.plot([step for step, _ in losses], [loss for _, loss in losses], marker="." if len(losses) < 40 else None)
    plot.set_xlabel("iteration")
    plot.set_ylabel("pretext loss")
    plot.set_title(title)
    plot.grid(alpha=0.3)
    return _save(figure, run_dir / LOSS_PLOT)


def layers_plot(run_dir: Path, report: RunReport) -> Path | None:
    """``layers.png``: each (evaluator, metric) per layer, with the random-init baseline and the paper's numbers
    when the run has them (None when no result has two layers or more)."""
    groups = [result for result in report.results if len(result.layers) > 1]
    if not groups:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(groups), figsize=(5.0 * len(groups), 3.8), squeeze=False)
    baseline = {(r.evaluator, r.metric): r for r in report.baseline or []}
    for plot, result in zip(axes[0], groups):
        layers = list(result.layers)
        plot.plot(layers, [result.layers[layer].mean for layer in layers], marker="o", label=report.label)
        random = baseline.get((result.evaluator, result.metric))
        if random is not None:
            values = [random.layers[layer].mean if layer in random.layers else float("nan") for layer in layers]
            plot.plot(layers, values, marker="s", linestyle="--", label="random init")
        for reference in report.references:
            values = [reference.number(result.evaluator, result.metric, layer) for layer in layers]
            if any(value is not None for value in values):
                shown = [float("nan") if value is None else value for value in values]
                plot.plot(layers, shown, marker="^", linestyle=":", label=f"paper: {reference.label}")
        arrow = "↑" if result.higher_is_better else "↓"
        plot.set_title(f"{result.evaluator}: {result.metric} ({arrow})", fontsize=10)
        plot.set_xlabel("layer")
        plot.set_ylabel(result.metric)
        plot.grid(alpha=0.3)
        plot.legend(fontsize=7)
    return _save(figure, run_dir / LAYERS_PLOT)


# ----------------------------------------------------------------------------------------------------- sweeps


def _best(result: EvalResult) -> float:
    values = [score.mean for score in result.layers.values()]
    return max(values) if result.higher_is_better else min(values)


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and len(set(values)) > 1


def sweep_plots(out_dir: Path, points: Sequence[tuple[str, dict[str, Any], list[EvalResult]]]) -> list[Path]:
    """The best layer's metric vs every numeric swept axis (a line per value of the other axes), and the metric
    per layer (a line per sweep point)."""
    plt = _pyplot()
    written: list[Path] = []
    axes = list(dict.fromkeys(key for _, point, _ in points for key in point))
    by_metric: dict[tuple[str, str], list[tuple[str, dict[str, Any], EvalResult]]] = defaultdict(list)
    for label, point, results in points:
        for result in results:
            by_metric[(result.evaluator, result.metric)].append((label, point, result))
    for (evaluator, metric), entries in by_metric.items():
        name = _slug(f"{evaluator}_{metric}")
        for axis in axes:
            values = [point.get(axis) for _, point, _ in entries]
            if not _numeric(values):
                continue
            others = [a for a in axes if a != axis]
            lines: dict[str, list[tuple[float, float]]] = defaultdict(list)
            for _, point, result in entries:
                key = ", ".join(f"{a.split('.')[-1]}={point.get(a)}" for a in others) or metric
                lines[key].append((float(point[axis]), _best(result)))
            figure, plot = plt.subplots(figsize=(5.5, 4))
            for key, xy in lines.items():
                xy.sort()
                plot.plot([x for x, _ in xy], [y for _, y in xy], marker="o", label=key)
            xs = [float(v) for v in values]
            if min(xs) > 0 and max(xs) / min(xs) >= 20:
                plot.set_xscale("log")
            plot.set_xlabel(axis)
            plot.set_ylabel(f"{metric} (best layer)")
            plot.set_title(f"{evaluator}: {metric} vs {axis.split('.')[-1]}")
            plot.grid(alpha=0.3)
            plot.legend(fontsize=7)
            written.append(_save(figure, out_dir / f"plot_{name}_vs_{_slug(axis.split('.')[-1])}.png"))
        layers = list(dict.fromkeys(layer for _, _, result in entries for layer in result.layers))
        figure, plot = plt.subplots(figsize=(5.5, 4))
        for label, _, result in entries:
            plot.plot(
                layers,
                [result.layers[layer].mean if layer in result.layers else float("nan") for layer in layers],
                marker="o",
                label=label,
            )
        plot.set_xlabel("layer")
        plot.set_ylabel(metric)
        plot.set_title(f"{evaluator}: {metric} per layer")
        plot.grid(alpha=0.3)
        plot.legend(fontsize=7)
        written.append(_save(figure, out_dir / f"plot_{name}_per_layer.png"))
    return written


__all__ = ["LAYERS_PLOT", "LOSS_PLOT", "layers_plot", "logged_losses", "loss_plot", "sweep_plots"]
