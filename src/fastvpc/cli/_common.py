"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse

from fastvpc.topology import Network


def load_topology(args: argparse.Namespace) -> Network:
    """The network named by ``args.topology`` (a JSON/YAML file, or ``seed`` for the built-in example)."""
    from fastvpc.examples import seed_vpc
    from fastvpc.files import load

    if getattr(args, "example", False) or args.topology in (None, "seed", "example"):
        return seed_vpc()
    return load(args.topology)
