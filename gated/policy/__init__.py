"""The pure decision: who a credential is (``identity``, ``credentials``), when the hall is open
(``schedule``) and what to do for one presentation (``decide``). Nothing here does I/O."""

from gated.policy.codes import (
    AppointmentCode,
    CodeKeyError,
    CodeKeys,
    CodeProblem,
    load_code_keys,
    read_code,
    sign_code,
)
from gated.policy.credentials import (
    CardType,
    CardValidity,
    Credential,
    CredentialKind,
    Gender,
    appointment_ref_from_qr,
    qr_text,
)
from gated.policy.decide import (
    AlertKind,
    AssistKind,
    BoothFlags,
    Decision,
    Outcome,
    PriorityReason,
    VisitorClass,
    decide,
)
from gated.policy.identity import (
    SiteKeyError,
    Unreadable,
    credential_from_badge,
    credential_from_card,
    generate_site_key,
    load_site_key,
    unreadable_action,
)
from gated.policy.schedule import Schedule, local_now

__all__ = [
    "AlertKind", "AppointmentCode", "AssistKind", "BoothFlags", "CardType", "CardValidity",
    "CodeKeyError", "CodeKeys", "CodeProblem", "Credential", "CredentialKind", "Decision",
    "Gender", "Outcome", "PriorityReason", "Schedule", "SiteKeyError", "Unreadable",
    "VisitorClass", "appointment_ref_from_qr", "credential_from_badge", "credential_from_card",
    "decide", "generate_site_key", "load_code_keys", "load_site_key", "local_now", "qr_text",
    "read_code", "sign_code", "unreadable_action",
]
