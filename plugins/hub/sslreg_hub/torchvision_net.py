"""torchvision classification models as tappable trunks, through torchvision's feature extraction (torch.fx).

Default taps, one per map size: trace the model (``get_graph_node_names``), run the traced graph once on a meta
copy at the input size (shapes only, no compute), stop before the head (the first adaptive pooling, or a
top-level ``fc``/``classifier``/``head``/``heads`` module), and pick per map size one cut node (see
``stage_taps``): for ResNets the outputs of conv1+BN+ReLU and of layer1..layer4, i.e. res1..res5.
``create_feature_extractor`` then builds one graph returning every tap; its modules keep torchvision's names
(``layer1.0.conv1``), so torchvision state dicts load as they are, and the head (``fc.``, ``classifier.``) is
left out of the trunk. Each forward runs a copy of that graph pruned after the deepest requested tap.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import operator
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from sslreg import UserError
from sslreg_hub.taps import Tap, dropped_prefixes

#: Top-level modules of torchvision models that form the classification head.
HEAD_MODULES = ("fc", "classifier", "head", "heads")
#: torchvision models whose blocks carry tokens (or channels-last maps), not (N, C, H, W) feature maps.
TOKEN_MODELS = ("vit_", "swin_", "maxvit")


def classification_models() -> list[str]:
    """Names of torchvision's image classification models (``torchvision.models.list_models``)."""
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def check_arch(name: str) -> None:
    """A ValueError naming close names when ``name`` is not a torchvision classification model sslreg can tap."""
    known = classification_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {' or '.join(repr(f'torchvision/{c}') for c in close)}?" if close else ""
        raise ValueError(f"unknown torchvision classification model {name!r}{hint}")
    if name.startswith(TOKEN_MODELS):
        raise ValueError(
            f"torchvision/{name}: its blocks hold tokens, not (N, C, H, W) maps; use a timm/ model instead"
            " (timm gives transformer blocks as maps)"
        )


def default_input_size(name: str) -> int:
    """The crop size of the model's published weights' preprocessing (299 for inception_v3), else 224."""
    import torchvision

    try:
        return int(torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size[0])
    except (AttributeError, ValueError, IndexError, TypeError):
        return 224


