"""Config loading: every problem at once, with dotted path, line and did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from gated.app.cli import main
from gated.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = '[site]\nid = "demo"\n[booth]\nid = "b1"\n'


def test_minimal_config_gets_defaults() -> None:
    cfg = parse_config(MINIMAL)
    assert cfg.site.timezone == "Asia/Shanghai"
    assert cfg.state_dir == Path("/var/lib/gated")
    assert cfg.client_id == "gated-demo-b1"
    assert "hall" in cfg.zones and cfg.zones["hall"].fail_open


@pytest.mark.parametrize("name", ["gated.example.toml", "gated.sim.toml"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_config(ROOT / "config" / name)
    assert cfg.site.id


def test_example_documents_every_key() -> None:
    """Every key of the model appears in the example file, so IT can find it there."""
    from pydantic import BaseModel

    from gated.config import GatedConfig

    text = (ROOT / "config" / "gated.example.toml").read_text(encoding="utf-8")
    missing: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for key, field in model.model_fields.items():
            if key not in text:
                missing.append(prefix + key)
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{key}.")

    walk(GatedConfig, "")
    from drivers.registry import settings_models

    for cls in settings_models():
        walk(cls, f"devices.<{cls.__name__}>.")
    assert not missing, f"keys not documented in gated.example.toml: {missing}"


@pytest.mark.parametrize(
    ("toml", "path", "line", "fragment"),
    [
        (MINIMAL + "[outbox]\nmax_rowz = 5\n", "outbox.max_rowz", 6, "did you mean 'max_rows'"),
        (MINIMAL + "nmae = 1\n", "booth.nmae", 5, "did you mean 'name'"),
        ('[site]\nid = "Bad Id"\n[booth]\nid = "b1"\n', "site.id", 2, "pattern"),
        ('[site]\nid = "demo"\n', "booth", None, "required key is missing"),
        (MINIMAL + '[devices.g]\ntype = "modbus_gate"\nport = "x"\nzone = "hall"\nadress = 1\n',
         "devices.g.adress", 9, "did you mean 'address'"),
        (MINIMAL + '[devices.g]\ntype = "relay"\n', "devices.g", 5, "unknown device type"),
        (MINIMAL + '[devices.g]\ntype = "modbus_gate"\nport = "x"\nzone = "lobby"\n', "",
         None, "unknown zone 'lobby'"),
        (MINIMAL + '[schedule.hours]\nmon = "8:30-12:00"\n', "schedule.hours", 5, "HH:MM"),
        (MINIMAL + '[outbox]\nmax_rows = "many"\n', "outbox.max_rows", 6, "integer"),
    ],
)
def test_problems_are_specific(toml: str, path: str, line: int | None, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(toml)
    probs = info.value.problems
    assert any(p.path == path and fragment in p.message and (line is None or p.line == line)
               for p in probs), probs


def test_all_problems_reported_at_once() -> None:
    bad = MINIMAL + "[outbox]\nmax_rowz = 5\nmax_bytez = 1\n[log]\nlevel = \"loud\"\n"
    with pytest.raises(ConfigError) as info:
        parse_config(bad)
    assert len(info.value.problems) == 3


def test_toml_syntax_error_has_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL + "[outbox\n")
    assert info.value.problems[0].line == 5


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(MINIMAL)
    assert main(["check-config", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "[outbox]\nmax_rowz = 5\n")
    assert main(["check-config", str(bad)]) == 78
    err = capsys.readouterr().err
    assert "outbox.max_rowz (line 6)" in err and "max_rows" in err
    assert main(["check-config", str(tmp_path / "missing.toml")]) == 78
    assert "file not found" in capsys.readouterr().err


def test_gate_inputs_out_of_one_read_are_a_config_error() -> None:
    from drivers.modbus_gate.settings import GateInputMap

    with pytest.raises(ValueError, match="within 2000"):
        GateInputMap(open_limit=0, closed_limit=2500)
    assert GateInputMap(open_limit=100, closed_limit=1999, safety_beam=None).closed_limit == 1999
