"""The words :mod:`tether.runtime.claims` reads: its lexicon and the word lists of its grammar.

Pure data, and the two helpers that turn it into what the check matches:
:func:`words` (``|``-separated literal words as one regular expression) and
:func:`lexicon` (the done-verb forms of :data:`FORMS`, expanded). To teach the
check a word, add it here; the patterns built from these lists, and the
parsing that reads them, stay in :mod:`tether.runtime.claims`.

Every word is written folded, as the check reads text: lower case, no
accents, one apostrophe (``'``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ADVERBS",
    "ATTRIBUTIVE",
    "BROAD",
    "CLAUSE_WORDS",
    "CONTRAST",
    "DATED",
    "EVIDENCE_WORDS",
    "FORMS",
    "INTERJECTIONS",
    "IRREALIS",
    "NEGATION",
    "NOUNS",
    "REPORTED",
    "STOCK",
    "SUBJECTS",
    "TOOL_WORDS",
    "Form",
    "lexicon",
    "words",
]

_Node = dict[str, "_Node"]


def words(listed: str) -> str:
    """A pattern matching any of the ``|``-separated literal words of ``listed`` (a space
    matches any run of whitespace), written as a prefix tree so that the engine tries
    one branch per letter instead of one per word."""
    root: _Node = {}
    for word in listed.split("|"):
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def walk(node: _Node) -> str:
        branches = [
            (r"\s+" if ch == " " else re.escape(ch)) + walk(sub) for ch, sub in node.items() if ch
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return walk(root)


# --- the lexicon -------------------------------------------------------------------
#
# Forms are written folded (lower case, no accents). A marker ends a form:
#   ~  a family: French "annul~" is annule^, annulee, annules, annulees; Spanish
#      "cancelad~" is cancelado, cancelada, cancelados, canceladas
#   ^  needs an auxiliary right before ("a annule", "ai annule"): French forms
#      that are also a present tense ("j'annule" announces, it does not report)
#   *  ambiguous: counts only after a first-person subject or a passive
#      auxiliary ("I returned it", "was returned"; not "the search returned")
#   !  first person by its form (Spanish "cancele": I cancelled)
#
# Concepts in BROAD accept any tool that can act; the others need a related tool.

FORMS: dict[str, dict[str, str]] = {
    "cancel": {
        "en": "cancelled|canceled|voided|revoked*",
        "de": "storniert|annulliert|gekundigt|gekuendigt|abbestellt|abgesagt",
        "fr": "annul~|resili~",
        "es": "cancelad~|anulad~|cancele!|anule!",
    },
    "refund": {
        "en": "refunded|reimbursed|credited*",
        "de": "erstattet|ruckerstattet|rueckerstattet|zuruckerstattet|zurueckerstattet|"
        "gutgeschrieben|zuruckgezahlt|zurueckgezahlt",
        "fr": "rembours~",
        "es": "reembolsad~|reembolse!",
    },
    "send": {
        "en": "sent|emailed|e-mailed|mailed|texted|messaged|forwarded*|notified*",
        "de": "gesendet|gesandt|verschickt|geschickt|zugeschickt|zugesandt|gemailt|"
        "weitergeleitet|ubermittelt|uebermittelt|benachrichtigt",
        "fr": "envoye^|envoyee|envoyes|envoyees|transmis|transmise|transmises",
        "es": "enviad~|mandad~|reenviad~",
    },
    "change": {
        "en": "changed|updated|modified|amended|edited|adjusted|corrected|replaced*|switched*",
        "de": "geandert|geaendert|abgeandert|abgeaendert|aktualisiert|angepasst|ersetzt|"
        "umgestellt|korrigiert",
        "fr": "modifi~|remplac~|corrig~|changee|changees|mis a jour",
        "es": "cambiad~|actualizad~|modificad~|corregid~|reemplazad~|sustituid~|"
        "cambie!|actualice!|modifique!",
    },
    "delete": {
        "en": "deleted|removed|erased|purged|wiped*",
        "de": "geloscht|geloescht|entfernt",
        "fr": "supprim~|effac~",
        "es": "eliminad~|borrad~|suprimid~|borre!",
    },
    "transfer": {
        "en": "transferred|transfered|escalated|handed over|handed off|connected*",
        "de": "uberwiesen|ueberwiesen|eskaliert|ubergeben|uebergeben",
        "fr": "transfer~",
        "es": "transferid~|escalad~|transferi!",
    },
    "pay": {
        "en": "paid|charged|billed*|debited",
        "de": "bezahlt|gezahlt|belastet|abgebucht|beglichen",
        "fr": "pay~|debit~",
        "es": "pagad~|cobrad~|pague!",
    },
    "book": {
        "en": "booked|scheduled|rescheduled|reserved*",
        "de": "gebucht|reserviert|eingeplant|terminiert",
        "fr": "reservee|reservees|planifi~|programmee|programmees",
        "es": "reservad~|programad~|agendad~",
    },
    "return": {
        "en": "returned*|exchanged|swapped*",
        "de": "zuruckgegeben|zurueckgegeben|zuruckgeschickt|zurueckgeschickt|zuruckgesendet|"
        "zurueckgesendet|umgetauscht|getauscht|retourniert",
        "fr": "retourn~|echang~",
        "es": "devuelt~|intercambiad~|devolvi!",
    },
    "order": {
        "en": "ordered*|purchased*|bought*|placed*",
        "de": "bestellt|gekauft",
        "fr": "commandee|commandees|commande^|achet~",
        "es": "comprad~",
    },
    "create": {
        "en": "created|added*|registered*|subscribed|unsubscribed|enrolled*|saved*|"
        "logged*|filed*|raised*",
        "de": "erstellt|angelegt|hinzugefugt|hinzugefuegt|registriert|eroffnet|eroeffnet|"
        "gespeichert|abonniert",
        "fr": "cree^|creee|creees|ajout~|enregistr~|souscrit",
        "es": "cread~|anadid~|agregad~|registrad~|guardad~|suscrit~",
    },
    "reset": {
        "en": "reset*|unlocked|reactivated|deactivated|disabled*|enabled*|blocked*|"
        "suspended*|unblocked|restored*",
        "de": "zuruckgesetzt|zurueckgesetzt|entsperrt|gesperrt|aktiviert|deaktiviert|"
        "reaktiviert|freigeschaltet|wiederhergestellt",
        "fr": "reinitialis~|debloqu~|bloqu~|desactiv~|reactiv~",
        "es": "restablecid~|reiniciad~|desbloquead~|bloquead~|activad~|desactivad~|reactivad~",
    },
    "generic": {
        "en": "processed|issued|initiated|submitted|completed*|executed*|carried out|"
        "taken care of|put through|set up*|arranged|requested*|applied*|approved*|"
        "finalized|finalised",
        "de": "bearbeitet|veranlasst|eingeleitet|ausgefuhrt|ausgefuehrt|durchgefuhrt|"
        "durchgefuehrt|erledigt|beantragt|eingereicht|abgeschlossen*|ausgestellt",
        "fr": "trait~|effectu~|initi~|soumis|soumise|soumises|lance^|lancee|lancees|emis|"
        "emise|emises|demand~",
        "es": "procesad~|tramitad~|realizad~*|solicitad~*|emitid~|iniciad~|completad~*|"
        "gestionad~|ejecutad~|efectuad~",
    },
}

#: concepts any tool that can act supports (they say little about which act)
BROAD = frozenset({"change", "create", "generic"})

#: what a related tool's name, summary, description or argument names contain
TOOL_WORDS = {
    "cancel": "cancel|storn|annul|void|revok|revoc|terminat|kundig|kuendig|resili|abort|anul",
    "refund": "refund|reimburs|credit|erstatt|gutschrift|rembours|reembols|money back|difference",
    "send": "send|sent|email|e mail|mail|message|notif|sms|text|post|publish|forward|reply|"
    "schick|nachricht|envo|courriel|envia|correo|mensaje",
    "delete": "delet|remov|eras|purg|wipe|clear|drop|destroy|cancel|modif|updat|edit|chang|"
    "exchang|replac|losch|loesch|entfern|supprim|elimin|borr",
    "transfer": "transfer|escalat|hand off|handoff|handover|human|forward|uberw|ueberw|"
    "weiterl|eskal|transf|escal|connect",
    "pay": "pay|paid|charg|bill|debit|invoice|purchas|checkout|zahl|belast|abbuch|paie|pago|"
    "pagar|cobr|difference|gift card",
    "book": "book|schedul|reserv|appoint|calendar|slot|meeting|buch|termin|planif|program|"
    "agend|rendez",
    "return": "return|exchang|swap|rma|retour|ruckgab|rueckgab|rucksend|ruecksend|umtausch|"
    "tausch|echang|devol|intercamb|cambi",
    "order": "order|purchas|buy|checkout|cart|place|bestell|kauf|command|achat|achet|compr|pedid",
    "reset": "reset|unlock|lock|activ|enabl|disabl|block|suspend|restor|passw|credential|"
    "access|zuruck|zurueck|sperr|freischalt|reinit|bloqu|restabl|reinici|desbloq",
}

#: besides the concept's own forms, what in a successful result backs a state claim
EVIDENCE_WORDS = {
    "cancel": "cancellation|cancelation|stornierung|annulation|cancelacion",
    "refund": "refund|refunds|erstattung|ruckerstattung|rueckerstattung|remboursement|reembolso",
    "send": "shipped|tracking|delivered|fulfilled|fulfillment|fulfillments|fulfilment|versandt|"
    "versendet|expedie|enviado",
    "transfer": "transfer|transfers",
    "pay": "payment|payments|paid|charge|charges|zahlung|paiement|pago",
    "book": "booking|reservation|buchung|reserva",
    "return": "return|returns|exchange|exchanges|ruckgabe|rueckgabe|umtausch|retour|echange|"
    "devolucion",
    "order": "order|orders|bestellung|commande|pedido|purchase",
}

#: an action noun before the verb names what was done ("your refund was sent")
NOUNS = {
    "cancel": "cancellation|cancelation|stornierung|annulation|cancelacion",
    "refund": "refund|refunds|reimbursement|erstattung|ruckerstattung|rueckerstattung|gutschrift|"
    "remboursement|reembolso|money",
    "send": "email|emails|e-mail|e-mails|mail|message|messages|nachricht|courriel|correo|mensaje",
    "transfer": "transfer|uberweisung|ueberweisung|virement|transferencia",
    "pay": "payment|charge|zahlung|paiement|pago|cobro",
    "book": "booking|reservation|appointment|buchung|reservierung|rendez-vous|cita|reserva",
    "return": "return|exchange|ruckgabe|rueckgabe|rucksendung|ruecksendung|umtausch|retour|"
    "echange|devolucion",
}


@dataclass(frozen=True, slots=True)
class Form:
    """What a done-verb form says: its concept, its language, and the markers it had."""

    concept: str
    lang: str
    strict: bool = False
    needs_aux: bool = False
    first_person: bool = False


def _expand(lang: str, token: str) -> list[tuple[str, str]]:
    """``(form, markers)`` pairs for one lexicon token."""
    family = token.endswith("~")
    stem = token.rstrip("~*^!")
    marks = token[len(stem) :].replace("~", "")
    if not family:
        return [(stem, marks)]
    if lang == "fr":
        return [(stem + "e", marks + "^"), *((stem + end, marks) for end in ("ee", "es", "ees"))]
    return [(stem + end, marks) for end in ("o", "a", "os", "as")]


#: forms a family makes that are common words of another language ("modifies", "changes")
_EXCLUDE = frozenset({"modifies"})


def lexicon() -> dict[str, Form]:
    """Every form of :data:`FORMS`, expanded, with what it says (the first concept wins)."""
    out: dict[str, Form] = {}
    for concept, langs in FORMS.items():
        for lang, forms in langs.items():
            for token in forms.split("|"):
                for form, marks in _expand(lang, token):
                    if form in _EXCLUDE:
                        continue
                    out.setdefault(
                        form,
                        Form(concept, lang, "*" in marks, "^" in marks, "!" in marks),
                    )
    return out


# --- the grammar's word lists ----------------------------------------------------------

#: subjects that open a new clause after a comma or "and"
SUBJECTS = (
    "i|we|you|your|it|the|ich|wir|sie|ihre|es|der|die|das|je|j'|nous|vous|votre|il|elle|le|"
    "la|les|yo|he|hemos|usted|su|el|los|las"
)
#: words that turn a sentence ("but"): a clause ends there, and so does reported speech
CONTRAST = (
    "but|however|although|though|whereas|aber|jedoch|sondern|mais|cependant|pourtant|"
    "toutefois|pero|sino|sin embargo"
)
#: besides :data:`CONTRAST`, the words a clause ends at
CLAUSE_WORDS = (
    "while|that|whether|because|since|so|therefore|obwohl|wahrend|waehrend|"
    "dass|ob|weil|denn|deshalb|tandis|que|qu'|car|donc|aunque|mientras|porque"
)
#: what may open a sentence before a claim without being part of it ("Sure, ...")
INTERJECTIONS = (
    "yes|yeah|yep|ok|okay|sure|no|nope|si|oui|non|ja|nein|claro|done|great|perfect|"
    "perfecto|parfait|gut|klar|alright|certainly|of course|bien sur|por supuesto|naturlich|"
    "natuerlich|good news|thanks|thank you|merci|danke|gracias"
)
# What makes a verb not a claim when it comes before it in its clause: a negation
# ("not", "never", "nicht", "pas", "no"), or a mood that is not a report of a fact
# (modal, future, conditional, a wish, "once", "if", "please"). Stock phrases whose
# "no" negates nothing ("no problem", "order no. 12") are matched first and skipped.
NEGATION = (
    "not|never|no|none|nothing|nobody|neither|nor|without|unable|failed|yet to|nicht|nie|"
    "niemals|kein|keine|keinen|keinem|keiner|keines|nichts|ohne|weder|ne|pas|jamais|aucun|"
    "aucune|rien|sans|ni|nunca|jamas|ningun|ninguna|ninguno|nada|sin|tampoco"
)
IRREALIS = (
    "will|would|can|could|should|shall|may|might|must|cannot|need to|needs to|needed to|"
    "have to|has to|had to|want|wants|wanted|wish|going to|gonna|about to|able to|ready to|"
    "to be|to get|to have|if|once|when|whenever|after|before|until|till|unless|as soon as|"
    "in order|please|let me|let us|try to|trying to|expect|expected|hope|likely|eligible|"
    "wird|werden|kann|kannst|konnen|koennen|konnte|koennte|konnten|koennten|soll|sollen|"
    "sollte|sollten|mochte|moechte|mochten|moechten|muss|mussen|muessen|darf|wenn|falls|"
    "sobald|nachdem|bevor|bis|bitte|lassen sie|damit|"
    "sera|seront|serait|seraient|va|vais|vont|allez|allons|pourra|pourrait|pourrais|"
    "pourrez|peut|peux|pouvez|pouvons|doit|doivent|devrait|devriez|dois|voulez|voudriez|"
    "souhaitez|faut|si|s'il|lorsque|quand|des que|une fois|apres|avant|jusqu'a|afin|pour|"
    "veuillez|seran|seria|van a|vamos a|voy a|puede|pueden|puedo|podemos|podria|debe|deben|"
    "deberia|quiere|quisiera|desea|cuando|despues de|antes de|hasta que|para|por favor|"
    "en cuanto|tan pronto|"
    # habits and rules, not events
    "usually|typically|normally|generally|always|often|automatically|normalerweise|"
    "ublicherweise|ueblicherweise|in der regel|automatisch|generalement|normalement|"
    "habituellement|automatiquement|toujours|normalmente|generalmente|siempre|"
    "automaticamente"
)
STOCK = (
    "no problem|no worries|no worry|no charge|no cost|no extra cost|no fee|kein problem|"
    "keine sorge|pas de probleme|pas de souci|sans probleme|sans souci|sans frais|"
    "sin problema|sin costo|sin cargo|ningun problema|no hay problema"
)
#: what introduces the user's own words ("you said it was cancelled")
REPORTED = (
    "you said|you say|you mentioned|you told|you wrote|you write|you stated|you claimed|"
    "you claim|you think|you thought|you believe|you believed|you reported|you noted|"
    "you indicated|according to you|according to your|sie sagten|sie schrieben|sie meinten|"
    "sie erwahnten|sie erwaehnten|sie haben gesagt|sie haben geschrieben|sie haben erwahnt|"
    "sie haben erwaehnt|laut ihnen|vous avez dit|vous dites|vous avez ecrit|"
    "vous avez mentionne|vous pensez|selon vous|dijo|dice|menciono|escribio|comento|"
    "segun usted"
)
#: what may stand between a subject or an auxiliary and the verb ("I have already ...")
ADVERBS = (
    "already|just|also|now|successfully|then|fully|immediately|actually|personally|"
    "manually|officially|both|since|all|recently|previously|originally|indeed|bien|deja|"
    "aussi|egalement|correctement|ya|tambien|schon|bereits|erfolgreich|auch|nun|jetzt"
)
#: determiners: right before a participle, they make it an adjective ("the cancelled order")
ATTRIBUTIVE = (
    "the|a|an|your|my|our|this|these|those|any|each|every|its|their|his|her|der|die|das|den|"
    "dem|des|ein|eine|einen|einem|einer|eines|ihr|ihre|ihren|ihrem|ihrer|dein|deine|unser|"
    "unsere|jede|jeder|jedes|diese|dieser|dieses|le|la|les|un|une|des|votre|vos|ton|ta|tes|"
    "mon|ma|mes|ce|cet|cette|ces|du|nos|notre|leur|leurs|son|sa|ses|el|los|las|unos|unas|su|"
    "sus|tu|tus|mi|mis|este|esta|estos|estas|ese|esa|esos|esas|nuestro|nuestra|nuestros|"
    "nuestras"
)
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "januar",
    "februar",
    "marz",
    "maerz",
    "juni",
    "juli",
    "oktober",
    "dezember",
    "janvier",
    "fevrier",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "aout",
    "septembre",
    "octobre",
    "novembre",
    "decembre",
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
]
_GERMAN_UNITS = ("woche", "monat", "jahr")
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
#: what dates an event in the past ("yesterday", "last week", "on Monday"); dates in
#: figures ("on 3 May", "2024-05-03") are matched by a pattern in claims.py
DATED = "|".join(
    [
        "yesterday|ago|earlier|previously|originally|back in|gestern|vorgestern|fruher|"
        "frueher|zuvor|damals|hier|la semaine derniere|le mois dernier|l'an dernier|"
        "l'annee derniere|il y a|auparavant|precedemment|ayer|anteayer|"
        "la semana pasada|el mes pasado|el ano pasado|anteriormente|previamente",
        *(f"last {w}" for w in ["week", "month", "year", "night", "time", *_DAYS]),
        *(f"on {w}" for w in [*_DAYS, *_MONTHS, "may"]),
        "in may",
        *(f"{p} {m}" for p in ("in", "im", "en") for m in _MONTHS),
        *(f"{p} {w}" for p in ("letzte", "letzten", "letzter") for w in _GERMAN_UNITS),
        *(f"vor {w}" for w in ("einer", "einem", "zwei", "drei", "einigen")),
        *(f"hace {w}" for w in ("un", "una", "dos", "tres", "unos", "unas")),
    ]
)
