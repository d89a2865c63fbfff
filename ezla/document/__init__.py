"""The e-ZLA document format (namespace ``urn:ezla:sick-leave:1``): the model, its XML codec and
schema. Shared by issuance, which accepts documents, and the registry, which re-reads what it is
sent from the signed bytes; it knows no database and no web framework."""
