"""The channels a manifest may declare are the installed adapters' sections, read as data.

A made-up ``sms`` channel stands in for an adapter installed from outside the tree: the manifest
takes its section, names and secrets once the catalog has it, and its capabilities — not its
name — decide where the triage menu is asked and where hub replies may link.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import yaml
from pydantic import Field

from channels.whatsapp.adapter import CAPABILITIES as WHATSAPP_CAPABILITIES
from channels.whatsapp.manifest import MANIFEST as WHATSAPP_MANIFEST
from core.campaign import (
    ChannelCatalog,
    ChannelSpec,
    ValidationResult,
    default_catalog,
    manifest_json_schema,
    parse_manifest,
    plan,
    render_plan,
    required_env,
    validate_text,
)
from core.campaign.fields import EnvVarName, Slug
from core.campaign.model import ManifestModel
from core.channel import AccountEntry, Capabilities, ManifestSection
from core.events import AddressKind


class SmsNumber(ManifestModel):
    name: Slug
    number: str = Field(min_length=3)
    api_key_env: EnvVarName
    default_queue: Slug | None = None
    welcome_reply: Slug | None = None

    def entry(self) -> AccountEntry:
        return AccountEntry(address=self.number, app_secret_env=self.api_key_env)


SMS_SECTION = ManifestSection(
    account_model=SmsNumber,
    address_field="number",
    secret_fields=("api_key_env",),
    address_label="SMS number",
    plan_kind="sms_number",
    plan_label="sms",
    order=40,
)


def _catalog(*, sms_asks_the_menu: bool = False) -> ChannelCatalog:
    sms = Capabilities(address_kind=AddressKind.PHONE, display_name="SMS", triage_menu=sms_asks_the_menu)
    return ChannelCatalog([*default_catalog(), ChannelSpec("sms", sms, SMS_SECTION)])


MANIFEST: dict[str, Any] = {
    "apiVersion": "centralita/v1",
    "kind": "Campaign",
    "workspace": "demo",
    "campaign": {"name": "avisos", "display_name": "Avisos", "timezone": "America/Mexico_City"},
    "channels": {"sms": [{"name": "corto", "number": "+5215512345678", "api_key_env": "DEMO_SMS_KEY"}]},
    "queues": [{"name": "general", "channels": ["sms"]}],
    "agents": [{"email": "ana@example.com", "name": "Ana", "capacity": {"sms": 2}}],
    "triage_menu": {
        "prompt": "¿En qué te ayudamos?",
        "options": [{"label": "Información", "queue": "general"}],
        "invalid_reply": "Responde con el número.",
        "default_queue": "general",
    },
}


def _validate(data: dict[str, Any], catalog: ChannelCatalog, **env: str) -> ValidationResult:
    return validate_text(yaml.safe_dump(data, allow_unicode=True), "avisos.yaml", env=env, channels=catalog)


def _codes(result: ValidationResult) -> set[str]:
    return {p.code for p in result.problems}


def test_the_installed_catalog_holds_the_built_in_channels_in_section_order() -> None:
    assert default_catalog().names == ("whatsapp", "instagram", "email")


def test_a_section_of_an_installed_channel_validates_with_that_adapters_account_model() -> None:
    result = _validate(MANIFEST, _catalog(sms_asks_the_menu=True), DEMO_SMS_KEY="k")
    assert result.ok, result.format()
    assert result.manifest is not None
    [(spec, _, account)] = result.manifest.channels.all_accounts()
    assert spec.name == "sms" and isinstance(account, SmsNumber) and account.number == "+5215512345678"


def test_a_section_of_a_channel_that_is_not_installed_is_an_unknown_key_with_its_names_refused() -> None:
    result = _validate(MANIFEST, default_catalog(), DEMO_SMS_KEY="k")
    found = {(p.code, p.message, ".".join(map(str, p.path))) for p in result.errors}
    assert ("unknown_key", "unknown key 'sms'", "channels.sms") in found
    assert ("invalid_choice", "value 'sms' is not allowed", "queues.0.channels.0") in found
    assert ("invalid_choice", "key 'sms' is not allowed", "agents.0.capacity.sms") in found
    assert all(p.line is not None for p in result.errors)


def test_an_error_in_the_channels_own_section_carries_its_path_and_line() -> None:
    data = {**MANIFEST, "channels": {"sms": [{"name": "corto", "number": "+5215512345678", "api_key": "x"}]}}
    result = _validate(data, _catalog(sms_asks_the_menu=True))
    messages = {(p.code, ".".join(map(str, p.path))) for p in result.errors}
    assert ("unknown_key", "channels.sms.0.api_key") in messages
    assert ("missing_key", "channels.sms.0.api_key_env") in messages
    hint = next(p.hint for p in result.errors if p.code == "unknown_key")
    assert hint == "secrets are given as environment-variable names: write 'api_key_env: VARIABLE_NAME'"


def test_the_channels_secret_fields_are_the_variables_the_manifest_needs() -> None:
    catalog = _catalog(sms_asks_the_menu=True)
    manifest = parse_manifest(yaml.safe_dump(MANIFEST), channels=catalog)
    assert required_env(manifest) == ["DEMO_SMS_KEY"]
    missing = [p for p in _validate(MANIFEST, catalog).problems if p.code == "missing_env"]
    assert [p.message for p in missing] == ["environment variable DEMO_SMS_KEY is not set"]


def test_a_missing_variable_is_a_warning_when_the_file_is_checked_alone() -> None:
    text = yaml.safe_dump(MANIFEST)
    result = validate_text(text, env={}, missing_env="warning", channels=_catalog(sms_asks_the_menu=True))
    assert result.ok and [p.code for p in result.warnings] == ["missing_env"]


def test_the_triage_menu_is_asked_on_channels_whose_capabilities_say_so() -> None:
    asks = _validate(MANIFEST, _catalog(sms_asks_the_menu=True), DEMO_SMS_KEY="k")
    assert "account_without_queue" not in _codes(asks)

    does_not = _validate(MANIFEST, _catalog(sms_asks_the_menu=False), DEMO_SMS_KEY="k")
    assert {"triage_without_whatsapp", "account_without_queue"} <= _codes(does_not)


def test_without_a_hub_link_target_a_hub_reply_names_no_declared_account() -> None:
    whatsapp_without_hub = replace(WHATSAPP_CAPABILITIES, hub_link_target=False)
    catalog = ChannelCatalog([ChannelSpec("whatsapp", whatsapp_without_hub, WHATSAPP_MANIFEST)])
    data = {
        **MANIFEST,
        "channels": {
            "whatsapp": [
                {
                    "name": "principal",
                    "phone_number_id": "106540352242922",
                    "display_phone": "+52 55 4170 2030",
                    "waba_id": "102290129340398",
                    "app_id": "843120975510273",
                    "app_secret_env": "A_SECRET",
                    "access_token_env": "A_TOKEN",
                    "verify_token_env": "A_VERIFY",
                    "default_queue": "general",
                    "welcome_reply": "hola",
                }
            ]
        },
        "queues": [{"name": "general", "channels": ["whatsapp"]}],
        "agents": [{"email": "ana@example.com", "name": "Ana", "capacity": {"whatsapp": 2}}],
        "auto_replies": {"hola": {"text": "Sigue aquí: {wa_link}", "hub": {"whatsapp_account": "principal"}}},
    }
    result = _validate(data, catalog, A_SECRET="s", A_TOKEN="t", A_VERIFY="v")
    unknown = [p for p in result.errors if p.code == "unknown_account"]
    assert [p.message for p in unknown] == ["hub link to undeclared hub-link channel account 'principal'"]
    assert "hub_on_whatsapp" not in _codes(result)


def test_the_json_schema_lists_the_catalogs_sections_and_channel_names() -> None:
    schema = manifest_json_schema(_catalog())
    assert set(schema["$defs"]["Channels"]["properties"]) == {"whatsapp", "instagram", "email", "sms"}
    assert schema["$defs"]["SmsNumber"]["required"] == ["name", "number", "api_key_env"]
    assert schema["$defs"]["Queue"]["properties"]["channels"]["items"]["enum"][-1] == "sms"
    assert "sms" not in manifest_json_schema()["$defs"]["Channels"]["properties"]


def test_a_plan_names_the_channels_accounts_by_its_plan_label() -> None:
    manifest = parse_manifest(yaml.safe_dump(MANIFEST), channels=_catalog(sms_asks_the_menu=True))
    text = render_plan(plan(manifest, None))
    assert "+ sms corto" in text
    assert text.index("+ queue general") < text.index("+ sms corto") < text.index("+ agent ana@example.com")
