"""segmentation_lib.report.files: streamed SHA-256 of the run's inputs."""
from __future__ import annotations

from pathlib import Path

from segmentation_lib.report import files


def test_sha256_streamed(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert files.sha256_file(p, chunk=1) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
