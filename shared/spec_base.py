"""What every job over a set of images shares: a name and an input reference, validated at the API."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_INPUT = re.compile(
    r"^(upload://[A-Za-z0-9_-]+|s3://[a-z0-9][a-z0-9.-]{1,62}/\S*|builtin:shapes(\?n=\d{1,6}(&seed=\d{1,9})?)?)$"
)


class ArchiveSpec(BaseModel):
    """A job over the images of an input."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200, description="A label shown in listings and the report")
    input: str = Field(
        ...,
        description=(
            "upload://ID (from POST /v1/uploads), s3://bucket/archive.tar|.tar.gz|.zip, s3://bucket/prefix/, or "
            "builtin:shapes[?n=200&seed=12345] (generated shapes with ground-truth boxes: quality figures)"
        ),
        examples=["upload://u_0123456789abcdef"],
    )

    @field_validator("input")
    @classmethod
    def _input_uri(cls, value: str) -> str:
        if not _INPUT.match(value):
            raise ValueError(
                "input must be upload://ID, s3://bucket/key (an archive), s3://bucket/prefix/ or builtin:shapes[?n=N&seed=S]"
            )
        return value
