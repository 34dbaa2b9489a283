"""Run under torchrun by test_ddp.py: nyuv2_normals on tiny rendered scenes in a gloo process group."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from sslreg_normals.evaluator import NormalsConfig, NyuNormals

from sslreg import EvalContext, get_registry
from sslreg.testing import TinyBackbone


def main(options: str, out: str) -> None:
    torch.distributed.init_process_group("gloo")
    torch.set_num_threads(1)
    registry = get_registry()

    def build(spec):
        return registry.build("dataset", spec.model_dump() if hasattr(spec, "model_dump") else dict(spec))

    torch.manual_seed(0)
    trunk = TinyBackbone().freeze()
    rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
    context = EvalContext(torch.device("cpu"), Path(out) / "features", 0, build, rank=rank, world_size=world_size)
    config = NormalsConfig(name="nyuv2_normals", **json.loads(options))
    results = NyuNormals(config).evaluate(trunk, context)
    payload = [result.model_dump(mode="json") for result in results]
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(payload))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
