"""Incident notifications: Slack, PagerDuty, Opsgenie, signed webhooks, e-mail via SNS, the local inbox."""
