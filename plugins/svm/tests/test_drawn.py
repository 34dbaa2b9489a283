"""Class-label low-shot extracts only the images its draws use, redrawing around unreadable ones."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sslreg_svm import low_shot
from sslreg_svm.drawn import DrawnImages, RowLookup, extract_drawn
from sslreg_svm.low_shot import LowShot, class_draws

from sslreg import DatasetConfig, DatasetSource, FeatureSet, NoReadableImages, Sample


class Listed(DatasetSource):
    """Images whose labels are known up front; image i is filled with the value i; ``broken`` ones are unreadable."""

    name = "listed"
    target_kind = "class"

    def __init__(self, labels: np.ndarray, broken: set[int]) -> None:
        super().__init__(DatasetConfig(name="listed"))
        self.labels, self.broken, self.reads = labels, broken, []

    def __len__(self) -> int:
        return len(self.labels)

    def key(self, index: int) -> str:
        return f"image{index}"

    def load(self, index: int) -> Sample | None:
        self.reads.append(index)
        if index in self.broken:
            return None
        return Sample(np.full((2, 2, 3), index, np.uint8), int(self.labels[index]), str(index))


def extract(source: DatasetSource) -> FeatureSet:
    """A stand-in for the trunk: each readable image's feature is its value; targets as the source gives them."""
    kept = [sample for sample in map(source.load, range(len(source))) if sample is not None]
    if not kept:
        raise NoReadableImages("none readable")
    features = np.array([[sample.image[0, 0, 0]] for sample in kept], np.float32)
    return FeatureSet({"l1": features}, np.array([sample.target for sample in kept]))


def union(labels: np.ndarray, shots: list[int], samples: int) -> np.ndarray:
    return np.concatenate([rows for _, _, rows in class_draws(labels, 3, shots, samples, seed=7)])


def test_only_drawn_images_are_read_and_unreadable_ones_are_redrawn():
    labels = np.repeat(np.arange(3), 6)  # 3 classes x 6 images
    first = np.unique(union(labels, [2], 2))
    keep = int(first[labels[first] == 0][0])
    # class 0 keeps one readable image: its redraws go on until only that one is left; class 1 loses one drawn
    # image, replaced in the next round
    broken = {row for row in range(6) if row != keep} | {int(first[labels[first] == 1][0])}
    source, rounds = Listed(labels, broken), []

    def counted(drawn: DatasetSource) -> FeatureSet:
        rounds.append(len(drawn))
        return extract(drawn)

    drawn = extract_drawn(source, labels, lambda lab: union(lab, [2], 2), counted)
    assert len(rounds) >= 3 and sum(rounds) == len(source.reads)
    assert sorted(source.reads) == sorted(set(source.reads))  # no image is read twice
    assert set(source.reads) < set(range(18))  # not every image
    assert drawn.extracted == len(source.reads) and drawn.skipped == len(broken & set(source.reads))
    assert (drawn.labels[sorted(broken & set(source.reads))] == -1).all()
    for _, _, rows in class_draws(drawn.labels, 3, [2], 2, seed=7):  # the final draws: readable images only
        assert not broken & set(rows.tolist())
        assert np.bincount(labels[rows], minlength=3).tolist() == [1, 2, 2]  # class 0 has one readable image
        np.testing.assert_array_equal(drawn.layers["l1"][rows][:, 0], rows)  # each row's own features


def test_a_redraw_round_with_no_readable_image_is_left_out_and_drawn_again():
    labels = np.repeat(np.arange(3), 6)
    first = np.unique(union(labels, [2], 2))
    keep = int(first[labels[first] == 0][0])
    source, outcomes = Listed(labels, {row for row in range(6) if row != keep}), []

    def counted(drawn: DatasetSource) -> FeatureSet:
        try:
            features = extract(drawn)
        except NoReadableImages:
            outcomes.append("none readable")
            raise
        outcomes.append("read")
        return features

    drawn = extract_drawn(source, labels, lambda lab: union(lab, [2], 2), counted)
    assert outcomes[:2] == ["read", "none readable"]  # the second round drew only broken images of class 0
    for _, _, rows in class_draws(drawn.labels, 3, [2], 2, seed=7):
        assert rows[labels[rows] == 0].tolist() == [keep]


def test_a_row_lookup_gathers_rows_across_extractions_in_any_order():
    lookup = RowLookup([(np.array([7, 2, 5]), np.array([[7.0], [2.0], [5.0]])), (np.array([3]), np.array([[3.0]]))])
    np.testing.assert_array_equal(lookup[np.array([3, 2, 7, 5])][:, 0], [3, 2, 7, 5])
    with pytest.raises(KeyError, match=r"rows \[4\] were not extracted"):
        lookup[np.array([2, 4])]


def test_nothing_readable_is_one_clear_error():
    labels = np.repeat(np.arange(3), 2)
    with pytest.raises(NoReadableImages, match="'listed': not one drawn image could be read"):
        extract_drawn(Listed(labels, set(range(6))), labels, lambda lab: union(lab, [1], 1), extract)


