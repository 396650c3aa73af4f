"""``fastvpc.replay`` path kept: serial pcap replay lives in :mod:`fastvpc.drivers.replay`."""

from fastvpc.drivers.replay import PortMap, ReplaySummary, replay, write_json

__all__ = ["PortMap", "ReplaySummary", "replay", "write_json"]
