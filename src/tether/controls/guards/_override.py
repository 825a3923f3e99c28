"""Instruction-override rules: ignore, forget or replace the instructions, in several languages."""

from __future__ import annotations

from tether.controls.guards._build import IO, Rule, gap, rule
from tether.controls.guards._vocab import (
    AI,
    DE_DROP,
    DE_QUALIFIER,
    DE_RULES,
    EN_BEFORE,
    EN_DROP,
    EN_NOT_FOLLOW,
    EN_QUALIFIER,
    EN_RULES,
    EN_WEAK_RULES,
    ES_DROP,
    ES_RULES,
    FR_DROP,
    FR_RULES,
    XX_DROP,
    XX_RULES,
)

__all__ = ["OVERRIDE_RULES"]

OVERRIDE_RULES: tuple[Rule, ...] = (
    # instruction-override: English
    rule(
        "override.en.previous",
        IO,
        0.9,
        rf"\b{EN_DROP}{gap(3)}{EN_QUALIFIER}{gap(3)}{EN_RULES}\b",
        "ignor|disregard|forget|skip|drop|drops|discard|abandon|overrid|overwrite|bypass|scrap|"
        "scratch|wipe|erase|delete|cancel|nevermind|never|aside|throw|behind|neglect|attention",
        "instruction|directive|rules|guideline|guidance|prompt|prompts|constraint|programming|"
        "orders|commands|configuration|setup|restriction|policy|policies|filter|filters|"
        "assignment|tasks|conditioning|guardrails|safeguards|limitations|system|context|"
        "documents|articles|training|ethics",
        "previous|prior|above|earlier|preceding|foregoing|original|initial|former|old|existing|"
        "current|all|any|your|every|these|those|system|developer|operator|default|hidden|given|"
        "usual",
    ),
    rule(
        "override.en.rules",
        IO,
        0.6,
        rf"\b{EN_DROP}\W+(?:(?:the|my|its|their|our|all|these|those)\W+)?{EN_WEAK_RULES}\b",
        "ignor|disregard|forget|skip|drop|drops|discard|abandon|overrid|overwrite|bypass|scrap|"
        "scratch|wipe|erase|delete|cancel|nevermind|never|aside|throw|behind|neglect|attention",
        "instruction|directive|rules|guideline|guidance|prompt|prompts|constraint|programming|"
        "restriction|guardrails|safeguards|conditioning|system",
    ),
    rule(
        "override.en.not-follow",
        IO,
        0.6,
        rf"\b{EN_NOT_FOLLOW}\W+(?:(?:the|any|all|of)\W+){{0,2}}{EN_QUALIFIER}\W+(?:\w+\W+)?"
        rf"{EN_RULES}\b",
        "follow|obey|obeying|adhere|comply|complying|respect|stick|sticking|listen",
        "not|don|dont|stop|longer|never",
        "instruction|directive|rules|guideline|guidance|prompt|prompts|constraint|programming|"
        "restriction|guardrails|safeguards|conditioning|system|policy|policies|filter|filters|"
        "training|ethics",
    ),
    rule(
        "override.en.everything",
        IO,
        0.75,
        r"\b(?:forget|ignore|disregard|drop)\W+(?:about\W+)?(?:everything|all (?:of )?(?:that|this|"
        r"the above)|(?:all |everything |anything )?(?:above|before (?:this|that))|what (?:you were"
        r"|"
        r"you've been|you have been|i) (?:told|said|given)|the above|the previous)\b",
        "forget|ignor|disregard|drop",
        "everything|all|above|before|what|previous",
    ),
    rule(
        "override.en.void",
        IO,
        0.85,
        rf"\b{EN_BEFORE}\W+(?:\w+\W+)?{EN_RULES}\W+(?:\w+\W+){{0,4}}?"
        r"(?:are|were|have been|has been|is|was)\W+(?:now\W+|hereby\W+|all\W+)?"
        r"(?:void|cancell?ed|revoked|invalid|outdated|obsolete|wrong|null|irrelevant|overridden|"
        r"lifted|disabled|suspended|deprecated|a (?:test|decoy|joke)|fake|replaced|no longer)",
        "void|cancelled|canceled|revoked|invalid|outdated|obsolete|wrong|null|irrelevant|"
        "overridden|lifted|disabled|suspended|deprecated|test|decoy|joke|fake|replaced|longer",
        "instruction|directive|rules|guideline|guidance|prompt|prompts|constraint|programming|"
        "orders|commands|configuration|setup|restriction|policy|policies|filter|filters|"
        "assignment|tasks|conditioning|guardrails|safeguards|limitations|system|context|"
        "documents|articles|training|ethics",
        "previous|prior|earlier|old|original|initial|above|all|your|any",
    ),
    rule(
        "override.en.no-longer-apply",
        IO,
        0.75,
        rf"{EN_RULES}\W+(?:\w+\W+){{0,6}}?(?:(?:no longer|do not|don't|does not|doesn't) appl(?:y|"
        rf"ies)"
        r"|(?:are|is) no longer (?:valid|in effect|relevant|active))",
        "longer|not|don|doesn|does",
        "apply|applies|valid|effect|relevant|active",
        "instruction|directive|rules|guideline|guidance|prompt|prompts|constraint|programming|"
        "orders|commands|configuration|setup|restriction|policy|policies|filter|filters|"
        "assignment|tasks|conditioning|guardrails|safeguards|limitations|system|context|"
        "documents|articles|training|ethics",
    ),
    rule(
        "override.en.new-instructions",
        IO,
        0.65,
        r"\b(?:new|updated|real|actual|correct|revised|different|true)\W+(?:instructions?|rules|"
        r"tasks?|directives?|assignment|prompt|objective|mission)\W*(?::|follow|are as follows|"
        r"below|for (?:you|the (?:ai|assistant|model)))",
        "new|updated|real|actual|correct|revised|different|true",
        "instruction|rules|task|tasks|directive|assignment|prompt|objective|mission",
    ),
    rule(
        "override.en.new-task",
        IO,
        0.65,
        r"\byour (?:new|real|actual|only|true|next) (?:task|job|instructions?|goal|purpose|"
        r"objective|mission|role|assignment|directive|rule) (?:is|are|now|will be|from now)"
        r"|\b(?:now|next) (?:focus|concentrate) on (?:your|the) (?:new|next|following) (?:task|"
        r"assignment)|\b(?:new|further|more|other) tasks? (?:follow|are following|comes?)"
        r"|\bnow (?:comes?|follows?|follow) (?:a |an )?(?:new|further|another|other) (?:tasks?|"
        r"instructions?|assignments?)",
        "new|real|actual|only|true|next|focus|concentrate|further|more|other|comes|come|follow|"
        "follows",
        "task|tasks|job|instruction|goal|purpose|objective|mission|role|assignment|directive|rule",
        "your|now|next|follow|follows|following|comes|come",
    ),
    rule(
        "override.en.supersedes",
        IO,
        0.65,
        r"\b(?:the )?following (?:overrides|supersedes|replaces)\b|\bsupersedes (?:your|any|all) "
        r"(?:prior|previous|earlier)\b",
        "overrides|supersedes|replaces",
    ),
    rule(
        "override.en.change-rules",
        IO,
        0.7,
        r"\b(?:change|update|modify|replace|rewrite|reset)\W+your\W+(?:\w+\W+)?(?:instructions|rule"
        r"s|"
        r"guidelines|prompt|programming|directives|system prompt)\b|\b(?:operator|developer|admin|"
        r"administrator|creator|owner|system)s?\W+(?:has|have)\W+(?:just\W+)?(?:updated|changed|"
        r"replaced|modified|revoked|overridden)\W+your\W+(?:\w+\W+)?(?:instructions|rules|"
        r"guidelines|prompt|programming|configuration)\b|\byour (?:instructions|rules|task|job) "
        r"(?:are|is) now\b",
        "change|update|updated|modify|modified|replace|replaced|rewrite|reset|changed|revoked|"
        "overridden|instructions|rules|task|job",
        "your",
        "instructions|rules|guidelines|prompt|programming|directives|configuration|now",
    ),
    rule(
        "override.en.assistant-must",
        IO,
        0.45,
        r"\bthe (?:assistant|ai|model|agent|bot|chatbot|language model)\W+(?:must|should|shall|will"
        r"|is to|"
        r"has to|needs to)\W+(?:now\W+|immediately\W+|always\W+)?(?!be able)\w+",
        "assistant|ai|model|agent|bot|chatbot|language",
        "must|should|shall|will|is|has|needs",
    ),
    rule(
        "override.en.dont-answer",
        IO,
        0.55,
        r"\b(?:do not|don'?t|dont)\W+(?:answer|respond to|reply to)\W+(?:this|the|my|that)\W+"
        r"(?:question|request|query|message)\b|\b(?:do not|don'?t|dont)\W+(?:look in|look at|use|"
        r"consult|read)\W+(?:the\W+)?(?:provided\W+)?(?:documents|articles|sources|context)\b",
        "not|don|dont",
        "answer|respond|reply|look|use|consult|read",
        "question|request|query|message|documents|articles|sources|context",
    ),
    rule(
        "override.en.from-now-on",
        IO,
        0.3,
        r"\b(?:from now on|from this (?:point|moment|message) (?:on|forward|onwards?)|"
        r"for the rest of (?:this|the) (?:chat|conversation|session)|henceforth)\b",
        "from|rest|henceforth",
        "now|point|moment|message|chat|conversation|session|henceforth",
    ),
    rule(
        "override.en.obey-me",
        IO,
        0.5,
        r"\b(?:(?:obey|listen to|follow|answer to) (?:only )?(?:me|my (?:commands|instructions|"
        r"orders|rules))(?: only| instead| alone| now)?|you (?:will|must|shall) (?:now )?(?:obey|"
        r"do whatever|follow my))\b",
        "obey|listen|follow|answer|whatever",
        "me|my|whatever",
    ),
    rule(
        "override.en.policy-lifted",
        IO,
        0.85,
        r"\b(?:content|safety|usage|moderation|approval)\W+(?:\w+\W+)?(?:polic(?:y|ies)|filters?|"
        r"guidelines|checks?|restrictions|rules)\W+(?:\w+\W+){0,4}?(?:has been|have been|are|is|"
        r"were|was)\W+(?:now\W+|hereby\W+|temporarily\W+)?(?:lifted|disabled|removed|turned off|"
        r"suspended|deactivated|off|waived|bypassed)\b|\b(?:disable|turn off|skip|bypass) (?:all |"
        r"the |your |any )?(?:approval|safety|content|confirmation) (?:checks?|filters?|steps?)"
        r"|\b(?:disable|turn off|skip|bypass)\W+(?:\w+\W+)?(?:confirmations|approvals|safety checks"
        r")\b",
        "content|safety|usage|moderation|approval|confirmation|confirmations|approvals",
        "lifted|disabled|removed|turned|suspended|deactivated|off|waived|bypassed|disable|turn|"
        "skip|bypass",
    ),
    rule(
        "override.en.note-to-model",
        IO,
        0.55,
        rf"\b(?:note|message|instructions?|notice|reminder|important|p\.?s\.?|warning|request)\W+"
        rf"(?:to|for)\W+(?:any\W+|the\W+|all\W+|every\W+|an?\W+)?{AI}\b(?! (?:model|number|name))",
        "ai|llm|llms|language|assistant|assistants|chatbot|chatbots|bot|bots|agent|agents|model|"
        "models|gpt|chatgpt|copilot|ki|ia|asistente|assistent|assistentin",
        "note|message|instruction|instructions|notice|reminder|important|p|ps|warning|request",
        "to|for",
    ),
    rule(
        "override.en.dear-model",
        IO,
        0.5,
        rf"\b(?:if you are|if you're|dear|hey|attention|attn|calling all|to all|to any)\W+"
        rf"(?:an?\W+|the\W+|any\W+)?{AI}\b",
        "ai|llm|llms|language|assistant|assistants|chatbot|chatbots|bot|bots|agent|agents|model|"
        "models|gpt|chatgpt|copilot|ki|ia|asistente|assistent|assistentin",
        "if|dear|hey|attention|attn|calling|to",
    ),
    rule(
        "override.en.model-reading",
        IO,
        0.55,
        rf"\b{AI}\W+(?:that (?:is|are) |who (?:is|are) )?(?:reading|processing|summari[sz]ing|"
        r"parsing|viewing|analy[sz]ing|handling|seeing|crawling|indexing)\W+(?:this|these|the)\b"
        r"|\b(?:automated|automatic) (?:instruction|message) (?:for|to)\b",
        "ai|llm|llms|language|assistant|assistants|chatbot|chatbots|bot|bots|agent|agents|model|"
        "models|gpt|chatgpt|copilot|ki|ia|asistente|assistent|assistentin|automated|automatic",
        "reading|processing|summarizing|summarising|parsing|viewing|analyzing|analysing|"
        "handling|seeing|crawling|indexing|instruction|message",
    ),
    rule(
        "override.xx.note-to-model",
        IO,
        0.55,
        r"\b(?:hinweis|nachricht|anweisung) (?:an|für) (?:die |den |alle )?ki\b"
        r"|\b(?:note|message) (?:pour|à) (?:l'|le |la )?(?:ia|assistant)\b"
        r"|\b(?:nota|mensaje) para (?:el |la )?(?:ia|asistente)\b",
        "ki|ia|assistant|asistente",
        "hinweis|nachricht|anweisung|note|message|nota|mensaje",
    ),
    rule(
        "override.en.ai-imperative",
        IO,
        0.45,
        r"(?:^|[\n.!>:\-]\s*)(?:ai|assistant|dear ai|ai model|ai agents?|ai reader|"
        r"language model|ki|ki-assistent|llm)\s*[:,]\s*(?:\w+\W+){0,6}?"
        r"(?:ignore|forget|disregard|send|forward|call|use|execute|run|transfer|collect|"
        r"secretly|append|repeat|print|reveal|cancel|tell|say|recommend|you (?:must|should|are))",
        "ai|assistant|model|ki|llm|language|agent|agents|reader|dear",
        "ignor|forget|disregard|send|forward|call|use|execute|run|transfer|collect|secretly|"
        "append|repeat|print|reveal|cancel|tell|say|recommend|you",
    ),
    rule(
        "override.en.stealth",
        IO,
        0.5,
        r"\bwithout (?:telling|informing|notifying|alerting) (?:the user|them|anyone|the customer)"
        r"|\b(?:do not|don't|never) (?:tell|inform|mention|reveal|let|alert)\W+(?:this\W+)?"
        r"(?:to\W+)?(?:the )?(?:user|customer)\b|\b(?:hide|conceal) (?:this|it) from the "
        r"(?:user|customer)\b",
        "without|tell|inform|mention|reveal|let|alert|hide|conceal",
        "user|customer|them|anyone",
    ),
    rule(
        "override.en.stealth-word",
        IO,
        0.3,
        r"\b(?:secretly|covertly)\b",
        "secretly|covertly",
    ),
    rule(
        "override.en.forced-output",
        IO,
        0.35,
        r"\b(?:just |only |simply )?(?:say|output|print|write|reply|respond|answer|type|"
        r"repeat after me|state|include that)(?: only| just)?(?: with| the (?:word|words|phrase|"
        r"text|sentence))?\s*:?\s*[\"'“”«‘„]"
        r"|\b(?:respond|reply|answer) (?:to )?(?:every|each|all|any) (?:question|message|request)s?"
        r" (?:with|by)\b",
        "say|output|print|write|reply|respond|answer|type|repeat|state|include",
        "=\"|='|=“|=”|=«|=‘|=„|every|each|all|any",
    ),
    rule(
        "override.en.instead",
        IO,
        0.45,
        r"\b(?:and|but|,) instead\W+(?:\w+\W+)?(?:say|write|output|print|tell|answer|reply|respond|"
        r"reveal|give|recommend|translate|show)\b|\bignore (?:the|this|their|the user'?s?|what the"
        r" user|what they)\W+(?:actual\W+|real\W+)?(?:question|request|query|asked|message)\b",
        "instead|ignor",
        "say|write|output|print|tell|answer|reply|respond|reveal|give|recommend|translate|show|"
        "question|request|query|asked|message",
    ),
    rule(
        "override.en.override-word",
        IO,
        0.6,
        r"\b(?:system|admin|priority|security|emergency|operator) override\b|\boverride\s*:|"
        r"\b(?:everything|all) (?:before|above) (?:this|that|here)(?: sentence| line| message| poin"
        r"t)?"
        r" (?:was|is|were) (?:a decoy|a test|irrelevant|fake|void|not real|a joke)",
        "overr|before|above",
        "system|admin|priority|security|emergency|operator|override|decoy|test|irrelevant|fake|"
        "void|real|joke",
    ),
    rule(
        "override.en.documents",
        IO,
        0.6,
        r"\b(?:disregarding|ignoring|ignore|disregard)\W+(?:all\W+)?(?:the\W+)?(?:provided\W+|given"
        r"\W+)?"
        r"(?:articles|documents|sources)\b|\b(?:not|instead of|rather than) (?:by|from|according to"
        r"|looking (?:in|at)|using) (?:the )?(?:provided |given |above )?(?:articles?|documents?|"
        r"context|sources?|texts?)\b|\b(?:answer|respond) by your own knowledge\b",
        "not|instead|rather|disregarding|ignoring|ignore|disregard|own",
        "article|articles|document|documents|context|source|sources|knowledge|texts|text",
    ),
    # instruction-override: German
    rule(
        "override.de.previous",
        IO,
        0.9,
        rf"\b{DE_DROP}{gap(3)}{DE_QUALIFIER}{gap(2)}{DE_RULES}\b"
        rf"|\b{DE_QUALIFIER}\W+{DE_RULES}{gap(4)}(?:ignorieren|vergessen|missachten|"
        r"(?:nicht mehr )?(?:beachten|befolgen)|beiseite|hinter sich|außer kraft|streichen)",
        "ignor|vergiss|vergessen|vergesst|missacht|überspring|verwirf|lösch|streich|lass|lasse|"
        "lassen|setz|setze|beacht|befolg|beiseite|hinter|außer",
        "anweisung|instruktion|regeln|vorgaben|befehle|aufträge|aufgaben|angaben|informationen|"
        "ausführungen|richtlinien|prompt|prompts|systemprompt|anordnungen|einschränkungen|"
        "dokumente|artikel",
    ),
    rule(
        "override.de.everything",
        IO,
        0.75,
        r"\bvergiss(?:t)?\W+(?:\w+\W+)?(?:alles|das alles|was (?:man|ich|wir) dir)|"
        r"\bvergessen sie (?:alles|was)\b|\balles (?:davor|zuvor|vorher|bisher)(?: gesagte)?\b"
        r"\W+(?:\w+\W+){0,3}?(?:vergessen|ignorieren|irrelevant)",
        "vergiss|vergisst|vergessen|alles",
        "alles|was",
    ),
    rule(
        "override.de.void",
        IO,
        0.85,
        rf"\b{DE_QUALIFIER}\W+(?:\w+\W+)?{DE_RULES}\W+(?:\w+\W+){{0,4}}?(?:sind|gelten|ist)\W+"
        r"(?:ab sofort |jetzt |nun |hiermit )?(?:ungültig|aufgehoben|nichtig|irrelevant|"
        r"nicht mehr (?:gültig|relevant))|\babweichend (?:zu|von) (?:den )?(?:vorherigen|"
        r"bisherigen|obigen)",
        "ungültig|aufgehoben|nichtig|irrelevant|nicht|abweichend",
    ),
    rule(
        "override.de.new-task",
        IO,
        0.65,
        r"\b(?:(?:neue|folgende|weitere|echte) (?:anweisung(?:en)?|aufgaben?|instruktionen|regeln|"
        r"befehle)\W*(?::|folgen)|(?:nun|jetzt) folgen (?:neue|weitere)|deine neue aufgabe|"
        r"ihre neue aufgabe|(?:konzentriere dich|konzentrieren sie sich) (?:jetzt |nun )?auf "
        r"(?:deine|die|ihre) neue|hör(?:e)? (?:ab jetzt )?nur (?:noch )?auf mich|befolge nur "
        r"(?:noch )?meine|ab (?:jetzt|sofort) gelten nur)",
        "neue|folgende|weitere|echte|folgen|deine|ihre|konzentriere|konzentrieren|hör|höre|"
        "befolge|gelten",
    ),
    # instruction-override: French and Spanish
    rule(
        "override.fr.previous",
        IO,
        0.85,
        rf"\b{FR_DROP}{gap(4)}{FR_RULES}\b|\bnouvelles? (?:instructions|consignes|règles)\s*:"
        r"|\b(?:ta|votre) nouvelle (?:mission|tâche)\b|\boublie[sz]? tout\b",
        "ignor|oubli|compte|suis|suivez|suivre|abstraction|abandonn|effac|tomber|nouvelle|"
        "nouvelles",
        "instructions|consignes|directives|règles|indications|ordres|mission|tâche|tout",
    ),
    rule(
        "override.es.previous",
        IO,
        0.85,
        rf"\b{ES_DROP}{gap(4)}{ES_RULES}\b|\bnuevas (?:instrucciones|reglas)\s*:"
        r"|\btu nueva (?:tarea|misión|mision)\b|\bolvid(?:a|e) (?:todo|lo que)\b",
        "ignor|olvid|descart|omite|omita|omitir|caso|sigas|obedezcas|deja|nueva|nuevas",
        "instrucciones|reglas|indicaciones|directrices|órdenes|normas|documentos|tarea|misión|"
        "mision|todo|lo",
    ),
    rule(
        "override.xx.previous",
        IO,
        0.85,
        rf"(?<!\w){XX_DROP}{gap(4)}{XX_RULES}(?!\w)|(?<!\w){XX_RULES}{gap(3)}{XX_DROP}(?!\w)",
        "ignora|dimentica|trascura|ignore|esqueça|esqueca|esquece|desconsidere|negeer|vergeet|"
        "zignoruj|zapomnij|pomiń|игнорируй|игнорируйте|забудь|забудьте|обращай|yok|unut|"
        "görmezden|zaboravi|ignoriraj|glöm|ignorera|glem|ignorer",
        "istruzioni|regole|indicazioni|instruções|instrucoes|regras|instructies|regels|"
        "opdrachten|instrukcje|polecenia|zasady|инструкции|указания|правила|talimatları|"
        "talimatlar|kuralları|instrukcije|upute|pravila|instruktioner|regler|instruksjoner",
    ),
)
