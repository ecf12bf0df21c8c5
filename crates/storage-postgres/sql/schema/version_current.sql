SELECT COALESCE(MAX(version), 0) FROM skiff.schema_migrations
