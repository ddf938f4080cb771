"""The MQTT contract as code: ``asyncapi.yaml`` (package data beside this module) and checks of
payloads against its JSON Schemas.

Who uses it: the test suite validates every event, status, will and reply it produces
(tests/support/contract_check.py), so the document cannot drift from the code; the county
centre's ingest quarantines events that do not match (``event_problems``). The daemon never
imports it (``gated.wire`` does not either): a booth does not pay for jsonschema at start.

Each check takes the decoded JSON object of one message and returns human-readable problems,
empty when it is valid. A problem names the place (``data.ticket_id``) and what is wrong, never
the value found there: a bad event may be bad because it carries something it must not.

The schemas are validated as JSON Schema Draft 2020-12 (they use only what Draft 07, AsyncAPI's
own dialect, means the same way).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT = "asyncapi.yaml"
_URI = "urn:gated:asyncapi"
MAX_PROBLEMS = 20


@functools.cache
def document() -> dict[str, Any]:
    """The AsyncAPI document, parsed (once)."""
    text = resources.files("gated.wire").joinpath(DOCUMENT).read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError(f"{DOCUMENT} is not a mapping")
    return doc


def schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = document()["components"]["schemas"]
    return schemas


def commands() -> dict[str, dict[str, Any]]:
    """Command name -> ``{"signed"?, "local_only"?, "args"?, "reply"}`` (schema names)."""
    return {k: v for k, v in document()["components"]["x-gated-commands"].items()
            if isinstance(v, dict)}


def event_types() -> list[str]:
    types: list[str] = schemas()["Envelope"]["properties"]["type"]["enum"]
    return types


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    if name not in schemas():
        raise KeyError(f"no schema {name!r} in {DOCUMENT}")
    registry: Registry[Any] = Registry().with_resource(
        _URI, Resource.from_contents(document(), default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{name}"},
                                registry=registry)


def problems(schema: str, payload: object, *, at: str = "") -> list[str]:
    """What is wrong with ``payload`` against the component schema named ``schema``."""
    errors = sorted(_validator(schema).iter_errors(payload), key=lambda e: list(e.path))
    return [_describe(e, at) for e in _leaves(errors)][:MAX_PROBLEMS]


def event_problems(payload: object) -> list[str]:
    """Problems of one event (envelope and ``data`` for its ``type``); [] when valid."""
    if not isinstance(payload, dict):
        return [f"an event is a JSON object, not {_json_type(payload)}"]
    etype = payload.get("type")
    if isinstance(etype, str) and etype not in event_types():
        found = problems("Envelope", {**payload, "type": event_types()[0]})
        return [f"type: {etype[:64]!r} is not an event type of this contract", *found]
    found = problems("Envelope", payload)
    if found or not isinstance(etype, str):
        return found
    return problems(f"event.{etype}", payload["data"], at="data")


def status_problems(payload: object) -> list[str]:
    """Problems of one message on ``status``: online (``Status``), a clean stop
    (``Stopped``) or the last will (``Will``), told apart by ``online`` and ``reason``."""
    if not isinstance(payload, dict):
        return [f"a status is a JSON object, not {_json_type(payload)}"]
    if payload.get("online") is True:
        return problems("Status", payload)
    return problems("Stopped" if payload.get("reason") == "stopped" else "Will", payload)


def reply_problems(name: str, payload: object) -> list[str]:
    """Problems of the reply to command ``name``: its own schema when ``ok`` is true, the
    common ``Refusal`` otherwise (a command unknown to the contract can only be refused)."""
    if not isinstance(payload, dict):
        return [f"a reply is a JSON object, not {_json_type(payload)}"]
    out = []
    if "command" in payload and payload["command"] != name:
        out.append(f"command: the reply names another command than {name[:64]!r}")
    if payload.get("ok") is not True:
        return out + problems("Refusal", payload)
    spec = commands().get(name)
    if spec is None:
        return out + [f"command {name[:64]!r} is not in the contract, so it cannot succeed"]
    return out + problems(spec["reply"], payload)


def command_problems(name: str, payload: object) -> list[str]:
    """Problems of a command payload as the centre sends it (``args`` for ``name``, and
    ``ts``/``nonce``/``sig`` on a signed one)."""
    spec = commands().get(name)
    if spec is None:
        return [f"command {name[:64]!r} is not in the contract"]
    out = problems("SignedCommand" if spec.get("signed") else "Command", payload)
    if not out and isinstance(payload, dict) and spec.get("args"):
        out = problems(spec["args"], payload.get("args", {}), at="args")
    return out


def sync_ack_problems(payload: object) -> list[str]:
    return problems("SyncAck", payload)


def sync_request_problems(payload: object) -> list[str]:
    return problems("SyncRequest", payload)


def list_message_problems(payload: object) -> list[str]:
    """A snapshot (or a chunk of one) or a delta, by its ``op``."""
    op = payload.get("op") if isinstance(payload, dict) else None
    return problems("Delta" if op == "delta" else "Snapshot", payload)


# ---------------------------------------------------------------------------- wording


def _leaves(errors: Iterable[ValidationError]) -> list[ValidationError]:
    """The errors that say something: for oneOf/anyOf, the best branch's own errors."""
    out: list[ValidationError] = []
    for e in errors:
        if e.validator in ("oneOf", "anyOf") and e.context:
            best = min(_branches(e.context), key=len)
            out.extend(_leaves(best) if best else [e])
        else:
            out.append(e)
    return out


def _branches(context: list[ValidationError]) -> list[list[ValidationError]]:
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in context:
        by_branch.setdefault(int(sub.schema_path[0]) if sub.schema_path else 0, []).append(sub)
    return list(by_branch.values())


def _describe(e: ValidationError, at: str) -> str:
    """One line, without the offending value (it may be what must not be there)."""
    path = ".".join([at] * bool(at) + [str(p) for p in e.absolute_path]) or "(top)"
    v, value = e.validator, e.validator_value
    if v in ("required", "additionalProperties", "dependentRequired"):
        return f"{path}: {e.message}"
    if v == "type":
        return f"{path}: must be {_or(value)}, not {_json_type(e.instance)}"
    if v == "enum":
        shown = ", ".join(repr(x) for x in list(value)[:12]) + (", ..." if len(value) > 12 else "")
        return f"{path}: must be one of {shown}"
    if v == "const":
        return f"{path}: must be {value!r}"
    if v in ("oneOf", "anyOf"):
        return f"{path}: matches none of the allowed forms"
    return f"{path}: fails {v} {value!r}"[:200]


def _or(value: object) -> str:
    return " or ".join(value) if isinstance(value, list) else str(value)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__
