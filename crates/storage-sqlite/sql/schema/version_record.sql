INSERT INTO schema_version (version, name, applied_at_ms) VALUES (?1, ?2, ?3)
