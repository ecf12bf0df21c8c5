UPDATE sequences SET value = value + 1 WHERE name = 'state_version'
RETURNING value
