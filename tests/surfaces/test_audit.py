"""`tether audit`: flags, scopes, approvals, and the worst an agent does unapproved."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import tether
from tether import Agent
from tether.spec.approval import ApprovalPolicy
from tether.surfaces.audit import audit_agent
from tether.surfaces.cli import app


@tether.tool(reads=True, untrusted_output=True)
def read_mail(folder: str) -> str:
    """Read mail.

    Args:
        folder: The folder.
    """
    return ""


@tether.tool(writes=True)
def tag_mail(tag: str) -> str:
    """Tag mail.

    Args:
        tag: The tag.
    """
    return "ok"


@tether.tool(external_comms=True, scopes=("mail:send",))
def send_mail(to: str) -> str:
    """Send mail.

    Args:
        to: Recipient.
    """
    return "sent"


@tether.tool(irreversible=True, summary="delete {folder}")
def delete_folder(folder: str) -> str:
    """Delete a folder.

    Args:
        folder: The folder.
    """
    return "gone"


agent = Agent(
    name="mailer",
    instructions="Mail.",
    models=("scripted",),
    tools=(read_mail, tag_mail, send_mail, delete_folder),
)


def test_audit_lists_each_tool_and_the_worst_unapproved_act() -> None:
    report = audit_agent(agent)
    rows = {t.name: t for t in report.tools}
    assert rows["send_mail"].scopes == ["mail:send"]
    assert rows["send_mail"].approval == "always"
    assert rows["delete_folder"].approval == "always"
    assert rows["tag_mail"].approval == "never"
    assert rows["read_mail"].untrusted_output is True
    assert report.worst_unapproved == "Without anyone approving, it can change data (tag_mail)"
    assert any("send_mail waits for approval but has no summary" in w for w in report.warnings)
    assert not any("delete_folder waits" in w for w in report.warnings)


def test_with_approvals_off_the_worst_is_the_irreversible_tool_until_taint() -> None:
    loose = Agent(
        name="loose",
        instructions="x",
        models=("scripted",),
        tools=agent.tools,
        approval=ApprovalPolicy(enabled=False),
    )
    report = audit_agent(loose)
    rows = {t.name: t for t in report.tools}
    assert rows["delete_folder"].approval == "after untrusted content"
    assert report.worst_unapproved == (
        "Without anyone approving, it can make a change that cannot be undone (delete_folder)"
    )
    assert "approvals are turned off (ApprovalPolicy(enabled=False))" in report.warnings


def test_the_cli_prints_json() -> None:
    result = CliRunner().invoke(
        app, ["audit", "tests.surfaces.test_audit:agent", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["agent"] == "mailer"
    assert [t["name"] for t in data["tools"]] == [
        "read_mail",
        "tag_mail",
        "send_mail",
        "delete_folder",
    ]
    assert data["worst_without_approval"].startswith("Without anyone approving")
