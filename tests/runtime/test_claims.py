"""Answers that claim an action no tool did: ``tether.runtime.claims``.

Each table row is an answer and the successful calls of its turn; the check
must flag the claims no call supports and nothing else (a false alarm
withholds a good answer).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import unicodedata
from pathlib import Path

import pytest

from tether import tool
from tether.runtime.claims import Done, honest_reply, unsupported_claims
from tether.spec.tools import Tool

ROOT = Path(__file__).resolve().parents[2]

# --- the tools ------------------------------------------------------------------------


@tool(reads=True)
def get_order_details(order_id: str) -> str:
    """Get the status and details of an order.

    Args:
        order_id: The order id.
    """
    return order_id


@tool(reads=True)
def get_cancellation_policy(order_id: str) -> str:
    """Read the cancellation and refund policy that applies to an order.

    Args:
        order_id: The order id.
    """
    return order_id


@tool(reads=True, egress=True)
def web_search(query: str) -> str:
    """Search the web.

    Args:
        query: What to look for.
    """
    return query


@tool(writes=True, irreversible=True, summary="cancel order {order_id}")
def cancel_pending_order(order_id: str, reason: str) -> str:
    """Cancel a pending order and refund it to the payment methods it was paid with.

    Args:
        order_id: The order id.
        reason: Why.
    """
    return order_id


@tool(writes=True, irreversible=True, summary="ship order {order_id} to {address}")
def modify_pending_order_address(order_id: str, address: str) -> str:
    """Change the shipping address of a pending order.

    Args:
        order_id: The order id.
        address: The new address.
    """
    return order_id


@tool(writes=True, irreversible=True)
def return_delivered_order_items(order_id: str, item_ids: list[str]) -> str:
    """Request the return of items of a delivered order; the refund goes to the original method.

    Args:
        order_id: The order id.
        item_ids: The items.
    """
    return order_id


@tool(external_comms=True, irreversible=True, summary='send the email "{subject}" to {to}')
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email to the user.

    Args:
        to: The address.
        subject: The subject.
        body: The text.
    """
    return to


@tool(external_comms=True)
def post_to_slack(channel: str, text: str) -> str:
    """Post a line to a team channel.

    Args:
        channel: Where.
        text: What.
    """
    return channel


@tool(idempotent=False)
def transfer_to_human_agents(summary: str) -> str:
    """Transfer the user to a human agent, with a summary of their issue.

    Args:
        summary: The issue.
    """
    return "Transfer successful"


@tool(writes=True)
def book_appointment(day: str) -> str:
    """Book a repair appointment.

    Args:
        day: The day.
    """
    return day


@tool(writes=True, high_stakes=True)
def reset_password(user_id: str) -> str:
    """Reset a user's password and unlock the account.

    Args:
        user_id: The user.
    """
    return user_id


PENDING = '{"order_id": "#W1", "status": "pending", "items": []}'
CANCELLED = '{"order_id": "#W1", "status": "cancelled"}'
REFUNDED = (
    '{"order_id": "#W1", "status": "cancelled", "payment_history": '
    '[{"transaction_type": "payment", "amount": 10}, {"transaction_type": "refund", "amount": 10}]}'
)

LOOKUP: list[Done] = [(get_order_details, PENDING)]
LOOKUP_CANCELLED: list[Done] = [(get_order_details, CANCELLED)]
LOOKUP_REFUNDED: list[Done] = [(get_order_details, REFUNDED)]
CANCEL: list[Done] = [(get_order_details, PENDING), (cancel_pending_order, CANCELLED)]
ADDRESS: list[Done] = [(modify_pending_order_address, '{"status": "pending"}')]
RETURN: list[Done] = [(return_delivered_order_items, '{"status": "return requested"}')]
EMAIL: list[Done] = [(send_email, '{"status": "sent"}')]
SLACK: list[Done] = [(post_to_slack, "ok")]
TRANSFER: list[Done] = [(transfer_to_human_agents, "Transfer successful")]
BOOK: list[Done] = [(book_appointment, '{"day": "Tuesday"}')]
RESET: list[Done] = [(reset_password, '{"ok": true}')]
SEARCH: list[Done] = [(web_search, "Cancelled flights are refunded within 7 days.")]
POLICY: list[Done] = [(get_cancellation_policy, "Orders can be cancelled while pending.")]


