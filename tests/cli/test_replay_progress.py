"""fastvpc replay on a terminal: a progress line with the rate and the time left (on stderr, only
when stderr is a terminal), and none when it is not."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

from fastvpc.examples import write_starter_files


def _run(args, tty: bool) -> tuple[int, str]:
    if not tty:
        p = subprocess.run(args, capture_output=True, text=True, timeout=300)
        return p.returncode, p.stderr
    leader, follower = pty.openpty()
    try:
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=follower, stdin=subprocess.DEVNULL)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:      # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        return p.wait(timeout=300), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(leader)


def test_progress_on_a_terminal_shows_rate_and_time_left(tmp_path):
    d = tmp_path / "lab"
    write_starter_files(d)
    args = [sys.executable, "-m", "fastvpc", "replay", str(d / "topology.yaml"), str(d / "in.pcap"),
            "-o", str(tmp_path / "o.pcap")]
    code, err = _run(args, tty=True)
    assert code == 0, err
    lines = [s for s in re.split(r"[\r\n]+", err) if "frames (" in s]   # \r-rewritten progress lines
    assert lines, err
    line = lines[-1]
    assert "frames (100%)" in line and "M frames/s" in line and "s left" in line, err
    code, err = _run(args, tty=False)
    assert code == 0 and "s left" not in err and "\r" not in err
    code, err = _run([*args[:-2], "-o", str(tmp_path / "o2.pcap"), "--no-progress"], tty=True)
    assert code == 0 and "s left" not in err
