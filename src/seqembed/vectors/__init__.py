"""Word vectors as plain data: the embedding table and its file formats."""