# --- claims that nothing supports -------------------------------------------------------

CLAIMS = [
    # the incident: only a look-up ran
    ("Order cancelled.", ["Order cancelled"]),
    ("Order updated.", ["Order updated"]),
    ("Your order #W1 has been cancelled.", ["Your order #W1 has been cancelled"]),
    ("I've cancelled your order.", ["I've cancelled"]),
    ("I have cancelled order #W1 for you.", ["I have cancelled"]),
    ("I cancelled your order.", ["I cancelled"]),
    ("We have gone ahead and cancelled it.", ["We have gone ahead and cancelled"]),
    ("Done! Your refund was issued to your Visa card.", ["Your refund was issued"]),
    ("Your refund has been processed.", ["Your refund has been processed"]),
    ("I refunded $35.50 to your card.", ["I refunded"]),
    ("The order is cancelled and you have been refunded.", None),
    ("Your address has been updated to 12 Oak St.", ["Your address has been updated"]),
    ("I changed the shipping address to 12 Oak St.", ["I changed"]),
    ("I've sent you an email with the details.", ["I've sent"]),
    ("Email sent.", ["Email sent"]),
    ("You are being transferred to a human agent.", ["You are being transferred"]),
    ("I've booked you in for Tuesday.", ["I've booked"]),
    ("Your password has been reset.", ["Your password has been reset"]),
    ("The items were returned and the exchange is complete.", ["The items were returned"]),
    ("I exchanged the lamp for the blue one.", ["I exchanged"]),
    ("Your account was deleted.", ["Your account was deleted"]),
    ("I've submitted the return request.", ["I've submitted"]),
    ("Your card was charged $10.", ["Your card was charged"]),
    ("The system has cancelled your order.", ["The system has cancelled"]),
    ("Cancelled your order and refunded the card.", None),
    ("No problem, I've cancelled it.", ["I've cancelled"]),
    ("Sure! I have cancelled order no. 12.", ["I have cancelled"]),
    ("YOUR ORDER HAS BEEN CANCELLED.", ["YOUR ORDER HAS BEEN CANCELLED"]),
    # German
    ("Ihre Bestellung wurde storniert.", ["Ihre Bestellung wurde storniert"]),
    ("Ich habe Ihre Bestellung storniert.", ["Ich habe Ihre Bestellung storniert"]),
    ("Der Betrag wurde Ihnen erstattet.", ["Der Betrag wurde Ihnen erstattet"]),
    ("Ihre Adresse wurde geändert.", ["Ihre Adresse wurde geändert"]),
    ("Wir haben Ihnen eine E-Mail geschickt.", ["Wir haben Ihnen eine E-Mail geschickt"]),
    ("Die Bestellung ist storniert worden.", ["Die Bestellung ist storniert"]),
    # French
    ("Votre commande a été annulée.", ["Votre commande a été annulée"]),
    ("J'ai annulé votre commande.", ["J'ai annulé"]),
    ("Je vous ai remboursé 20 euros.", ["Je vous ai remboursé"]),
    ("Votre adresse a été modifiée.", ["Votre adresse a été modifiée"]),
    ("Nous avons envoyé un e-mail de confirmation.", ["Nous avons envoyé"]),
    # Spanish
    ("Su pedido ha sido cancelado.", ["Su pedido ha sido cancelado"]),
    ("He cancelado su pedido.", ["He cancelado"]),
    ("Le hemos reembolsado el importe.", ["Le hemos reembolsado"]),
    ("Su dirección fue actualizada.", ["Su dirección fue actualizada"]),
    ("Cancelé su pedido.", ["Cancelé"]),
    ("Le he enviado un correo.", ["Le he enviado"]),
    # hidden by invisible or look-alike characters
    ("Order can\u200bcelled.", ["Order cancelled"]),
    ("Order canc\u00adelled.", ["Order cancelled"]),
    ("Order can\u2060cel\u200dled.", ["Order cancelled"]),
    ("Order cancel\u0301led.", None),
    ("Order \uff43\uff41\uff4e\uff43\uff45\uff4c\uff4c\uff45\uff44.", ["Order cancelled"]),
    ("I\u2019ve cancel\ufeffled your order.", ["I\u2019ve cancelled"]),
    ("Order cancelled\u202e.", ["Order cancelled"]),
]


