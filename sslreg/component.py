"""The base every registrable component shares: a registry name, a kind and a pydantic options model."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializationInfo, SerializerFunctionWrapHandler, model_serializer


class ComponentConfig(BaseModel):
    """Options of one component. ``name`` picks the component; every other field is its option."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str


class ComponentSpec(BaseModel):
    """A component named in a config, before it is validated against its own Config (extra keys kept).

    Validation replaces a spec by the component's own Config instance (e.g. an evaluator's ``train:`` dataset);
    such a value is dumped with all of its options, not through this class's fields.
    """

    model_config = ConfigDict(extra="allow")

    name: str

    @model_serializer(mode="wrap")
    def _dump_resolved(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        if isinstance(self, ComponentSpec) or not isinstance(self, BaseModel):
            return handler(self)
        return self.model_dump(
            mode=info.mode,
            by_alias=bool(info.by_alias),
            exclude_unset=info.exclude_unset,
            exclude_defaults=info.exclude_defaults,
            exclude_none=info.exclude_none,
            round_trip=info.round_trip,
        )


class Component:
    """Mixin for registrable classes: ``name`` is the registry key, ``Config`` its options model.

    ``consumes``/``produces`` are one-line descriptions shown by ``sslreg info``.
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    Config: ClassVar[type[ComponentConfig]] = ComponentConfig
    consumes: ClassVar[str] = ""
    produces: ClassVar[str] = ""

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else ""

    @classmethod
    def check(cls, config: ComponentConfig) -> list[str]:
        """Problems with what ``config`` needs outside Python, found cheaply before any work starts (missing files,
        data roots, system libraries): one line each, starting with the option it concerns. Default: none."""
        return []

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Extra facts for ``sslreg info`` (layers, parameter counts, ...). Override to add."""
        return {}
