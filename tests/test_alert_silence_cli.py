"""`monitor silence add|list|expire` through click's CliRunner, with a real project and store."""
from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from monitor.alert.cli import silence
from monitor.config import load_config

NOW = ["--now", "2026-03-04T06:10"]


@pytest.fixture
def project(tmp_path):
    (tmp_path / "monitor.toml").write_text('[project]\nname = "t"\nstore = "store.duckdb"\n')
    return tmp_path / "monitor.toml"


def run(project, *args, now=NOW):
    result = CliRunner().invoke(silence, ["--config", str(project), *now, *args], catch_exceptions=False)
    return result


def test_add_list_expire(project):
    added = run(project, "add", "metric=fraud_rate", "-m", "country=~BR|AR", "-d", "4h", "-a", "ana",
                "-c", "carnival promo")
    assert added.exit_code == 0, added.output
    silence_id = added.output.split()[0]
    assert "until 2026-03-04 10:10 UTC" in added.output
    listed = run(project, "list")
    assert silence_id in listed.output and "active" in listed.output and "carnival promo" in listed.output
    as_json = json.loads(run(project, "list", "--format", "json").output)
    assert as_json[0]["matchers"] == ["metric=fraud_rate", "country=~BR|AR"] and as_json[0]["author"] == "ana"
    assert run(project, "expire", silence_id, now=["--now", "2026-03-04T07:00"]).exit_code == 0
    assert "No active silences." in run(project, "list", now=["--now", "2026-03-04T07:00"]).output
    everything = json.loads(run(project, "list", "--all", "--format", "json",
                                now=["--now", "2026-03-04T07:00"]).output)
    assert everything[0]["state"] == "expired" and everything[0]["expired_at"] == "2026-03-04T07:00:00"


def test_silence_ends_on_its_own(project):
    run(project, "add", "metric=fraud_rate", "--until", "2026-03-04T08:00", "-c", "deploy")
    assert "active" in run(project, "list", now=["--now", "2026-03-04T07:59"]).output
    assert "No active silences." in run(project, "list", now=["--now", "2026-03-04T08:00"]).output


@pytest.mark.parametrize("args,message", [
    (["add", "-c", "x"], "at least one matcher"),
    (["add", "country!=BR", "-c", "x"], "would silence every alert"),
    (["add", "country", "-c", "x"], "has no operator"),
    (["add", "country=~((", "-c", "x"], "invalid regular expression"),
    (["add", "metric=a", "-c", "x", "-d", "soon"], "--duration 'soon' must be"),
    (["add", "metric=a", "-c", "x", "-d", "1h", "--until", "2026-03-05"], "not both"),
    (["add", "metric=a", "-c", "x", "--until", "2026-03-01"], "before it starts"),
    (["add", "metric=a", "-c", "  "], "needs a comment"),
    (["expire", "s-nope"], "No silence with id 's-nope'"),
])
def test_errors_are_one_sentence_and_exit_non_zero(project, args, message):
    result = run(project, *args)
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_expiring_twice_says_it_already_ended(project):
    silence_id = run(project, "add", "metric=a", "-c", "x").output.split()[0]
    run(project, "expire", silence_id)
    assert "already ended" in run(project, "expire", silence_id).output


def test_attached_to_a_parent_cli_it_uses_the_config_in_ctx_obj(project):
    @click.group()
    @click.pass_context
    def main(ctx):
        ctx.obj = {"config": load_config(project)}

    main.add_command(silence)
    runner = CliRunner()
    added = runner.invoke(main, ["silence", *NOW, "add", "metric=fraud_rate", "-c", "from parent"])
    assert added.exit_code == 0, added.output
    assert "from parent" in runner.invoke(main, ["silence", *NOW, "list"]).output
    assert (project.parent / "store.duckdb").exists()


def test_attached_to_the_main_cli_it_uses_its_context_object(project):
    from monitor.cli import Context

    @click.group()
    @click.pass_context
    def main(ctx):
        ctx.obj = Context(str(project), False, "2026-03-04T06:10")  # what `monitor` sets up

    main.add_command(silence)
    result = CliRunner().invoke(main, ["silence", "add", "metric=fraud_rate", "-d", "1h", "-c", "x"])
    assert result.exit_code == 0, result.output
    assert "until 2026-03-04 07:10 UTC" in result.output
