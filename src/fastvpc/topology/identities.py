"""Stable tracking identities: the 32-bit keys a :class:`fastvpc.FlowTable` holds its entries by
(DESIGN §5: "a flow is tracked at each ENI that admitted it, keyed by stable identities, so a
FlowTable survives a recompile"), and those of its NAT gateway bindings (docs/edge.md §4).

An ENI's identity is the first 4 bytes of BLAKE2b(its name), read little-endian (its *plain*
identity); a NAT gateway's is the first 4 bytes of BLAKE2b(``VPC name/name``, person
``fastvpc-natgw``).  When that value is already held (by any ENI or NAT gateway of the network), the
text is salted: ``name#1``, ``name#2``, ... until the value is free.  A :class:`Network` keeps the
identity it gave each name (:class:`TrackingIdentities`, ``Network._tracking``): an identity never
changes while its object exists, is never given to another name of the same network object (a
deleted ENI's stays reserved: a FlowTable may still hold its flows), and survives pickling, copying
and (for the few salted ones, as ``tracking_id``) a topology file.  A name gets its identity when
its ENI or NAT gateway is added; names the memo does not know at a compile (a network pickled
before the memo existed) get theirs in name order, ENIs first, which is how identities were given
before: the ENIs of such a network keep the identities its FlowTables hold.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator

__all__ = ["MAX_IDENTITY", "TrackingIdentities", "identity_candidates", "nat_identity_candidates", "plain_identity",
           "plain_nat_identity"]

#: identities are uint32
MAX_IDENTITY = 0xFFFFFFFF


def _digest(text: str, person: bytes = b"") -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4,
                                          person=person).digest(), "little")


_NAT_PERSON = b"fastvpc-natgw"
_blake2b = hashlib.blake2b


def plain_identity(name: str) -> int:
    """The identity of an ENI named ``name`` when no other holds that value (BLAKE2b, 4 bytes)."""
    return _digest(name)


def plain_nat_identity(vpc_name: str, name: str) -> int:
    """The identity of NAT gateway ``name`` of VPC ``vpc_name`` when no other holds that value."""
    return _digest(f"{vpc_name}/{name}", _NAT_PERSON)


def identity_candidates(name: str) -> Iterator[int]:
    """The values an ENI named ``name`` may get, in the order they are tried: plain, then salted."""
    yield _digest(name)
    for salt in itertools.count(1):
        yield _digest(f"{name}#{salt}")


def nat_identity_candidates(vpc_name: str, name: str) -> Iterator[int]:
    """The values a NAT gateway may get, in the order they are tried: plain, then salted."""
    text = f"{vpc_name}/{name}"
    yield _digest(text, _NAT_PERSON)
    for salt in itertools.count(1):
        yield _digest(f"{text}#{salt}", _NAT_PERSON)


class TrackingIdentities:
    """The identities a network has given ENI names and NAT gateway names, all distinct.

    Pickles as two plain mappings (insertion order kept); the set of held values is rebuilt on load.
    """

    __slots__ = ("_eni", "_nat", "_used")

    def __init__(self) -> None:
        self._eni: dict[str, int] = {}
        self._nat: dict[str, int] = {}
        self._used: set[int] = set()

    def __getstate__(self) -> tuple[dict[str, int], dict[str, int]]:
        return dict(self._eni), dict(self._nat)

    def __setstate__(self, state: tuple[dict[str, int], dict[str, int]]) -> None:
        self._eni, self._nat = dict(state[0]), dict(state[1])
        self._used = {*self._eni.values(), *self._nat.values()}
        if len(self._used) != len(self._eni) + len(self._nat):
            raise ValueError("tracking identities: a value is held twice")

    # ENIs --------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._eni

    def __getitem__(self, name: str) -> int:
        return self._eni[name]

    def __len__(self) -> int:
        return len(self._eni)

    def get(self, name: str) -> int | None:
        return self._eni.get(name)

    def assign(self, name: str) -> int:
        """ENI ``name``'s identity: the one it was given, else the first free candidate (now held)."""
        ident = self._eni.get(name)
        if ident is not None:
            return ident
        ident = int.from_bytes(_blake2b(name.encode("utf-8", "surrogatepass"), digest_size=4).digest(), "little")
        if ident in self._used:   # a clash (rare): the salted candidates
            return self._take(self._eni, name, identity_candidates(name))
        self._eni[name] = ident
        self._used.add(ident)
        return ident

    def reserve(self, name: str, ident: int) -> None:
        """Give ENI ``name`` exactly ``ident`` (a topology file's ``tracking_id``).  ValueError if the
        name holds another value or ``ident`` is held."""
        self._reserve(self._eni, name, ident)

    # NAT gateways ------------------------------------------------------------------
    def nat(self, name: str) -> int | None:
        return self._nat.get(name)

    def assign_nat(self, vpc_name: str, name: str) -> int:
        """NAT gateway ``name``'s identity: the one it was given, else the first free candidate."""
        ident = self._nat.get(name)
        return ident if ident is not None else self._take(self._nat, name, nat_identity_candidates(vpc_name, name))

    def reserve_nat(self, name: str, ident: int) -> None:
        self._reserve(self._nat, name, ident)

    # -------------------------------------------------------------------------------
    def holds(self, ident: int) -> bool:
        return ident in self._used

    def holder(self, ident: int) -> str | None:
        """The name holding ``ident`` (a linear scan: for error messages), or None."""
        if ident not in self._used:
            return None
        return next(n for table in (self._eni, self._nat) for n, v in table.items() if v == ident)

    def _take(self, table: dict[str, int], name: str, candidates: Iterator[int]) -> int:
        for ident in candidates:
            if ident not in self._used:
                table[name] = ident
                self._used.add(ident)
                return ident
        raise AssertionError("unreachable")   # pragma: no cover - the candidates never end

    def _reserve(self, table: dict[str, int], name: str, ident: int) -> None:
        if isinstance(ident, bool) or not isinstance(ident, int) or not 0 <= ident <= MAX_IDENTITY:
            raise ValueError(f"tracking identity {ident!r} of {name!r} is not an integer in 0..{MAX_IDENTITY}")
        held = table.get(name)
        if held == ident:
            return
        if held is not None:
            raise ValueError(f"{name!r} already has the tracking identity {held}")
        if ident in self._used:
            raise ValueError(f"tracking identity {ident} is already held by {self.holder(ident)!r}")
        table[name] = ident
        self._used.add(ident)

    def __repr__(self) -> str:
        return f"<TrackingIdentities {len(self._eni)} ENIs, {len(self._nat)} NAT gateways>"
