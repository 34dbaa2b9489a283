"""registry.yaml: the catalogue of known plugins (first- and third-party), with its schema."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sslreg.errors import UserError

CATALOGUE_ENV = "SSLREG_CATALOGUE"


class CatalogueEntry(BaseModel):
    """One known plugin: how to install it and what it provides."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Entry-point name the plugin registers under (group 'sslreg').")
    requirement: str = Field(description="pip requirement that installs it.")
    summary: str = ""
    kinds: list[str]
    components: dict[str, list[str]] = Field(description="kind -> component names it registers.")
    api_version: int = 1
    homepage: str = ""
    first_party: bool = False
    path: str | None = Field(None, description="Folder of a first-party plugin in this repository.")


class Catalogue(BaseModel):
    """The whole registry.yaml."""

    model_config = ConfigDict(extra="forbid")

    plugins: list[CatalogueEntry]


def catalogue_path() -> Path:
    """$SSLREG_CATALOGUE, else the registry.yaml shipped inside the sslreg package.

    The canonical file is registry.yaml at the repository root; ``sslreg/registry.yaml`` is a symbolic link to it,
    which setuptools copies as package data, so an installed wheel holds the file itself and an editable install
    reads the root file through the link.
    """
    if os.environ.get(CATALOGUE_ENV):
        return Path(os.environ[CATALOGUE_ENV])
    return Path(__file__).resolve().parent / "registry.yaml"


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Parse and validate the catalogue; a missing file is an empty catalogue, a broken one a ValueError."""
    path = path or catalogue_path()
    if not path.is_file():
        return Catalogue(plugins=[])
    try:
        return Catalogue.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as error:
        first = str(error).splitlines()
        raise UserError(f"{path}: invalid catalogue: {' '.join(first[:3])}") from None
