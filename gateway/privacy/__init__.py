"""Personal data: redaction of what leaves the log, erasure of one customer, retention per tenant."""
