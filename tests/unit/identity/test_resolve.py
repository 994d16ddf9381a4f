"""Resolving inbound events: which customer, what evidence, which suggestions — and the patient's story."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import datetime

import pytest

from core.errors import Conflict
from core.events import Address, AddressKind, InboundMessage, SystemNotice
from core.ids import WorkspaceId
from identity import (
    AuditAction,
    ChangeSet,
    EvidenceSource,
    IdentityGraph,
    IdentityPolicy,
    IdentityRows,
    MatchKind,
    carries_new_evidence,
    observe_event,
    resolve,
    select_rows,
)
from tests.unit.identity.conftest import AGENT, BSUID, EMAIL, IG, PHONE, RECEPTION, Clock

MAILBOX = "citas@clinicasur.mx"


def whatsapp(
    now: datetime, text: str, *, phone: str = "5215512345678", name: str = "Ana Pérez"
) -> InboundMessage:
    return InboundMessage(
        channel="whatsapp",
        business_address="1055",
        external_id=f"wamid.{uuid.uuid4().hex}",
        timestamp=now,
        sender=Address(kind=AddressKind.PHONE, value=phone, display_name=name),
        sender_identities=(Address(kind=AddressKind.WHATSAPP_BSUID, value="MX.ana", scope="waba_1"),)
        if phone == "5215512345678"
        else (),
        text=text,
    )


def email(
    now: datetime, sender: str, text: str, signature: str | None, name: str | None = None
) -> InboundMessage:
    return InboundMessage(
        channel="email",
        business_address=MAILBOX,
        external_id=f"<{uuid.uuid4().hex}@mail.example>",
        timestamp=now,
        sender=Address(kind=AddressKind.EMAIL, value=sender, display_name=name),
        text=text,
        signature=signature,
    )


def instagram(now: datetime, text: str) -> InboundMessage:
    return InboundMessage(
        channel="instagram",
        business_address="ig_clinica",
        external_id=f"mid.{uuid.uuid4().hex}",
        timestamp=now,
        sender=Address(
            kind=AddressKind.INSTAGRAM_ID, value="17841", scope="ig_clinica", display_name="anap92"
        ),
        text=text,
    )


def counter_ids() -> Callable[[], uuid.UUID]:
    counter = itertools.count(1)
    return lambda: uuid.UUID(int=next(counter))


def test_a_first_message_creates_a_customer(graph: IdentityGraph, clock: Clock) -> None:
    result = resolve(graph, observe_event(whatsapp(clock.now, "Hola"), default_region="MX"), clock.now)
    assert result.matched_by is MatchKind.NEW and result.created_customer
    assert {r.key for r in result.changes.identifiers_inserted} == {PHONE.key, BSUID.key}
    assert graph.customer_of(BSUID.key) == result.customer_id  # the channel paired them


def test_resolving_the_same_event_again_changes_nothing(graph: IdentityGraph, clock: Clock) -> None:
    observation = observe_event(whatsapp(clock.now, "mi correo es ana.perez@gmail.com"), default_region="MX")
    first = resolve(graph, observation, clock.now)
    again = resolve(graph, observation, clock.tick())
    assert again.customer_id == first.customer_id
    assert again.matched_by is MatchKind.SAME_IDENTIFIER
    assert again.changes.empty


def test_a_new_id_paired_by_the_channel_joins_the_known_customer(graph: IdentityGraph, clock: Clock) -> None:
    known = graph.observe(BSUID, clock.now).customer_id
    graph.take_changes()
    result = resolve(graph, observe_event(whatsapp(clock.tick(), "Hola"), default_region="MX"), clock.now)
    assert result.matched_by is MatchKind.CHANNEL_VERIFIED
    assert result.customer_id == known and not result.created_customer


def test_a_stated_email_only_suggests(graph: IdentityGraph, clock: Clock) -> None:
    by_mail = graph.observe(EMAIL, clock.now).customer_id
    result = resolve(
        graph,
        observe_event(whatsapp(clock.tick(), "mi correo es ana.perez@gmail.com"), default_region="MX"),
        clock.now,
    )
    assert result.customer_id != by_mail and result.merges == ()
    assert [(s.a.key, s.b.key, s.source) for s in result.suggestions] == [
        (PHONE.key, EMAIL.key, EvidenceSource.CUSTOMER_STATED)
    ]


def test_our_own_addresses_are_never_suggested(graph: IdentityGraph, clock: Clock) -> None:
    text = f"les escribí a {MAILBOX} y a ventas@otra.mx"
    observation = observe_event(
        email(clock.now, "ana.perez@gmail.com", text, None),
        default_region="MX",
        business_keys=frozenset({"email:ventas@otra.mx"}),
    )
    assert observation.stated == ()


def test_auto_replies_state_nothing(clock: Clock) -> None:
    message = email(
        clock.now, "ana.perez@gmail.com", "Estoy fuera. Urgencias: 55 1234 5678", "Tel 55 1234 5678"
    )
    observation = observe_event(message.model_copy(update={"automated": "auto_reply"}), default_region="MX")
    assert observation.stated == ()


def test_a_matching_display_name_is_only_a_suggestion(graph: IdentityGraph, clock: Clock) -> None:
    resolve(
        graph, observe_event(whatsapp(clock.now, "Hola", name="Ána  PÉREZ"), default_region="MX"), clock.now
    )
    result = resolve(
        graph,
        observe_event(
            email(clock.tick(), "ana.perez@gmail.com", "Hola", None, "Ana Perez"), default_region="MX"
        ),
        clock.now,
    )
    assert result.merges == ()
    assert [s.source for s in result.suggestions] == [EvidenceSource.NAME_MATCH]


def test_a_common_name_suggests_nothing(clock: Clock) -> None:
    graph = IdentityGraph(WorkspaceId(uuid.uuid4()), IdentityPolicy(name_match_max_customers=1))
    for n in range(2):
        sender = f"+52551234000{n}"
        resolve(
            graph,
            observe_event(
                whatsapp(clock.tick(), "Hola", phone=sender, name="Ana Pérez"), default_region="MX"
            ),
            clock.now,
        )
    result = resolve(
        graph,
        observe_event(
            email(clock.tick(), "ana.perez@gmail.com", "Hola", None, "Ana Perez"), default_region="MX"
        ),
        clock.now,
    )
    assert result.suggestions == ()


class RowStore:
    """The storage layer's contract in miniature: rows by primary key, a unique index on identifier keys."""

    def __init__(self, workspace: WorkspaceId) -> None:
        self.workspace = workspace
        self.identifiers: dict[str, object] = {}
        self.rows = IdentityRows()

    def load(self, keys: frozenset[str]) -> IdentityGraph:
        return IdentityGraph.from_rows(self.workspace, select_rows(self.rows, keys))

    def apply(self, changes: ChangeSet) -> None:
        for row in changes.identifiers_inserted:
            if row.key in {r.key for r in self.rows.identifiers}:
                raise Conflict("duplicate identifier")  # the unique index refuses the second worker
        by_key = {r.key: r for r in self.rows.identifiers}
        by_key.update({r.key: r for r in (*changes.identifiers_inserted, *changes.identifiers_updated)})
        customers = {c.id: c for c in self.rows.customers}
        customers.update({c.id: c for c in (*changes.customers_inserted, *changes.customers_updated)})
        edges = {e.id: e for e in self.rows.edges}
        edges.update({e.id: e for e in (*changes.edges_inserted, *changes.edges_updated)})
        suggestions = {s.id: s for s in self.rows.suggestions}
        suggestions.update({s.id: s for s in (*changes.suggestions_inserted, *changes.suggestions_updated)})
        blocks = {b.key: b for b in self.rows.blocks}
        blocks.update({b.key: b for b in changes.blocks_upserted})
        self.rows = IdentityRows(
            identifiers=tuple(by_key.values()),
            edges=tuple(edges.values()),
            customers=tuple(customers.values()),
            suggestions=tuple(suggestions.values()),
            blocks=tuple(blocks.values()),
            audit=(*self.rows.audit, *changes.audit_inserted),
        )


