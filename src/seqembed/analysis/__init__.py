"""Looking inside the embeddings, every figure beside its chance level."""
