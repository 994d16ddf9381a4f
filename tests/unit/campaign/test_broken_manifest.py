"""A broken manifest gets every error at once, each at its line and column, with a hint."""

from __future__ import annotations

from pathlib import Path

from core.campaign import format_problems, validate_file

BROKEN = """\
apiVersion: centralita/v1
kind: Campaign
workspace: demo
campaign:
  name: ventas
  display_name: Ventas
  timezone: America/Mexico_Cty
channels:
  whatsapp:
    - name: principal
      phone_number_id: "106540352242922"
      display_phone: "+52 55 4170 2030"
      waba_id: "102290129340398"
      app_id: "843120975510273"
      app_secret_env: DEMO_WA_APP_SECRET
      access_token_env: DEMO_WA_TOKEN
      verify_token_env: DEMO_WA_VERIFY
skills:
  - name: ventas
  - name: soporte
queues:
  - name: ventas
    required_skills: {ventas: 5, cobranza: 3}
    priorty: 5
    channels: [whatsapp]
    business_hours:
      weekly:
        mon: ["09:00-14:00", "13:00-18:00"]
      holidays: [2026-13-01]
    overflow: {to: soporte-tecnico, after_s: 60}
  - name: soporte
    required_skills: {soporte: 9}
    channels: [whatsapp]
agents:
  - email: ana@example.com
    name: Ana
    skills: {ventas: 7}
    capacity: {whatsapp: 3}
triage_menu:
  prompt: "Elige una opción:"
  options:
    - {label: Ventas, queue: ventas}
    - {label: Soporte, queue: soprte}
  invalid_reply: "Responde 1 o 2."
  default_queue: ventas
"""

ENV = {"DEMO_WA_APP_SECRET": "s", "DEMO_WA_TOKEN": "t"}


def test_every_error_is_reported_at_once_with_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "ventas.yaml"
    path.write_text(BROKEN, encoding="utf-8")

    result = validate_file(path, env=ENV)

    found = {(p.line, p.column, p.code) for p in result.problems}
    assert found == {
        (7, 13, "invalid_timezone"),
        (17, 25, "missing_env"),
        (23, 34, "unknown_skill"),
        (24, 5, "unknown_key"),
        (28, 30, "overlapping_hours"),
        (29, 18, "invalid_date"),
        (30, 20, "unknown_queue"),
        (31, 11, "no_eligible_agent"),
        (43, 31, "unknown_queue"),
    }
    assert result.manifest is None


def test_each_reported_error_reads_file_line_column_message_and_hint(tmp_path: Path) -> None:
    path = tmp_path / "ventas.yaml"
    path.write_text(BROKEN, encoding="utf-8")

    lines = format_problems(validate_file(path, env=ENV).problems).splitlines()

    assert f"{path}:24:5: queues[0].priorty: unknown key 'priorty' (hint: did you mean 'priority'?)" in lines
    assert (
        f"{path}:7:13: campaign.timezone: unknown time zone (hint: did you mean 'America/Mexico_City'?)"
        in lines
    )
    assert all(line.startswith(f"{path}:") and "(hint: " in line for line in lines)
