"""Boolean switches read 0/false/no/off/"" as off, everything else as on; lists are comma-separated names."""

import pytest

from sslreg.env import env_flag, env_names


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "False", " OFF ", "No"])
def test_off_values(monkeypatch, value):
    monkeypatch.setenv("SSLREG_TEST_FLAG", value)
    assert env_flag("SSLREG_TEST_FLAG") is False


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "2", "debug"])
def test_on_values(monkeypatch, value):
    monkeypatch.setenv("SSLREG_TEST_FLAG", value)
    assert env_flag("SSLREG_TEST_FLAG") is True


def test_unset_is_off(monkeypatch):
    monkeypatch.delenv("SSLREG_TEST_FLAG", raising=False)
    assert env_flag("SSLREG_TEST_FLAG") is False


def test_name_lists(monkeypatch):
    monkeypatch.delenv("SSLREG_TEST_LIST", raising=False)
    assert env_names("SSLREG_TEST_LIST") is None
    monkeypatch.setenv("SSLREG_TEST_LIST", "")
    assert env_names("SSLREG_TEST_LIST") == set()
    monkeypatch.setenv("SSLREG_TEST_LIST", " svm, jigsaw ,,")
    assert env_names("SSLREG_TEST_LIST") == {"svm", "jigsaw"}
