"""Accounts, bearer tokens, doctor challenge tokens and Litestar guards."""
