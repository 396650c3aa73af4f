"""Namespace names of a lab (no root needed): one per object, distinct, safe, deterministic."""

from __future__ import annotations

import re

import fastvpc as fv
from fastvpc.examples import seed_vpc
from fastvpc.live.netns import Lab, namespace_parts


def _net(names: list[str]) -> fv.Network:
    net = fv.Network()
    sub = net.add_vpc("10.0.0.0/16", name="v").add_subnet("10.0.1.0/24", name="s")
    for i, name in enumerate(names):
        sub.add_eni(f"10.0.1.{10 + i}", name=name)
    return net


LONG = "n" * 45


def test_names_that_the_safe_form_would_merge_get_distinct_namespaces() -> None:
    names = ["web/1", "web_1", "web:1", LONG + "a", LONG + "b", "web server", "x" * 40, "app1"]
    lab = Lab(_net(names), tag="fv00000000")
    ns = {n: lab[n].name for n in names}
    assert len(set(ns.values())) == len(names), ns
    for name in ns.values():
        assert re.fullmatch(r"fv00000000-[A-Za-z0-9_.-]{1,40}", name), name
    # a name the safe form leaves as it is keeps it; so does a changed one that merges with nothing
    assert ns["web_1"] == "fv00000000-web_1" and ns["app1"] == "fv00000000-app1"
    assert ns["web server"] == "fv00000000-web_server" and ns["x" * 40] == "fv00000000-" + "x" * 40
    assert ns["web/1"].startswith("fv00000000-web_1.") and ns[LONG + "a"].startswith("fv00000000-" + "n" * 33 + ".")
    # the same names give the same namespaces, whatever the order
    assert namespace_parts(reversed(names)) == namespace_parts(names)


def test_a_suffix_never_lands_on_a_name_in_use() -> None:
    first = namespace_parts(["web/1", "web_1"])["web/1"]           # web_1.<6 hex>
    parts = namespace_parts(["web/1", "web_1", first])
    assert parts[first] == first and len(set(parts.values())) == 3, parts


def test_gateways_are_named_the_same_way() -> None:
    lab = Lab(seed_vpc(), gateways={"igw": "203.0.113.1/24", "vgw": "198.51.100.1/24"}, tag="fv00000000")
    assert lab["igw"].name == "fv00000000-igw" and lab["web1"].name == "fv00000000-web1"