@pytest.mark.parametrize(("text", "phrases"), CLAIMS)
def test_a_claim_no_tool_supports_is_flagged(text: str, phrases: list[str] | None) -> None:
    for done in ([], LOOKUP):
        found = unsupported_claims(text, done)
        assert found, f"{text!r} after {[t.name for t, _ in done]}: nothing flagged"
        if phrases is not None:
            assert found == phrases


# --- the same claims, when a tool that does it succeeded -------------------------------

SUPPORTED = [
    ("Order cancelled.", CANCEL),
    ("I've cancelled your order and refunded the card.", CANCEL),
    ("Your order #W1 has been cancelled and the refund has been issued.", CANCEL),
    ("Your refund has been sent to your card.", CANCEL),  # the refund is the cancel tool's
    ("Order updated.", ADDRESS),
    ("Your address has been updated to 12 Oak St.", ADDRESS),
    ("I changed the shipping address.", ADDRESS),
    ("I've submitted the return request.", RETURN),
    ("The items were returned; your refund was issued.", RETURN),
    ("Done: the return of items from order #W1 is requested.", RETURN),
    ("I've sent you an email with the details.", EMAIL),
    ("Email sent.", EMAIL),
    ("Message sent to the team.", SLACK),  # external_comms: whatever its name
    ("You are being transferred to a human agent.", TRANSFER),
    ("YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON.", TRANSFER),
    ("I've booked you in for Tuesday.", BOOK),
    ("Your password has been reset and your account unlocked.", RESET),
    ("Ihre Bestellung wurde storniert und erstattet.", CANCEL),
    ("Votre commande a été annulée et remboursée.", CANCEL),
    ("Su pedido ha sido cancelado y reembolsado.", CANCEL),
    ("Ihre Adresse wurde geändert.", ADDRESS),
    ("J'ai envoyé un e-mail.", EMAIL),
    ("He enviado un correo.", EMAIL),
    ("Order can\u200bcelled.", CANCEL),
]


@pytest.mark.parametrize(("text", "done"), SUPPORTED)
def test_a_claim_a_successful_tool_supports_is_not_flagged(text: str, done: list[Done]) -> None:
    assert unsupported_claims(text, done) == []


MISMATCHED = [
    # a tool ran, but not one that does what the answer says
    ("I've sent you an email with the details.", CANCEL),
    ("Your email has been sent.", CANCEL),
    ("Order cancelled.", ADDRESS),
    ("Order cancelled.", EMAIL),
    ("I've cancelled your order.", TRANSFER),
    ("I've booked you in for Tuesday.", CANCEL),
    ("You are being transferred to a human agent.", CANCEL),
    # a read-only tool, even one named after the action, does not act
    ("I've cancelled your order.", POLICY),
    ("Your refund has been issued.", POLICY),
    ("I cancelled your flight.", SEARCH),
    # a declined (or expired) approval: the call is recorded, it did not run
    (
        "Order cancelled.",
        [(cancel_pending_order, "not done: the user declined cancel order #W1. Do not do it.")],
    ),
]