def build_model(name: str) -> nn.Module:
    """The model with random weights (``weights=None``: nothing is downloaded), in-place activations off."""
    import torchvision

    model = torchvision.models.get_model(name, weights=None)
    for module in model.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False  # a tap must not be overwritten by a later in-place op
    return model.eval()


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on the meta device: its structure and shapes, without copying its tensors' data."""
    memo: dict[int, torch.Tensor] = {}
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        meta = torch.empty_like(tensor, device="meta")
        memo[id(tensor)] = nn.Parameter(meta, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else meta
    return copy.deepcopy(model, memo)


def graph_nodes(model: nn.Module) -> list[str]:
    """Names of the nodes of the model's traced eval-mode graph, in execution order (the input first)."""
    from torchvision.models.feature_extraction import get_graph_node_names

    return get_graph_node_names(model, suppress_diff_warning=True)[1]


Shape = tuple[int, ...] | None  # a node's output shape (None: not a tensor)


def probe(model: nn.Module, nodes: list[str], size: int, channels: int) -> tuple[dict[str, Shape], set[str]]:
    """Each node's output shape for one (1, channels, size, size) input to a meta model, and the cut nodes: those
    every later node depends on only through them (no edge jumps over them, e.g. a residual's skip)."""
    from torchvision.models.feature_extraction import create_feature_extractor

    extractor = create_feature_extractor(model, return_nodes={n: n for n in nodes}, suppress_diff_warning=True)
    with torch.no_grad():
        outputs = extractor.eval()(torch.empty(1, channels, size, size, device="meta"))
    shapes = {n: tuple(v.shape) if isinstance(v, torch.Tensor) else None for n, v in outputs.items()}
    graph = extractor.eval_graph
    [output] = [node for node in graph.nodes if node.op == "output"]
    position = {node: index for index, node in enumerate(graph.nodes)}
    cuts, reach = set(), 0
    for node in graph.nodes:
        if node.op == "get_attr":
            continue  # parameters and constants, not data flow
        if reach <= position[node]:
            cuts.add(node)
        reach = max([reach, *(position[user] for user in node.users if user is not output)])
    return shapes, {name for name, node in output.args[0].items() if node in cuts}


def is_head(node: str, model: nn.Module) -> bool:
    """Whether ``node`` starts the classification head: an adaptive pooling, or a top-level head module."""
    if node.split(".")[0] in HEAD_MODULES or "adaptive" in node.rsplit(".", 1)[-1]:
        return True
    try:
        return isinstance(model.get_submodule(node), nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d)
    except AttributeError:
        return False


Found = list[tuple[str, str, tuple[int, ...]]]  # (tap name, node, output shape)


def is_map(shape: Shape) -> bool:
    """An (N, C, S, S) feature map: square like the probe input (channels-last tensors inside blocks are not)."""
    return shape is not None and len(shape) == 4 and shape[-1] == shape[-2]


def prefixes(node: str) -> list[str]:
    """'layer1.2.relu_2' -> ['layer1', 'layer1.2', 'layer1.2.relu_2'] (shallow to deep)."""
    parts = node.split(".")
    return [".".join(parts[:depth]) for depth in range(1, len(parts) + 1)]


def stage_taps(shadow: nn.Module, name: str, size: int, channels: int) -> Found:
    """One tap per map size before the head, shallow to deep, named stage1..stageN.

    Candidates are cut nodes (every later node depends on the input only through them) giving (N, C, S, S) maps.
    Each is named by the shallowest module it is the last node of, among modules whose maps all have one size
    (``layer1`` for ResNet's 'layer1.2.relu_2'); per size the candidate with the shallowest such name wins, the
    last one on ties. So a ResNet gives relu, layer1..layer4 (res1..res5), a MobileNet its blocks' outputs
    rather than the next block's expansion conv, a VGG the last ReLU before each max-pool.
    """
    body = []
    for node in graph_nodes(shadow)[1:]:
        if is_head(node, shadow):
            break
        body.append(node)
    shapes, cuts = probe(shadow, body, size, channels)
    last: dict[str, str] = {}
    sizes: dict[str, set[int]] = {}
    for node in body:
        for prefix in prefixes(node):
            last[prefix] = node
            if is_map(shapes[node]):
                sizes.setdefault(prefix, set()).add(shapes[node][-1])
    best: dict[int, tuple[int, int, str, str]] = {}  # map side -> (depth, -position, label, node)
    for position, node in enumerate(body):
        if node in cuts and is_map(shapes[node]):
            label = next(p for p in prefixes(node) if last[p] == node and len(sizes.get(p, ())) <= 1)
            key = (label.count("."), -position, label, node)
            best[shapes[node][-1]] = min(best.get(shapes[node][-1], key), key)
    if not best:
        raise UserError(f"hub: torchvision/{name} has no (N, C, S, S) feature map before its head")
    chosen = [best[side] for side in sorted(best, reverse=True)]
    return [(f"stage{i}", label, shapes[node]) for i, (_, _, label, node) in enumerate(chosen, 1)]


def named_taps(shadow: nn.Module, name: str, wanted: list[str], size: int, channels: int) -> Found:
    """(node, node, shape) of explicitly named nodes (graph node names or module names), shallow to deep."""
    nodes = graph_nodes(shadow)
    modules = {qualname for qualname, _ in shadow.named_modules() if qualname}
    unknown = [tap for tap in wanted if tap not in nodes and tap not in modules]
    if unknown:
        close = difflib.get_close_matches(unknown[0], nodes, n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise UserError(f"hub: taps: torchvision/{name} has no node {unknown[0]!r}{hint} (see get_graph_node_names)")
    shapes, _ = probe(shadow, wanted, size, channels)
    flat = [tap for tap in wanted if not is_map(shapes[tap])]
    if flat:
        raise UserError(f"hub: taps: node {flat[0]!r} of torchvision/{name} is not an (N, C, S, S) feature map")
    order = {node: index for index, node in enumerate(nodes)}

    def position(tap: str) -> int:  # a module name stands for its last node
        return order.get(tap, max((i for n, i in order.items() if n.startswith(tap + ".")), default=-1))

    return [(tap, tap, shapes[tap]) for tap in sorted(dict.fromkeys(wanted), key=position)]


def pruned(graph: fx.Graph, keep: list[str]) -> fx.Graph:
    """A copy of a feature-extractor graph returning only ``keep`` (dead code is removed once it has a module)."""
    new = fx.Graph()
    outputs = new.graph_copy(graph, {})
    new.output({name: outputs[name] for name in keep})
    for node in new.nodes:
        if node.op == "call_function" and node.target is operator.iadd:
            node.target = operator.add  # `out += identity` would overwrite a tap taken before it
    return new


@dataclass
class TorchvisionNet:
    """A torchvision model's feature-extractor graphs (train and eval) and the modules they call."""

    module: nn.Module
    taps: list[Tap]
    input_size: int
    head_prefixes: tuple[str, ...]
    graphs: dict[bool, fx.Graph]
    runners: dict[tuple[tuple[str, ...], bool], fx.GraphModule] = field(default_factory=dict)

    def run(self, owner: nn.Module, x: torch.Tensor, wanted: list[Tap]) -> dict[str, torch.Tensor]:
        names = tuple(tap.name for tap in wanted)
        key = (names, owner.training)
        runner = self.runners.get(key)
        if runner is None:
            runner = fx.GraphModule(owner, pruned(self.graphs[owner.training], list(names)))
            runner.graph.eliminate_dead_code()  # everything after the deepest requested tap
            runner.recompile()
            self.runners[key] = runner
        return runner(x)

    def rebind(self, owner: nn.Module) -> None:
        self.runners.clear()  # rebuilt from the trunk's (moved) tensors on the next forward

    def __getstate__(self) -> dict:
        """Copies and pickles keep the graphs only: the trunk owns the modules, and runners are rebuilt on use."""
        return {**self.__dict__, "runners": {}, "module": None}


def torchvision_net(name: str, taps: list[str] | None, input_size: int | None, in_channels: int) -> TorchvisionNet:
    """Build torchvision model ``name`` (random init), find its taps, and keep only what they need."""
    from torchvision.models.feature_extraction import create_feature_extractor

    try:
        check_arch(name)
    except ValueError as error:
        raise UserError(f"hub: arch: {error}") from None
    if in_channels != 3:
        raise UserError(f"hub: torchvision/{name} takes 3 input channels, not {in_channels}; use a timm/ model")
    size = input_size or default_input_size(name)
    model = build_model(name)
    shadow = meta_copy(model)
    found = named_taps(shadow, name, taps, size, 3) if taps else stage_taps(shadow, name, size, 3)
    extractor = create_feature_extractor(
        model, return_nodes={node: tap for tap, node, _ in found}, suppress_diff_warning=True
    )
    kept = set(extractor.state_dict())
    head = dropped_prefixes(set(model.state_dict()) - kept, kept)
    tapped = [Tap(tap, node, shape[1], max(1, round(size / shape[-1])), shape[-1]) for tap, node, shape in found]
    graphs = {True: extractor.train_graph, False: extractor.eval_graph}
    return TorchvisionNet(extractor, tapped, size, head, graphs)
