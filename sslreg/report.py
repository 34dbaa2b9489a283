"""Results as files and tables: results.json/.csv/.md per run, one table over a sweep grid, and its PNG plots.

The Markdown table is laid out like the paper's: one row per pretraining, one column per layer
(``| pretraining | res1 | ... | res5 |``), ``mean ± std`` where a score averages several draws.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sslreg.evaluator import EvalResult, LayerScore
from sslreg.experiment import ExperimentConfig

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"

Row = tuple[str, list[EvalResult]]  # (row label, that run's results)


def run_label(experiment: ExperimentConfig) -> str:
    """The row name of a run, e.g. 'jigsaw embedded_photos' or 'resnet50 random init'."""
    if experiment.pretrain is not None:
        data = experiment.pretrain.data
        subset = data.subset
        return f"{experiment.pretrain.pretext.name} {data.name}" + (f" ({subset} images)" if subset else "")
    weights = experiment.backbone.weights
    return f"{experiment.backbone.name} " + (f"({Path(weights).name})" if weights else "random init")


def _groups(rows: Sequence[Row]) -> dict[tuple[str, str], list[tuple[str, EvalResult]]]:
    """(evaluator, metric) -> [(row label, result)] in first-seen order."""
    groups: dict[tuple[str, str], list[tuple[str, EvalResult]]] = defaultdict(list)
    for label, results in rows:
        for result in results:
            groups[(result.evaluator, result.metric)].append((label, result))
    return groups


def _layers(entries: Iterable[EvalResult]) -> list[str]:
    layers: list[str] = []
    for result in entries:
        layers.extend(layer for layer in result.layers if layer not in layers)
    return layers


def _cell(score: LayerScore | None) -> str:
    return "" if score is None else str(score)


def markdown(rows: Sequence[Row], first_column: str = "pretraining") -> str:
    """One Markdown table per (evaluator, metric): rows = runs, columns = layers."""
    parts = []
    for (evaluator, metric), entries in _groups(rows).items():
        layers = _layers(result for _, result in entries)
        arrow = "↑" if entries[0][1].higher_is_better else "↓"
        lines = [
            f"**{evaluator}: {metric}** ({arrow})",
            "",
            "| " + " | ".join([first_column, *layers]) + " |",
            "|" + "---|" * (len(layers) + 1),
        ]
        for label, result in entries:
            lines.append("| " + " | ".join([label, *(_cell(result.layers.get(layer)) for layer in layers)]) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def long_csv(rows: Sequence[Row], extra: dict[str, dict[str, Any]] | None = None) -> str:
    """One line per (run, evaluator, metric, layer): mean, std, n; ``extra[label]`` adds columns (swept values)."""
    extra = extra or {}
    keys = list(dict.fromkeys(key for values in extra.values() for key in values))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", *keys, "evaluator", "metric", "layer", "mean", "std", "n"])
    for label, results in rows:
        for result in results:
            for layer, score in result.layers.items():
                writer.writerow(
                    [
                        label,
                        *(extra.get(label, {}).get(key, "") for key in keys),
                        result.evaluator,
                        result.metric,
                        layer,
                        score.mean,
                        "" if score.std is None else score.std,
                        score.n,
                    ]
                )
    return out.getvalue()


def write_run_results(run_dir: Path, label: str, results: list[EvalResult], info: dict[str, Any]) -> list[Path]:
    """results.json (everything), results.csv (long form) and results.md (paper layout) in ``run_dir``.

    Each file is written atomically and only when its content changes (a finished run's files stay as they are);
    results.json goes last.
    """
    from sslreg.files import write_text_if_changed

    payload = {"label": label, **info, "results": [result.model_dump(mode="json") for result in results]}
    rows = [(label, results)]
    written = [
        (long_csv(rows), run_dir / RESULTS_CSV),
        (markdown(rows), run_dir / RESULTS_MD),
        (json.dumps(payload, indent=2) + "\n", run_dir / RESULTS_JSON),
    ]
    for text, path in written:
        write_text_if_changed(text, path)
    return [path for _, path in written]


def print_results(rows: Sequence[Row], title: str = "results", first_column: str = "pretraining") -> None:
    """The per-layer tables on the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for (evaluator, metric), entries in _groups(rows).items():
        layers = _layers(result for _, result in entries)
        table = Table(title=f"{title}: {evaluator} {metric}")
        table.add_column(first_column)
        for layer in layers:
            table.add_column(layer, justify="right")
        for label, result in entries:
            table.add_row(label, *(_cell(result.layers.get(layer)) for layer in layers))
        console.print(table)


def _best(result: EvalResult) -> float:
    values = [score.mean for score in result.layers.values()]
    return max(values) if result.higher_is_better else min(values)


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and len(set(values)) > 1


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def sweep_plots(out_dir: Path, points: Sequence[tuple[str, dict[str, Any], list[EvalResult]]]) -> list[Path]:
    """PNG plots: the best layer's metric vs every numeric swept axis (a line per value of the other axes),
    and the metric per layer (a line per sweep point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
            figure.tight_layout()
            path = out_dir / f"plot_{name}_vs_{_slug(axis.split('.')[-1])}.png"
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written.append(path)
        layers = _layers(result for _, _, result in entries)
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
        figure.tight_layout()
        path = out_dir / f"plot_{name}_per_layer.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def sweep_markdown(points: Sequence[tuple[str, dict[str, Any], list[EvalResult]]]) -> str:
    """One table per (evaluator, metric) over the grid: swept values, then one column per layer."""
    axes = list(dict.fromkeys(key for _, point, _ in points for key in point))
    parts = []
    for (evaluator, metric), entries in _groups([(label, results) for label, _, results in points]).items():
        layers = _layers(result for _, result in entries)
        point_of = {label: point for label, point, _ in points}
        lines = [
            f"**{evaluator}: {metric}**",
            "",
            "| " + " | ".join([*axes, *layers]) + " |",
            "|" + "---|" * (len(axes) + len(layers)),
        ]
        for label, result in entries:
            cells = [str(point_of[label].get(axis, "")) for axis in axes]
            cells += [_cell(result.layers.get(layer)) for layer in layers]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def write_sweep_report(out_dir: Path, points: Sequence[tuple[str, dict[str, Any], list[EvalResult]]]) -> list[Path]:
    """sweep_results.csv, sweep_results.md and the PNG plots in ``out_dir``."""
    from sslreg.files import atomic_write_text

    rows = [(label, results) for label, _, results in points]
    extra = {label: point for label, point, _ in points}
    written = [
        atomic_write_text(long_csv(rows, extra), out_dir / "sweep_results.csv"),
        atomic_write_text(sweep_markdown(points), out_dir / "sweep_results.md"),
    ]
    return written + sweep_plots(out_dir, points)
