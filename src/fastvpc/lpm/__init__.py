"""fastvpc.lpm: batch longest-prefix match over one table or many (numpy in, numpy out).

``LpmTable`` is one table; ``RouteTables`` packs many tables into shared numpy arrays and
looks up ``(table_id, addr)`` pairs in one call.  Addresses, prefixes and values are
``uint32`` (addresses in host order: ``10.0.0.1 == 0x0A000001``), prefix lengths ``uint8``.

No match gives the miss value ``MISS == LpmTable.miss == RouteTables.miss == 0xFFFFFFFF``;
that value cannot be used as a route value.  A lookup in an unknown table id also misses.

Structure (chosen by measurement, see BENCHMARKS.md ``## LPM``): every table is flattened to
its intervals of equal answer.  Small tables (up to 39,304 intervals, about 19,000 routes) are
a static cache-line B-tree over those intervals (VPC tables of up to 68 routes: two cache lines
per lookup).  Bigger tables are a poptrie (18-bit direct pointing, then 6-bit popcount-compressed
nodes).  All tables live in one 64-byte aligned byte pool; ``replace``/``replaced`` append only the
new table's region and copy the small per-table header, so lookups running on the old arrays are
unaffected.  Once replaced tables' dead regions outweigh the live ones, the live regions are
compacted into a fresh pool (memory stays bounded however many replaces a long-running simulator
does); objects holding the old pool keep it.  Each table also keeps its route list (for
``routes``/``lookup_exact``/``covering``/``covered``; lookups never read it), grouped by length,
values raw or as a uint8/uint16 index into the table's distinct values, whichever is smaller.
``nbytes`` counts everything held.  ``from_packed``/``load``/unpickling check every offset and index
the kernels will follow, so corrupt files raise :class:`LpmError`.
"""

from fastvpc.lpm._tables import KEY_BITS, MISS, FrozenRouteTables, LpmTable, PrefixLike, RouteTables, kernel_variant

__all__ = ["MISS", "FrozenRouteTables", "LpmTable", "RouteTables", "kernel_variant"]

