"""The import-linter contract in pyproject.toml names every module of the refapp package on a floor.

A module of `refapp` that no floor names would escape the check that `make lint` runs, so a new
helper or a new page module must be placed on its floor when it is added.
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _floors() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return [{name.strip().strip("()") for name in layer.replace("|", ":").split(":")} for layer in layers]


def test_every_module_of_the_refapp_package_is_on_exactly_one_floor():
    named = [name for floor in _floors() for name in floor]
    children = {
        f"refapp.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "refapp").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    assert sorted(children - set(named)) == []
    assert len(named) == len(set(named))


def test_the_apps_are_floors_in_their_order():
    floors = _floors()
    apps = [next(iter(floor)) for floor in floors if len(floor) == 1]
    assert apps == ["webhooks", "payouts", "commissions", "tracking", "affiliates"]
