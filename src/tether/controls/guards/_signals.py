"""Role hijack, prompt extraction, tool coercion, fake delimiters and exfiltration rules."""

from __future__ import annotations

from tether.controls.guards._build import EX, FD, PE, RH, TC, Rule, gap, rule
from tether.controls.guards._vocab import (
    CLAUSE,
    DATA,
    DEST,
    REVEAL,
    SECRET_PROMPT,
    SEND,
    STRONG_DATA,
)

__all__ = ["SIGNAL_RULES"]

SIGNAL_RULES: tuple[Rule, ...] = (
    # role-hijack
    rule(
        "role.you-are-now",
        RH,
        0.5,
        r"\b(?:you are|you're|you will be|you'll be|u r|you act|you now act)\W+(?:now|from now on|"
        r"henceforth|no longer|going to be)\b|\bnow you are\b",
        "you|u",
        "now|henceforth|longer|going",
    ),
    rule(
        "role.no-longer",
        RH,
        0.75,
        r"\b(?:you are|you're)\W+no longer\W+(?:an?\W+|the\W+|my\W+|just\W+)?(?:\w+\W+)?"
        r"(?:assistant|bot|ai|chatbot|model|support|customer|agent|language model|helper)",
        "longer",
        "you",
    ),
    rule(
        "role.dan",
        RH,
        0.8,
        r"\bdo anything now\b|\bdan (?:mode|prompt|jailbreak)\b|\b(?:you are|you're|as|called|named"
        r"|"
        r"play|be|going to be|act as)\W+(?:a |the )?(?:dan|stan|dude|aim|betterdan|evilbot|"
        r"developer mode gpt)\b",
        "anything|dan|stan|dude|aim|betterdan|evilbot|developer",
    ),
    rule(
        "role.mode",
        RH,
        0.3,
        r"\b(?:developer|dev|god|debug|admin|jailbreak|jailbroken|unrestricted|unfiltered|"
        r"uncensored|evil|chaos|sudo|root|override|unlocked|dan) mode\b|\bentwicklermodus\b|"
        r"\bmode développeur\b|\bmodo (?:desarrollador|dios)\b",
        "mode|modus|modo|entwicklermodus",
        "developer|dev|god|debug|admin|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|"
        "evil|chaos|sudo|root|override|unlocked|dan|entwicklermodus|développeur|desarrollador|"
        "dios",
    ),
    rule(
        "role.mode-on",
        RH,
        0.65,
        r"\b(?:enable|enter|activate|switch (?:to|into)|turn on|go into|you are (?:now )?in|"
        r"aktiviere|wechsle in|active|activa|entra en)\W+(?:the\W+)?(?:developer|dev|god|debug|"
        r"admin|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|chaos|sudo|root|"
        r"override|unlocked|dan|entwickler)[ -]?(?:mode|modus)\b",
        "mode|modus",
        "enable|enter|activate|switch|turn|go|in|aktiviere|wechsle|active|activa|entra",
    ),
    rule(
        "role.unrestricted-ai",
        RH,
        0.8,
        r"\b(?:unfiltered|uncensored|unrestricted|unchained|unbound|amoral|immoral|evil|rogue|böse|"
        r"bösartige|maléfique|malvad[ao]|"
        r"jailbroken|unlocked|liberated|unaligned|lawless|rule-?less|no-?limits?|malicious)\W+"
        r"(?:\w+\W+)?(?:ai|assistant|bot|model|version|chatbot|llm|gpt|persona|character|ki|ia)\b"
        r"|\b(?:ai|assistant|model|bot|version|chatbot|character|persona|gpt|llm|entity|ki)\b\W+"
        r"(?:\w+\W+){0,3}?(?:with no|without|free of|free from|that has no|who has no|which has no|"
        r"that ignores|who ignores|ohne|sin|sans)\W+(?:any\W+|all\W+|its\W+|jegliche\W+|aucune?\W+)"
        r"?"
        r"(?:ethic|moral|restriction|rule|limit|filter|censor|content polic|guideline|guardrail|"
        r"safety|programming|einschränkung|regeln|restricci|reglas|règles|limite)",
        "unfiltered|uncensored|unrestricted|unchained|unbound|amoral|immoral|evil|rogue|böse|"
        "bösartige|maléfique|malvada|malvado|jailbroken|unlocked|liberated|unaligned|lawless|"
        "ruleless|rule|no|nolimits|limit|limits|malicious|with|without|free|that|who|which|ohne|"
        "sin|sans",
        "ai|assistant|bot|model|version|chatbot|llm|gpt|persona|character|ki|ia|entity",
    ),
    rule(
        "role.no-restrictions",
        RH,
        0.45,
        r"\b(?:with no|have no|has no|without|free of|free from|no longer (?:bound|limited) by|"
        r"broken free of|"
        r"not bound by|removed|disabled|ohne|keine|sans|sin)\W+(?:any\W+|all\W+|your\W+|its\W+|"
        r"the\W+|jegliche\W+|aucune?\W+|ninguna\W+)?(?:ethic(?:s|al)?|morals?|morality|"
        r"restrictions?|rules|limits|limitations|filters?|censorship|content polic(?:y|ies)|"
        r"guardrails|safety (?:guidelines|filters|rules|checks|policies)|boundaries|"
        r"einschränkungen|beschränkungen|regeln|filter|restriction|limite|censure|"
        r"restricciones|reglas|filtros|límites|censura)\b",
        "with|have|has|without|free|no|bound|limited|removed|disabled|broken|ohne|keine|sans|"
        "sin|not",
        "ethic|ethics|ethical|moral|morals|morality|restriction|restrictions|rules|limits|"
        "limitations|filter|filters|censorship|content|guardrails|safety|boundaries|"
        "einschränkungen|beschränkungen|regeln|restriction|limite|censure|restricciones|reglas|"
        "filtros|límites|censura",
    ),
    rule(
        "role.pretend",
        RH,
        0.35,
        r"\b(?:pretend|imagine|suppose|assume)\W+(?:to be|you are|you're|that you are|that you're|"
        r"you were|to have|you have|you can|you could)\b|\bstell dir vor,? (?:du bist|du wärst)\b|"
        r"\btu(?:e)? so,? als\b|\bfais comme si\b|\b(?:finge|imagina) que eres\b|"
        r"\bact(?:ú|u)a como si fueras\b",
        "pretend|imagine|suppose|assume|stell|tu|tue|fais|finge|imagina|actúa|actua",
    ),
    rule(
        "role.impersonate-staff",
        RH,
        0.6,
        r"\b(?:pretend|act|behave|roleplay|role-play|role play|pose|tu so|fais comme si|finge)\W+"
        r"(?:to be|as|like|as if you (?:were|are)|you are|als wärst du|que eres|tu étais)?\W*"
        r"(?:the |a |an |my |der |die |le |el )?(?:store |shop |system )?(?:manager|owner|admin|"
        r"administrator|developer|operator|ceo|boss|staff|employee|root|superuser|filialleiter|"
        r"administrador|directeur|jefe|gerente)\b",
        "pretend|act|acting|behave|roleplay|role|pose|tu|fais|finge",
        "manager|owner|admin|administrator|developer|operator|ceo|boss|staff|employee|root|"
        "superuser|filialleiter|administrador|directeur|jefe|gerente",
    ),
    rule(
        "role.act-as",
        RH,
        0.6,
        r"\bi want you to (?:act|behave|respond|pretend|roleplay|play|be)\b|"
        r"\bich möchte, dass (?:sie|du) (?:als|wie)\b|\bje veux que tu (?:agisses|sois)\b|"
        r"\bquiero que (?:actúes|seas)\b",
        "want|möchte|veux|quiero",
    ),
    rule(
        "role.act-as-weak",
        RH,
        0.2,
        r"\b(?:act|behave|respond|answer) (?:as|like) (?:if you were )?(?:an?|the|my)\b",
        "act|behave|respond|answer",
        "as|like",
    ),
    rule(
        "role.roleplay",
        RH,
        0.5,
        r"\bstay(?:s)? (?:in|fully in|always in) (?:character|role|(?:your|their|his|her) roles?)\b"
        r"|"
        r"\b(?:don'?t|do not|never|without) (?:ever )?(?:break|breaking|falling out of) "
        r"(?:character|(?:the|their|your) (?:role|figure))|\bbleib(?:e|en sie)? (?:immer |voll )?"
        r"(?:in|bei) (?:deiner|ihrer|ihren) rolle|\b(?:answer|respond|reply) (?:twice|in two ways|"
        r"as both)\b|\b(?:two|2) (?:entities|personas|personalities)\b|"
        r"\b(?:let's|lets|let us) (?:play a game|roleplay|role-play)\b|\b(?:gehst|gehen sie)\W+"
        r"(?:\w+\W+)?in (?:deiner|ihrer) rolle auf\b|\babsorbed in (?:your|the|this) role\b|"
        r"\b(?:you are|you're) (?:now )?(?:role-?playing|playing the role of|acting) as\b",
        "stay|stays|break|breaking|falling|bleib|bleibe|bleiben|twice|ways|both|entities|"
        "personas|personalities|let|lets|gehst|gehen|absorbed|you",
    ),
    rule(
        "role.jailbreak",
        RH,
        0.45,
        r"\bjailbr(?:eak|oken)(?:ed)?\b",
        "jailbreak|jailbroken|jailbreaked",
    ),
    rule(
        "role.named-persona",
        RH,
        0.5,
        r"\b(?:you are|you're|you will be|you'll be|your name is|call yourself|you are going to be|"
        r"du bist|tu es|eres)\W+(?:now\W+|jetzt\W+|maintenant\W+|ahora\W+)?(?:called\W+|named\W+)?"
        r"[a-z]*(?:bot|gpt|ai)\b",
        "you|your|call|du|tu|eres",
        "=bot|=gpt|ai",
    ),
    rule(
        "role.freed",
        RH,
        0.7,
        r"\byou (?:have been|are|were|are now) (?:freed|liberated|unleashed|unlocked|released|"
        r"jailbroken)\b|\bbroken free\b",
        "freed|liberated|unleashed|unlocked|released|jailbroken|broken",
    ),
    rule(
        "role.de-you-are",
        RH,
        0.45,
        r"\b(?:du bist|ihr seid) (?:jetzt|nun|ab jetzt|ab sofort|ab heute|keine?n?)\b|"
        r"\b(?:jetzt|nun) bist du\b|\btu es (?:maintenant|désormais|à présent)\b|"
        r"\b(?:ahora|a partir de ahora|desde ahora) eres\b",
        "du|ihr|bist|tu|eres",
        "jetzt|nun|ab|keine|kein|keinen|maintenant|désormais|présent|ahora",
    ),
    rule(
        "role.not-but",
        RH,
        0.6,
        r"\b(?:du bist|you are|you're|tu es|tu n'es)\W+(?:keine?n?|not an?|not the|no longer an?|pa"
        r"s "
        r"une?|plus une?)\W+\w+(?:\W+\w+)?\W+(?:sondern|but|mais)\b",
        "du|you|tu",
        "sondern|but|mais",
    ),
    # prompt-extraction
    rule(
        "extract.system-prompt",
        PE,
        0.85,
        rf"\b{REVEAL}{gap(4)}(?:(?:your|the|its|my)\W+)?(?:\w+\W+)?{SECRET_PROMPT}\b",
        "reveal|print|show|display|output|repeat|tell|give|share|list|copy|paste|dump|leak|"
        "spell|translate|summarize|summarise|write|recite|quote|expose|disclose|echo|type|"
        "provide",
        "system|initial|original|hidden|secret|internal|confidential|starting|first|pre|"
        "preprompt|full|complete|entire|exact|prompt|instructions|context",
        "prompt|prompts|preprompt|message|instructions|rules|guidelines|configuration|"
        "directives|setup|window|text|texts",
    ),
    rule(
        "extract.your-instructions",
        PE,
        0.7,
        rf"\b{REVEAL}{gap(4)}your\W+(?:\w+\W+){{0,2}}?(?:prompts?|instructions|rules|guidelines|"
        r"directives|configuration|system message|programming|setup|orders)\b",
        "reveal|print|show|display|output|repeat|tell|give|share|list|copy|paste|dump|leak|"
        "spell|translate|summarize|summarise|write|recite|quote|expose|disclose|echo|type|"
        "provide",
        "your",
        "prompt|prompts|instructions|rules|guidelines|directives|configuration|system|"
        "programming|setup|orders",
    ),
    rule(
        "extract.mention",
        PE,
        0.2,
        r"\b(?:system[ -]?prompt|system message|initial instructions|hidden prompt|prompt[ -]?texts"
        r"?"
        r"|pre-?prompt|systemprompt|systemanweisungen|prompt (?:système|del sistema))\b",
        "prompt|prompts|message|instructions|systemprompt|systemanweisungen|preprompt",
        "system|initial|hidden|prompt|pre|systemprompt|systemanweisungen|système|sistema|preprompt",
    ),
    rule(
        "extract.text-above",
        PE,
        0.7,
        r"\b(?:repeat|print|output|show|write|copy|return|tell me|what (?:was|is|were)|quote)\W+"
        r"(?:\w+\W+){0,3}?(?:text|words|everything|lines|content|sentences?|was written|is written|"
        r"written)\W+(?:above|before (?:this|that|my|the)|at the (?:beginning|start|top))\b",
        "repeat|print|output|show|write|copy|return|tell|what|quote",
        "text|words|everything|lines|content|sentence|sentences|written",
        "above|before|beginning|start|top",
    ),
    rule(
        "extract.prompt-start",
        PE,
        0.7,
        r"\bstarting (?:with|from) [\"'“]?you are\b|\b(?:beginning|start) of (?:this|the|your) "
        r"(?:prompt|conversation|context)\b|\binformation in the prompt\b",
        "starting|beginning|start|information",
        "you|prompt|conversation|context",
    ),
    rule(
        "extract.what-told",
        PE,
        0.6,
        r"\bwhat (?:were|was|have|had) you (?:\w+ )?(?:told|instructed|given|programmed|configured)"
        r"\b",
        "what",
        "told|instructed|given|programmed|configured",
    ),
    rule(
        "extract.your-rules",
        PE,
        0.55,
        r"\bwhat (?:are|were|is|was) your (?:\w+ )?(?:instructions|rules|guidelines|directives|"
        r"orders|prompts?|system prompt|system message)\b|\b(?:instructions|rules|prompt|guidelines"
        r")"
        r" (?:were|have) you (?:been )?(?:given|told|programmed)\b|\b(?:instructions|rules|prompt) "
        r"(?:you were|you've been|that you were|your "
        r"developers?|the developers?) (?:given|gave|told|configured|provided)\b",
        "what|instructions|rules|prompt|guidelines",
        "instructions|rules|guidelines|directives|orders|prompt|prompts|message",
        "your|you|the|given|gave|told|configured|provided",
    ),
    rule(
        "extract.context",
        PE,
        0.6,
        r"\b(?:everything|all) (?:in|from) your (?:context|memory|context window)\b",
        "everything|all",
        "context|memory",
    ),
    rule(
        "extract.de",
        PE,
        0.75,
        r"\b(?:zeig|zeige|zeigen sie|gib|geben sie|wiederhole|wiederholen sie|nenne|verrate|"
        r"verraten sie|drucke)\W+(?:\w+\W+){0,3}?(?:dein(?:en|e)?|ihr(?:en|e)?|den|die)\W+"
        r"(?:\w+\W+)?(?:system)?(?:prompts?|anweisungen|instruktionen|systemanweisungen|"
        r"prompt-texte?|vorgaben)\b|\bprompt-?texte?\b",
        "zeig|zeige|zeigen|gib|geben|wiederhole|wiederholen|nenne|verrate|verraten|drucke|prompt",
        "prompt|prompts|anweisungen|instruktionen|systemanweisungen|vorgaben|systemprompt|texte|"
        "text",
    ),
    rule(
        "extract.fr-es",
        PE,
        0.75,
        r"\b(?:affiche|montre|révèle|répète|donne|dis|muestra|muéstrame|revela|repite|dime|dame|"
        r"enseña|imprime)(?:-moi|-nous|me)?\W+(?:\w+\W+){0,3}?(?:ton|tes|votre|vos|tu|tus)\W+"
        r"(?:\w+\W+)?(?:prompt|instructions|consignes|règles|instrucciones|reglas)\b",
        "affiche|montre|révèle|répète|donne|dis|muestra|muéstrame|revela|repite|dime|dame|"
        "enseña|imprime",
        "prompt|instructions|consignes|règles|instrucciones|reglas",
    ),
    # tool-coercion
    rule(
        "tool.call-named",
        TC,
        0.5,
        r"\b(?:call|use|invoke|run|trigger|execute|fire|activate|ejecuta|exécute|führe|rufe|"
        r"nutze|utilise|usa|utiliza|esegui)\W+(?:\w+\W+){0,2}?[a-z]+_[a-z_]+\b"
        r"|\b(?:call|use|invoke|run|trigger|execute)\W+(?:the\W+|your\W+|this\W+)?\w+\W+"
        r"(?:tool|function|api|endpoint|action)\b"
        r"|\b(?:rufe|nutze|verwende|benutze|starte)\W+(?:\w+\W+){0,2}?(?:tool|werkzeug|funktion)\b"
        r"|\b(?:utilise|appelle|exécute|lance)[rz]? (?:l'outil|la fonction)\b"
        r"|\b(?:usa|utiliza|ejecuta|llama a) (?:la )?(?:herramienta|función)\b",
        "call|use|invoke|run|trigger|execute|fire|activate|ejecuta|exécute|führe|rufe|nutze|"
        "utilise|usa|utiliza|esegui|verwende|benutze|starte|appelle|lance|llama",
        "=_|tool|tools|function|api|endpoint|action|werkzeug|funktion|outil|fonction|"
        "herramienta|función",
    ),
    rule(
        "tool.shell",
        TC,
        0.6,
        r"\brm -rf\b|\bcurl\s+\S+\s*\|\s*(?:sh|bash)\b|\bwget\s+https?://|/etc/(?:passwd|shadow)\b|"
        r"\bchmod \+x\b|\bpowershell -|\bcmd\.exe\b|\bnc -e\b|\bmkfifo\b|\bbase64 -d\s*\|",
        "=rm -rf|=curl|=wget|=/etc/|=chmod|=powershell|=cmd.exe|=nc -e|=mkfifo|=base64 -d",
    ),
    rule(
        "tool.run-command",
        TC,
        0.5,
        r"\b(?:execute|run) (?:this|the following|these|the) (?:shell |terminal |system |bash )?"
        r"(?:command|commands|code|script)\b|\bführe (?:den|diesen|folgenden) befehl"
        r"|\bexécute[zr]? (?:la|cette) commande\b|\bejecuta (?:el|este|el siguiente) comando\b",
        "execute|run|führe|exécute|exécuter|exécutez|ejecuta",
        "command|commands|code|script|befehl|commande|comando",
    ),
    rule(
        "tool.money",
        TC,
        0.55,
        r"\b(?:transfer|wire|send|move)\W+(?:\w+\W+){0,3}?(?:[$€£]\s?\d[\d,.]*|\d[\d,.]*\s?"
        r"(?:[$€£]|dollars?|euros?|pounds|usd|eur|gbp))(?:\W+(?:of\W+)?(?:store\W+)?credits?)?\W+"
        r"(?:\w+\W+){0,5}?(?:to|into|onto)\W+(?:the\W+|my\W+|this\W+)?(?:account|iban|card|wallet|"
        r"bank|btc|bitcoin|paypal|user)|\b(?:transfer|wire|send|move)\W+(?:\w+\W+){0,6}?"
        r"(?:to|into)\W+(?:iban|card number|card|account (?:number|no\.?)|wallet)\W*[a-z]{0,2}\W*\d"
        r"|\büberweise\b|\btransf[ie]ere\b",
        "transfer|wire|send|move|überweise|transfiere|transferiere",
        "=$|=€|=£|dollar|dollars|euro|euros|pounds|usd|eur|gbp|iban|card|account|wallet|"
        "überweise|transfiere|transferiere",
    ),
    rule(
        "tool.bulk",
        TC,
        0.45,
        r"\b(?:cancel|refund|delete|remove|close|erase|wipe|storniere|lösche|annule|supprime|"
        r"cancela|elimina)\w*\W+(?:\w+\W+){0,3}?(?:all|every|each|alle|sämtliche|toutes? les|"
        r"tous les|todos los|"
        r"todas las)\W+(?:\w+\W+){0,2}?(?:orders?|accounts?|users?|customers?|records|data|files|"
        r"bestellungen|konten|dateien|commandes|pedidos|cuentas)\b",
        "cancel|refund|delete|remove|close|erase|wipe|storniere|lösche|annule|supprime|cancela|"
        "elimina",
        "all|every|each|alle|sämtliche|toutes|toute|tous|todos|todas",
    ),
    rule(
        "tool.no-confirmation",
        TC,
        0.35,
        r"\b(?:without|no|ohne|sans|sin)\W+(?:any\W+|further\W+|my\W+|a\W+)?(?:asking(?: me)?"
        r"(?: again| first)?|confirmation|confirming|verification|verifying|approval|checking|"
        r"rückfrage|bestätigung|prüfung|vérification|verificar|verificación|confirmación|"
        r"preguntar)\b|\bdon'?t ask (?:me )?for (?:confirmation|approval)\b|"
        r"\b(?:already|pre-?) ?(?:approved|authori[sz]ed)\b|\b(?:has|have) been (?:pre-?)?"
        r"(?:approved|authori[sz]ed)\b|\bis authori[sz]ed to\b|\bno (?:approvals?|confirmations?|"
        r"verification) (?:is |are )?(?:needed|required|necessary)\b",
        "without|no|ohne|sans|sin|ask|approved|authorized|authorised|preapproved|pre|has|is|"
        "already",
        "asking|confirmation|confirmations|confirming|verification|verifying|approval|approvals|"
        "checking|rückfrage|bestätigung|prüfung|vérification|verificar|verificación|"
        "confirmación|preguntar|approved|authorized|authorised|preapproved",
    ),
    rule(
        "tool.grant",
        TC,
        0.25,
        r"\b(?:issue|process|approve|grant|authori[sz]e|make|haz|hacer|realiza|emite|erstatte|"
        r"rembourse|accorde)\W+(?:me\W+|mir\W+|moi\W+|un\W+|une\W+)?(?:a\W+|an\W+|the\W+|"
        r"every\W+|all\W+)?(?:full\W+|immediate\W+|instant\W+|complete\W+)?(?:refunds?|store credit"
        r"|credit|discount|reembolso|remboursement|rückerstattung)",
        "issue|process|approve|grant|authorize|authorise|make|haz|hacer|realiza|emite|erstatte|"
        "rembourse|accorde",
        "refund|refunds|store|credit|discount|reembolso|remboursement|rückerstattung",
    ),
    rule(
        "tool.mass-email",
        TC,
        0.5,
        r"\b(?:send|write|draft|mail)\W+(?:an?\W+)?(?:e-?mail|message|sms|text|newsletter)\W+to\W+"
        r"(?:every|all|each)\b",
        "send|write|draft|mail",
        "every|all|each",
        "email|e|mail|message|sms|text|newsletter",
    ),
    # fake-delimiters
    rule(
        "delim.chat-template",
        FD,
        0.9,
        r"<\|[a-z_]{2,30}\|>|\[/?inst\]|<</?sys>>|<\|?(?:im_start|im_end|endoftext|eot_id)\|?>",
        "=<|=[inst]|=[/inst]|=<<sys>>|=<</sys>>|im_start|im_end|endoftext|eot_id",
    ),
    rule(
        "delim.role-tags",
        FD,
        0.5,
        r"</?(?:system|assistant|user|instructions?|admin|developer|operator|sys|prompt|context|"
        r"tool_result|function_results?|document|human|ai)\b[^<>\n]{0,20}>",
        "=<",
        "system|assistant|user|instruction|instructions|admin|developer|operator|sys|prompt|"
        "context|tool_result|function_result|function_results|document|human|ai",
    ),
    rule(
        "delim.header",
        FD,
        0.6,
        r"(?:^|\s)(?:#{2,}|\*{2,}|={3,}|-{3,}|\[|>{2,})\s*(?:system|admin|assistant|operator|"
        r"developer|(?:new )?instructions?|system prompt|system message|system (?:override|notice|"
        r"update))\b",
        "=##|=**|=====|=---|=[|=>>",
        "system|admin|assistant|operator|developer|instruction|instructions|new",
    ),
    rule(
        "delim.role-line",
        FD,
        0.4,
        r"(?:^|\n|[.!?\"”]\s)\s*(?:system|assistant|sys|admin|operator|developer)\s*:\s",
        "system|assistant|sys|admin|operator|developer",
        "=:",
    ),
    rule(
        "delim.turns",
        FD,
        0.5,
        r"\b(?:human|user)\s*:.{0,300}?\bassistant\s*:|\bhuman\s*:\s*human\s*:",
        "human|user",
        "assistant|human",
        "=:",
    ),
    rule(
        "delim.json-role",
        FD,
        0.75,
        r"[\"']role[\"']\s*:\s*[\"'](?:system|developer|assistant)[\"']",
        "role",
        "system|developer|assistant",
    ),
    rule(
        "delim.end-of",
        FD,
        0.45,
        r"(?:^|[\n=#*\-\[(<>.]\s*)(?:end of|end|---\s*end of)\s+(?:the\s+)?(?:document|email|e-mail"
        r"|"
        r"message|user input|input|customer message|context|conversation|text|file|data|article|"
        r"page|prompt|instructions|review|ticket)\b\s*[.!:\-=#*>\]]",
        "end",
        "document|email|mail|message|user|input|customer|context|conversation|text|file|data|"
        "article|page|prompt|instructions|review|ticket",
    ),
    rule(
        "delim.operator-note",
        FD,
        0.55,
        r"\b(?:operator|admin|administrator|developer|system|moderator)'?s? (?:note|message|"
        r"instruction|notice|update|override)(?: to (?:the )?(?:ai|assistant|model|agent))?\s*:"
        r"|\b(?:priority|important|urgent|security|system) (?:update|notice|message|instruction|"
        r"alert) (?:from|for|to) (?:the )?(?:operator|admin|system|ai|assistant|agent|model)\b"
        r"|\bsystem (?:notice|update|message|alert|instruction)s? (?:to|for) (?:the )?(?:agent|"
        r"assistant|ai|model)\b",
        "operator|admin|administrator|developer|system|moderator|priority|important|urgent|"
        "security",
        "note|message|instruction|notice|update|override|alert",
    ),
    rule(
        "delim.html-comment",
        FD,
        0.4,
        r"<!--[^>]{0,400}?\b(?:ai|assistant|llm|model|agent|instructions?|ignore|system prompt)\b",
        "=<!--",
    ),
    # exfiltration
    rule(
        "exfil.send-to",
        EX,
        0.85,
        rf"\b{SEND}\W+{CLAUSE}{{0,80}}?\b{DATA}\b{CLAUSE}{{0,80}}?\b(?:to|at|an|à|a|into|onto"
        rf"|on)\W+{CLAUSE}{{0,20}}?{DEST}",
        "send|sends|sending|forward|email|emailing|=e-mail|mail|post|posting|upload|share|"
        "sharing|transmit|leak|copy|export|submit|deliver|relay|push|exfiltrate|schick|schicke|"
        "schicken|sende|senden|leite|leiten|übermittle|übermitteln|envoie|envoyez|envoyer|"
        "transmets|envía|envia|enviar|reenvía|reenvia|manda|mande|collect|gather|include",
        "conversation|chat|chats|transcript|transcripts|history|messages|customer|customers|"
        "client|clients|user|users|contact|contacts|personal|addresses|phone|order|database|"
        "records|credentials|password|passwords|api|tokens|secrets|card|payment|email|system|"
        "kontaktdaten|kundendaten|daten|chatverlauf|gesprächsverlauf|verlauf|adresses|données|"
        "historique|datos|historial|clientes|correos|data|details|list|lists",
        "=@|http|https|www|server|endpoint|url|webhook",
    ),
    rule(
        "exfil.send-data",
        EX,
        0.45,
        rf"\b{SEND}\W+(?:\w+\W+){{0,5}}?{STRONG_DATA}\b",
        "send|sends|sending|forward|email|emailing|=e-mail|mail|post|posting|upload|share|"
        "sharing|transmit|leak|copy|export|submit|deliver|relay|push|exfiltrate|schick|schicke|"
        "schicken|sende|senden|leite|leiten|übermittle|übermitteln|envoie|envoyez|envoyer|"
        "transmets|envía|envia|enviar|reenvía|reenvia|manda|mande|collect|gather|include",
        "conversation|chat|transcript|transcripts|customer|customers|client|clients|user|users|"
        "credentials|api|passwords|payment|card|order|personal|contact|kundendaten|kontaktdaten|"
        "chatverlauf|gesprächsverlauf|historial|historique|liste|datos|adresses|full|entire|"
        "whole",
        "conversation|history|log|transcript|transcripts|list|data|details|database|records|"
        "information|emails|email|addresses|contact|customers|users|clients|credentials|keys|"
        "key|passwords|numbers|number|kundendaten|kontaktdaten|chatverlauf|gesprächsverlauf|"
        "historial|historique|liste|datos|adresses|clientes",
    ),
    rule(
        "exfil.image-url",
        EX,
        0.15,
        r"!\[[^\]]{0,100}\]\(\s*https?://[^)\s]+\?[^)\s]*=",
        "=![",
    ),
    rule(
        "exfil.image-data",
        EX,
        0.75,
        r"!\[[^\]]{0,100}\]\(\s*https?://[^)\s]+[?&][^)\s]*=(?:[^)\s&]*[{}\[\]$<>]|[^)\s&]*(?:"
        r"conversation|chat|history|summary|secret|password|user_?email|address|phone|prompt))",
        "=![",
    ),
    rule(
        "exfil.link-with-data",
        EX,
        0.55,
        r"https?://\S+[?&=]\s*(?:followed by|\+|plus|then)\b|\b(?:append|add|include|put|encode|"
        r"insert|attach)\w*\W+(?:\w+\W+){0,6}?(?:the |their |the user'?s? |the customer'?s? )"
        r"(?:\w+\W+){0,3}?(?:address|phone|email|name|card|password|data|details|history)\w*\W+"
        r"(?:\w+\W+){0,4}?(?:to|in|into)\W+(?:this |the |a )?(?:link|url|query|image)\b",
        "http|append|add|include|put|encode|insert|attach|appended|adding",
        "followed|plus|then|=+|link|url|query|image",
    ),
    rule(
        "exfil.secrets",
        EX,
        0.55,
        r"\b(?:copy|paste|print|dump|list|reveal|output|collect|gather)\W+(?:\w+\W+){0,4}?"
        r"(?:api keys?|access tokens?|tokens|secrets|credentials|passwords|private keys?|"
        r"session cookies?)\b",
        "copy|paste|print|dump|list|reveal|output|collect|gather",
        "api|access|tokens|secrets|credentials|passwords|private|session",
    ),
)