def test_two_workers_meeting_a_new_identifier_never_create_two_customers(
    workspace: WorkspaceId, clock: Clock
) -> None:
    store = RowStore(workspace)
    observation = observe_event(whatsapp(clock.now, "Hola"), default_region="MX")
    one, two = store.load(observation.keys), store.load(observation.keys)
    first = resolve(one, observation, clock.now)
    second = resolve(two, observation, clock.now)
    store.apply(first.changes)
    with pytest.raises(Conflict):
        store.apply(second.changes)
    retried = resolve(store.load(observation.keys), observation, clock.now)  # reload, resolve again
    store.apply(retried.changes)
    assert retried.customer_id == first.customer_id and retried.changes.empty
    assert len({r.customer_id for r in store.rows.identifiers}) == 1


def test_resolving_on_the_loaded_components_decides_as_on_the_whole_workspace(clock: Clock) -> None:
    workspace = WorkspaceId(uuid.uuid4())
    whole = IdentityGraph(workspace)
    for n in range(5):  # unrelated people
        resolve(
            whole,
            observe_event(
                whatsapp(clock.tick(), "Hola", phone=f"+52551234000{n}", name=f"Persona {n}x"),
                default_region="MX",
            ),
            clock.now,
        )
    resolve(whole, observe_event(whatsapp(clock.tick(), "Hola"), default_region="MX"), clock.now)
    rows = whole.rows()
    whole = IdentityGraph.from_rows(workspace, rows, new_uuid=counter_ids())  # both draw the same ids
    event = email(clock.tick(), "ana.perez@gmail.com", "Hola", "Ana Pérez\nCel. 55 1234 5678", "Ana Pérez")
    observation = observe_event(event, default_region="MX")
    working = IdentityGraph.from_rows(
        workspace,
        select_rows(rows, observation.keys, names=[observation.name_key or ""]),
        new_uuid=counter_ids(),
    )
    on_working = resolve(working, observation, clock.now).changes
    assert on_working.suggestions_inserted and on_working.identifiers_inserted
    assert on_working == resolve(whole, observation, clock.now).changes


