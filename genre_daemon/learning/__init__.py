"""Learning from the user: labels, the feature cache, datasets, fitting, the train/evaluate workflows, rehearsal, the background retrain, the gate, model versions."""
