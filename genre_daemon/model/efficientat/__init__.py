"""The second pretrained front end: EfficientAT's mn04_as AudioSet tagger (Schmid et al. 2023, MIT) in PyTorch.

Modules: ``melspec`` (its log-mel input, torch float32, no torchaudio), ``network`` (the
:class:`~genre_daemon.model.efficientat.network.MN04` MobileNetV3), ``weights`` (the shipped
safetensors and class list, refused unless their sha256 is in ``provenance.json``), ``convert``
(the one-time ``.pt`` -> safetensors converter), ``tagger`` (the public API:
:class:`~genre_daemon.model.efficientat.tagger.EfficientAT`, 32 kHz audio -> per-10-s-window
logits (527) and embeddings (384), and its 50 music-genre classes). Submodules are imported on use.
"""