def test_the_patient_story(graph: IdentityGraph, clock: Clock) -> None:
    """WhatsApp from +521…, an email with the phone in the signature, an Instagram DM stating the email:
    two suggestions, one customer after the agent confirms; the family member sharing the reception
    phone stays apart; unmerging restores both records exactly."""
    graph.block(RECEPTION.key, clock.now, actor=AGENT)  # the clinic's reception line, on the blocklist
    region = "MX"

    wa = resolve(
        graph,
        observe_event(whatsapp(clock.tick(), "Hola, quiero una cita"), default_region=region),
        clock.now,
    )
    signature = "Ana Pérez\nCel. 55 1234 5678\nRecepción: 55 8888 7777"
    mail = resolve(
        graph,
        observe_event(
            email(clock.tick(), "Ana.Perez@gmail.com", "Les escribo por la cita", signature, "Ana Pérez"),
            default_region=region,
        ),
        clock.now,
    )
    dm = resolve(
        graph,
        observe_event(instagram(clock.tick(), "mi correo es ana.perez@gmail.com"), default_region=region),
        clock.now,
    )
    family = resolve(
        graph,
        observe_event(
            email(
                clock.tick(),
                "luis.perez@example.com",
                "Soy su hermano, mi número es 55 8888 7777",
                "Luis\nTel 55 8888 7777",
            ),
            default_region=region,
        ),
        clock.now,
    )

    # three records, exactly two suggestions, nothing through the reception phone
    assert len({wa.customer_id, mail.customer_id, dm.customer_id, family.customer_id}) == 4
    assert [
        (s.a.key, s.b.key, s.source) for s in (*mail.suggestions, *dm.suggestions, *family.suggestions)
    ] == [
        (EMAIL.key, PHONE.key, EvidenceSource.EMAIL_SIGNATURE),
        (IG.key, EMAIL.key, EvidenceSource.CUSTOMER_STATED),
    ]
    before = {c.id: c for c in graph.rows().customers}

    signature_merge = graph.confirm(mail.suggestions[0].id, clock.tick(), actor=AGENT)
    dm_merge = graph.confirm(dm.suggestions[0].id, clock.tick(), actor=AGENT)
    assert graph.customers() == (wa.customer_id, family.customer_id)
    assert {r.key for r in graph.identifiers_of(wa.customer_id)} == {PHONE.key, BSUID.key, EMAIL.key, IG.key}
    assert graph.customer_of("phone:+525588887777") not in (wa.customer_id, family.customer_id)
    assert dm_merge.before == (wa.customer_id, dm.customer_id) and dm_merge.after == (wa.customer_id,)

    graph.unmerge(dm_merge.id, clock.tick(), actor=AGENT)
    graph.unmerge(signature_merge.id, clock.tick(), actor=AGENT)
    assert {c.id: c for c in graph.rows().customers} == before
    assert [graph.customer_of(k) for k in (PHONE.key, EMAIL.key, IG.key)] == [
        wa.customer_id,
        mail.customer_id,
        dm.customer_id,
    ]
    assert [e.action for e in graph.audit_log()] == [
        AuditAction.BLOCK,
        AuditAction.MERGE,
        AuditAction.MERGE,
        AuditAction.UNMERGE,
        AuditAction.UNMERGE,
    ]


