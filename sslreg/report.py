"""Results as files and tables: results.json/.csv/.md per run, one table over a sweep grid or several runs.

Every table set starts with one summary table: a row per run (with its 'random init' / 'difference' rows when
the run has a baseline, and 'paper' / 'difference (ours − paper)' rows for each published reference that
applies), a column per (evaluator, metric, layer), each metric's better direction marked ↑ or ↓. Below it,
one table per (evaluator, metric) in the paper's layout: ``| pretraining | res1 | ... | res5 |``. Scores
read ``mean ± std`` where a score averages several draws; differences are signed (``+2.3``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sslreg.evaluator import EvalResult, LayerScore
from sslreg.experiment import ExperimentConfig
from sslreg.reference import Reference

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
RANDOM_ROW = "random init"
RANDOM_DIFFERENCE = "difference (pretrained − random)"
PAPER_DIFFERENCE = "difference (ours − paper)"

Key = tuple[str, str, str]  # (evaluator, metric, layer)


@dataclass
class RunReport:
    """One run as tables show it: its results, its random-init baseline, the published rows that apply."""

    label: str
    results: list[EvalResult]
    baseline: list[EvalResult] | None = None
    references: list[Reference] = field(default_factory=list)
    point: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    folder: str = ""

    def rows(self) -> list[tuple[str, str, dict[Key, str]]]:
        """(row name, kind, cells by key): ours, then random init and its difference, then each paper row and
        its difference. ``kind`` is 'ours', 'random init', 'paper' or 'difference'."""
        ours = _scores(self.results)
        rows = [(self.label, "ours", {key: str(score) for key, score in ours.items()})]
        if self.baseline is not None:
            random = _scores(self.baseline)
            rows.append((RANDOM_ROW, "random init", {key: str(score) for key, score in random.items()}))
            rows.append((RANDOM_DIFFERENCE, "difference", _differences(ours, {k: s.mean for k, s in random.items()})))
        for reference in self.references:
            published = {key: value for key in ours if (value := reference.number(*key)) is not None}
            rows.append(
                (f"paper: {reference.label}", "paper", {key: f"{value:.1f}" for key, value in published.items()})
            )
            rows.append((PAPER_DIFFERENCE, "difference", _differences(ours, published)))
        return rows

    def differences(self) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """'random init' / 'paper: LABEL' -> evaluator -> metric -> layer -> ours minus theirs (for results.json)."""
        ours = _scores(self.results)
        theirs: dict[str, dict[Key, float]] = {}
        if self.baseline is not None:
            theirs[RANDOM_ROW] = {key: score.mean for key, score in _scores(self.baseline).items()}
        for reference in self.references:
            theirs[f"paper: {reference.label}"] = {
                key: value for key in ours if (value := reference.number(*key)) is not None
            }
        nested: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        for name, values in theirs.items():
            table = nested.setdefault(name, {})
            for (evaluator, metric, layer), value in values.items():
                if (evaluator, metric, layer) in ours:
                    difference = round(ours[(evaluator, metric, layer)].mean - value, 4)
                    table.setdefault(evaluator, {}).setdefault(metric, {})[layer] = difference
        return nested

    def unmatched_references(self) -> list[str]:
        """'LABEL: evaluator / metric / layer' of published numbers that match no result (a typo, or a layer
        the run did not evaluate)."""
        ours = _scores(self.results)
        return [
            f"{reference.label}: {evaluator} / {metric} / {layer}"
            for reference in self.references
            for evaluator, metrics in reference.scores.items()
            for metric, layers in metrics.items()
            for layer in layers
            if (evaluator, metric, layer) not in ours
        ]


def _scores(results: Sequence[EvalResult]) -> dict[Key, LayerScore]:
    return {(r.evaluator, r.metric, layer): score for r in results for layer, score in r.layers.items()}


def _differences(ours: dict[Key, LayerScore], theirs: dict[Key, float]) -> dict[Key, str]:
    return {key: f"{ours[key].mean - value:+.1f}" for key, value in theirs.items() if key in ours}


def run_label(experiment: ExperimentConfig) -> str:
    """The row name of a run, e.g. 'jigsaw embedded_photos' or 'resnet50 random init'."""
    if experiment.pretrain is not None:
        data = experiment.pretrain.data
        subset = data.subset
        return f"{experiment.pretrain.pretext.name} {data.name}" + (f" ({subset} images)" if subset else "")
    weights = experiment.backbone.weights
    return f"{experiment.backbone.name} " + (f"({Path(weights).name})" if weights else "random init")


# ----------------------------------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    """One column of the summary table: an (evaluator, metric, layer) and its compact header."""

    key: Key
    higher_is_better: bool
    header: str


def columns(reports: Sequence[RunReport]) -> list[Column]:
    """Every (evaluator, metric, layer) of ``reports`` in first-seen order, headed compactly: ``voc07_svm res3 ↑``
    (the metric is named when the evaluator reports several, or the result has one layer: ``voc07_detection mAP ↑``)."""
    seen: dict[Key, bool] = {}
    metrics: dict[str, set[str]] = {}
    layers: dict[tuple[str, str], set[str]] = {}
    for report in reports:
        for result in [*report.results, *(report.baseline or [])]:
            metrics.setdefault(result.evaluator, set()).add(result.metric)
            layers.setdefault((result.evaluator, result.metric), set()).update(result.layers)
            for layer in result.layers:
                seen.setdefault((result.evaluator, result.metric, layer), result.higher_is_better)
    found = []
    for (evaluator, metric, layer), higher in seen.items():
        single = len(layers[(evaluator, metric)]) == 1
        parts = [evaluator]
        if len(metrics[evaluator]) > 1 or single:
            parts.append(metric)
        if not single:
            parts.append(layer)
        found.append(Column((evaluator, metric, layer), higher, " ".join(parts) + (" ↑" if higher else " ↓")))
    return found


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], lines: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(cell) for cell in line) + " |" for line in lines]
    return "\n".join(out)


@dataclass(frozen=True)
class Identity:
    """How a table names its runs: leading column names, and their cells for one run."""

    names: list[str]
    cells: Callable[[RunReport], list[str]]
    by_label: bool = False


def _by_run(first_column: str) -> Identity:
    return Identity([first_column], lambda report: [report.label], by_label=True)


def _by_point(reports: Sequence[RunReport]) -> Identity:
    axes = list(dict.fromkeys(key for report in reports for key in report.point))
    return Identity(axes, lambda report: [str(report.point.get(axis, "")) for axis in axes])


def _grid(reports: Sequence[RunReport], identity: Identity, keys: Sequence[Key]) -> tuple[list[str], list[list[str]]]:
    """Header and lines of one table: identity columns, then 'row' when runs have extra rows, then ``keys``.

    A single run named by its label names its extra rows ('random init', ...) in the first column instead.
    """
    single = identity.by_label and len(reports) == 1
    with_kind = not single and any(report.baseline is not None or report.references for report in reports)
    header = [*identity.names, *(["row"] if with_kind else [])]
    lines = []
    for report in reports:
        own = identity.cells(report)
        for position, (name, _, cells) in enumerate(report.rows()):
            if single:
                lead = [name]
            else:
                lead = [*own, *([("ours" if position == 0 else name)] if with_kind else [])]
            lines.append([*lead, *(cells.get(key, "") for key in keys)])
    return header, lines


def summary_markdown(reports: Sequence[RunReport], identity: Identity) -> str:
    """The summary table: rows = runs (and their baseline/paper rows), columns = every (evaluator, metric, layer)."""
    found = columns(reports)
    header, lines = _grid(reports, identity, [column.key for column in found])
    return _md_table([*header, *(column.header for column in found)], lines)


def metric_markdown(reports: Sequence[RunReport], identity: Identity) -> str:
    """One table per (evaluator, metric) in the paper's layout: rows = runs, columns = layers."""
    groups: dict[tuple[str, str], tuple[bool, list[str]]] = {}
    for column in columns(reports):
        evaluator, metric, layer = column.key
        groups.setdefault((evaluator, metric), (column.higher_is_better, []))[1].append(layer)
    parts = []
    for (evaluator, metric), (higher, layers) in groups.items():
        keys = [(evaluator, metric, layer) for layer in layers]
        header, lines = _grid(reports, identity, keys)
        title = f"**{evaluator}: {metric}** ({'↑' if higher else '↓'})"
        parts.append(title + "\n\n" + _md_table([*header, *layers], lines))
    return "\n\n".join(parts)


