"""Four scaffolded plugins, one per kind, really pip-installed together: listed, their own tests pass, a config
uses all four (`sslreg validate`, a tiny `sslreg run`), and they are gone once uninstalled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = {"pretext": "flipper", "backbone": "tinyvgg", "dataset": "csvlist", "evaluator": "centroid"}

CONFIG = """\
name: scaffolded
seed: 0
work_dir: {work_dir}
pretrain:
  pretext: {{name: flipper, image_size: 32, crop_size: 24}}
  backbone: {{name: tinyvgg, width: 4}}
  data: {{name: embedded_photos, num_crops: 16, crop_size: 32}}
  schedule: {{epochs: 1, max_iters: 2, batch_size: 8, log_interval: 1, checkpoint_interval: 1}}
evaluate:
  - name: centroid
    layers: all
    image_size: 32
    train: {{name: csvlist, root: {train}}}
    test: {{name: csvlist, root: {test}}}
"""


def write_labelled(root: Path, seed: int) -> Path:
    """Three classes of coloured squares on noise (3 PNG files each), their CSV list, and one corrupt listed file."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = ["path,label"]
    for label, colour in {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 60, 230)}.items():
        for index in range(3):
            image = rng.integers(80, 160, (32, 32, 3), dtype=np.uint8)
            top, left = rng.integers(0, 16, size=2)
            image[top : top + 16, left : left + 16] = colour
            root.joinpath(label).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / label / f"{index}.png"), image[..., ::-1])
            rows.append(f"{label}/{index}.png,{label}")
    (root / "corrupt.png").write_bytes(b"not an image")
    (root / "labels.csv").write_text("\n".join([*rows, "corrupt.png,red"]) + "\n")
    return root


def run(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd)
    if check:
        assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def listed() -> dict[str, str]:
    rows = json.loads(run("-m", "sslreg.cli", "list", "--json").stdout)
    return {row["name"]: row["distribution"] for row in rows if row["name"] in PLUGINS.values()}


@pytest.mark.slow
def test_scaffold_install_test_run_and_uninstall(tmp_path):
    for kind, name in PLUGINS.items():
        run("-m", "sslreg.cli", "plugin", "new", name, "--kind", kind, "--dir", str(tmp_path))
    folders = [str(tmp_path / f"sslreg-{name}") for name in PLUGINS.values()]
    dists = [f"sslreg-{name}" for name in PLUGINS.values()]
    run("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", *[f"-e{f}" for f in folders])
    try:
        assert listed() == {name: f"sslreg-{name}" for name in PLUGINS.values()}
        # The packages' own tests, all four in one pytest session (distinct modules, nothing shared).
        tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", *[f"{f}/tests" for f in folders], cwd=tmp_path)
        assert "12 passed" in tests.stdout

        train, test = write_labelled(tmp_path / "train", seed=0), write_labelled(tmp_path / "test", seed=1)
        config = tmp_path / "scaffolded.yaml"
        config.write_text(CONFIG.format(work_dir=tmp_path / "run", train=train, test=test))
        assert "OK (1 run)" in run("-m", "sslreg.cli", "validate", str(config)).stdout
        run("-m", "sslreg.cli", "run", str(config))
        results = json.loads((tmp_path / "run" / "results.json").read_text())
        assert results["pretrain"]["iterations"] == 2
        [result] = results["results"]
        assert result["evaluator"] == "centroid" and result["metric"] == "top-1 (nearest class mean)"
        assert list(result["layers"]) == ["stage1", "stage2", "stage3", "stage4"]
        assert result["details"] == {"train_images": 9, "test_images": 9, "skipped": 2}  # one corrupt file in each
        contract = run("-c", f"import sslreg; print(sslreg.contract_of_file({str(tmp_path / 'run' / 'trunk.pth')!r}))")
        assert "space='rgb'" in contract.stdout  # the scaffolded pretext task's declared contract, kept with the trunk
    finally:
        run("-m", "pip", "uninstall", "-y", "-q", *dists)
    assert listed() == {}
    gone = run("-m", "sslreg.cli", "validate", str(config), check=False)
    assert gone.returncode == 2 and "unknown pretext 'flipper'" in gone.stderr
