"""Everything that knows Chronos-2's internals: its module layout and forward hooks (``hooks``, ``taps``,
``forward``), block matching (``layer_map``), configs of new models (``architecture``, ``student``), structured
pruning (``pruning``), finding and loading checkpoints (``checkpoints``, ``loading``), and writing them as upstream
publishes them (``export``, ``model_card``).

May import: ``errors``, ``config``, ``training`` (the output folder's layout), chronos-forecasting and torch.
"""
