"""Slack channel: customers in DMs / mentions / ``/support``, agents in an escalation channel (Bolt, HTTP mode)."""
