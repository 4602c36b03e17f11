"""The API keeps its own OpenAPI document: schemathesis generates requests from ``/openapi.json`` (valid and
invalid ones) and checks every response against it: no server error, documented status codes, content
types, headers (``Allow`` on a 405) and bodies, and that schema-violating requests are refused. Bounded in
examples so that the suite stays quick.

Left out: ``positive_data_acceptance`` (a schema-valid spec may still be refused: the spec's cross-field
rules, such as distinct methods or a model for every model-based method, are not expressible in JSON
Schema and answer 422 naming the field)."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from api.app import create_app
from shared.settings import Settings


def _app():  # type: ignore[no-untyped-def]
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="fovea-schema-"))
    return create_app(Settings(data_dir=folder, api_keys="key-a=alice", signing_secret="s", max_json_body_bytes=65536))


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_response_conforms_to_the_openapi_document(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": "Bearer key-a"}, excluded_checks=[positive_data_acceptance])
