"""sslreg's conformance kit on this plugin."""

import pytest
import sslreg_colorization

from sslreg.testing import check_plugin


def test_conformance_kit_passes(gamut_dir, monkeypatch):
    monkeypatch.setenv("SSLREG_CACHE", str(gamut_dir.parent))  # default cache dir = the session's gamut cache
    with pytest.warns(UserWarning, match="prepare"):  # the kit does not call prepare(): uniform weights
        entries = check_plugin(sslreg_colorization)
    assert [(entry.kind, entry.name) for entry in entries] == [("pretext", "colorization")]
