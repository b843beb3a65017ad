"""The ORM models, one module per table; importing this package registers all of them."""

from services.core.db.models.alert import Alert
from services.core.db.models.alert_event import AlertEvent
from services.core.db.models.api_key import ApiKey
from services.core.db.models.assessment import Assessment
from services.core.db.models.audit_entry import AuditEntry
from services.core.db.models.care_type import CareType
from services.core.db.models.consumer_member import ConsumerMember
from services.core.db.models.consumer_offset import ConsumerOffset
from services.core.db.models.dead_letter import DeadLetter
from services.core.db.models.delivery import Delivery
from services.core.db.models.delivery_attempt import DeliveryAttempt
from services.core.db.models.department import Department
from services.core.db.models.digest import Digest
from services.core.db.models.idempotency_key import IdempotencyKey
from services.core.db.models.inbound_source import InboundSource
from services.core.db.models.insurer_region import InsurerRegion
from services.core.db.models.organisation import Organisation
from services.core.db.models.outbox_event import OutboxEvent
from services.core.db.models.processed_event import ProcessedEvent
from services.core.db.models.region import Region
from services.core.db.models.regional_coverage import RegionalCoverage
from services.core.db.models.ruleset_version import RulesetVersion
from services.core.db.models.scheduled_run import ScheduledRun
from services.core.db.models.signal import Signal
from services.core.db.models.silence import Silence
from services.core.db.models.user import User
from services.core.db.models.waiting_time_norm import WaitingTimeNorm
from services.core.db.models.webhook_subscription import WebhookSubscription

__all__ = [
    "Alert",
    "AlertEvent",
    "ApiKey",
    "Assessment",
    "AuditEntry",
    "CareType",
    "ConsumerMember",
    "ConsumerOffset",
    "DeadLetter",
    "Delivery",
    "DeliveryAttempt",
    "Department",
    "Digest",
    "IdempotencyKey",
    "InboundSource",
    "InsurerRegion",
    "Organisation",
    "OutboxEvent",
    "ProcessedEvent",
    "Region",
    "RegionalCoverage",
    "RulesetVersion",
    "ScheduledRun",
    "Signal",
    "Silence",
    "User",
    "WaitingTimeNorm",
    "WebhookSubscription",
]
