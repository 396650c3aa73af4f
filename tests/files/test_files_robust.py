"""Hostile topology files end in TopologyFileError, quickly, never in a crash or a huge message.

Regressions from the adversarial run: a 465-byte YAML "billion laughs" ran for 28 s and died with
MemoryError (the error path repr()'d the whole expanded value before cutting it to 80 characters);
5,000-digit integers raised a bare ValueError; an unknown format was a plain ValueError; names with
lone surrogates were accepted by load() and then crashed save()/show().
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import fastvpc as fv
from fastvpc import files
from fastvpc.errors import TopologyFileError

pytest.importorskip("yaml")

GOOD = {"fastvpc": 1, "vpcs": [{"name": "v", "cidrs": ["10.0.0.0/16"],
                                "subnets": [{"name": "s", "cidr": "10.0.1.0/24",
                                             "enis": [{"name": "e", "ip": "10.0.1.10"}]}]}]}


def _laughs(where: str) -> str:
    head = "\n".join([f'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] +
                     [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)])
    body = {"version": "fastvpc: *a8\nvpcs: []\n",
            "name": "fastvpc: 1\nvpcs:\n- name: *a8\n  cidrs: [10.0.0.0/16]\n",
            "cidr": "fastvpc: 1\nvpcs:\n- name: v\n  cidrs: [*a8]\n"}[where]
    return "x:\n" + textwrap.indent(head, "  ") + "\n" + body


BOMB = textwrap.dedent("""
    import sys, time
    from fastvpc import files
    from fastvpc.errors import TopologyFileError
    t = time.perf_counter()
    try:
        files.loads(sys.stdin.read(), "yaml", source="bomb.yaml")
    except TopologyFileError as exc:
        print(f"{time.perf_counter() - t:.3f}", getattr(exc, "line", None), len(str(exc)), str(exc)[:300])
    else:
        print("accepted")
""")


@pytest.mark.parametrize("where", ["version", "name", "cidr"])
def test_a_billion_laughs_is_refused_quickly_naming_the_line(where):
    text = _laughs(where)
    assert len(text) < 1000
    # a top-level key "x" holds the anchors; it is refused too, but the bomb must not even be expanded
    proc = subprocess.run([sys.executable, "-c", BOMB], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    secs, line, size, msg = proc.stdout.split(" ", 3)
    assert float(secs) < 2.0, proc.stdout
    assert line != "None" and f"line {line}" in msg, msg
    assert "alias" in msg, msg
    assert int(size) < 1000


def test_aliases_within_the_bound_still_work():
    text = textwrap.dedent("""
        fastvpc: 1
        vpcs:
        - name: v
          cidrs: &c [10.0.0.0/16]
          subnets:
          - {name: s, cidr: 10.0.1.0/24, enis: [{name: e, ip: 10.0.1.10}]}
        - name: w
          cidrs: [10.1.0.0/16]
    """)
    net = files.loads(text, "yaml")
    assert [v.name for v in net.vpcs] == ["v", "w"]
    assert "*c" not in text or True


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_huge_bad_value_is_shown_cut_without_formatting_all_of_it(fmt):
    doc = json.loads(json.dumps(GOOD))
    doc["vpcs"][0]["name"] = [[list(range(50))] * 50] * 400  # a million ints where a name goes
    text = json.dumps(doc) if fmt == "json" else __import__("yaml").safe_dump(doc)
    with pytest.raises(TopologyFileError, match="name") as info:
        files.loads(text, fmt)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_5000_digit_integers_are_a_topology_file_error_naming_the_line(fmt):
    big = "9" * 5000
    if fmt == "json":
        text = '{"fastvpc": 1,\n "vpcs": [{"name": "v", "cidrs": ["10.0.0.0/16"],\n  "subnets": [], "x": ' + big + "}]}"
    else:
        text = f"fastvpc: 1\nvpcs:\n- name: v\n  cidrs: [10.0.0.0/16]\n  port: {big}\n"
    with pytest.raises(TopologyFileError) as info:
        files.loads(text, fmt)
    msg = str(info.value)
    assert "line" in msg and ("digits" in msg or "integer" in msg), msg
    assert len(msg) < 400


def test_unknown_formats_are_topology_file_errors(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(GOOD))
    for call in (lambda: files.load(p, format="xml"), lambda: files.loads("{}", "toml"),
                 lambda: files.loads("{}", None), lambda: files.load(p, format=3),
                 lambda: files.save(files.loads(json.dumps(GOOD)), tmp_path / "x.txt"),
                 lambda: files.save(files.loads(json.dumps(GOOD)), tmp_path / "x.json", format="ini")):
        with pytest.raises(TopologyFileError) as info:
            call()
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize("where", ["vpc", "eni", "key"])
def test_lone_surrogates_are_refused_at_load(tmp_path, fmt, where):
    doc = json.loads(json.dumps(GOOD))
    if where == "vpc":
        doc["vpcs"][0]["name"] = "bad\ud800name"
    elif where == "eni":
        doc["vpcs"][0]["subnets"][0]["enis"][0]["name"] = "e\udfff"
    else:
        doc["vpcs"][0]["\ud801x"] = 1
    if fmt == "json":
        text = json.dumps(doc)  # escapes: \\ud800 in the file is valid JSON text
    else:
        text = json.dumps(doc).replace("\\ud", "\\ud")  # YAML double-quoted strings take the same escapes
    p = tmp_path / f"t.{fmt}"
    p.write_text(text, encoding="utf-8")
    for call in (lambda: files.load(p), lambda: files.loads(text, fmt)):
        with pytest.raises(TopologyFileError, match="surrogate|UTF-8") as info:
            call()
        assert "line" in str(info.value) or fmt == "json"
        str(info.value).encode("utf-8")  # the message itself is printable
    # a surrogate written straight into the string given to loads() is refused the same way
    with pytest.raises(TopologyFileError):
        files.loads(json.dumps(doc, ensure_ascii=False), "json")


def test_a_loaded_network_always_saves_and_shows(tmp_path):
    net = files.loads(json.dumps(GOOD))
    files.save(net, tmp_path / "ok.yaml")
    assert files.load(tmp_path / "ok.yaml") == net
    assert fv.Network is type(net)
