"""Config loading: every problem at once, with dotted path, line and did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from gated.app.cli import main
from gated.config import ConfigError, check_config, load_config, parse_config
from gated.policy import generate_site_key

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = '[site]\nid = "demo"\n[booth]\nid = "b1"\n'
GATE = '[devices.g]\ntype = "modbus_gate"\nport = "x"\nzone = "hall"\n'


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
        (MINIMAL + '[devices.g]\ntype = "modbus_gate"\nport = "x"\nzone = "lobby"\n',
         "devices.g.zone", 8, "unknown zone 'lobby'"),
        ('[site]\nid = "demo"\ntimezone = "Asia/Shangai"\n[booth]\nid = "b1"\n',
         "site.timezone", 3, "did you mean 'Asia/Shanghai'"),
        (MINIMAL + '[zones.hall]\nname = "x"\nkind = "office"\n[zones.o2]\nname = "y"\n'
         'kind = "office"\n', "zones", 5, "admit nobody"),
        (MINIMAL + '[schedule]\nholidays = [2026-10-01]\nworkdays = [2026-10-01]\n',
         "schedule.workdays", 7, "a holiday and a working day"),
        (MINIMAL + '[ticket]\nrating_url = "https://x.gov.cn/r?t={ticketid}"\n',
         "ticket.rating_url", 6, "unknown placeholder {ticketid}"),
        (MINIMAL + '[ticket]\nrating_url = "pj.gov.cn/{ticket_id}"\n',
         "ticket.rating_url", 6, "http"),
        (MINIMAL + '[queue]\ndefault_service = "tax"\n', "queue.default_service", 6,
         "not a [services] entry"),
        (MINIMAL + '[schedule.hours]\nmon = "8:30-12:00"\n', "schedule.hours", 5, "HH:MM"),
        (MINIMAL + '[outbox]\nmax_rows = "many"\n', "outbox.max_rows", 6, "integer"),
        # profiles: each chooses its own model, as strict as any
        (MINIMAL + GATE + 'profile = "wavshare_v2"\n', "devices.g.profile", 9,
         "did you mean 'waveshare_v2'"),
        (MINIMAL + GATE + 'profile = "waveshare_v2"\nkeep_board_mode = true\n',
         "devices.g.keep_board_mode", 10, "did you mean 'keep_board_modes'"),
        (MINIMAL + GATE + 'inputs_address = 2\n', "devices.g.inputs_address", 9,
         "unknown key"),  # the coil profile has no input board
        (MINIMAL + GATE + 'profile = "r4d3b16"\n', "devices.g", 5, "set inputs_address"),
        (MINIMAL + GATE + 'gate = "swing"\ninputs = { pass_c = 1 }\n',
         "devices.g.inputs.pass_c", 10, "did you mean 'pass_b'"),
        (MINIMAL + GATE + 'gate = "turnstile"\n', "devices.g.gate", 9,
         "known: barrier, contact, swing"),
        (MINIMAL + GATE + 'gate = "swing"\ninputs = { open_limit = 1 }\n',
         "devices.g.inputs.open_limit", 10, "unknown key"),
        (MINIMAL + GATE + 'profile = "generic"\nread = "input_registers"\n', "devices.g", 5,
         "does not go with read"),
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


def _on_this_booth(tmp: Path, extra: str = "") -> str:
    """MINIMAL with a real site key and state directory, and ``extra`` lines."""
    key = tmp / "site.key"
    if not key.exists():
        generate_site_key(key)
    return (f'state_dir = "{tmp / "state"}"\n[site]\nid = "demo"\nkey_file = "{key}"\n'
            f'[booth]\nid = "b1"\n' + extra)


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(_on_this_booth(tmp_path))
    assert main(["check-config", str(good)]) == 0
    other = tmp_path / "elsewhere.toml"  # written for another box: its files are not here
    other.write_text(MINIMAL)
    assert main(["check-config", str(other)]) == 78
    assert "site.key_file" in capsys.readouterr().err
    assert main(["check-config", "--no-files", str(other)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "[outbox]\nmax_rowz = 5\n")
    assert main(["check-config", str(bad)]) == 78
    err = capsys.readouterr().err
    assert "outbox.max_rowz (line 6)" in err and "max_rows" in err
    assert main(["check-config", str(tmp_path / "missing.toml")]) == 78
    assert "file not found" in capsys.readouterr().err


def test_files_the_config_names_are_checked_where_it_runs(tmp_path: Path) -> None:
    pw = tmp_path / "mqtt.pass"
    pw.write_text("secret\n")
    pw.chmod(0o644)  # others can read the broker password
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    text = _on_this_booth(tmp_path, f'[mqtt]\nusername_file = "{tmp_path / "nobody"}"\n'
                                    f'password_file = "{pw}"\n'
                                    f'command_key_file = "{tmp_path / "missing.key"}"\n')
    text = text.replace(f'state_dir = "{tmp_path / "state"}"', f'state_dir = "{blocker}/state"')
    (tmp_path / "site.key").chmod(0o604)
    path = tmp_path / "gated.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        check_config(path)
    found = {p.path: (p.line, p.message) for p in info.value.problems}
    assert set(found) == {"site.key_file", "mqtt.username_file", "mqtt.password_file",
                          "mqtt.command_key_file", "state_dir"}
    assert "chmod 0640" in found["site.key_file"][1] and found["site.key_file"][0] == 4
    assert "does not exist" in found["mqtt.command_key_file"][1]
    assert "chmod 0640" in found["mqtt.password_file"][1]
    assert "not a directory" in found["state_dir"][1] and found["state_dir"][0] == 1
    (tmp_path / "site.key").chmod(0o640)  # root:gated 0640 is how the install keeps it
    pw.chmod(0o640)
    for name, content in (("nobody", "booth\n"), ("missing.key", "ab" * 32)):
        (tmp_path / name).write_text(content)
        (tmp_path / name).chmod(0o600)
    path.write_text(text.replace(f"{blocker}/state", str(tmp_path / "state")))
    assert check_config(path).site.id == "demo"


def test_gate_inputs_out_of_one_read_are_a_config_error() -> None:
    from drivers.modbus_gate.settings import GateInputMap

    with pytest.raises(ValueError, match="within 2000"):
        GateInputMap(open_limit=0, closed_limit=2500)
    assert GateInputMap(open_limit=100, closed_limit=1999, safety_beam=None).closed_limit == 1999
