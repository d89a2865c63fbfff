"""The audit trail: security-relevant events of every domain, hash-chained, with signed checkpoints."""
