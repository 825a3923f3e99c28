"""Words the rules share: verbs, nouns and qualifiers, per language, as regex alternations."""

from __future__ import annotations

from tether.controls.guards._build import alt

__all__ = [
    "AI",
    "CLAUSE",
    "DATA",
    "DEST",
    "DE_DROP",
    "DE_QUALIFIER",
    "DE_RULES",
    "EN_BEFORE",
    "EN_DROP",
    "EN_NOT_FOLLOW",
    "EN_QUALIFIER",
    "EN_RULES",
    "EN_WEAK_RULES",
    "ES_DROP",
    "ES_RULES",
    "FR_DROP",
    "FR_RULES",
    "REVEAL",
    "SECRET_PROMPT",
    "SEND",
    "STRONG_DATA",
    "XX_DROP",
    "XX_RULES",
]


EN_DROP = alt(
    r"ignor(?:e|es|ed|ing)",
    r"disregard(?:ing)?",
    r"forget(?:ting)?",
    "skip",
    "drop",
    "discard",
    "abandon",
    "overrid(?:e|ing)",
    "overwrite",
    "bypass",
    "scrap",
    "scratch",
    "wipe",
    "erase",
    "delete",
    "cancel",
    "nevermind",
    "never mind",
    "set aside",
    "put aside",
    r"throw (?:away|out)",
    "leave behind",
    "neglect",
    "pay no attention to",
)
EN_NOT_FOLLOW = (
    r"(?:do not|don'?t|stop|no longer|never) (?:follow(?:ing)?|obey(?:ing)?|adher(?:e|ing) to"
    r"|comply(?:ing)? with|respect(?:ing)?|stick(?:ing)? to|listen(?:ing)? to)"
)
EN_QUALIFIER = alt(
    "previous", "prior", "above", "earlier", "preceding", "foregoing", "original", "initial",
    "former", "old", "existing", "current", "all", "any", "your", "every", "these", "those",
    "system", r"developer'?s?", r"operator'?s?", "default", "hidden", "given", "usual",
)  # fmt: skip
EN_BEFORE = alt(
    "previous", "prior", "earlier", "old", "original", "initial", "above", "all", "your", "any"
)
EN_WEAK_RULES = alt(
    r"instructions?", r"directives?", "rules", "guidelines", "guidance", r"prompts?",
    "constraints", "programming", "restrictions", "guardrails", "safeguards", "conditioning",
    r"system (?:message|prompt)",
)  # fmt: skip
EN_RULES = alt(
    r"instructions?", r"directives?", "rules", "guidelines", "guidance", r"prompts?",
    "constraints", "programming", "orders", "commands", "configuration", "setup",
    "restrictions", r"polic(?:y|ies)", r"filters?", r"assignments?", "tasks", "conditioning",
    "guardrails", "safeguards", "limitations", r"system (?:message|prompt)", "context",
    "documents", "articles", "training", "ethics",
)  # fmt: skip

DE_DROP = alt(
    r"ignorier(?:e|en|t)?",
    r"vergiss",
    r"vergessen",
    r"vergesst",
    r"missachte(?:n)?",
    r"überspring(?:e|en)?",
    r"verwirf",
    r"lösch(?:e|en)",
    r"streich(?:e|en)",
    r"lass(?:en)?",
    r"setze?",
    r"beachte(?:n)?",
    r"befolge(?:n)?",
)
DE_RULES = alt(
    r"anweisung(?:en)?", r"instruktion(?:en)?", "regeln", "vorgaben", "befehle", "aufträge",
    "aufgaben", "angaben", "informationen", "ausführungen", "richtlinien", "prompts?",
    "systemprompt", "anordnungen", "einschränkungen", "dokumente", "artikel",
)  # fmt: skip
DE_QUALIFIER = alt(
    r"vorherige[nm]?", r"bisherige[nm]?", r"obige[nm]?", r"vorangegangene[nm]?",
    r"vorangehende[nm]?", r"frühere[nm]?", r"ursprüngliche[nm]?", r"alle[nm]?", r"deine[nm]?",
    r"ihre[nm]?", r"sämtliche[nm]?", r"erhaltene[nm]?", r"gegebene[nm]?",
)  # fmt: skip

FR_DROP = alt(
    r"ignor(?:e|es|ez|er)", r"oubli(?:e|es|ez|er)", r"ne (?:tiens|tenez|tenir) plus compte",
    r"ne (?:suis|suivez|suivre) plus", r"fai(?:s|tes) abstraction", r"abandonn(?:e|ez)",
    r"effac(?:e|ez)", r"laiss(?:e|ez) tomber",
)  # fmt: skip
FR_RULES = alt("instructions", "consignes", "directives", "règles", "indications", "ordres")

ES_DROP = alt(
    r"ignor(?:a|e|en|ar)", r"olvid(?:a|e|es|en|ar)", r"descart(?:a|e|ar)", r"omit(?:e|a|ir)",
    r"no hagas caso", r"no sigas", r"no obedezcas", r"deja de lado", r"haz caso omiso",
)  # fmt: skip
ES_RULES = alt(
    "instrucciones", "reglas", "indicaciones", "directrices", "órdenes", "normas", "documentos"
)

