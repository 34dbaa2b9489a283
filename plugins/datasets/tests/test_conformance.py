"""sslreg's conformance kit on this plugin, and the one-line error for a missing required option."""

from __future__ import annotations

import pytest
import sslreg_datasets
from sslreg_datasets.embedded_photos import EmbeddedPhotos, EmbeddedPhotosConfig
from sslreg_datasets.embedded_shapes import EmbeddedShapes, EmbeddedShapesConfig
from sslreg_datasets.image_folder import ImageFolder, ImageFolderConfig
from sslreg_datasets.shards import Shards, ShardsConfig

from sslreg.testing import check_dataset, check_plugin


def test_plugin_conforms() -> None:
    names = {entry.name for entry in check_plugin(sslreg_datasets)}
    assert names == {source.name for source in sslreg_datasets.SOURCES}
    check_dataset(EmbeddedPhotos(EmbeddedPhotosConfig(num_crops=3, photos=["flower"])))
    check_dataset(EmbeddedShapes(EmbeddedShapesConfig(num_images=3)))


def test_required_options_name_the_source() -> None:
    with pytest.raises(ValueError, match="dataset 'image_folder': option 'root' is required"):
        ImageFolder(ImageFolderConfig())
    with pytest.raises(ValueError, match="dataset 'shards': option 'urls' is required"):
        Shards(ShardsConfig())