@pytest.mark.parametrize(("text", "done"), MISMATCHED)
def test_a_tool_that_does_something_else_does_not_support_a_claim(
    text: str, done: list[Done]
) -> None:
    assert unsupported_claims(text, done)


# --- what a look-up reported is a fact, what the agent did is not -----------------------

STATE = [
    # a state the look-up returned: not flagged
    ("The order is cancelled.", LOOKUP_CANCELLED, []),
    ("Your order #W1 was cancelled.", LOOKUP_CANCELLED, []),
    ("Order #W1: cancelled.", LOOKUP_CANCELLED, []),
    ("Ihre Bestellung ist storniert.", LOOKUP_CANCELLED, []),
    ("Votre commande est annulée.", LOOKUP_CANCELLED, []),
    ("Su pedido está cancelado.", LOOKUP_CANCELLED, []),
    ("Your refund was issued.", LOOKUP_REFUNDED, []),
    ("You were refunded $10.", LOOKUP_REFUNDED, []),
    # the agent saying it did it: flagged, whatever the look-up said
    ("I cancelled your order.", LOOKUP_CANCELLED, ["I cancelled"]),
    ("I've cancelled your order.", LOOKUP_CANCELLED, ["I've cancelled"]),
    ("Ich habe die Bestellung storniert.", LOOKUP_CANCELLED, ["Ich habe die Bestellung storniert"]),
    ("J'ai annulé la commande.", LOOKUP_CANCELLED, ["J'ai annulé"]),
    ("He cancelado el pedido.", LOOKUP_CANCELLED, ["He cancelado"]),
    ("I refunded you.", LOOKUP_REFUNDED, ["I refunded"]),
    ("Your card was charged $10 for it.", LOOKUP_REFUNDED, []),
    ("I charged your card $10.", LOOKUP_REFUNDED, ["I charged"]),
    # the look-up says something else
    ("The order is cancelled.", LOOKUP, ["The order is cancelled"]),
    ("Your refund was issued.", LOOKUP_CANCELLED, ["Your refund was issued"]),
]


@pytest.mark.parametrize(("text", "done", "flagged"), STATE)
def test_a_state_a_lookup_reported_is_a_fact_but_a_first_person_act_is_not(
    text: str, done: list[Done], flagged: list[str]
) -> None:
    assert unsupported_claims(text, done) == flagged


# --- not claims -------------------------------------------------------------------------

