"""Settings from the environment: a value that does not parse is one line naming the variable,
never the value (it may be an API key or a password)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from graphfraud.config import RingSettings, load_settings
from graphfraud.errors import ConfigError

SECRET = "sk-live-9f8e7d6c5b4a"  # stands for a real key pasted into the wrong shape


def graphfraud(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHFRAUD_")}
    return subprocess.run(
        [sys.executable, "-m", "graphfraud", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )


@pytest.mark.parametrize(
    ("var", "value", "problem"),
    [
        ("GRAPHFRAUD_SERVICE__API_KEYS", f"{SECRET}:scorer", "not valid JSON"),  # no brackets
        ("GRAPHFRAUD_SERVICE__API_KEYS", f'{{"{SECRET}": "scorer"}}', "list_type"),
        ("GRAPHFRAUD_SERVICE__API_KEYS", f'["{SECRET}:scorer", 7]', "string_type"),
        ("GRAPHFRAUD_SERVICE__API_KEYS", f'["scorer:{SECRET}"]', "entry #1"),  # reversed
        ("GRAPHFRAUD_SERVICE__PORT", SECRET, "int_parsing"),
        ("GRAPHFRAUD_GRAPH__CONNECT_TIMEOUT_S", SECRET, "float_parsing"),
    ],
)
def test_bad_env_var_is_one_line_naming_it_never_its_value(
    tmp_path: Path, var: str, value: str, problem: str
) -> None:
    proc = graphfraud("serve", "--run", str(tmp_path), env={var: value})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert SECRET not in proc.stderr + proc.stdout
    assert "9f8e7d" not in proc.stderr  # not even a fragment of it
    if problem != "entry #1":  # the key ring names the entry's position instead
        assert var in proc.stderr
    assert problem in proc.stderr


def test_every_verb_reads_settings_the_same_way(tmp_path: Path) -> None:
    proc = graphfraud(
        "run",
        "--users",
        str(tmp_path / "u.csv"),
        "--out",
        str(tmp_path / "o"),
        env={"GRAPHFRAUD_LINK__MAX_SHARE": SECRET, "GRAPHFRAUD_MODEL__CANDIDATES": SECRET},
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert SECRET not in proc.stderr
    assert "GRAPHFRAUD_MODEL__CANDIDATES" in proc.stderr or "GRAPHFRAUD_LINK__MAX_SHARE" in (
        proc.stderr
    )


def test_load_settings_raises_config_error_without_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRAPHFRAUD_SERVICE__WORKERS", SECRET)
    monkeypatch.setenv("GRAPHFRAUD_RINGS__MIN_WEIGHT", SECRET)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "GRAPHFRAUD_SERVICE__WORKERS" in message
    assert "GRAPHFRAUD_RINGS__MIN_WEIGHT" in message
    assert SECRET not in message
    assert caught.value.__cause__ is None  # a debug traceback cannot show the value either
    assert caught.value.__suppress_context__


def test_whole_group_as_bad_json_names_the_group_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHFRAUD_SERVICE", "{" + SECRET)
    with pytest.raises(ConfigError, match="GRAPHFRAUD_SERVICE ") as caught:
        load_settings()
    assert SECRET not in str(caught.value)


def test_flag_overrides_are_named_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"setting service\.port") as caught:
        load_settings(service={"port": SECRET})
    assert SECRET not in str(caught.value)


def test_good_values_still_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHFRAUD_SERVICE__API_KEYS", '["k1:scorer"]')
    monkeypatch.setenv("GRAPHFRAUD_SERVICE__PORT", "9000")
    settings = load_settings()
    assert settings.service.api_keys == ["k1:scorer"]
    assert settings.service.port == 9000


def test_model_threads_default_to_the_cpus_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GRAPHFRAUD_MODEL__NUM_THREADS", raising=False)
    assert load_settings().model.num_threads == len(os.sched_getaffinity(0))
    monkeypatch.setenv("GRAPHFRAUD_MODEL__NUM_THREADS", "3")
    assert load_settings().model.num_threads == 3
    monkeypatch.setenv("GRAPHFRAUD_MODEL__NUM_THREADS", "0")  # LightGBM's 'all cores': refused
    with pytest.raises(ConfigError, match="GRAPHFRAUD_MODEL__NUM_THREADS"):
        load_settings()


def test_an_exclusive_tie_merge_that_could_never_happen_is_refused() -> None:
    with pytest.raises(ValidationError, match="exclusive_min_size"):
        RingSettings(exclusive_min_size=50, exclusive_max_size=40)
    assert RingSettings(exclusive_min_size=40, exclusive_max_size=40).exclusive_min_size == 40
