"""The public event contract: payload models, CloudEvents envelopes, AsyncAPI and docs agree.

Pure tests, no database: they read the models, the generated AsyncAPI document and the docs, and
parse every example with the CloudEvents SDK, so none of the three can drift from the code.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ValidationError

from services.core.access import Caller
from services.core.admin.departments import DEPARTMENT_CODE
from services.core.domain import OrgKind, Role, SignalKind, SignalSource
from services.core.events.asyncapi import RECEIVERS, asyncapi_document, main, render
from services.core.events.payloads import (
    CARE_TYPE_PATTERN,
    DEPARTMENT_PATTERN,
    PAYLOAD_OF,
    SOURCES,
    Actor,
    Alert,
    AlertOpened,
    DigestCounts,
    DigestLinks,
    Reason,
    Service,
    SignalReceived,
    Silence,
    example_cloudevent,
    example_data,
    new_event,
)
from services.core.events.types import TOPIC_OF, EventType, Topic
from services.core.reference import files as reference_files
from services.ingest import schemas
from services.ingest.directory import DepartmentRef
from services.ingest.recording import _received_event

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHARED_OBJECTS: dict[str, type[BaseModel]] = {
    model.__name__: model for model in (Reason, Alert, Actor, Silence, DigestLinks, DigestCounts)
}
ALL_TYPES = list(EventType)


def _read(document: dict[str, Any]) -> CloudEvent:
    """Parse a structured-mode document the way a consumer would: from the bytes on the wire."""
    event = JSONFormat().read(CloudEvent, json.dumps(document).encode())
    assert isinstance(event, CloudEvent)
    return event


def _wire_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


# --- the registry --------------------------------------------------------------------------------


def test_every_type_has_a_payload_a_topic_and_a_source() -> None:
    assert set(PAYLOAD_OF) == set(EventType)
    assert set(TOPIC_OF) == set(EventType)
    assert set(SOURCES) == set(EventType)
    for event_type, model in PAYLOAD_OF.items():
        assert model.event_type is event_type
        assert SOURCES[event_type], event_type


# --- examples as CloudEvents ---------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ALL_TYPES, ids=str)
def test_example_is_a_valid_cloudevent_that_round_trips(event_type: EventType) -> None:
    document = example_cloudevent(event_type)
    event = _read(document)

    assert event.get_specversion() == "1.0"
    assert event.get_id() == document["id"]
    assert event.get_type() == event_type.value
    assert event.get_source() == f"/vroegsignaal/{SOURCES[event_type][0].value}"
    assert event.get_subject() == document["subject"]
    assert event.get_time() == datetime.fromisoformat(document["time"])
    assert event.get_datacontenttype() == "application/json"
    assert event.get_extension("partitionkey") == document["partitionkey"]
    assert event.get_data() == document["data"]
    assert json.loads(JSONFormat().write(event)) == document


@pytest.mark.parametrize("event_type", ALL_TYPES, ids=str)
def test_example_data_is_its_model_exactly(event_type: EventType) -> None:
    model = PAYLOAD_OF[event_type]
    document = example_cloudevent(event_type)
    payload = model.model_validate(document["data"])

    # The example is written as the model writes it: what the docs show is what is sent.
    assert payload.model_dump(mode="json") == example_data(event_type) == document["data"]
    assert payload.subject() == document["subject"]
    assert payload.partition_key() == document["partitionkey"]


@pytest.mark.parametrize("event_type", ALL_TYPES, ids=str)
def test_events_about_a_department_are_keyed_by_its_id(event_type: EventType) -> None:
    data = example_cloudevent(event_type)["data"]
    department_id = data.get("department_id") or data.get("alert", {}).get("department_id")
    if event_type in (EventType.COVERAGE_CHANGED, EventType.DIGEST_PUBLISHED):
        assert department_id is None
    else:
        assert example_cloudevent(event_type)["partitionkey"] == department_id


def test_a_coverage_alert_is_keyed_by_its_cell() -> None:
    data = example_data(EventType.ALERT_OPENED)
    data["alert"].update(
        kind="coverage",
        department_id=None,
        department=None,
        provider_agb=None,
        region=None,
        care_type="secure.kib",
        cluster="secure",
        scope="supra_regional",
    )
    data["signal_id"] = None
    payload = AlertOpened.model_validate(data)
    assert payload.partition_key() == "national/secure.kib"
    assert payload.subject() == data["alert"]["id"]


def test_the_sdk_refuses_a_broken_envelope() -> None:
    document = example_cloudevent(EventType.SIGNAL_RECEIVED)
    del document["source"]
    with pytest.raises(CloudEventValidationError):
        _read(document)


def test_code_formats_are_those_of_the_registers() -> None:
    assert DEPARTMENT_PATTERN == DEPARTMENT_CODE.pattern == schemas.DEPARTMENT_PATTERN
    assert reference_files._CARE_TYPE_CODE.pattern == CARE_TYPE_PATTERN


def test_models_refuse_unknown_fields_and_bad_codes() -> None:
    data = example_data(EventType.SIGNAL_RECEIVED)
    with pytest.raises(ValidationError, match="extra"):
        SignalReceived.model_validate({**data, "note": "the note stays in the database"})
    with pytest.raises(ValidationError, match="provider_agb"):
        SignalReceived.model_validate({**data, "provider_agb": "7399"})
    with pytest.raises(ValidationError, match="observed_at"):
        SignalReceived.model_validate({**data, "observed_at": "2026-11-02T08:00:00"})


def test_only_the_services_of_the_contract_may_emit_a_type() -> None:
    payload = SignalReceived.model_validate(example_data(EventType.SIGNAL_RECEIVED))
    assert new_event(payload, source=Service.INGEST).source == "ingest"
    with pytest.raises(ValueError, match="does not emit"):
        new_event(payload, source=Service.RULES)


# --- what ingest really emits --------------------------------------------------------------------


def test_ingest_emits_signal_received_exactly_as_modelled() -> None:
    """The event ingest writes to the outbox validates against the model and round-trips."""
    example = example_data(EventType.SIGNAL_RECEIVED)
    department = DepartmentRef(
        id=uuid.UUID(example["department_id"]),
        code=example["department"],
        provider_id=uuid.uuid4(),
        provider_agb=example["provider_agb"],
        region_id=38,
        region_code=example["region"],
        care_type_code=example["care_type"],
    )
    caller = Caller(
        organisation_id=uuid.UUID(example["submitted_by"]),
        organisation_name="Vechtstroom GGZ",
        kind=OrgKind.PROVIDER,
        role=Role.PROVIDER,
        agb_code=example["provider_agb"],
    )
    row: dict[str, object] = {
        "id": uuid.UUID(example["signal_id"]),
        "kind": SignalKind.WAITLIST,
        "observed_at": datetime(2026, 11, 2, 8, tzinfo=timezone(timedelta(hours=1))),
        "data": example["data"],
    }

    event = _received_event(row, department, caller, SignalSource.API)
    payload = SignalReceived.model_validate(event.data)

    assert event.type is EventType.SIGNAL_RECEIVED
    assert event.source in {service.value for service in SOURCES[event.type]}
    assert payload.model_dump(mode="json") == event.data == example
    assert payload.subject() == event.subject
    assert payload.partition_key() == event.partition_key


def test_the_example_signal_data_is_valid_signal_v1_data() -> None:
    example = example_data(EventType.SIGNAL_RECEIVED)
    data = schemas.DATA_MODELS[SignalKind(example["kind"])].model_validate(example["data"])
    assert data.model_dump(mode="json", exclude_none=True) == example["data"]


# --- the AsyncAPI document -----------------------------------------------------------------------


def test_asyncapi_yaml_is_the_generated_document() -> None:
    text = (DOCS / "asyncapi.yaml").read_text(encoding="utf-8")
    assert text == render(), "run: python -m services.core.events.asyncapi"
    assert yaml.safe_load(text) == asyncapi_document()


def test_asyncapi_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "asyncapi.yaml"
    assert main(["--check", "--path", str(path)]) == 1  # missing
    assert main(["--path", str(path)]) == 0
    assert main(["--check", "--path", str(path)]) == 0
    path.write_text(render().replace("vroegsignaal.alerts.v1", "vroegsignaal.alerts.v2"))
    assert main(["--check", "--path", str(path)]) == 1


def test_asyncapi_lists_every_topic_and_every_type() -> None:
    document = asyncapi_document()
    assert document["asyncapi"].startswith("3.")
    channels = document["channels"]
    assert {channel["address"] for channel in channels.values()} == {t.value for t in Topic}
    messages = document["components"]["messages"]
    assert {message["name"] for message in messages.values()} == {t.value for t in EventType}
    for channel in channels.values():
        names = {_resolve(document, ref["$ref"])["name"] for ref in channel["messages"].values()}
        assert names == {t.value for t in EventType if TOPIC_OF[t].value == channel["address"]}


def test_asyncapi_operations_say_who_sends_and_receives_what() -> None:
    document = asyncapi_document()
    sent: set[tuple[str, str, str]] = set()
    received: set[tuple[str, str, str]] = set()
    for operation_id, operation in document["operations"].items():
        service = operation_id.split(".")[0]
        address = _resolve(document, operation["channel"]["$ref"])["address"]
        for ref in operation["messages"]:
            name = _resolve(document, ref["$ref"])["name"]
            (sent if operation["action"] == "send" else received).add((service, address, name))
    assert sent == {
        (service.value, TOPIC_OF[t].value, t.value) for t in EventType for service in SOURCES[t]
    }
    assert received == {
        (service.value, topic.value, t.value)
        for service, topics in RECEIVERS.items()
        for topic in topics
        for t in EventType
        if TOPIC_OF[t] is topic
    }
    assert ("rules", Topic.SIGNALS.value, EventType.SIGNAL_RECEIVED.value) in received


def test_asyncapi_references_all_resolve() -> None:
    document = asyncapi_document()
    refs = list(_refs(document))
    assert len(refs) > 50
    for ref in refs:
        _resolve(document, ref)


@pytest.mark.parametrize("event_type", ALL_TYPES, ids=str)
def test_asyncapi_schema_accepts_the_example_and_refuses_drift(event_type: EventType) -> None:
    document = asyncapi_document()
    message = next(
        m for m in document["components"]["messages"].values() if m["name"] == event_type
    )
    # The refs point into the document's components, so the validator gets them at its root.
    validator = jsonschema_rs.Draft7Validator({**message["payload"], **document})
    example = example_cloudevent(event_type)

    assert message["examples"][0]["payload"] == example
    validator.validate(example)
    assert not validator.is_valid({**example, "type": "nl.vroegsignaal.other.thing"})
    assert not validator.is_valid({**example, "data": {**example["data"], "unknown": 1}})
    first_field = next(iter(example["data"]))
    broken = {key: value for key, value in example["data"].items() if key != first_field}
    assert not validator.is_valid({**example, "data": broken})


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    """The node a local JSON pointer names, following a reference to a reference."""
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if isinstance(node, dict) and set(node) == {"$ref"}:
        return _resolve(document, node["$ref"])
    return node


# --- docs/events.md ------------------------------------------------------------------------------


def _sections() -> dict[str, str]:
    """The `###` sections of events.md whose heading is one name in backticks, by that name."""
    text = (DOCS / "events.md").read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for section in re.split(r"^### ", text, flags=re.MULTILINE)[1:]:
        heading, _, body = section.partition("\n")
        name = re.fullmatch(r"`([^`]+)`", heading.strip())
        if name:
            found[name.group(1)] = body.split("\n## ", 1)[0]
    return found


def _table_fields(body: str) -> list[str]:
    return re.findall(r"^\| `([a-z_]+)` \|", body, flags=re.MULTILINE)


def _json_blocks(body: str) -> list[Any]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", body, re.DOTALL)]


def test_events_md_mentions_every_topic_and_type() -> None:
    text = (DOCS / "events.md").read_text(encoding="utf-8")
    for topic in Topic:
        assert f"`{topic.value}`" in text
    assert "asyncapi.yaml" in text
    assert "python -m services.core.events.asyncapi" in text
    assert set(_sections()) >= {t.value for t in EventType} | set(SHARED_OBJECTS)


@pytest.mark.parametrize("event_type", ALL_TYPES, ids=str)
def test_events_md_documents_each_type_with_its_example(event_type: EventType) -> None:
    body = _sections()[event_type.value]
    assert _table_fields(body) == _wire_names(PAYLOAD_OF[event_type])
    examples = _json_blocks(body)
    assert len(examples) == 1
    expected = json.dumps(example_cloudevent(event_type), indent=2, ensure_ascii=False)
    assert examples[0] == example_cloudevent(event_type), f"expected in events.md:\n{expected}"
    _read(examples[0])
    PAYLOAD_OF[event_type].model_validate(examples[0]["data"])


@pytest.mark.parametrize("name", list(SHARED_OBJECTS))
def test_events_md_documents_each_shared_object(name: str) -> None:
    assert _table_fields(_sections()[name]) == _wire_names(SHARED_OBJECTS[name])
