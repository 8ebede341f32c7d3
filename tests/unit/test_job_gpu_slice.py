"""A judge sharing the node gets GPUs by position among those the job was given: with an
inherited CUDA_VISIBLE_DEVICES (a Slurm step, a shared machine) position 0 is that list's
first GPU, not physical GPU 0."""

from __future__ import annotations

import subprocess

import pytest

from plumbing.launch.slurm import JobSpec, JudgeSection, RaySection, render


def script() -> str:
    return render(JobSpec(name="t", command="true", job_dir="/tmp/t",
                          judge=JudgeSection(command="vllm serve m", port=1, endpoint_file="/tmp/e", devices="0,1"),
                          ray=RaySection(num_cpus=4, num_gpus=2, devices="2,3")))


def gpu_slice(positions: str, inherited) -> subprocess.CompletedProcess:
    text = script()
    fn = text[text.index("gpu_slice() {"):]
    fn = fn[:fn.index("\n}\n") + 3]
    env = {"PATH": "/usr/bin:/bin"} | ({"CUDA_VISIBLE_DEVICES": inherited} if inherited is not None else {})
    return subprocess.run(["bash", "-c", f"set -euo pipefail\n{fn}\nX=$(gpu_slice {positions})\necho \"$X\""],
                          capture_output=True, text=True, env=env)


@pytest.mark.parametrize("inherited,positions,want", [
    (None, "0,1", "0,1"),
    ("4,5,6,7", "0,1", "4,5"),
    ("4,5,6,7", "2,3", "6,7"),
    ("GPU-aa,GPU-bb,GPU-cc", "1,2", "GPU-bb,GPU-cc"),
])
def test_positions_map_onto_the_inherited_devices(inherited, positions, want):
    r = gpu_slice(positions, inherited)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == want


def test_more_gpus_than_given_stops_the_job():
    r = gpu_slice("2,3", "4,5")
    assert r.returncode != 0 and "only 2 given" in r.stderr
    r = gpu_slice("0,1", "")  # set but empty: no GPU at all, not every GPU
    assert r.returncode != 0 and "given no GPU" in r.stderr


def test_the_judge_and_ray_take_their_slices():
    text = script()
    assert 'JUDGE_GPUS=$(gpu_slice 0,1)' in text and 'env CUDA_VISIBLE_DEVICES="$JUDGE_GPUS" vllm serve m' in text
    assert 'RAY_GPUS=$(gpu_slice 2,3)' in text
