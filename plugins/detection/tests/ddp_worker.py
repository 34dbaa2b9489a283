"""Run by test_ddp.py under torchrun: voc07_detection on every rank (gloo), told so by EvalContext.world_size."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from sslreg_detection import evaluator as detection
from sslreg_detection.evaluator import DetectionConfig, VocDetectionEvaluator

from sslreg import EvalContext, get_registry
from sslreg.testing import TinyBackbone


def main(out: Path, options: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    checksums = []
    detect = detection.DetectionRun.detect

    def recording(self, model, source):
        checksums.append(float(sum(p.detach().double().sum() for p in model.parameters() if p.requires_grad)))
        return detect(self, model, source)

    detection.DetectionRun.detect = recording
    torch.manual_seed(0)
    trunk = TinyBackbone().freeze()
    context = EvalContext(
        device=torch.device("cpu"),
        cache_dir=out / "cache",
        seed=0,
        build_dataset=lambda spec: get_registry().build("dataset", spec.model_dump()),
        rank=rank,
        world_size=dist.get_world_size(),
    )
    [result] = VocDetectionEvaluator(DetectionConfig(name="voc07_detection", **options)).evaluate(trunk, context)
    payload = {"result": result.model_dump(mode="json"), "checksums": checksums}
    (out / f"rank{rank}.json").write_text(json.dumps(payload))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]))
