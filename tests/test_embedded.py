"""The README's first command on a bare machine: no tokens, no services → console on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MONA = [sys.executable, "-m", "bot.cli"]


def bare_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "REDIS_URL", "MONA_"))}
    env["MONA_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_exec_creates_and_migrates_the_sqlite_file_and_runs_one_command(tmp_path):
    env = bare_env(tmp_path)
    out = subprocess.run([*MONA, "exec", "/artist add Alex --genre pop"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Added Alex to MONA at Prospection." in out.stdout
    assert (tmp_path / "data" / "mona.sqlite3").exists()
    again = subprocess.run([*MONA, "exec", "/artist", "show", "alex"], env=env, capture_output=True, text=True, timeout=60)
    assert "== Alex (#1) ==" in again.stdout and "Genre: pop" in again.stdout
    bad = subprocess.run([*MONA, "exec", "/artist show Nobody"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "No artist is called Nobody." in bad.stdout and "Traceback" not in bad.stderr


def test_the_console_repl_answers_commands_choices_and_forms(tmp_path):
    env = bare_env(tmp_path)
    script = "\n".join([
        "/artist add Alex",
        "/artist show Alex",
        "5",            # [5] Log interaction → a form
        "call",         # Type
        "Phoned about the EP",
        "/artist show Alex",
        "quit",
    ]) + "\n"
    out = subprocess.run(MONA, input=script, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "starting the console on SQLite file" in out.stderr
    assert "[5] Log interaction" in out.stdout
    assert "Logged with Alex." in out.stdout
    assert "call · " in out.stdout and "Phoned about the EP" in out.stdout


def test_a_bad_language_setting_is_a_clear_startup_error(tmp_path):
    env = bare_env(tmp_path) | {"MONA_LANG": "de"}
    out = subprocess.run([*MONA, "exec", "/mona help"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "MONA_LANG must be one of en, fr" in out.stderr


def test_on_the_embedded_file_scores_batches_and_prescriptions_run_with_jobs_in_process(tmp_path):
    env = bare_env(tmp_path)

    def run(line: str) -> str:
        out = subprocess.run([*MONA, "exec", line], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stdout + out.stderr
        return out.stdout

    run("/artist add Alex --genre pop")
    run("/artist metrics Alex --engagement-rate 5 --instagram-followers 9000")
    assert "== Market Fit of Alex (#1) ==" in run("/score Alex")
    assert "Scored 1 artist in" in run("/score batch")
    assert "MONA · Prospection: 1 scored" in run("/score stats")
    assert "Written from mona's template, not by an AI: no AI API is configured." in run("/prescribe Alex")
