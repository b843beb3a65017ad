"""The AsyncAPI 3.0 document of the bus, generated from the contract in code.

The topics and types come from `types.py`, the payloads, their examples and who emits what from
`payloads.py`; so docs/asyncapi.yaml cannot say something the code does not do. Run
`python -m services.core.events.asyncapi` from the repository root to write it, and with
`--check` to fail (exit 1) when the file is out of date; a test does the same.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from services.core.events.payloads import (
    DIGEST_KEY,
    PAYLOAD_OF,
    SOURCES,
    Service,
    coverage_key,
    example_cloudevent,
)
from services.core.events.types import TOPIC_OF, EventType, Topic

ASYNCAPI_VERSION = "3.0.0"
CONTRACT_VERSION = "1.0.0"
DEFAULT_PATH = Path("docs/asyncapi.yaml")
SCHEMA_REF = "#/components/schemas/{model}"
KAFKA_BINDING_VERSION = "0.5.0"
STRUCTURED_MODE = "application/cloudevents+json"

# Who reads which topic (the notifier tells people; the engine judges signals).
RECEIVERS: dict[Service, tuple[Topic, ...]] = {
    Service.RULES: (Topic.SIGNALS,),
    Service.NOTIFY: (Topic.ASSESSMENTS, Topic.ALERTS),
}

_TOPIC_TEXT: dict[Topic, str] = {
    Topic.SIGNALS: "Every stored signal, in the order its department's signals were committed.",
    Topic.ASSESSMENTS: "Changes of a department's judgement by the rules engine.",
    Topic.ALERTS: "The life of alerts, regional coverage and the monthly digest.",
}

_DEPARTMENT_KEY = "The department's id (a UUID): one department's events stay in order."
_ALERT_KEY = "The department's id (a UUID); for a coverage alert its cell, `<region>/<care type>`."
_CELL_KEY = (
    f"The coverage cell, `<region>/<care type>` (e.g."
    f" `{coverage_key('ijssel-vecht', 'outreach.fact')}`; `{coverage_key(None, 'secure.kib')}`"
    " for supra-regional care)."
)
# What the Kafka key (the `partitionkey` attribute) of each type is; a new type needs a line here.
_KEY_TEXT: dict[EventType, str] = {
    EventType.SIGNAL_RECEIVED: _DEPARTMENT_KEY,
    EventType.ASSESSMENT_CHANGED: _DEPARTMENT_KEY,
    EventType.ALERT_OPENED: _ALERT_KEY,
    EventType.ALERT_UPDATED: _ALERT_KEY,
    EventType.ALERT_ESCALATED: _ALERT_KEY,
    EventType.ALERT_ACKNOWLEDGED: _ALERT_KEY,
    EventType.ALERT_RESOLVED: _ALERT_KEY,
    EventType.ALERT_COMMENTED: _ALERT_KEY,
    EventType.ALERT_REMINDED: _ALERT_KEY,
    EventType.ALERT_SILENCED: "The department's id: in order with its alert's events.",
    EventType.COVERAGE_CHANGED: _CELL_KEY,
    EventType.DIGEST_PUBLISHED: f"Always `{DIGEST_KEY}`: the digests stay in order.",
}

_DESCRIPTION = """\
Events between the services of Vroegsignaal, an early-warning service for continuity risks in
Dutch crucial mental health care (cruciale ggz).

Every message is a CloudEvents 1.0 event in structured JSON mode: the whole event, attributes
and `data`, is the message value. The extension attribute `partitionkey` is the message key: the
department's id for events about a department, so all events of one department are handled in
order. Delivery is at least once: a consumer must deduplicate on the event `id`.

Two bus backends carry the same events. With `VROEGSIGNAAL_BUS=kafka` (production) a relay
publishes the transactional outbox to the Kafka topics below. With the default
`VROEGSIGNAAL_BUS=postgres` there is no broker: the outbox table in PostgreSQL is itself the log,
partitioned the same way, and consumer groups read it by offset.

Generated from the code (`python -m services.core.events.asyncapi`); see docs/events.md."""


def _unwrap(text: str) -> str:
    """One line per paragraph: YAML folds long lines itself, and keeps blank lines as breaks."""
    return "\n\n".join(" ".join(part.split()) for part in text.split("\n\n"))


def _channel_id(topic: Topic) -> str:
    return topic.name.lower()


def _message_id(event_type: EventType) -> str:
    """`nl.vroegsignaal.alert.opened` → `alertOpened`."""
    noun, verb = event_type.value.split(".")[-2:]
    return noun + verb.capitalize()


def _title(event_type: EventType) -> str:
    noun, verb = event_type.value.split(".")[-2:]
    return f"{noun.capitalize()} {verb}"


def _envelope_name(event_type: EventType) -> str:
    """The envelope schema's name, e.g. `AlertOpenedEvent`."""
    return PAYLOAD_OF[event_type].__name__ + "Event"


def _schemas() -> dict[str, Any]:
    """The payload schemas and everything they refer to, by name, plus one envelope per type."""
    schemas: dict[str, Any] = {}
    for event_type, model in PAYLOAD_OF.items():
        schema = model.model_json_schema(ref_template=SCHEMA_REF)
        for name, nested in schema.pop("$defs", {}).items():
            if schemas.setdefault(name, nested) != nested:
                raise ValueError(f"two different schemas are called {name}")
        schemas[model.__name__] = schema
        schemas[_envelope_name(event_type)] = _envelope(event_type, model.__name__)
    return dict(sorted(schemas.items()))


