"""Shared pieces for the campaign-manifest tests: a small valid manifest and a validator call."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.campaign import ValidationResult, validate_text

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples" / "campaigns").glob("*.yaml"))

ENV = {
    "DEMO_WA_APP_SECRET": "s1",
    "DEMO_WA_ACCESS_TOKEN": "t1",
    "DEMO_WA_VERIFY_TOKEN": "v1",
    "DEMO_IG_APP_SECRET": "s2",
    "DEMO_IG_ACCESS_TOKEN": "t2",
    "DEMO_IG_VERIFY_TOKEN": "v2",
}

BASE: dict[str, Any] = {
    "apiVersion": "centralita/v1",
    "kind": "Campaign",
    "workspace": "demo",
    "campaign": {"name": "ventas", "display_name": "Ventas", "timezone": "America/Mexico_City"},
    "channels": {
        "whatsapp": [
            {
                "name": "principal",
                "phone_number_id": "106540352242922",
                "display_phone": "+52 55 4170 2030",
                "waba_id": "102290129340398",
                "app_id": "843120975510273",
                "app_secret_env": "DEMO_WA_APP_SECRET",
                "access_token_env": "DEMO_WA_ACCESS_TOKEN",
                "verify_token_env": "DEMO_WA_VERIFY_TOKEN",
                "welcome_reply": "bienvenida",
            }
        ],
        "instagram": [
            {
                "name": "instagram",
                "account_id": "17841405822304914",
                "app_id": "531906417724415",
                "app_secret_env": "DEMO_IG_APP_SECRET",
                "access_token_env": "DEMO_IG_ACCESS_TOKEN",
                "verify_token_env": "DEMO_IG_VERIFY_TOKEN",
                "default_queue": "general",
                "welcome_reply": "ir-a-whatsapp",
            }
        ],
    },
    "skills": [{"name": "ventas"}, {"name": "soporte"}],
    "queues": [
        {
            "name": "ventas",
            "required_skills": {"ventas": 5},
            "channels": ["whatsapp"],
            "sla": {"answer_within_s": 60, "target_pct": 80},
            "business_hours": {"weekly": {"mon": ["09:00-18:00"]}, "outside_hours_reply": "cerrado"},
            "overflow": {"to": "general", "after_s": 120},
        },
        {"name": "general", "channels": ["whatsapp", "instagram"]},
    ],
    "agents": [
        {
            "email": "ana@example.com",
            "name": "Ana",
            "skills": {"ventas": 7, "soporte": 3},
            "capacity": {"whatsapp": 3, "instagram": 2},
        }
    ],
    "auto_replies": {
        "bienvenida": {"text": "¡Hola! En un momento te atendemos."},
        "cerrado": {"text": "Estamos fuera de horario."},
        "ir-a-whatsapp": {
            "text": "Sigamos por WhatsApp: {wa_link}",
            "hub": {"whatsapp_account": "principal", "prefill": "Hola, vengo de Instagram"},
        },
    },
    "triage_menu": {
        "prompt": "Elige una opción:",
        "options": [{"label": "Ventas", "queue": "ventas"}, {"label": "Otro", "queue": "general"}],
        "invalid_reply": "Responde 1 o 2.",
        "default_queue": "general",
    },
    "templates": [
        {
            "name": "recordatorio",
            "language": "es_MX",
            "purpose": "recordatorio",
            "category": "utility",
            "parameters": ["nombre", "fecha"],
            "body": "Hola {{1}}, te esperamos el {{2}}.",
        }
    ],
    "dispositions": [
        {
            "code": "promesa_de_pago",
            "label": "Promesa de pago",
            "requires": ["date", "amount"],
            "schedules_follow_up": {"on_field": "date", "queue": "general", "template": "recordatorio"},
        }
    ],
}


def codes(result: ValidationResult) -> set[str]:
    return {p.code for p in result.problems}


def find(result: ValidationResult, code: str) -> list[Any]:
    return [p for p in result.problems if p.code == code]


@pytest.fixture
def manifest_data() -> dict[str, Any]:
    """A fresh copy of a small valid manifest, to break one thing at a time."""
    return copy.deepcopy(BASE)


@pytest.fixture
def check() -> Callable[[dict[str, Any]], ValidationResult]:
    def run(data: dict[str, Any]) -> ValidationResult:
        return validate_text(
            yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "campaign.yaml", env=ENV
        )

    return run
