"""`sslreg hub ARCH`: the taps the hub trunk gives any torchvision or timm architecture, before configuring it."""

from __future__ import annotations

import argparse
import json

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from sslreg import UserError, build_trunk, get_registry
from sslreg_hub.hub import HubConfig


def add_hub_command(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``hub`` sub-command."""
    parser = subparsers.add_parser(
        "hub",
        help="taps of a torchvision/timm architecture as the 'hub' trunk",
        description="Build ARCH (random weights, nothing downloaded) as the 'hub' trunk and list its taps: node,"
        " channels, stride and the ~9k-dim pooling at its input size.",
    )
    parser.add_argument("arch", help="LIBRARY/NAME, e.g. torchvision/resnet50 or timm/convnext_tiny")
    parser.add_argument("--taps", nargs="+", metavar="NODE", help="nodes to tap instead of one per stage")
    parser.add_argument("--input-size", type=int, default=None, help="input size (default: the arch's own)")
    parser.add_argument("--weights", metavar="FILE", help="also load FILE as a run would, and show how its keys map")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=hub_command)


def describe(config: HubConfig) -> dict:
    """Arch, input size, parameters, head left out, each tap's facts; with weights, how the file's keys mapped."""
    trunk = build_trunk(get_registry(), config, seed=0)
    facts = {
        "arch": config.arch,
        "input_size": trunk.input_size,
        "parameters": trunk.num_parameters(),
        "head": list(trunk.head_prefixes),
        "taps": {
            tap.name: {
                "node": tap.node,
                "channels": tap.channels,
                "stride": tap.stride,
                "pooling": f"k{tap.pooling.kernel} s{tap.pooling.stride} -> {tap.pooling.grid}x{tap.pooling.grid}",
                "pooled_dims": tap.channels * tap.pooling.grid**2,
            }
            for tap in trunk.adapter.taps
        },
    }
    report = trunk.weights_report
    if report is not None:
        facts["weights"] = {
            "file": report.path,
            "mapping": report.mapping,
            "loaded": len(report.loaded),
            "missing": report.missing,
            "unexpected": report.unexpected,
            "ignored_head": report.ignored_head,
        }
    return facts


def hub_command(args: argparse.Namespace) -> int:
    """Print the taps of ``args.arch``; a bad arch or tap is one line (exit 2)."""
    try:
        config = HubConfig(name="hub", arch=args.arch, taps=args.taps, input_size=args.input_size, weights=args.weights)
    except ValidationError as error:
        first = error.errors()[0]
        raise UserError(
            f"hub: {'.'.join(map(str, first['loc']))}: {first['msg'].removeprefix('Value error, ')}"
        ) from None
    facts = describe(config)
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    table = Table(title=f"{facts['arch']} at {facts['input_size']} px", title_justify="left")
    for column in ("tap", "node", "channels", "stride", "pooling", "pooled_dims"):
        table.add_column(column, justify="left" if column in ("tap", "node", "pooling") else "right")
    for name, tap in facts["taps"].items():
        table.add_row(name, *(str(tap[key]) for key in ("node", "channels", "stride", "pooling", "pooled_dims")))
    console = Console(soft_wrap=False, width=160)
    console.print(table)
    console.print(f"parameters: {facts['parameters']:,}; head (not in the trunk): {', '.join(facts['head']) or 'none'}")
    weights = facts.get("weights")
    if weights:
        console.print(
            f"weights {weights['file']}: {weights['loaded']} tensors loaded as {weights['mapping']};"
            f" missing {len(weights['missing'])}, unexpected {len(weights['unexpected'])}"
            f" ({', '.join(weights['unexpected'][:4]) or 'none'}), head or other parts ignored"
            f" {len(weights['ignored_head'])}",
            highlight=False,
        )
    return 0
