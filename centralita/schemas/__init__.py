"""The HTTP API's request and response bodies: one pydantic model per shape, one module per area.

Handlers parse bodies with these models and answer with them; the OpenAPI document's
``components.schemas`` is generated from them (``centralita.web.api.openapi``); the CLI prints
the same models where it shows the same thing.  A response model forbids extra fields, so its
JSON Schema has ``additionalProperties: false`` and the e2e suite's response check
(``tests/support/openapi_check.py``) fails when a handler returns a field its model lacks.
"""
