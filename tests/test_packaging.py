"""The wheel carries what the installed tool needs: templates and migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_templates_and_migrations(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("erasure-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("acknowledgement", "completed", "no_data_found", "needs_information", "rejected", "extended"):
        assert f"erasure/templates/{kind}.txt" in names
        assert f"erasure/templates/{kind}.html" in names
    assert "erasure/migrations/env.py" in names
    assert "erasure/report_template.html" in names
    assert "erasure/templates/_layout.html" in names
    assert any(n.startswith("erasure/migrations/versions/0001_") for n in names)