def _envelope(event_type: EventType, data_schema: str) -> dict[str, Any]:
    """The CloudEvents structured-mode document of one type, `data` being its payload."""
    return {
        "title": _envelope_name(event_type),
        "description": f"A `{event_type.value}` CloudEvent in structured JSON mode.",
        "type": "object",
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "partitionkey",
            "data",
        ],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {
                "type": "string",
                "format": "uuid",
                "description": "Unique per event: consumers deduplicate on it.",
            },
            "source": {
                "type": "string",
                "enum": [f"/vroegsignaal/{service.value}" for service in SOURCES[event_type]],
                "description": "The service that emitted the event.",
            },
            "type": {"const": event_type.value},
            "subject": {"type": "string", "minLength": 1, "description": "What it is about."},
            "time": {
                "type": "string",
                "format": "date-time",
                "description": "When it was recorded (UTC).",
            },
            "datacontenttype": {"const": "application/json"},
            "partitionkey": {
                "type": "string",
                "minLength": 1,
                "description": _KEY_TEXT[event_type],
            },
            "data": {"$ref": SCHEMA_REF.format(model=data_schema)},
        },
    }


def _message(event_type: EventType) -> dict[str, Any]:
    model = PAYLOAD_OF[event_type]
    return {
        "name": event_type.value,
        "title": _title(event_type),
        "summary": (model.__doc__ or "").strip(),
        "contentType": STRUCTURED_MODE,
        "payload": {"$ref": SCHEMA_REF.format(model=_envelope_name(event_type))},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": _KEY_TEXT[event_type],
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [{"name": _message_id(event_type), "payload": example_cloudevent(event_type)}],
    }


def _channels() -> dict[str, Any]:
    return {
        _channel_id(topic): {
            "address": topic.value,
            "title": topic.value,
            "description": _TOPIC_TEXT[topic],
            "messages": {
                _message_id(t): {"$ref": f"#/components/messages/{_message_id(t)}"}
                for t in EventType
                if TOPIC_OF[t] is topic
            },
        }
        for topic in Topic
    }


def _operation(
    action: str, service: Service, topic: Topic, types: list[EventType]
) -> dict[str, Any]:
    channel = _channel_id(topic)
    verb = "emits" if action == "send" else "consumes"
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "title": f"{service.value} {verb} {topic.value}",
        "summary": f"The {service.value} service {verb} "
        + ", ".join(f"`{t.value}`" for t in types)
        + ".",
        "messages": [{"$ref": f"#/channels/{channel}/messages/{_message_id(t)}"} for t in types],
    }


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for service in Service:
        for topic in Topic:
            sent = [t for t in EventType if TOPIC_OF[t] is topic and service in SOURCES[t]]
            if sent:
                operations[f"{service.value}.send.{_channel_id(topic)}"] = _operation(
                    "send", service, topic, sent
                )
        for topic in RECEIVERS.get(service, ()):
            received = [t for t in EventType if TOPIC_OF[t] is topic]
            operations[f"{service.value}.receive.{_channel_id(topic)}"] = _operation(
                "receive", service, topic, received
            )
    return operations


def asyncapi_document() -> dict[str, Any]:
    """The whole AsyncAPI 3.0 document, as plain JSON-compatible data."""
    document = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Vroegsignaal events",
            "version": CONTRACT_VERSION,
            "description": _unwrap(_DESCRIPTION),
            "license": {"name": "EUPL-1.2", "url": "https://eupl.eu/1.2/en/"},
        },
        "defaultContentType": STRUCTURED_MODE,
        "servers": {
            "kafka": {
                "host": "{bootstrapServers}",
                "protocol": "kafka",
                "title": "Apache Kafka (production)",
                "description": (
                    "The Kafka cluster of `VROEGSIGNAAL_KAFKA_BOOTSTRAP_SERVERS`. The default"
                    " PostgreSQL bus has no broker: its outbox table is the log (see above)."
                ),
                "variables": {
                    "bootstrapServers": {
                        "default": "localhost:9092",
                        "description": "VROEGSIGNAAL_KAFKA_BOOTSTRAP_SERVERS",
                    }
                },
            }
        },
        "channels": _channels(),
        "operations": _operations(),
        "components": {
            "schemas": _schemas(),
            "messages": {_message_id(t): _message(t) for t in EventType},
        },
    }
    # A JSON round trip leaves no shared objects, so the YAML has no anchors.
    result: dict[str, Any] = json.loads(json.dumps(document))
    return result


def render() -> str:
    """The document as the YAML text of docs/asyncapi.yaml."""
    header = (
        "# Generated by `python -m services.core.events.asyncapi` from services/core/events/.\n"
        "# Do not edit: change the code and run it again (a test compares the two).\n"
    )
    body = yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=100)
    return header + body


def main(argv: Sequence[str] | None = None) -> int:
    """Write docs/asyncapi.yaml, or with `--check` report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help="the file to write")
    args = parser.parse_args(argv)
    text = render()
    path: Path = args.path
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            print(f"{path} is out of date: run python -m services.core.events.asyncapi")
            return 1
        print(f"{path} is up to date")
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
