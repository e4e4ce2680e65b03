"""The model: the pretrained musicnn front end, the genre network, the model directory format, inference (path -> Prediction)."""
