"""The translator: model, decoding, training, checkpoints, evaluation."""
