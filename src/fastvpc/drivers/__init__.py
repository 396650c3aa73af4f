"""Drivers: what pushes batches of frames through a compiled ``Dataplane``.

``replay`` (pcap in, pcap out, serial); sharded replay and simulator adapters join here.
"""
