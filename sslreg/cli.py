"""The ``sslreg`` command: list and inspect components, show plugins, validate and run experiments."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import sslreg
from sslreg.env import env_flag
from sslreg.errors import ConfigError, PluginError, UserError
from sslreg.files import attached_log, cache_dir, describe_os_error
from sslreg.registry import KINDS, Entry

DEBUG_ENV = "SSLREG_DEBUG"


def _console() -> Console:
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_list(args: argparse.Namespace) -> int:
    """sslreg list [KIND] [PATTERN]: every registered component with its provider."""
    from sslreg.plugins import get_registry

    registry = get_registry()
    kind = args.kind
    if kind and kind not in KINDS:
        kind = kind.rstrip("s") if kind.rstrip("s") in KINDS else kind
        if kind not in KINDS:
            raise UserError(f"unknown kind {args.kind!r}; kinds are {', '.join(KINDS)}")
    entries = registry.list(kind, args.pattern)
    if args.json:
        _print_json([_entry_json(entry, registry.is_ambiguous(entry)) for entry in entries])
        return 0
    table = Table(title=f"sslreg components ({len(entries)})", title_justify="left")
    for column in ("name", "kind", "provider", "summary"):
        table.add_column(column, overflow="fold")
    clashes: dict[tuple[str, str], list[str]] = {}
    for entry in entries:
        shown = entry.name
        if registry.is_ambiguous(entry):
            shown = entry.qualified_name
            clashes.setdefault((entry.kind, entry.name), []).append(entry.qualified_name)
        table.add_row(shown, entry.kind, entry.provider, entry.summary)
    console = _console()
    console.print(table)
    for (kind, name), qualified in clashes.items():
        console.print(
            f"{kind} {name!r} is provided by {len(qualified)} plugins: name one in configs as "
            + " or ".join(qualified),
            highlight=False,
        )
    return 0


def _entry_json(entry: Entry, ambiguous: bool = False) -> dict[str, Any]:
    return {
        "name": entry.name,
        "qualified_name": entry.qualified_name,
        "ambiguous": ambiguous,
        "kind": entry.kind,
        "plugin": entry.plugin,
        "distribution": entry.distribution,
        "version": entry.version,
        "summary": entry.summary,
    }


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("sslreg.dataset.", "").replace("NoneType", "None")


def _constraint(field: Any) -> str:
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "min_length": "len ≥", "max_length": "len ≤"}
    parts = []
    for item in field.metadata:
        for attribute, symbol in symbols.items():
            value = getattr(item, attribute, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def _default(field: Any) -> Any:
    if field.is_required():
        return "(required)"
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


def options_of(cls: type) -> list[dict[str, Any]]:
    """Every option of a component: name, type, default, constraint and doc, from its pydantic model."""
    rows = []
    for name, field in cls.Config.model_fields.items():
        if name == "name":
            continue
        default = _default(field)
        rows.append(
            {
                "option": name,
                "type": _type_name(field.annotation),
                "default": default.model_dump() if hasattr(default, "model_dump") else default,
                "constraint": _constraint(field),
                "doc": field.description or "",
            }
        )
    return rows


def cmd_info(args: argparse.Namespace) -> int:
    """sslreg info NAME: options, inputs/outputs and facts of a component."""
    from sslreg.plugins import get_registry

    registry = get_registry()
    entries = [entry for entry in registry.find(args.name) if entry.kind == (args.kind or entry.kind)]
    if not entries and args.kind:
        registry.get(args.kind, args.name)  # raises UnknownComponent with close names
    if not entries:
        close = registry.suggest(args.name.rpartition(":")[2])
        note = registry.exclusion_note("", args.name)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; see `sslreg list`"
        raise UserError(f"no component named {args.name!r}" + (f" ({note})" if note else "") + hint)
    infos = []
    for entry in entries:
        try:
            details = entry.cls.describe()
        except Exception as error:  # noqa: BLE001 - a plugin's describe() must not hide its options
            details = {"describe_error": f"{type(error).__name__}: {error}"}
        infos.append(
            {
                **_entry_json(entry, registry.is_ambiguous(entry)),
                "consumes": entry.cls.consumes,
                "produces": entry.cls.produces,
                "options": options_of(entry.cls),
                "details": details,
            }
        )
    if args.json:
        _print_json(infos if len(infos) > 1 else infos[0])
        return 0
    console = _console()
    for info in infos:
        console.print(
            f"[bold]{info['name']}[/bold] ({info['kind']}) from {info['distribution']} {info['version']},"
            f" qualified name {info['qualified_name']}"
            + (" (the bare name is ambiguous: use the qualified one)" if info["ambiguous"] else "")
        )
        console.print(f"  {info['summary']}")
        console.print(f"  consumes: {info['consumes']}")
        console.print(f"  produces: {info['produces']}")
        table = Table(title="options", title_justify="left")
        for column in ("option", "type", "default", "constraint", "doc"):
            table.add_column(column, overflow="fold")
        for row in info["options"]:
            table.add_row(*(str(row[c]) for c in ("option", "type", "default", "constraint", "doc")))
        console.print(table)
        _print_details(console, info["details"])
    return 0


def _print_details(console: Console, details: dict[str, Any]) -> None:
    layers = details.get("layers")
    if isinstance(layers, dict) and layers and all(isinstance(v, dict) for v in layers.values()):
        table = Table(title="layers", title_justify="left")
        columns = list(next(iter(layers.values())))
        table.add_column("layer")
        for column in columns:
            table.add_column(column, justify="right")
        for layer, facts in layers.items():
            table.add_row(layer, *(str(facts.get(c, "")) for c in columns))
        console.print(table)
    for key, value in details.items():
        if key == "layers" and isinstance(layers, dict):
            continue
        console.print(f"  {key}: {value:,}" if isinstance(value, int) else f"  {key}: {value}")


def cmd_plugins(args: argparse.Namespace) -> int:
    """sslreg plugins: installed plugins with status, and catalogue entries not installed."""
    from sslreg.catalogue import catalogue_path, load_catalogue
    from sslreg.plugins import get_plugins

    plugins = get_plugins().plugins
    installed = {info.name for info in plugins}
    path = catalogue_path()
    try:
        known = load_catalogue(path).plugins
    except ValueError as error:
        print(f"sslreg: warning: {error}", file=sys.stderr)
        known = []
    missing = [entry for entry in known if entry.name not in installed]
    if args.json:
        _print_json(
            {
                "sslreg": sslreg.__version__,
                "api_version": sslreg.API_VERSION,
                "installed": [vars(info) for info in plugins],
                "available": [entry.model_dump() for entry in missing],
                "catalogue": {"path": str(path), "plugins": len(known)},
            }
        )
        return 0
    console = _console()
    table = Table(
        title=f"installed plugins (sslreg {sslreg.__version__}, API {sslreg.API_VERSION})", title_justify="left"
    )
    for column in ("plugin", "distribution", "version", "status", "components / error"):
        table.add_column(column, overflow="fold")
    for info in plugins:
        style = {"ok": "green", "blocked": "yellow"}.get(info.status, "red")
        detail = ", ".join(info.components) if info.status == "ok" else info.error
        table.add_row(info.name, info.distribution, info.version, f"[{style}]{info.status}[/{style}]", detail)
    console.print(table)
    if missing:
        table = Table(title="available from the catalogue (registry.yaml), not installed", title_justify="left")
        for column in ("plugin", "install with", "provides"):
            table.add_column(column, overflow="fold")
        for entry in missing:
            provides = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in entry.components.items())
            table.add_row(entry.name, f"pip install {entry.requirement}", provides)
        console.print(table)
    shown = f"{len(known)} known plugins, {len(missing)} not installed" if path.is_file() else "not found"
    console.print(f"catalogue: {path} ({shown})", highlight=False, soft_wrap=True)
    return 0


def _load_plan(args: argparse.Namespace):
    from sslreg.config import load_plan
    from sslreg.plugins import get_registry

    return load_plan(args.file, get_registry(), args.set or [], args.allow_python_config)


def cmd_validate(args: argparse.Namespace) -> int:
    """sslreg validate FILE: check a config (every sweep point, and the data it names); no work is done.

    With --json, stdout gets one JSON object either way: {"ok": true, "points": [...]} or, with exit code 2,
    {"ok": false, "problems": [{"path", "message", "source", "line"}, ...]}.
    """
    from sslreg.problems import Problem, problem_records

    try:
        plan = _load_plan(args)
    except UserError as error:
        if not args.json:
            raise
        records = problem_records(error) if isinstance(error, ConfigError) else [Problem(str(error), source=args.file)]
        _print_json({"ok": False, "problems": [record.as_json() for record in records]})
        return 2
    if args.json:
        points = [
            {"label": label, "point": point, "config": exp.model_dump(mode="json")} for label, point, exp in plan.points
        ]
        _print_json({"ok": True, "points": points, "unresolved": plan.unresolved})
        return 0
    runs = f"{len(plan.points)} sweep points" if plan.is_sweep else "1 run"
    print(f"{args.file}: OK ({runs})")
    for path, name in plan.unresolved.items():
        print(f"  {path}: ${name} is not set; using the config's default")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """sslreg run FILE: validate, pretrain, evaluate; resumes an interrupted run, skips a finished one."""
    plan = _load_plan(args)
    from sslreg.plugins import get_plugins, get_registry
    from sslreg.runner import run_plan

    show_progress(["sslreg", *(info.module.split(".")[0] for info in get_plugins().plugins if info.status == "ok")])
    return run_plan(plan, get_registry())


def show_progress(loggers: Sequence[str]) -> None:
    """Print the INFO lines of these loggers (sslreg's and the plugins': evaluators' progress) on stdout, once."""
    import logging

    for name in dict.fromkeys(loggers):
        logger = logging.getLogger(name)
        if any(getattr(handler, "_sslreg_progress", False) for handler in logger.handlers):
            continue
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        handler._sslreg_progress = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def cmd_report(args: argparse.Namespace) -> int:
    """sslreg report RUN_DIR...: one table over finished runs (run or sweep folders), with their provenance."""
    from sslreg.files import atomic_write_text
    from sslreg.report import collect_runs, print_results, report_markdown

    reports = collect_runs([Path(folder) for folder in args.run_dirs])
    if args.json:
        _print_json(
            [
                {
                    "label": report.label,
                    "folder": report.folder,
                    "results": [result.model_dump(mode="json") for result in report.results],
                    "baseline": None
                    if report.baseline is None
                    else [result.model_dump(mode="json") for result in report.baseline],
                    "differences": report.differences(),
                    "reference": [reference.model_dump(mode="json") for reference in report.references],
                    "provenance": report.provenance,
                }
                for report in reports
            ]
        )
    else:
        print_results(reports, title="report")
    if args.out:
        atomic_write_text(report_markdown(reports), args.out)
        if not args.json:
            print(f"report: {args.out}")
    return 0


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="experiment config (.yaml)")
    parser.add_argument(
        "--set", action="append", metavar="PATH=VALUE", help="override a config value, e.g. pretrain.schedule.epochs=2"
    )
    parser.add_argument("--allow-python-config", action="store_true", help="accept .py configs (they execute code)")
    parser.add_argument("--json", action="store_true", help="print machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with core commands and every plugin's commands."""
    parser = argparse.ArgumentParser(prog="sslreg", description=sslreg.__doc__)
    parser.add_argument("--version", action="version", version=f"sslreg {sslreg.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = subparsers.add_parser("list", help="list registered components")
    p.add_argument("kind", nargs="?", help=f"one of {', '.join(KINDS)}")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard on the name, e.g. 'resnet*'")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("info", help="options and facts of one component")
    p.add_argument("name")
    p.add_argument("--kind", choices=list(KINDS))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = subparsers.add_parser("plugins", help="installed plugins and their status; installable ones")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = subparsers.add_parser("validate", help="validate an experiment config")
    _add_config_arguments(p)
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser("run", help="run an experiment (pretrain + evaluate, or a sweep)")
    _add_config_arguments(p)
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("report", help="one table over finished runs, with their provenance")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders, or sweep folders (every point)")
    p.add_argument("--out", metavar="FILE.md", help="also write the tables and provenance as Markdown")
    p.add_argument("--json", action="store_true", help="print the runs' results and provenance as JSON")
    p.set_defaults(func=cmd_report)

    from sslreg.plugin_new import add_plugin_commands

    add_plugin_commands(subparsers)

    from sslreg.plugins import get_plugins

    get_plugins().call_each("sslreg_commands", subparsers=subparsers)
    return parser


def _message(error: BaseException) -> str:
    """The error's message on one line (a DataLoader worker wraps the original error in its traceback)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if len(lines) > 1 and any(line.startswith("Original Traceback") for line in lines):
        last = lines[-1]
        head, sep, rest = last.partition(": ")
        if sep and head.replace(".", "").replace("_", "").isalnum():  # 'pkg.module.ErrorType: message'
            return rest
        return last
    return lines[0]


def _save_traceback(error: BaseException) -> Path | None:
    """Append the traceback to the run's log (``sslreg run``) or to a new log under the cache; its path or None."""
    text = "".join(traceback.format_exception(error))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    header = f"\n--- sslreg {sslreg.__version__} internal error at {stamp}: sslreg {' '.join(sys.argv[1:])}\n"
    candidates = [attached_log(error), cache_dir("logs") / f"sslreg-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"]
    for path in candidates:
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as log:
                log.write(header + text)
            return path
        except OSError:
            continue
    return None


def report_error(error: BaseException) -> int:
    """Print ``error`` as one line on stderr and return the exit code: 2 for a user mistake, 1 for an internal error.

    User mistakes: UserError (ConfigError: one line per problem) and OSError (a path that is missing, read-only,
    too long, a full disk). Everything else is internal: the line names the exception and the log holding the
    traceback. ``SSLREG_DEBUG=1`` also prints the traceback, here and only here.
    """
    if env_flag(DEBUG_ENV):
        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, ConfigError):
        for problem in error.problems:
            print(f"sslreg: error: {error.source + ': ' if error.source else ''}{problem}", file=sys.stderr)
        return 2
    if isinstance(error, UserError):
        print(f"sslreg: error: {_message(error)}", file=sys.stderr)
        return 2
    if isinstance(error, OSError):
        line = describe_os_error(error) if error.errno is not None else _message(error)
        print(f"sslreg: error: {line}", file=sys.stderr)
        return 2
    log = _save_traceback(error)
    where = f"traceback in {log}" if log is not None else "the traceback could not be saved"
    if log is None and not env_flag(DEBUG_ENV):
        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, PluginError):
        print(f"sslreg: internal error in {_message(error)} ({where}; a bug in that plugin, not in your config)",
              file=sys.stderr)  # fmt: skip
    else:
        print(
            f"sslreg: internal error: {type(error).__name__}: {_message(error)} ({where}; a bug in sslreg or a"
            " plugin, not in your config)",
            file=sys.stderr,
        )
    return 1


def run_guarded(action: Callable[[], int | None]) -> int:
    """Run ``action`` and return its exit code; any error becomes one line and a code (see :func:`report_error`)."""
    try:
        return int(action() or 0)
    except KeyboardInterrupt:
        print("sslreg: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one place every error of the command line is reported
        return report_error(error)
    finally:
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script: user mistakes are one line on stderr and exit 2, internal errors exit 1."""

    def command() -> int:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)

    return run_guarded(command)


if __name__ == "__main__":
    sys.exit(main())
