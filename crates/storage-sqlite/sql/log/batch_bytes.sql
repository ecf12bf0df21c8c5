SELECT bytes FROM batches WHERE rowid = ?1