def _sources(reports: Sequence[RunReport]) -> str:
    cited = dict.fromkeys(f"paper: {ref.label} — {ref.source}" for report in reports for ref in report.references)
    notes = [*cited]
    if any(report.baseline is not None for report in reports):
        notes.insert(
            0,
            "random init: the same architecture and input contract, randomly initialised with the run's seed (for a"
            " pretrained trunk: the weights its pretraining started from); difference = ours − theirs, so with ↓"
            " metrics a negative difference is better",
        )
    return "\n".join(f"- {note}" for note in notes)


def tables_markdown(reports: Sequence[RunReport], identity: Identity) -> str:
    """Summary table, notes on its extra rows, then the per-metric tables."""
    parts = [summary_markdown(reports, identity)]
    notes = _sources(reports)
    if notes:
        parts.append(notes)
    parts.append(metric_markdown(reports, identity))
    return "\n\n".join(parts) + "\n"


def markdown(reports: Sequence[RunReport], first_column: str = "pretraining") -> str:
    """The tables of runs identified by their label (the summary's first column is 'run')."""
    parts = [summary_markdown(reports, _by_run("run"))]
    notes = _sources(reports)
    if notes:
        parts.append(notes)
    parts.append(metric_markdown(reports, _by_run(first_column)))
    return "\n\n".join(parts) + "\n"


