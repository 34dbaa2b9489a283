"""``sslreg plugin new NAME --kind KIND``: scaffold a pip-installable plugin package with one working component.

The package is ``sslreg-NAME`` (module ``sslreg_NAME``): a pyproject with the entry point in group ``sslreg``, the
one hook in ``__init__.py``, the component with its Config in ``sslreg_NAME/NAME.py``, and
``tests/test_conformance.py`` running :func:`sslreg.testing.check_plugin` on it. The files come from
``sslreg/templates/`` (``string.Template`` placeholders such as ``$name`` and ``$cls``); every kind's skeleton
is small, runs as generated, and honours the core's contracts for that kind.
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template

from sslreg.errors import UserError


@dataclass(frozen=True)
class Kind:
    """What a kind's skeleton is about, what its package depends on, and how a config uses it."""

    summary: str
    dependencies: tuple[str, ...]
    usage: str


SSLREG = "sslreg>=0.1,<0.2"
KINDS: dict[str, Kind] = {
    "pretext": Kind(
        "a pretext task that predicts which symmetry of the square was applied to a crop",
        (SSLREG,),
        "pretrain:\n  pretext: {name: $name, num_transforms: 4}\n  backbone: {name: resnet18}\n"
        "  data: {name: embedded_photos}",
    ),
    "backbone": Kind(
        "a small VGG-style trunk with four tapped stages",
        (SSLREG,),
        "backbone: {name: $name, weights: trained.pth}   # weights: optional, loaded by sslreg\n"
        "evaluate:\n  - {name: voc07_svm, layers: all}",
    ),
    "dataset": Kind(
        "labelled images listed in a CSV file of 'path,label' rows",
        (SSLREG, "sslreg-datasets>=0.1,<0.2"),
        "evaluate:\n  - name: linear_probe\n    train: {name: $name, root: /data/train}\n"
        "    test: {name: $name, root: /data/test}",
    ),
    "evaluator": Kind(
        "nearest class-mean classification of each frozen layer",
        (SSLREG, "scikit-learn>=1.3"),
        "backbone: {name: resnet18, weights: trunk.pth}\nevaluate:\n  - {name: $name, layers: all}",
    ),
}

#: Generated file -> template, relative to the package root / sslreg/templates ("{kind}" is the chosen kind).
LAYOUT = {
    "pyproject.toml": "plugin/pyproject.toml.tmpl",
    "README.md": "plugin/README.md.tmpl",
    "{module}/__init__.py": "plugin/__init__.py.tmpl",
    "{module}/{name}.py": "{kind}/component.py.tmpl",
    "tests/test_conformance.py": "{kind}/test_conformance.py.tmpl",
}

NAME = re.compile(r"[a-z][a-z0-9_]*")


def check_name(name: str) -> str:
    """The plugin's module name, ``sslreg_<name>``, once ``name`` is a fresh lower-case identifier."""
    if not NAME.fullmatch(name) or keyword.iskeyword(name) or name.endswith("_"):
        raise UserError(f"plugin name {name!r}: use lower-case letters, digits and '_' (a Python identifier)")
    module = f"sslreg_{name}"
    if importlib.util.find_spec(module) is not None:
        raise UserError(f"plugin name {name!r}: a module {module!r} is already installed; choose another name")
    return module


def render(template: str, fields: dict[str, str]) -> str:
    """The text of ``sslreg/templates/<template>`` with its ``$`` placeholders filled in."""
    text = files("sslreg").joinpath("templates", *template.split("/")).read_text(encoding="utf-8")
    return Template(text).substitute(fields)


def scaffold(name: str, kind: str, parent: Path) -> Path:
    """Write the plugin package ``sslreg-<name>`` (one ``kind`` component named ``name``) under ``parent``."""
    if kind not in KINDS:
        raise UserError(f"--kind {kind!r}: choose one of {', '.join(KINDS)}")
    module = check_name(name)
    dist = f"sslreg-{name.replace('_', '-')}"
    root = parent / dist
    if root.exists():
        raise UserError(f"{root}: already exists; not overwriting it")
    spec = KINDS[kind]
    fields = {
        "name": name,
        "module": module,
        "dist": dist,
        "kind": kind,
        "cls": "".join(part.title() for part in name.split("_")),
        "summary": spec.summary,
        "Summary": spec.summary[0].upper() + spec.summary[1:] + ".",
        "dependencies": ", ".join(f'"{requirement}"' for requirement in spec.dependencies),
    }
    fields["usage"] = f"\nIn an experiment config:\n\n```yaml\n{Template(spec.usage).substitute(fields)}\n```"
    for target, template in LAYOUT.items():
        path = root / target.format(module=module, name=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template.format(kind=kind), fields), encoding="utf-8")
    return root


def cmd_plugin_new(args: argparse.Namespace) -> int:
    """sslreg plugin new NAME --kind KIND: write a plugin package with one component, ready for pip install -e."""
    root = scaffold(args.name, args.kind, Path(args.dir))
    print(f"created {root} ({args.kind} {args.name!r})")
    from sslreg.plugins import get_registry  # already loaded to build the CLI

    taken = [entry.qualified_name for entry in get_registry().find(args.name) if entry.kind == args.kind]
    if taken:
        print(
            f"note: {args.kind} {args.name!r} is also provided by {', '.join(taken)}: with both installed, configs"
            f" must name this one {root.name}:{args.name} (or choose another name)"
        )
    print(f"next: pip install -e {root} && sslreg list {args.kind} && pytest {root / 'tests'}")
    return 0


def add_plugin_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sslreg plugin new``."""
    plugin = subparsers.add_parser("plugin", help="plugin authoring tools")
    actions = plugin.add_subparsers(dest="plugin_command", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="scaffold a new plugin package (one working component and its tests)")
    new.add_argument("name", help="component and plugin name, a lower-case identifier, e.g. rotation")
    new.add_argument("--kind", default="pretext", choices=list(KINDS), help="component kind (default: pretext)")
    new.add_argument("--dir", default=".", help="parent folder of the package (default: current)")
    new.set_defaults(func=cmd_plugin_new)
