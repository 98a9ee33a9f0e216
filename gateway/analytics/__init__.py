"""Conversation analytics: containment, escalations, fallback, knowledge base, CSAT, human service times."""