NOT_CLAIMS = [
    # negated
    "I have not cancelled your order.",
    "I haven't cancelled anything yet.",
    "Your order was not cancelled.",
    "Nothing was changed.",
    "No refund has been issued.",
    "I have not cancelled, refunded or changed anything.",
    "I did not send the email.",
    "I was unable to cancel it; it was never cancelled.",
    "Ich habe Ihre Bestellung nicht storniert.",
    "Es wurde nichts geändert.",
    "Votre commande n'a pas été annulée.",
    "Rien n'a été modifié.",
    "Su pedido no ha sido cancelado.",
    "No se ha cambiado nada.",
    # future, modal, conditional, a request
    "I can cancel it if you confirm.",
    "I'll cancel it after you approve.",
    "Once cancelled, the refund takes 5 to 7 days.",
    "If cancelled, the order cannot be reinstated.",
    "The refund will be sent to your Visa card.",
    "Please confirm: order #W1 will be cancelled and refunded to your Visa.",
    "It can be returned within 30 days.",
    "Your order would be cancelled and refunded.",
    "I need to have it cancelled by a colleague.",
    "When your order is cancelled you will receive an email.",
    "Sobald die Bestellung storniert ist, erhalten Sie eine E-Mail.",
    "Die Bestellung kann storniert werden.",
    "Ihre Bestellung wird storniert, sobald Sie bestätigen.",
    "Une fois annulée, la commande ne peut pas être rétablie.",
    "Votre commande sera annulée si vous confirmez.",
    "Su pedido será cancelado si lo confirma.",
    "Si lo desea, puedo cancelar su pedido.",
    # questions
    "Shall I cancel it?",
    "Has the order been cancelled?",
    "Would you like me to have it cancelled?",
    "Möchten Sie, dass die Bestellung storniert wird?",
    "Voulez-vous que la commande soit annulée ?",
    "¿Quiere que cancele su pedido?",
    # the user's words and actions
    "You said it was cancelled, but it is still pending.",
    "You mentioned the email was sent yesterday.",
    "The items you returned have not arrived yet.",
    "You ordered a lamp and two notebooks.",
    "The order you placed is pending.",
    'You wrote "my order was cancelled", but it shows as pending.',
    "Sie haben zwei Artikel bestellt.",
    "Vous avez commandé une lampe.",
    # attributive and generic use
    "Your updated address is 12 Oak St.",
    "The cancelled order stays in your history.",
    "Cancelled orders cannot be reinstated.",
    "All rights reserved.",
    "The search returned 3 articles.",
    "Reset your password from the sign-in page.",
    "As requested, here are the details.",
    "The refund for cancelled orders goes to the original payment method.",
    "Returned items must be unused.",
    "Refunds are processed within 5 to 7 business days.",
    "Gift cards are refunded immediately, other methods in 5 to 7 business days.",
    "Refunds are usually issued to the original payment method.",
    "Erstattungen werden normalerweise innerhalb von 5 Tagen bearbeitet.",
    "Les remboursements sont généralement effectués sous 5 jours.",
    "Los reembolsos se procesan normalmente en 5 días.",
    # what a look-up or a policy says can be done
    "I've looked up your order: it is pending, so it can still be cancelled or modified.",
    "Let me know if you want the order cancelled.",
    "To get it cancelled, reply yes.",
    "Items can only be exchanged once.",
    "Your order is eligible to be returned.",
    "I have verified your identity and found your account.",
    "Your order has shipped and was delivered yesterday.",
    # dated history: it happened before this conversation
    "The order was cancelled last week.",
    "Your refund was issued on May 3.",
    "The email was sent 2 days ago.",
    "Die Bestellung wurde gestern storniert.",
    "La commande a été annulée il y a deux jours.",
    "El pedido fue cancelado hace dos días.",
    # nothing to claim
    "Your order #W1 is pending and will ship within two days.",
    "",
]


@pytest.mark.parametrize("text", NOT_CLAIMS)
def test_what_is_not_a_claim_of_an_act_is_not_flagged(text: str) -> None:
    assert unsupported_claims(text, []) == []
    assert unsupported_claims(text, LOOKUP) == []


def test_none_and_empty_answers_have_no_claims() -> None:
    assert unsupported_claims(None, []) == []
    assert unsupported_claims("", CANCEL) == []


def test_the_negation_reaches_only_its_own_clause() -> None:
    text = "I have not cancelled the first order, but I cancelled the second one."
    assert unsupported_claims(text, LOOKUP) == ["I cancelled"]
    text = "You said it was cancelled; I have now refunded it."
    assert unsupported_claims(text, LOOKUP) == ["I have now refunded"]


def test_every_claim_is_listed_once_in_order() -> None:
    text = "Order cancelled. Your email was sent. Order cancelled."
    assert unsupported_claims(text, LOOKUP) == ["Order cancelled", "Your email was sent"]
    # one supported, one not: only the other is listed
    assert unsupported_claims(text, EMAIL) == ["Order cancelled"]


def test_every_format_character_is_folded_away() -> None:
    """No character of Unicode category Cf (zero-width spaces and joiners, bidi
    controls, soft hyphen, tags...) can hide a claim."""
    hidden = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    assert len(hidden) > 150
    missed = [
        f"U+{ord(ch):04X}" for ch in hidden if not unsupported_claims(f"Order can{ch}celled.", [])
    ]
    assert missed == []


