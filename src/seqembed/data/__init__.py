"""Data: reading corpora, segmenting, vocabularies, splits and batches."""
