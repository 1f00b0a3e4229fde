"""Host-side training: models, data, training, transfer, distillation, cv (`train` extra)."""
