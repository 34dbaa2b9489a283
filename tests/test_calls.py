"""Plugin code that fails (not a user mistake) is reported as the plugin's, naming component and method."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sslreg import PluginError, UserError, make_loader
from sslreg.calls import plugin_call

sys.path.insert(0, str(Path(__file__).parent))
import runner_helpers as helpers


class BrokenSource(helpers.MemorySource):
    """A source whose load has a bug."""

    name = "broken"

    def load(self, index: int):
        raise KeyError("no such image")


def _loader(workers: int):
    source = BrokenSource(helpers.MemoryConfig(name="broken", size=4))
    return make_loader(source, lambda sample, rng: sample.image, batch_size=2, num_workers=workers)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_failing_load_names_plugin_component_and_method(workers):
    with pytest.raises(PluginError) as caught:
        next(iter(_loader(workers)))
    last = str(caught.value).strip().splitlines()[-1]
    assert "dataset 'broken', load() failed: KeyError: 'no such image'" in last
    assert "runner_helpers" in last or "tests" in last  # the test module stands in for a distribution


def test_user_errors_and_os_errors_pass_through_unchanged():
    source = BrokenSource(helpers.MemoryConfig(name="broken", size=4))
    with pytest.raises(UserError, match="bad option"), plugin_call(source, "load"):
        raise UserError("bad option")
    with pytest.raises(FileNotFoundError), plugin_call(source, "load"):
        raise FileNotFoundError("missing.jpg")


def test_a_first_party_component_is_named_by_its_distribution():
    from sslreg_jigsaw import Jigsaw

    from sslreg.calls import describe

    assert describe(Jigsaw).startswith("plugin sslreg-jigsaw ") and describe(Jigsaw).endswith("pretext 'jigsaw'")
