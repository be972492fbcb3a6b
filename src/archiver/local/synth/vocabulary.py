"""The words a synthetic corpus is made of: names, teams, recipes, messages, errors, events.

Non-ASCII text (accents, CJK, emoji) is deliberate: the archive must keep it intact.
Weights are relative draw frequencies of envelopes and version scenarios.
"""

from __future__ import annotations

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
PEOPLE = (
    "Gabriel Sim", "Alex Nur", "Ariel Quinn", "Taylor Cruz", "José Álvarez", "Zoë Müller",
    "Søren Håkansson", "Ana Łukasiewicz", "李雷", "山田 太郎", "김민준", "Priya Raghunathan",
    "Chloé Dubois", "Mateus Gonçalves", "Ömer Yıldız", "Олег Петров",
)  # fmt: skip
TEAMS = (
    "ACME",
    "Globex Ops",
    "Initech HR",
    "Umbrella Logistics",
    "Société Générale d'Intégration",
    "株式会社サンプル",
)
RECIPE_NAMES = (
    "Update customer contact details", "Employee onboarding", "Data processing task",
    "Sync Salesforce accounts to NetSuite", "Nightly invoice export", "Créer les commandes clients",
    "Bestellungen an SAP übertragen", "注文データを同期する", "Slack alerts for failed payments 🚨",
    "Lead scoring", "Ticket triage → Jira", "Close won opportunities", "Candidate in progress on Greenhouse",
    "[CICD] | FUN-003 | Deploy via Projects", "Renewals pipeline", "同步客户数据",
)  # fmt: skip
FOLDERS = (
    "Home",
    "Home/Functions",
    "Home/Finance",
    "Home/HR/Onboarding",
    "Home/Ventes & Marketing",
    "Home/運用",
)
MESSAGES = (
    "Order received ✅", "Commande reçue, merci !", "注文を処理しました", "处理完成 🎉", "Überweisung fällig",
    "Café déjà vu 🚀", "Заказ создан", "Payment captured", "Contact upserted", "¡Listo! 👍",
)  # fmt: skip
ERRORS = (
    ("Bad data sent to API server", "Invalid Salesforce ID value(s) for: AccountId"),
    ("Timeout", "Request timed out after 180 seconds"),
    ("Authentication error", "401 Unauthorized: token expired"),
    ("Rate limit exceeded", "429 Too Many Requests: retry after 60s"),
    ("Data error", "Champ obligatoire manquant : « Nom du client »"),
    ("Server error", "500 Internal Server Error — upstream unavailable"),
)
PLAIN_ERRORS = (
    "Net::ReadTimeout: execution expired",
    "undefined method `[]' for nil:NilClass",
    "Job was stopped because the recipe was stopped",
)
AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TZ_NAMES = {-480: "PST", -420: "PDT", -240: "EDT", -180: "BRT", 0: "UTC", 60: "CET", 120: "CEST", 330: "IST"}
TZ_NAMES |= {540: "JST", 600: "AEST"}
OFFSETS = tuple(TZ_NAMES)
TRIGGERS = ("clock", "function", "salesforce", "webhook")
ACTIONS = (
    ("logger", "log_message"),
    ("salesforce", "create_custom_object"),
    ("salesforce", "search_sobjects"),
    ("rest", "make_request"),
    ("snowflake", "run_custom_sql"),
    ("slack", "post_message"),
    ("netsuite", "search_records"),
    ("jira", "create_issue"),
    ("lookup_table", "lookup_entry"),
    ("google_sheets", "add_spreadsheet_row"),
)
STAT_NAMES = (
    "map_input",
    "normalize_input",
    "render_input",
    "execute",
    "parse_output",
    "summarize_output_report",
)
ENVELOPE_WEIGHTS = (
    ("bare", 38),
    ("details", 27),
    ("status", 15),
    ("summary", 12),
    ("log_entries", 3),
    ("workato_event", 3),
    ("json_string", 2),
)
SCENARIO_WEIGHTS = (
    ("single", 900),
    ("progress", 50),
    ("progress3", 20),
    ("rerun", 15),
    ("rerun_late", 5),
    ("late_progress", 5),
    ("tie", 5),
)
STAMP14_SCENARIOS = frozenset({"rerun_late", "late_progress", "tie"})
# (event, resource type); details extras are added per event in _event().
EVENTS = (
    ("user_login", "User"), ("user_logout", "User"), ("recipe_created", "Flow"), ("recipe_updated", "Flow"),
    ("recipe_deleted", "Flow"), ("recipe_copied", "Flow"), ("recipe_renamed", "Flow"),
    ("recipe_started", "Flow"), ("recipe_stopped", "Flow"), ("folder_created", "Folder"),
    ("folder_deleted", "Folder"), ("connection_created", "SharedAccount"),
    ("connection_updated", "SharedAccount"), ("connection_connected", "SharedAccount"),
    ("connection_disconnected", "SharedAccount"), ("connection_deleted", "SharedAccount"),
    ("package_exported", "Package"), ("package_imported", "Package"), ("manifest_updated", "ExportManifest"),
    ("team_invitation_created", "MemberInvitation"), ("team_invitation_accept", "MemberInvitation"),
    ("team_membership_deleted", "ManagedUserGrant"), ("connector_updated", "Adapter"),
)  # fmt: skip


def email(name: str, index: int) -> str:
    """A deterministic address for a person's name (ASCII letters and digits only)."""
    local = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum()) or "user"
    return f"{local}{index}@example.com"


def trigger_step(trigger: str) -> tuple[str, str]:
    """(adapter, operation) of a recipe's trigger line."""
    return {
        "clock": ("clock", "scheduled_event"),
        "function": ("workato_recipe_function", "execute"),
        "salesforce": ("salesforce", "new_or_updated_object"),
        "webhook": ("workato_webhooks", "new_event"),
    }[trigger]
