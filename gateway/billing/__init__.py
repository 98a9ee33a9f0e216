"""Subscription plans, the usage ledger, quota enforcement and invoices."""
