"""`symode demo`: the seed's story in order, lines of at most 100 characters, a closing summary table, the figures
(or how to get them).  Its numbers are the library's checks (tested in their own modules); here the story."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from symode.demo import WIDTH

STEPS = ["1. Derive", "2. Verify the seed's own formulas", "3. Generate, compile and call the C gradient",
         "4. Check every route", "5. Train", "6. Figures", "Summary"]


def _demo(tmp_path, *args, block_matplotlib=False):
    code = ("import sys\n" + ("sys.modules['matplotlib'] = None\n" if block_matplotlib else "")
            + "from symode.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "SYMODE_CACHE_DIR": str(tmp_path / "cache")}  # the user's compile cache stays untouched
    return subprocess.run([sys.executable, "-c", code, "demo", "--quick", *args], capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.mark.slow
def test_quick_demo_tells_the_story_and_ends_with_a_summary(tmp_path):
    pytest.importorskip("matplotlib")
    p = _demo(tmp_path, "--plot", str(tmp_path / "figs"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    positions = [next(i for i, line in enumerate(lines) if line.startswith(s)) for s in STEPS]
    assert positions == sorted(positions)
    summary = lines[positions[-1]:]
    assert "everything agreed" in summary[0]
    rows = summary[2:-1]
    assert all(row.endswith(" yes") for row in rows)
    for what in ("verify seed formulas", "C gradient vs in-memory graph", "one-sweep C vs in-memory graph",
                 "discrete vs oracle", "two routes' trajectories",
                 "seed ODE recovers a, b", "sign-flipped gradient", "figures"):
        assert any(row.strip().startswith(what) for row in rows), what
    assert "5 FALSE" in p.stdout  # the seed's three errors, as five FALSE claim lines
    story = " ".join(line.strip() for line in lines)  # wrapped lines joined: the wrong gradient's line is whole
    assert "a deliberately wrong gradient: discrete (scheme rk4, steps 50; compiled C) with the sign of" in story
    assert "flipped: leaves the allowance at iteration" in story
    pngs = sorted(f.name for f in (tmp_path / "figs").iterdir())
    assert "seed-trajectories.png" in pngs and "convergence.png" in pngs and len(pngs) == 6
    assert summary[-1] == f"Figures: {tmp_path / 'figs'}/ (6 PNG files)"


@pytest.mark.slow
def test_demo_without_matplotlib_says_how_to_get_the_figures(tmp_path):
    p = _demo(tmp_path, "--plot", str(tmp_path / "figs"), block_matplotlib=True)
    assert p.returncode == 0, p.stderr
    assert "pip install 'symode[plot]'" in p.stdout and not (tmp_path / "figs").exists()
    assert p.stdout.splitlines()[-1] == "Figures: none; pip install 'symode[plot]' (matplotlib) to get them"
    assert max(len(line) for line in p.stdout.splitlines()) <= WIDTH
