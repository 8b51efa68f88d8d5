"""ML code the mlops-kit platform runs: the retail recommendation workload.

Every stage is an importable module and a script on the SageMaker container contract, so the
same file runs as a SageMaker job (``python path/to/script.py``) and locally (``python -m``):

=============  ==============================================================================
generate       ``python -m ml_code.data.generate --output DIR [--seed --customers --items
               --start-date --days --scenario --shift-day]``
validate       ``python -m ml_code.data.validate --input DIR --output DIR --report DIR
               [--as-of DATE] [--max-age-days N]`` (exit 1 on a failing batch)
version        ``python -m ml_code.lineage --dataset DIR|s3://... --store DIR|s3://...``
features       ``python -m ml_code.features.build --input DIR --output DIR [--cutoff DATE]``
train          ``SM_CHANNEL_TRAIN=... SM_CHANNEL_VALIDATION=... SM_MODEL_DIR=...
               python -m ml_code.training.train [--learning-rate --max-iter --seed ...]``
evaluate       ``python -m ml_code.training.evaluate --model DIR|model.tar.gz --test DIR
               --output DIR``
=============  ==============================================================================

The dataset schema is in ``ml_code.data.schema``; the feature contract shared with serving and
the feature store in ``ml_code.features.definitions``.
"""
