ROLLBACK TO command
