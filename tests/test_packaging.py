"""What a user sees before running anything: every runner's --help, the dasjax command, the package's metadata."""
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


def test_dasjax_fields_lists_every_config_field_with_its_meaning(capsys):
    from dasjax.cli import main
    from dasjax.config import flat_names
    from dasjax.field_docs import describe_fields
    assert main(["fields"]) == 0
    listed = capsys.readouterr().out
    docs = describe_fields()
    from dasjax.config import flat_field
    unique = {n for n in flat_names() if len({sec for sec, _ in flat_field(n)}) == 1}   # kernel_size: 2 sections
    assert unique - {"kind", "name"} <= {d.name for d in docs} | {"search_epochs", "retrain_epochs"}
    for d in docs:
        assert f"  {d.name} = {d.default!r}" in listed
    by_name = {d.name: d for d in docs}
    assert "register #40" in by_name["blur_alignment"].meaning and "centred, causal" in by_name["blur_alignment"].accepts
    assert by_name["data_dir"].meaning.endswith('"embedded" forces those')   # a comment continued below the field
    assert sum(bool(d.meaning) for d in docs) >= 0.8 * len(docs)
    assert main(["fields", "retrain"]) == 0 and "[retrain]" in capsys.readouterr().out
    assert main(["fields", "nope"]) == 2 and "not a config section" in capsys.readouterr().err
    assert main(["version"]) == 0 and capsys.readouterr().out.strip() == dasjax.__version__
    assert 'dasjax = "dasjax.cli:main"' in (ROOT / "pyproject.toml").read_text()
