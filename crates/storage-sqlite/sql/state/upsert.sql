INSERT INTO state (key, value, version) VALUES (?1, ?2, ?3)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version
