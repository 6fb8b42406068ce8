"""Plain-text renderings of a notification, shared by the e-mail, the inbox and the fallback texts."""

from __future__ import annotations

from novacron.notify.model import AlertSummary, IncidentNotification

TOP_ALERTS = 5  # how many alerts a message lists; the rest are counted


def priority_label(notification: IncidentNotification) -> str:
    """``P1`` … ``P5``."""
    return f"P{notification.priority}"


def headline(notification: IncidentNotification) -> str:
    """One line: ``[P1 critical] Opened: <title>``."""
    n = notification
    return f"[{priority_label(n)} {n.severity.value}] {n.action.value.capitalize()}: {n.title}"


def alert_line(alert: AlertSummary) -> str:
    """``name{label="value",…} = value`` (the alert's identifying part)."""
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(alert.labels.items()) if k != "alertname")
    value = "" if alert.value is None else f" = {alert.value:g}"
    return f"{alert.name}{{{labels}}}{value}"


def top_alerts(notification: IncidentNotification) -> tuple[list[AlertSummary], int]:
    """The alerts a message lists, and how many more there are."""
    shown = list(notification.alerts[:TOP_ALERTS])
    return shown, len(notification.alerts) - len(shown)


def plain_text(notification: IncidentNotification) -> str:
    """The whole notification as text, for an e-mail body or the local inbox."""
    n = notification
    lines = [
        headline(n),
        "",
        f"Status: {n.status.value}   Severity: {n.severity.value}   Priority: {priority_label(n)}",
        f"Services: {', '.join(n.services) or '(none recorded)'}",
        f"Started: {n.started_at.isoformat()}",
    ]
    if n.summary:
        lines += ["", n.summary]
    shown, more = top_alerts(n)
    if shown:
        lines += ["", f"Alerts ({len(n.alerts)}):"]
        lines += [f"- {alert_line(alert)}" for alert in shown]
        if more:
            lines.append(f"- … and {more} more")
    if n.url:
        lines += ["", f"Open the incident: {n.url}"]
    lines += ["", f"Incident {n.incident_id} of tenant {n.tenant}, update #{n.sequence}."]
    return "\n".join(lines)