# -------------------------------------------------------------------------------------------------- provenance


def provenance_lines(provenance: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, value) pairs of a provenance block, for Markdown and CSV comments (the resolved config apart)."""
    if not provenance:
        return []
    software = provenance.get("software", {})
    git = provenance.get("git")
    device = provenance.get("device", {})
    lines = [
        ("sslreg", software.get("sslreg", "?")),
        ("git commit", f"{git['commit']}{' (uncommitted changes)' if git.get('dirty') else ''}" if git else "n/a"),
        (
            "python / torch / CUDA / cuDNN",
            " / ".join(str(software.get(k)) for k in ("python", "torch", "cuda", "cudnn")),
        ),
        (
            "mmengine / numpy / scikit-learn",
            " / ".join(str(software.get(k)) for k in ("mmengine", "numpy", "scikit-learn")),
        ),
        ("os", str(software.get("os", "?"))),
        ("device", _device_text(device)),
        ("plugins", ", ".join(f"{p['distribution']} {p['version']}" for p in provenance.get("plugins", []))),
        ("components", ", ".join(f"{k} ({v})" for k, v in provenance.get("components", {}).items())),
        ("seeds", ", ".join(f"{k}={v}" for k, v in provenance.get("seeds", {}).items())),
    ]
    for use, fingerprint in provenance.get("data", {}).items():
        lines.append((f"data: {use}", data_text(fingerprint)))
    for stage, info in provenance.get("stages", {}).items():
        seconds = info.get("seconds")
        finished = info.get("finished") or ""
        lines.append(
            (f"wall time: {stage}", (f"{seconds:.1f} s" if seconds is not None else "?") + f" {finished}".rstrip())
        )
    return lines


def _device_text(device: dict[str, Any]) -> str:
    gpus = device.get("gpus")
    where = f"cuda ({', '.join(gpus)})" if gpus else "cpu"
    cores, threads = device.get("cpu_cores", "?"), device.get("torch_threads", "?")
    return f"{where}; {device.get('cpu', '?')}, {cores} cores, {threads} torch threads"


def data_text(fingerprint: dict[str, Any]) -> str:
    """One dataset fingerprint in a line: files/bytes/hash when the source lists its files, else a hash of its
    name and options (generated data, or a source that does not describe its files)."""
    if "error" in fingerprint:
        return f"fingerprint failed ({fingerprint['error']})"
    if "files" in fingerprint:
        digest = str(fingerprint.get("sha256", ""))[:16]
        return f"{fingerprint['files']} files, {fingerprint.get('bytes', '?')} bytes, list sha256 {digest}"
    from sslreg.runner.folder import fingerprint_of

    return f"options hash {fingerprint_of(fingerprint)} (identified by its options)"


def provenance_markdown(provenance: dict[str, Any], config: dict[str, Any] | None) -> str:
    """The Provenance section: a field/value table and the resolved config as YAML."""
    parts = ["## Provenance", "", _md_table(["field", "value"], provenance_lines(provenance))]
    if config is not None:
        parts += ["", "Resolved config:", "", "```yaml", yaml.safe_dump(config, sort_keys=False).rstrip(), "```"]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------------- files


def long_csv(reports: Sequence[RunReport], comments: Sequence[str] = ()) -> str:
    """One line per (run, row kind, evaluator, metric, layer): mean, std, n; swept values as columns after 'run'.

    ``comments`` go first as ``# `` lines (provenance; read with ``pandas.read_csv(path, comment="#")``).
    """
    keys = list(dict.fromkeys(key for report in reports for key in report.point))
    out = io.StringIO()
    for comment in comments:
        out.write("# " + comment.replace("\n", " ") + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", *keys, "kind", "evaluator", "metric", "layer", "mean", "std", "n"])
    for report in reports:
        lead = [report.label, *(report.point.get(key, "") for key in keys)]
        blocks: list[tuple[str, list[EvalResult]]] = [("ours", report.results)]
        if report.baseline is not None:
            blocks.append((RANDOM_ROW, report.baseline))
        for kind, results in blocks:
            for result in results:
                for layer, score in result.layers.items():
                    std = "" if score.std is None else score.std
                    writer.writerow([*lead, kind, result.evaluator, result.metric, layer, score.mean, std, score.n])
        for reference in report.references:
            for evaluator, metrics in reference.scores.items():
                for metric, layers in metrics.items():
                    for layer, value in layers.items():
                        writer.writerow([*lead, f"paper: {reference.label}", evaluator, metric, layer, value, "", ""])
    return out.getvalue()


def csv_comments(report: RunReport, config: dict[str, Any] | None) -> list[str]:
    """Provenance as CSV comment lines: 'sslreg results: LABEL', each field, the resolved config as JSON."""
    lines = [f"sslreg results: {report.label}"]
    lines += [f"{name}: {value}" for name, value in provenance_lines(report.provenance)]
    for reference in report.references:
        lines.append(f"paper: {reference.label}: {reference.source}")
    if config is not None:
        lines.append("config: " + json.dumps(config, sort_keys=False, separators=(",", ":")))
    return lines


def run_markdown(report: RunReport, config: dict[str, Any] | None, plots: Sequence[str], name: str) -> str:
    """results.md: title, summary and per-metric tables, the plots, the pretraining line, provenance."""
    parts = [f"# {name}: results", "", markdown([report]).rstrip()]
    if plots:
        parts += ["", "Plots: " + ", ".join(f"[{plot}]({plot})" for plot in plots)]
    parts += ["", provenance_markdown(report.provenance, config)]
    return "\n".join(parts) + "\n"


def write_run_results(run_dir: Path, report: RunReport, info: dict[str, Any], plots: Sequence[str] = ()) -> list[Path]:
    """results.json (everything), results.csv (long form) and results.md (tables, plots, provenance) in ``run_dir``.

    Each file is written atomically and only when its content changes (a finished run's files stay as they are);
    results.json goes last.
    """
    from sslreg.files import write_text_if_changed

    config = info.get("config")
    payload = {
        "label": report.label,
        **info,
        "results": [result.model_dump(mode="json") for result in report.results],
        "baseline": None
        if report.baseline is None
        else {"kind": "random", "label": RANDOM_ROW, "results": [r.model_dump(mode="json") for r in report.baseline]},
        "reference": [reference.model_dump(mode="json") for reference in report.references],
        "differences": report.differences(),
        "plots": list(plots),
        "provenance": report.provenance,
    }
    name = (config or {}).get("name", report.label)
    written = [
        (long_csv([report], csv_comments(report, config)), run_dir / RESULTS_CSV),
        (run_markdown(report, config, plots, name), run_dir / RESULTS_MD),
        (json.dumps(payload, indent=2, ensure_ascii=False) + "\n", run_dir / RESULTS_JSON),
    ]
    for text, path in written:
        write_text_if_changed(text, path)
    return [path for _, path in written]


def read_run_results(path: Path) -> tuple[RunReport, dict[str, Any]]:
    """A RunReport and the whole payload from a results.json written by :func:`write_run_results`."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    baseline = payload.get("baseline")
    report = RunReport(
        label=str(payload["label"]),
        results=[EvalResult.model_validate(item) for item in payload["results"]],
        baseline=None if not baseline else [EvalResult.model_validate(item) for item in baseline["results"]],
        references=[Reference.model_validate(item) for item in payload.get("reference") or []],
        provenance=payload.get("provenance") or {},
        folder=str(path.parent),
    )
    return report, payload


# ----------------------------------------------------------------------------------------------------- terminal


def print_results(reports: Sequence[RunReport], title: str = "results", by_point: bool = False) -> None:
    """The summary table on the terminal (rich), then the per-metric tables when there are several metrics."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(width=None if console_is_tty() else 200)
    identity = _by_point(reports) if by_point else _by_run("run")
    found = columns(reports)

    def show(name: str, keys: Sequence[Key], headers: Sequence[str]) -> None:
        header, lines = _grid(reports, identity, keys)
        # Text, not markup: run labels and folders such as '[/data/run]' are shown as they are.
        table = Table(title=Text(name), title_justify="left")
        for column in header:
            table.add_column(Text(column))
        for column in headers:
            table.add_column(Text(column), justify="right")
        for line in lines:
            style = "dim" if line[len(header) - 1] in (RANDOM_DIFFERENCE, PAPER_DIFFERENCE) else None
            table.add_row(*(Text(cell) for cell in line), style=style)
        console.print(table)

    show(title, [c.key for c in found], [c.header for c in found])
    groups = list(dict.fromkeys(column.key[:2] for column in found))
    if len(groups) > 1:
        for evaluator, metric in groups:
            keys = [c.key for c in found if c.key[:2] == (evaluator, metric)]
            arrow = "↑" if next(c for c in found if c.key[:2] == (evaluator, metric)).higher_is_better else "↓"
            show(f"{title}: {evaluator} {metric} ({arrow})", keys, [key[2] for key in keys])
    notes = _sources(reports)
    if notes:
        console.print(notes, highlight=False, soft_wrap=True)


def console_is_tty() -> bool:
    import sys

    return sys.stdout.isatty()


# ------------------------------------------------------------------------------------------------------- sweeps


def sweep_markdown(reports: Sequence[RunReport]) -> str:
    """Summary table over the grid (swept values, then every column), notes, then one table per metric."""
    return tables_markdown(reports, _by_point(reports))


def shared_provenance(reports: Sequence[RunReport]) -> str:
    """The provenance fields every run shares, and those that differ (named with their values)."""
    fields: dict[str, dict[str, list[str]]] = {}
    for report in reports:
        for name, value in provenance_lines(report.provenance):
            if name.startswith(("wall time", "data", "seeds")):
                continue
            fields.setdefault(name, {}).setdefault(value, []).append(report.label)
    lines = []
    for name, values in fields.items():
        if len(values) == 1:
            lines.append((name, next(iter(values))))
        else:
            lines.append(
                (name, "DIFFERS: " + "; ".join(f"{value} ({', '.join(runs)})" for value, runs in values.items()))
            )
    return _md_table(["field", "value"], lines) if lines else ""


def write_sweep_report(out_dir: Path, reports: Sequence[RunReport]) -> list[Path]:
    """sweep_results.csv, sweep_results.md and the PNG plots in ``out_dir``."""
    from sslreg.files import atomic_write_text
    from sslreg.plots import sweep_plots

    comments = ["sslreg sweep results; each point's folder holds its results.json with full provenance"]
    shared = [f"{name}: {value}" for name, value in provenance_lines(reports[0].provenance)] if reports else []
    text = "# sweep results\n\n" + sweep_markdown(reports)
    table = shared_provenance(reports)
    if table:
        text += (
            "\n## Provenance\n\nShared by the points (each point's results.md has its own in full):\n\n" + table + "\n"
        )
    written = [
        atomic_write_text(
            long_csv(reports, comments + [c for c in shared if not c.startswith("wall time")]),
            out_dir / "sweep_results.csv",
        ),
        atomic_write_text(text, out_dir / "sweep_results.md"),
    ]
    points = [(report.label, report.point, report.results) for report in reports]
    return written + sweep_plots(out_dir, points)


__all__ = [
    "RunReport",
    "columns",
    "long_csv",
    "markdown",
    "print_results",
    "collect_runs",
    "read_run_results",
    "report_markdown",
    "run_label",
    "sweep_markdown",
    "write_run_results",
    "write_sweep_report",
]


# ------------------------------------------------------------------------------------------------ sslreg report


def collect_runs(folders: Sequence[Path]) -> list[RunReport]:
    """The finished runs in ``folders``: a run folder (its results.json), or a sweep folder (each point's).

    A folder with neither, or an unreadable results.json, is a UserError naming it. Runs whose labels repeat
    get their folder name added.
    """
    from pydantic import ValidationError

    from sslreg.errors import UserError

    found: list[RunReport] = []
    for folder in folders:
        if (folder / RESULTS_JSON).is_file():
            paths = [(folder / RESULTS_JSON, None)]
        elif folder.is_dir():
            paths = [(path, f"{folder.name}/{path.parent.name}") for path in sorted(folder.glob(f"*/{RESULTS_JSON}"))]
        else:
            raise UserError(f"{folder}: no such folder")
        if not paths:
            raise UserError(f"{folder}: no {RESULTS_JSON} here or in its sub-folders (not a finished sslreg run)")
        for path, label in paths:
            try:
                report, _ = read_run_results(path)
            except (OSError, ValueError, KeyError, TypeError, ValidationError) as error:
                raise UserError(f"{path}: not a results file sslreg can read ({type(error).__name__})") from None
            if label is not None:
                report.label = f"{label} ({report.label})"
            found.append(report)
    counts: dict[str, int] = {}
    for report in found:
        counts[report.label] = counts.get(report.label, 0) + 1
    for report in found:
        if counts[report.label] > 1:
            report.label = f"{report.label} [{report.folder}]"
    return found


def runs_provenance_markdown(reports: Sequence[RunReport]) -> str:
    """A row per run: folder, sslreg and git commit, torch/CUDA, device, seeds, data fingerprints, wall time."""
    lines = []
    for report in reports:
        values = dict(provenance_lines(report.provenance))
        stages = report.provenance.get("stages", {})
        total = sum(float(info.get("seconds") or 0.0) for info in stages.values())
        data = "; ".join(f"{use}: {data_text(value)}" for use, value in report.provenance.get("data", {}).items())
        lines.append(
            [
                report.label,
                report.folder,
                values.get("sslreg", "?"),
                values.get("git commit", "?"),
                values.get("python / torch / CUDA / cuDNN", "?"),
                values.get("device", "?"),
                values.get("seeds", "?"),
                data or "?",
                f"{total:.0f} s" if stages else "?",
            ]
        )
    header = ["run", "folder", "sslreg", "git commit", "python / torch / CUDA / cuDNN", "device", "seeds", "data"]
    return _md_table([*header, "wall time"], lines)


def report_markdown(reports: Sequence[RunReport]) -> str:
    """``sslreg report``: the merged tables, then each run's provenance and what differs between runs."""
    parts = ["# sslreg report", "", markdown(reports).rstrip()]
    parts += ["", "## Provenance", "", runs_provenance_markdown(reports)]
    shared = shared_provenance(reports)
    if shared and len(reports) > 1:
        parts += ["", "Shared by the runs, or named where they differ:", "", shared]
    return "\n".join(parts) + "\n"
