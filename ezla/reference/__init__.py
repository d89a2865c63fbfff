"""Reference data clinic software caches: dictionaries, the rules catalogue, problem pages."""
