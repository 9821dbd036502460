"""What a user sees before running anything: every runner's --help, and the package's metadata."""
import importlib.metadata
from pathlib import Path

import pytest

import dasjax
from conftest import ROOT, load_script

RUNNERS = sorted(p.stem for p in (ROOT / "experiments").glob("run_*.py")) + ["calibrate"]


@pytest.mark.parametrize("name", RUNNERS)
def test_every_runner_help_describes_it(name, capsys):
    """--help shows the first line of the runner's docstring and no empty default."""
    mod = load_script(name)
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert mod.__doc__.strip().splitlines()[0] in out
    assert "(default: None)" not in out


def test_the_version_is_written_once_and_the_license_ships():
    assert importlib.metadata.version("dasjax") == dasjax.__version__
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (Path(dasjax.__file__).parent / "py.typed").exists()
    assert "preferred-citation" in (ROOT / "CITATION.cff").read_text()
