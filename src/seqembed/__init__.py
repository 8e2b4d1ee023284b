"""seqembed: LSTM encoder-decoder translation and a look inside its embeddings."""

__version__ = "0.1.0"
