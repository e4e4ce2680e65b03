"""The pretrained musicnn front end (MSD and MTT taggers, Pons & Serra 2019) in PyTorch.

Modules: ``checkpoint`` (numpy reader of TF checkpoints), ``convert`` (wheel -> safetensors
model folder), ``weights`` (TF name mapping, safe loading: :func:`load_musicnn`), ``network``
(the :class:`MusiCNN` module), ``melspec`` (log-mel front end and patching, no librosa),
``inference`` (batched :func:`embed`). Submodules are imported on use: ``melspec`` alone
needs only numpy.
"""
