"""Tenants' own assistants: the platform's skills + the tenant's settings + the tenant's language data."""
