from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class GatewayModel(BaseModel):
    """Base of every wire model. Its validator and serializer are built at first use, not at
    import: a function's cold start builds only the few models its one route uses."""

    model_config = ConfigDict(defer_build=True)


class WireModel(GatewayModel):
    """Base for provider-shaped objects: unknown provider fields pass through untouched."""

    model_config = ConfigDict(extra="allow")


class ListPage(GatewayModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False

    @classmethod
    def of(cls, items: list[T], has_more: bool) -> ListPage[T]:
        ids = [getattr(item, "id", None) for item in items]
        return cls(
            data=items,
            first_id=ids[0] if ids else None,
            last_id=ids[-1] if ids else None,
            has_more=has_more,
        )