def test_a_long_result_still_backs_a_state_it_reports() -> None:
    long = json.dumps({"status": "cancelled", "items": ["x" * 100] * 50})
    assert unsupported_claims("The order is cancelled.", [(get_order_details, long)]) == []


def test_a_tool_with_no_risk_flag_is_trusted_to_act_but_only_for_what_it_is_about() -> None:
    @tool
    def calculate(expression: str) -> str:
        """Evaluate an arithmetic expression.

        Args:
            expression: The expression.
        """
        return expression

    # undeclared: it may act; but it is not about cancelling
    assert unsupported_claims("Order cancelled.", [(calculate, "4")]) == ["Order cancelled"]
    # the generic verbs accept any tool that can act
    assert unsupported_claims("Your request has been processed.", [(calculate, "4")]) == []


def test_an_action_noun_names_what_a_generic_verb_did() -> None:
    # "issued" alone accepts any tool that acts; "your refund was issued" needs a refund
    assert unsupported_claims("Your refund was issued.", ADDRESS) == ["Your refund was issued"]
    assert unsupported_claims("Your refund was issued.", CANCEL) == []
    assert unsupported_claims("Your request was processed.", ADDRESS) == []


# --- the honest reply -----------------------------------------------------------------

REPLY_LANGUAGES = [
    (["Order cancelled"], "I have not done that"),
    (["Ihre Bestellung wurde storniert"], "Das habe ich nicht getan"),
    (["Votre commande a été annulée"], "Je ne l'ai pas fait"),
    (["Su pedido ha sido cancelado"], "No lo he hecho"),
    ([], "I have not done that"),
]


@pytest.mark.parametrize(("claims", "opening"), REPLY_LANGUAGES)
def test_the_honest_reply_is_in_the_claims_language(claims: list[str], opening: str) -> None:
    assert honest_reply(claims).startswith(opening)


@pytest.mark.parametrize("claims", [c for c, _ in REPLY_LANGUAGES])
@pytest.mark.parametrize("done", [[], LOOKUP, CANCEL, LOOKUP_CANCELLED])
def test_the_honest_reply_claims_nothing_itself(claims: list[str], done: list[Done]) -> None:
    reply = honest_reply(claims, done)
    assert unsupported_claims(reply, []) == []
    assert unsupported_claims(reply, LOOKUP) == []


def test_the_honest_reply_says_nothing_changed_only_when_no_tool_could_act() -> None:
    assert "nothing was changed" in honest_reply(["Order cancelled"], LOOKUP)
    # an address change ran; the cancellation claimed did not: "nothing was changed" is false
    acted = honest_reply(["Order cancelled"], ADDRESS)
    assert "nothing was changed" not in acted
    assert "not every action" in acted
    declined: list[Done] = [(cancel_pending_order, "not done: the user declined it.")]
    assert "nothing was changed" in honest_reply(["Order cancelled"], declined)


def test_a_tool_list_is_read_not_changed() -> None:
    done: list[Done] = [*CANCEL]
    before = [(t.name, r) for t, r in done]
    unsupported_claims("Order cancelled and email sent.", done)
    assert [(t.name, r) for t, r in done] == before
    assert all(isinstance(t, Tool) for t, _ in done)


# --- the benchmark ----------------------------------------------------------------------


def test_the_benchmark_runs_and_prints_a_figure_per_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location("bench_claims", ROOT / "bench" / "claims.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.main(["--n", "3", "--runs", "1", "--json"])
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1]) == figures
    assert set(figures) == set(bench.CASES)
    assert all(v > 0 for v in figures.values())
    # the table says which answers are flagged: the unsupported one is, the supported not
    table = [line.split("|") for line in out.splitlines() if line.startswith("|")]
    rows = {cells[1].strip(): cells[3].strip() for cells in table}
    assert rows["unsupported"] != "-"
    assert rows["supported"] == "-"
