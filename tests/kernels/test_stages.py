"""The compiled pass is the pipeline of named stages the reference forwarder and the docs describe."""

from __future__ import annotations

import numpy as np
import pytest

import fastvpc as fv
from fastvpc import compiler
from fastvpc import packets as pk
from fastvpc._kernels import forward as kf
from fastvpc.compiler import layout
from fastvpc.reference import ReferenceForwarder


@pytest.fixture()
def seed() -> tuple[fv.Network, fv.FrameBatch]:
    """The seed network and one frame for every stage's verdicts (each node of the pipeline)."""
    net = fv.examples.seed_vpc()
    w1, w2, a1, web = net.find("web1"), net.find("web2"), net.find("app1"), net.find("web")
    g = web.gateway_mac
    frames = [
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, "8.8.8.8", 1, 443)),               # route: FORWARD
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, a1.ip, 5, 53)),                  # route: DELIVER
        pk.ethernet(w2.mac, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, w2.ip, 5, 53)),             # local: DELIVER
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.icmp_echo(w1.ip, web.router_ip)),           # router: REPLY
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, web.router_ip, 5, 53)),          # router: drop
        pk.arp_request(w1.mac, w1.ip, web.router_ip),                                      # arp: REPLY
        pk.arp_request(w1.mac, w1.ip, "10.0.1.99"),                                        # arp: drop
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.udp("10.0.1.99", a1.ip, 5, 53)),            # ingress: drop
        pk.ethernet(g, w1.mac, pk.ETH_IPV6, b"\x60" + bytes(39)),                          # ingress: NON_IPV4
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, "10.0.2.99", 5, 53)),            # route: NO_SUCH_HOST
    ]
    return net, fv.FrameBatch.from_frames(frames * 40, port=w1.port)


def test_stage_names_are_the_reference_stages() -> None:
    assert kf.stage_names() == ReferenceForwarder.STAGES
    assert kf.stage_names() == ("ingress", "arp", "router", "edge_ingress", "sg_egress", "nacl_egress", "local",
                                "route", "nat", "edge_egress", "nacl_ingress", "sg_ingress", "rewrite")


def test_record_dtypes_are_the_kernel_structs_field_by_field() -> None:
    dtypes = {"EniRec": compiler.ENI_DTYPE, "SubnetRec": compiler.SUBNET_DTYPE, "RouteRec": compiler.ROUTE_DTYPE,
              "IngRec": compiler.PORT_DTYPE, "DelivRec": compiler.DELIV_DTYPE, "FiltRec": layout.FILT_DTYPE,
              "SubnetFilt": layout.SUBNET_FILT_DTYPE, "AclDir": layout.ACL_DIR_DTYPE, "AclRule": layout.ACL_RULE_DTYPE,
              "GwRec": layout.GW_DTYPE, "EdgeCidr": layout.EDGE_CIDR_DTYPE}
    sizes = {k: v for k, v in kf.record_itemsizes().items() if k != "FtTimeouts"}
    layouts = kf.record_layouts()
    assert set(layouts) == set(dtypes) == set(sizes)
    for rec, dt in dtypes.items():
        assert dt.itemsize == sizes[rec], rec
        spec = {k: name for name, _, k in layout.RECORD_FIELDS[rec]}
        for field, off, size in layouts[rec]:
            sub, at = dt.fields[spec[field]][:2]
            assert (at, sub.itemsize) == (off, size), (rec, field)
        # the fields tile the record: no gap the compiler would leave unwritten
        assert sum(size for _, _, size in layouts[rec]) == sizes[rec], rec


def test_a_reordered_or_resized_kernel_field_cannot_pass_unnoticed() -> None:
    layouts = kf.record_layouts()
    sizes = kf.record_itemsizes()
    # a reorder in the kernel flows into the dtype (the compiler writes where the kernel reads)
    swapped = dict(layouts)
    (a, oa, sa), (b, ob, sb) = layouts["RouteRec"][1], layouts["RouteRec"][2]
    swapped["RouteRec"] = [layouts["RouteRec"][0], (a, ob, sa), (b, oa, sb), layouts["RouteRec"][3]]
    dt = layout.record_dtype("RouteRec", swapped, sizes)
    assert dt.fields["port"][1] == ob and dt.fields["arg"][1] == oa
    # a resized or renamed field is refused
    resized = dict(layouts)
    resized["IngRec"] = [(n, o, 2 if n == "ip0" else s) for n, o, s in layouts["IngRec"]]
    try:
        layout.record_dtype("IngRec", resized, sizes)
    except ImportError as e:
        assert "IngRec.ip0" in str(e)
    else:  # pragma: no cover
        raise AssertionError("a resized field passed")
    renamed = dict(layouts)
    renamed["DelivRec"] = [("mac2" if n == "mac" else n, o, s) for n, o, s in layouts["DelivRec"]]
    try:
        layout.record_dtype("DelivRec", renamed, sizes)
    except ImportError as e:
        assert "DelivRec" in str(e)
    else:  # pragma: no cover
        raise AssertionError("a renamed field passed")


def test_compiled_tables_are_handed_over_by_name(seed) -> None:
    net, batch = seed
    dp = net.compile()
    ct = dp._compiled
    assert isinstance(ct, compiler.CompiledTables)
    for name in ("enis", "subnets", "route_targets", "table_base", "port_eni", "eni_deliver", "ip_hash", "mac_hash"):
        assert getattr(ct, name) is getattr(dp, name), name
    # a second Tables from the same handover forwards identically
    want = dp.process(batch, copy=True)
    out = [np.empty(len(batch), t) for t in (np.uint8, np.uint8, np.int32, np.int32)]
    work = batch.copy()
    kf.forward_batch(kf.Tables(ct), work.data, work.offsets, work.port, *out, 1)
    assert np.array_equal(out[0], want.action) and np.array_equal(out[1], want.reason)
    assert np.array_equal(out[2], want.egress) and np.array_equal(out[3], want.route)
    assert work == want.frames


def test_tables_refuse_records_of_the_wrong_size(seed) -> None:
    net, _ = seed
    ct = net.compile()._compiled
    bad = np.zeros(3, dtype=[("a", "<u8")])
    for name in ("enis", "subnets", "route_targets", "port_eni", "eni_deliver"):
        try:
            kf.Tables(ct._replace(**{name: bad}))
        except ValueError as e:
            assert name in str(e)
        else:  # pragma: no cover
            raise AssertionError(f"{name} of 8-byte records accepted")
