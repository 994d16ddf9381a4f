"""``centralita audit`` as an operator types it: the trail of a workspace, filtered, as a table,
CSV or JSON Lines — here, the tokens the same operator issued and revoked (as ``cli``).  On
SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

from tests.integration.test_cli_tokens import AGENT, Cli, cli  # noqa: F401  (the fixture)


def _token(cli: Cli) -> tuple[str, str]:  # noqa: F811
    created = cli(
        "token", "create", "--workspace", "umc", "--role", "agent", "--agent", AGENT, "--name", "desk"
    )
    assert created.code == 0, created.err
    (item,) = [t for t in cli.listed("--workspace", "umc") if t["name"] == "desk"]
    revoked = cli("token", "revoke", item["id"])
    assert revoked.code == 0, revoked.err
    return item["id"], item["agent_id"]


def test_the_trail_as_json_lines_holds_what_the_operator_did(cli: Cli) -> None:  # noqa: F811
    token_id, agent_id = _token(cli)
    ran = cli("audit", "--workspace", "umc", "--action", "token.*", "--format", "jsonl")
    assert ran.code == 0, ran.err
    lines = [json.loads(line) for line in ran.out.splitlines()]
    assert [(e["action"], e["subject_id"], e["actor"]) for e in lines] == [
        ("token.issued", token_id, "cli"),
        ("token.revoked", token_id, "cli"),
    ]
    assert {e["agent_id"] for e in lines} == {agent_id}
    assert ran.err.strip() == "2 entries"
    applied = cli("audit", "--workspace", "umc", "--action", "campaign.apply", "--format", "jsonl")
    assert [json.loads(line)["action"] for line in applied.out.splitlines()] == ["campaign.apply"]


def test_the_trail_as_csv_and_as_a_table(cli: Cli) -> None:  # noqa: F811
    token_id, agent_id = _token(cli)
    ran = cli("audit", "--workspace", "umc", "--agent", agent_id, "--format", "csv")
    assert ran.code == 0, ran.err
    rows = list(csv.DictReader(io.StringIO(ran.out)))
    assert [(r["action"], r["subject_id"]) for r in rows] == [
        ("token.issued", token_id),
        ("token.revoked", token_id),
    ]
    assert json.loads(rows[1]["details"])["before"] == {"revoked_at": None}
    table = cli("audit", "--workspace", "umc", "--action", "token.revoked")
    assert table.code == 0 and len(table.out.splitlines()) == 1
    assert "cli" in table.out and "token.revoked" in table.out and f"token:{token_id}" in table.out


def test_a_malformed_filter_is_refused_naming_its_flag(cli: Cli) -> None:  # noqa: F811
    ran = cli("audit", "--workspace", "umc", "--from", "ayer")
    assert ran.code == 2 and "--from" in ran.err
    ran = cli("audit", "--workspace", "umc", "--from", "2026-03-02", "--to", "2026-03-01")
    assert ran.code == 2 and "--to must be after --from" in ran.err
    ran = cli("audit", "--workspace", "nadie")
    assert ran.code == 1 and "nadie" in ran.err