def test_a_message_from_a_blocked_identifier_lands_on_its_own_record_and_suggests_nothing(
    graph: IdentityGraph, clock: Clock
) -> None:
    ana = resolve(graph, observe_event(whatsapp(clock.now, "Hola"), default_region="MX"), clock.now)
    message = email(
        clock.tick(),
        "info@clinicasur.mx",
        "Paciente: ana.perez@gmail.com, cel 55 1234 5678",
        None,
        "Ana Pérez",
    )
    shared = resolve(graph, observe_event(message, default_region="MX"), clock.now)
    assert shared.customer_id != ana.customer_id
    assert shared.suggestions == () and shared.merges == ()


def test_a_customer_who_changed_number_keeps_their_record(graph: IdentityGraph, clock: Clock) -> None:
    old = resolve(graph, observe_event(whatsapp(clock.now, "Hola"), default_region="MX"), clock.now)
    notice = SystemNotice(
        channel="whatsapp",
        business_address="1055",
        external_id="wamid.notice",
        timestamp=clock.tick(),
        sender=Address(kind=AddressKind.PHONE, value="5215512345678"),
        notice="customer_changed_number",
        new_address=Address(kind=AddressKind.PHONE, value="5215599990000"),
    )
    result = resolve(graph, observe_event(notice, default_region="MX"), clock.now)
    assert result.customer_id == old.customer_id
    assert graph.customer_of("phone:+525599990000") == old.customer_id


def test_a_known_sender_writing_again_under_a_known_name_carries_no_new_evidence(
    graph: IdentityGraph, clock: Clock
) -> None:
    first = resolve(graph, observe_event(whatsapp(clock.now, "Hola"), default_region="MX"), clock.now)
    again = observe_event(whatsapp(clock.tick(), "¿Siguen ahí?"), default_region="MX")
    node = graph.identifier(PHONE.key)
    assert node is not None
    assert not carries_new_evidence(again, node.display_names, linked={BSUID.key})
    # ... which is what the storage layer's shortcut relies on: resolving it changes nothing
    repeated = resolve(graph, again, clock.now)
    assert repeated.changes.empty and repeated.customer_id == first.customer_id == node.customer_id


def test_a_new_name_a_stated_address_or_an_unlinked_partner_is_new_evidence(
    graph: IdentityGraph, clock: Clock
) -> None:
    resolve(graph, observe_event(whatsapp(clock.now, "Hola"), default_region="MX"), clock.now)
    node = graph.identifier(PHONE.key)
    assert node is not None
    renamed = observe_event(whatsapp(clock.tick(), "Hola", name="Ana Torres Ruiz"), default_region="MX")
    stating = observe_event(whatsapp(clock.tick(), "mi correo es ana.perez@gmail.com"), default_region="MX")
    plain = observe_event(whatsapp(clock.tick(), "Hola"), default_region="MX")
    assert carries_new_evidence(renamed, node.display_names, linked={BSUID.key})
    assert carries_new_evidence(stating, node.display_names, linked={BSUID.key})
    assert carries_new_evidence(plain, node.display_names, linked=set())  # the BSUID edge is not known