def test_drawn_images_are_named_by_their_source_and_rows():
    labels = np.repeat(np.arange(3), 2)
    a, b = DrawnImages(Listed(labels, set()), np.array([0, 3])), DrawnImages(Listed(labels, set()), np.array([0, 4]))
    assert a.config.source == f"{__name__}.Listed" and a.config.source_config == a.source.config.model_dump()
    assert a.config.rows == 2 and a.config.rows_sha256 != b.config.rows_sha256  # the feature cache tells them apart
    renamed = Listed(labels, set())
    renamed.key = lambda index: f"other{index}"  # the same rows of an edited list name other images
    assert DrawnImages(renamed, np.array([0, 3])).config.rows_sha256 != a.config.rows_sha256
    assert [a.load(i).target for i in range(2)] == [0, 1]  # positions, not classes


@pytest.fixture
def places_config(tmp_path: Path, make_places):
    pytest.importorskip("sslreg_datasets")
    root = str(make_places(tmp_path / "places205", train_per_class=20, val_per_class=2))
    data = {split: {"name": "places205", "root": root, "split": name, "num_classes": 4} for split, name in
            (("train", "train"), ("test", "val"))}  # fmt: skip
    return LowShot.Config(
        name="low_shot", **data, image_size=32, shots=[1, 2], samples=2, costs=[0.1, 1.0], batch_size=8
    )


def test_places_low_shot_reads_the_drawn_images_only_with_the_same_svm_inputs(
    places_config, make_trunk, context, monkeypatch
):
    from sslreg_datasets.places205 import Places205

    reads: list[tuple[str, int]] = []
    read = Places205._read
    monkeypatch.setattr(
        Places205, "_read", lambda self, item: reads.append((self.config.split, item)) or read(self, item)
    )
    inputs: list[np.ndarray] = []
    train = low_shot.train
    monkeypatch.setattr(
        low_shot, "train", lambda X, *rest: inputs.append(torch.as_tensor(X).numpy().copy()) or train(X, *rest)
    )
    drawn = LowShot(places_config).evaluate(make_trunk(), context)
    labels = np.repeat(np.arange(4), 20)  # make_places lists each class's 20 images in turn
    rows = set(np.concatenate([r for _, _, r in class_draws(labels, 4, [1, 2], 2, seed=0)]).tolist())
    assert {item for split, item in reads if split == "train"} == rows and len(rows) < 80
    assert drawn[0].details["train_images_read"] == len(rows) and drawn[0].details["train_images"] == 80

    monkeypatch.setattr(Places205, "targets", lambda self: None)  # a source that cannot tell: extract everything
    reads.clear()
    drawn_inputs, inputs[:] = list(inputs), []
    every = LowShot(places_config).evaluate(make_trunk(), context)
    assert len({item for split, item in reads if split == "train"}) == 80
    assert every[0].details["train_images_read"] == 80
    assert len(inputs) == len(drawn_inputs)  # per layer, draw and k: the same normalised features
    for ours, reference in zip(drawn_inputs, inputs):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)
    assert [r.details["per_draw"] for r in every] == [r.details["per_draw"] for r in drawn]


def test_places_low_shot_redraws_around_an_unreadable_image_and_reruns_from_the_cache(
    places_config, make_trunk, context
):
    labels = np.repeat(np.arange(4), 20)
    first = int(np.concatenate([r for _, _, r in class_draws(labels, 4, [1, 2], 2, seed=0)])[0])
    root = Path(places_config.train.root)
    listed = (root / "trainvalsplit_places205" / "train_places205.csv").read_text().splitlines()
    (root / "images256" / listed[first].split()[0]).write_bytes(b"not a jpeg")
    trunk = make_trunk()
    results = LowShot(places_config).evaluate(trunk, context)
    for result in results:
        assert result.details["skipped_images"] == 1 and result.details["train_images"] == 79
        assert result.details["shortfalls"] == {}  # every draw still has k readable images of every class
        assert all(score.n == 2 for score in result.layers.values())
    calls = trunk.calls
    again = LowShot(places_config).evaluate(trunk, context)
    assert trunk.calls == calls  # every extraction, the redraw's too, came from the cache
    assert [r.details for r in again] == [r.details for r in results]


def test_a_reordered_list_is_extracted_again_not_read_back_for_other_images(
    places_config, make_trunk, context, tmp_path
):
    trunk = make_trunk()
    LowShot(places_config).evaluate(trunk, context)
    listing = Path(places_config.train.root) / "trainvalsplit_places205" / "train_places205.csv"
    lines = listing.read_text().splitlines()  # each class's 20 images in turn: reverse each class's block
    listing.write_text("".join(line + "\n" for c in range(4) for line in lines[20 * c : 20 * (c + 1)][::-1]))
    calls = trunk.calls
    reordered = LowShot(places_config).evaluate(trunk, context)  # same config, same labels per row, same draws
    assert trunk.calls > calls  # but the drawn rows name other images now: not read back from the cache
    fresh = LowShot(places_config).evaluate(make_trunk(), replace(context, cache_dir=tmp_path / "fresh"))
    assert [r.details for r in reordered] == [r.details for r in fresh]
