INSERT INTO skiff.schema_migrations (version, name) VALUES ($1, $2)
