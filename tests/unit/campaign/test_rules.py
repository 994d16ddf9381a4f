"""Each validation rule, one at a time, on a small valid manifest with one thing broken."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from core.campaign import ValidationResult, check_manifest, parse_manifest, validate_text

from .conftest import ENV, codes, find

Check = Callable[[dict[str, Any]], ValidationResult]


def test_the_base_manifest_is_valid_without_warnings(manifest_data: dict[str, Any], check: Check) -> None:
    result = check(manifest_data)
    assert result.problems == ()
    assert result.ok


# --------------------------------------------------------------------------- schema


def test_an_unknown_key_suggests_the_closest_allowed_key(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["priorty"] = 5
    [problem] = find(check(manifest_data), "unknown_key")
    assert problem.path == ("queues", 0, "priorty")
    assert problem.hint == "did you mean 'priority'?"


def test_a_missing_required_key_is_named(manifest_data: dict[str, Any], check: Check) -> None:
    del manifest_data["campaign"]["timezone"]
    [problem] = find(check(manifest_data), "missing_key")
    assert problem.message == "missing required key 'timezone'"


def test_a_value_of_the_wrong_type_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["priority"] = "alta"
    [problem] = find(check(manifest_data), "wrong_type")
    assert problem.path == ("queues", 0, "priority")


def test_a_value_out_of_range_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["sla"]["target_pct"] = 120
    [problem] = check(manifest_data).problems
    assert problem.path == ("queues", 0, "sla", "target_pct")


def test_a_wrong_choice_suggests_the_closest_value(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["agents"][0]["role"] = "supervisr"
    [problem] = find(check(manifest_data), "invalid_choice")
    assert problem.hint == "did you mean 'supervisor'?"


def test_an_unknown_time_zone_suggests_the_closest(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["campaign"]["timezone"] = "America/Bogot"
    [problem] = find(check(manifest_data), "invalid_timezone")
    assert problem.hint == "did you mean 'America/Bogota'?"


def test_a_literal_secret_in_an_env_field_is_rejected_without_echoing_it(
    manifest_data: dict[str, Any], check: Check
) -> None:
    secret = "EAAGm0PX4ZCpsBAKZCxyz123"
    manifest_data["channels"]["whatsapp"][0]["access_token_env"] = secret
    [problem] = find(check(manifest_data), "literal_secret")
    assert problem.path == ("channels", "whatsapp", 0, "access_token_env")
    assert secret not in problem.format()


def test_a_secret_key_without_env_suffix_points_to_the_env_field(
    manifest_data: dict[str, Any], check: Check
) -> None:
    account = manifest_data["channels"]["whatsapp"][0]
    account["app_secret"] = account.pop("app_secret_env")
    problem = next(p for p in check(manifest_data).problems if p.code == "unknown_key")
    assert "app_secret_env: VARIABLE_NAME" in (problem.hint or "")


def test_a_display_phone_must_be_an_international_number(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["channels"]["whatsapp"][0]["display_phone"] = "55 4170 2030"
    assert codes(check(manifest_data)) == {"invalid_phone"}


def test_an_unknown_weekday_is_reported_at_its_key(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["business_hours"]["weekly"]["lun"] = ["09:00-18:00"]
    [problem] = find(check(manifest_data), "invalid_choice")
    assert problem.path == ("queues", 0, "business_hours", "weekly", "lun")
    assert problem.at_key


# --------------------------------------------------------------------------- skills and agents


def test_a_queue_naming_an_undeclared_skill_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["required_skills"]["venta"] = 3
    [problem] = find(check(manifest_data), "unknown_skill")
    assert problem.path == ("queues", 0, "required_skills", "venta")
    assert problem.hint == "did you mean 'ventas'?"


def test_an_agent_with_an_undeclared_skill_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["agents"][0]["skills"]["ingles"] = 6
    [problem] = find(check(manifest_data), "unknown_skill")
    assert problem.path == ("agents", 0, "skills", "ingles")


def test_a_queue_no_agent_is_skilled_enough_for_is_reported(
    manifest_data: dict[str, Any], check: Check
) -> None:
    manifest_data["queues"][0]["required_skills"]["ventas"] = 9
    [problem] = find(check(manifest_data), "no_eligible_agent")
    assert problem.path == ("queues", 0, "name")
    assert "ventas ≥ 9" in problem.message


def test_an_agent_without_capacity_on_the_queue_channels_is_not_eligible(
    manifest_data: dict[str, Any], check: Check
) -> None:
    manifest_data["agents"][0]["capacity"] = {"whatsapp": 0, "instagram": 2}
    [problem] = find(check(manifest_data), "no_eligible_agent")
    assert "queue 'ventas'" in problem.message


def test_an_expansion_step_can_make_a_queue_servable(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["required_skills"]["ventas"] = 9
    manifest_data["queues"][0]["expansion"] = [{"after_s": 30, "min_proficiency": 6}]
    assert check(manifest_data).problems == ()


def test_an_agent_group_counts_as_eligible(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["agents"] = [
        {
            "group": "noche",
            "count": 3,
            "name_pattern": "Asesor {n}",
            "skills": {"ventas": 6},
            "capacity": {"whatsapp": 3},
        }
    ]
    assert check(manifest_data).problems == ()


def test_an_agent_group_name_pattern_must_number_members(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["agents"].append(
        {"group": "noche", "count": 3, "name_pattern": "Asesor", "skills": {}, "capacity": {"whatsapp": 3}}
    )
    assert codes(check(manifest_data)) == {"pattern_without_n"}


def test_expansion_steps_may_only_relax_in_order(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["expansion"] = [
        {"after_s": 60, "min_proficiency": 4},
        {"after_s": 30, "min_proficiency": 5},
    ]
    paths = {p.path for p in find(check(manifest_data), "expansion_order")}
    assert paths == {
        ("queues", 0, "expansion", 1, "after_s"),
        ("queues", 0, "expansion", 1, "min_proficiency"),
    }


# --------------------------------------------------------------------------- business hours


def test_overlapping_intervals_on_one_day_are_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["business_hours"]["weekly"]["mon"] = ["13:00-18:00", "09:00-14:00"]
    [problem] = find(check(manifest_data), "overlapping_hours")
    assert problem.path == ("queues", 0, "business_hours", "weekly", "mon", 1)  # the later one in the file
    assert problem.message == "09:00-14:00 overlaps 13:00-18:00 on mon"


def test_adjacent_intervals_do_not_overlap(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["business_hours"]["weekly"]["mon"] = ["09:00-14:00", "14:00-18:00"]
    assert check(manifest_data).problems == ()


def test_a_malformed_interval_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["business_hours"]["weekly"]["tue"] = ["9-18"]
    [problem] = check(manifest_data).problems
    assert (problem.code, problem.path) == (
        "invalid_interval",
        ("queues", 0, "business_hours", "weekly", "tue", 0),
    )


def test_an_interval_crossing_midnight_is_reported_with_how_to_split_it(
    manifest_data: dict[str, Any], check: Check
) -> None:
    manifest_data["queues"][0]["business_hours"]["weekly"]["fri"] = ["22:00-02:00"]
    [problem] = find(check(manifest_data), "invalid_interval")
    assert "split" in (problem.hint or "")


def test_a_holiday_that_is_not_a_date_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["business_hours"]["holidays"] = ["2026-12-25", "navidad"]
    [problem] = check(manifest_data).problems
    assert (problem.code, problem.path) == ("invalid_date", ("queues", 0, "business_hours", "holidays", 1))


def test_hours_that_never_open_are_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["business_hours"]["weekly"] = {"mon": []}
    assert codes(check(manifest_data)) == {"never_open"}


# --------------------------------------------------------------------------- overflow


def test_overflow_to_an_unknown_queue_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["overflow"]["to"] = "generl"
    [problem] = find(check(manifest_data), "unknown_queue")
    assert problem.path == ("queues", 0, "overflow", "to")
    assert problem.hint == "did you mean 'general'?"


def test_an_overflow_cycle_is_reported_once(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][1]["overflow"] = {"to": "ventas", "when_no_agents": True}
    [problem] = find(check(manifest_data), "overflow_cycle")
    assert problem.message == "overflow cycle: ventas → general → ventas"


def test_overflow_to_itself_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["overflow"]["to"] = "ventas"
    assert codes(check(manifest_data)) == {"overflow_cycle"}


def test_overflow_needs_a_trigger(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["queues"][0]["overflow"] = {"to": "general"}
    assert codes(check(manifest_data)) == {"overflow_without_trigger"}


# --------------------------------------------------------------------------- routing entry points


def test_a_triage_option_to_an_unknown_queue_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["triage_menu"]["options"][1]["queue"] = "otros"
    [problem] = check(manifest_data).problems
    assert (problem.code, problem.path) == ("unknown_queue", ("triage_menu", "options", 1, "queue"))


def test_a_triage_option_to_a_queue_that_does_not_serve_whatsapp_is_reported(
    manifest_data: dict[str, Any], check: Check
) -> None:
    manifest_data["queues"][1]["channels"] = ["instagram"]
    paths = {p.path for p in find(check(manifest_data), "queue_channel_mismatch")}
    assert ("triage_menu", "options", 1, "queue") in paths


def test_a_queue_serving_a_channel_without_accounts_is_reported(
    manifest_data: dict[str, Any], check: Check
) -> None:
    manifest_data["queues"][1]["channels"].append("email")
    [problem] = check(manifest_data).problems
    assert (problem.code, problem.path) == ("channel_without_account", ("queues", 1, "channels", 2))


def test_an_account_whose_conversations_have_no_queue_is_reported(
    manifest_data: dict[str, Any], check: Check
) -> None:
    del manifest_data["channels"]["instagram"][0]["default_queue"]
    [problem] = check(manifest_data).problems
    assert (problem.code, problem.path) == ("account_without_queue", ("channels", "instagram", 0, "name"))


# --------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize(
    ("section", "index_path", "message"),
    [
        (("queues",), ("queues", 2, "name"), "duplicate queue 'ventas'"),
        (("skills",), ("skills", 2, "name"), "duplicate skill 'ventas'"),
        (("agents",), ("agents", 1, "email"), "duplicate agent email 'ana@example.com'"),
        (("templates",), ("templates", 1, "name"), "duplicate template 'recordatorio (es_MX)'"),
        (("dispositions",), ("dispositions", 1, "code"), "duplicate disposition code 'promesa_de_pago'"),
        (
            ("channels", "whatsapp"),
            ("channels", "whatsapp", 1, "name"),
            "duplicate channel account name 'principal'",
        ),
    ],
)
def test_a_duplicate_name_is_reported_at_the_second_occurrence(
    manifest_data: dict[str, Any],
    check: Check,
    section: tuple[str, ...],
    index_path: tuple[str | int, ...],
    message: str,
) -> None:
    container: Any = manifest_data
    for key in section:
        container = container[key]
    container.append(dict(container[0]))
    duplicates = find(check(manifest_data), "duplicate_name")
    assert any(p.path == index_path and p.message.startswith(message) for p in duplicates), duplicates


def test_a_duplicate_yaml_key_is_reported_at_its_line() -> None:
    text = "apiVersion: centralita/v1\nkind: Campaign\nkind: Campaign\n"
    [problem] = [p for p in validate_text(text, "x.yaml", env=ENV).problems if p.code == "duplicate_key"]
    assert (problem.line, problem.column) == (3, 1)


# --------------------------------------------------------------------------- texts


def test_an_undefined_auto_reply_is_reported_where_it_is_referenced(
    manifest_data: dict[str, Any], check: Check
) -> None:
    manifest_data["queues"][0]["business_hours"]["outside_hours_reply"] = "cerrada"
    problems = find(check(manifest_data), "unknown_auto_reply")
    assert [p.path for p in problems] == [("queues", 0, "business_hours", "outside_hours_reply")]
    assert problems[0].hint == "did you mean 'cerrado'?"


def test_a_hub_link_to_an_undeclared_whatsapp_account_is_reported(
    manifest_data: dict[str, Any], check: Check
) -> None:
    manifest_data["auto_replies"]["ir-a-whatsapp"]["hub"]["whatsapp_account"] = "ventas-wa"
    [problem] = check(manifest_data).problems
    assert (problem.code, problem.path) == (
        "unknown_account",
        ("auto_replies", "ir-a-whatsapp", "hub", "whatsapp_account"),
    )


def test_a_hub_reply_must_show_the_link(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["auto_replies"]["ir-a-whatsapp"]["text"] = "Escríbenos por WhatsApp"
    assert codes(check(manifest_data)) == {"hub_without_link"}


def test_a_link_placeholder_needs_a_hub(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["auto_replies"]["bienvenida"]["text"] = "Hola, escríbenos: {wa_link}"
    assert codes(check(manifest_data)) == {"link_without_hub"}


def test_a_hub_reply_on_a_whatsapp_account_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["channels"]["whatsapp"][0]["welcome_reply"] = "ir-a-whatsapp"
    assert "hub_on_whatsapp" in codes(check(manifest_data))


def test_an_unused_auto_reply_is_a_warning_not_an_error(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["auto_replies"]["despedida"] = {"text": "¡Gracias!"}
    result = check(manifest_data)
    assert [(p.code, p.severity) for p in result.problems] == [("unused_auto_reply", "warning")]
    assert result.ok


def test_a_template_body_and_parameter_count_must_match(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["templates"][0]["parameters"] = ["nombre"]
    [problem] = check(manifest_data).problems
    assert (problem.code, problem.path) == ("template_parameters", ("templates", 0, "parameters"))


# --------------------------------------------------------------------------- dispositions


def test_a_follow_up_to_an_unknown_queue_is_reported(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["dispositions"][0]["schedules_follow_up"]["queue"] = "promesas"
    [problem] = check(manifest_data).problems
    assert (problem.code, problem.path) == (
        "unknown_queue",
        ("dispositions", 0, "schedules_follow_up", "queue"),
    )


def test_a_follow_up_on_the_date_requires_the_date(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["dispositions"][0]["requires"] = ["amount"]
    assert codes(check(manifest_data)) == {"follow_up_field"}


def test_a_follow_up_needs_exactly_one_due_rule(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["dispositions"][0]["schedules_follow_up"]["after_days"] = 3
    assert codes(check(manifest_data)) == {"follow_up_due"}


def test_a_follow_up_template_must_be_declared(manifest_data: dict[str, Any], check: Check) -> None:
    manifest_data["dispositions"][0]["schedules_follow_up"]["template"] = "recordatorio_pago"
    assert codes(check(manifest_data)) == {"unknown_template"}


# --------------------------------------------------------------------------- environment


def test_a_secret_whose_variable_is_not_set_is_reported(manifest_data: dict[str, Any]) -> None:
    env = {k: v for k, v in ENV.items() if k != "DEMO_IG_ACCESS_TOKEN"}
    result = validate_text(yaml.safe_dump(manifest_data), "c.yaml", env=env)
    [problem] = result.problems
    assert problem.code == "missing_env"
    assert problem.path == ("channels", "instagram", 0, "access_token_env")
    assert "DEMO_IG_ACCESS_TOKEN" in problem.message


def test_the_environment_check_can_be_skipped(manifest_data: dict[str, Any]) -> None:
    assert validate_text(yaml.safe_dump(manifest_data), env={}, check_env=False).problems == ()


def test_a_manifest_built_in_code_is_checked_by_the_same_rules(manifest_data: dict[str, Any]) -> None:
    manifest = parse_manifest(yaml.safe_dump(manifest_data))
    assert check_manifest(manifest, env=ENV) == []
    assert {p.code for p in check_manifest(manifest, env={})} == {"missing_env"}
