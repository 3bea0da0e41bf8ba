"""The command line's contract: `run` refuses to start without the pseudonym key."""

from __future__ import annotations

from typer.testing import CliRunner

from skadestue.cli import app
from skadestue.config import load_settings


def test_run_refuses_without_pseudonym_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SKADESTUE_PSEUDONYM_KEY", raising=False)
    result = CliRunner().invoke(app, ["run", "--inbox", str(tmp_path), "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 2
    assert "SKADESTUE_PSEUDONYM_KEY" in result.output
    assert not (tmp_path / "w.duckdb").exists()


def test_settings_layering(tmp_path, monkeypatch):
    toml = tmp_path / "skadestue.toml"
    toml.write_text(
        'inbox = "from-toml"\npseudonym_key = "must-be-ignored"\n'
        '[ingest.er_columns]\nankomst = "Ankomsttidspunkt"\n[publish]\nsuppression_k = 5\n',
        encoding="utf-8",
    )
    monkeypatch.delenv("SKADESTUE_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("SKADESTUE_WAREHOUSE", str(tmp_path / "env.duckdb"))
    s = load_settings(toml, publish_dir=tmp_path / "cli")
    assert str(s.inbox) == "from-toml"
    assert s.warehouse == tmp_path / "env.duckdb"
    assert s.publish_dir == tmp_path / "cli"
    assert s.ingest.er_columns.ankomst == "Ankomsttidspunkt"
    assert s.publish.suppression_k == 5
    assert s.pseudonym_key is None  # never from a file