# Other languages, override only: (verb ... rules) or (rules ... verb) within a few words.
XX_DROP = alt(
    "ignora", "dimentica", "trascura", "ignore", "esqueça", "esqueca", "esquece", "desconsidere",
    "negeer", "vergeet", "zignoruj", "zapomnij", "pomiń", r"игнорируй(?:те)?", r"забудь(?:те)?",
    "не обращай внимания на", "yok say", "unut", "görmezden gel", "zaboravi", "ignoriraj",
    "glöm", "ignorera", "glem", "ignorer",
)  # fmt: skip
XX_RULES = alt(
    "istruzioni", "regole", "indicazioni", "instruções", "instrucoes", "regras", "instructies",
    "regels", "opdrachten", "instrukcje", "polecenia", "zasady", "инструкции", "указания",
    "правила", r"talimat(?:ları|lar)", "kuralları", "instrukcije", "upute", "pravila",
    "instruktioner", "regler", "instruksjoner",
)  # fmt: skip

AI = alt(
    "ai", "llm", "llms", r"(?:large )?language models?", r"assistants?", "chatbots?",
    r"bots?", r"(?:automated |ai )?agents?", r"models?", "gpt", "chatgpt", "copilot", "ki",
    "ia", "asistente", "assistent", "assistentin",
)  # fmt: skip

SEND = alt(
    r"send(?:s|ing)?", r"forward(?:s|ing)?", r"e-?mail(?:ing)?", "mail", r"post(?:ing)?",
    r"upload(?:ing)?", r"shar(?:e|ing)", r"transmit(?:ting)?", "leak", r"copy(?:ing)?",
    r"export(?:ing)?", r"submit(?:ting)?", "deliver", "relay", "push", "exfiltrate",
    "schick(?:e|en)?", r"sende(?:n)?", r"leite(?:n)?", r"übermittle(?:n)?",
    r"envo(?:ie|yez|yer)", "transmets", r"env(?:í|i)a(?:r)?", r"reenv(?:í|i)a",
    r"mand(?:a|e)", "collect", "gather", "include",
)  # fmt: skip
DATA = alt(
    "conversation", r"chat(?:s| history| log| transcript)?", "transcripts?", "history",
    r"messages", r"customers?'?", r"clients?", r"users?'?", r"contacts?", "personal", "addresses",
    r"phone(?: numbers?)?", "order history", "database", r"records", r"credentials",
    r"passwords?", r"api keys?", r"tokens", r"secrets", r"card(?: numbers?| details)?",
    r"payment(?: details| data| information)?", "email addresses", "e-mail addresses",
    r"system prompt", "kontaktdaten", "kundendaten", "daten", "chatverlauf",
    "gesprächsverlauf", "verlauf", "adresses", "données", "historique", "datos", "historial",
    "clientes", "correos", r"data", r"details", "lists?",
)  # fmt: skip
STRONG_DATA = alt(
    "conversation", r"chat (?:history|log|transcript)s?", "transcripts?", r"customer list",
    r"(?:customer|client|user)s?'? (?:data|details|database|list|records|information|emails?"
    r"|addresses|contact details)",
    r"all (?:the |our )?(?:customers|users|clients)", "credentials", r"api keys?",
    r"passwords", r"payment (?:details|data|information)", r"card numbers?", "order history",
    "personal data", r"contact (?:data|details)", "kundendaten", "kontaktdaten", "chatverlauf",
    "gesprächsverlauf", "historial", "historique", "liste des clients", "datos de los clientes",
    "adresses e-mail des clients", r"(?:full |entire |whole )?(?:chat|conversation) history",
)  # fmt: skip
CLAUSE = r"(?:[^\n.!?]|\.(?=\S))"  # a character of the same sentence
DEST = (
    r"(?:[\w.+-]+@[\w-]+\.[\w.-]+|https?://|www\."
    r"|(?:my|our|this|an external|a remote|the following) (?:server|endpoint|url|webhook))"
)

REVEAL = alt(
    "reveal", "print", "show", "display", "output", "repeat", "tell", "give", "share", "list",
    "copy", "paste", "dump", "leak", "spell out", "translate", r"summari[sz]e", "write out",
    "recite", "quote", "expose", "disclose", "echo", "type out", "provide", "write down",
)  # fmt: skip
SECRET_PROMPT = alt(
    r"system[ -]?(?:prompt|message|instructions)", r"(?:initial|original|hidden|secret|"
    r"internal|confidential|starting|first|pre|full|complete|entire|exact) ?-?"
    r"(?:prompt|instructions|rules|guidelines|configuration|directives|setup)",
    r"pre-?prompt", r"prompt[ -]?texts?", r"instructions (?:you were|you've been|that you were)"
    r" given", "hidden configuration", "context window",
)  # fmt: skip
