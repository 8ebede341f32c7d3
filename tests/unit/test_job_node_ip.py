"""The job script gives Ray and the judge an address other nodes reach: a node's name may
resolve to 127.0.1.1 (Debian's /etc/hosts), which `hostname --ip-address` returns."""

from __future__ import annotations

import subprocess

import pytest

from plumbing.launch.slurm import JobSpec, RaySection, render


def _function(text: str, name: str) -> str:
    fn = text[text.index(f"{name}() {{"):]
    return fn[:fn.index("\n}\n") + 3]


@pytest.mark.parametrize("getent,hostname_i,want", [
    ("127.0.1.1 STREAM node1\n10.1.2.3 STREAM node1\n", "172.17.0.1 10.1.2.3", "10.1.2.3"),  # loopback passed over
    ("127.0.1.1 STREAM node1\n", "10.9.9.9 172.17.0.1", "10.9.9.9"),  # the name gives only loopback: the node's own
])
def test_node_ip_is_never_a_loopback_address(tmp_path, getent, hostname_i, want):
    text = render(JobSpec(name="t", command="true", job_dir="/tmp/t", ray=RaySection(num_cpus=4, num_gpus=8)))
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for tool, out in {"getent": getent, "hostname": f"{hostname_i}\n"}.items():
        (fakes / tool).write_text(f"#!/bin/sh\nprintf '%s' '{out}'\n")
        (fakes / tool).chmod(0o755)
    script = f"set -euo pipefail\n{_function(text, 'run_on')}{_function(text, 'node_ip')}node_ip node1\n"
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={"PATH": f"{fakes}:/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == want
