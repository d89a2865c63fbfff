"""Transactional outbox and workers: every e-ZLA event reaches registry, employer and patient."""
