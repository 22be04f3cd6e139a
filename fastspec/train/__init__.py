"""Training of the pretrained models of :mod:`fastspec.models.pretrained`.

Run ``python -m fastspec.train digits-ar | digits-denoiser | text-mlm`` (needs the
``train`` extra: ``pip install 'fastspec[train]'``, i.e. torch and scikit-learn).
Importing this package imports neither; :mod:`fastspec.train.data` and
:mod:`fastspec.train.baselines` need numpy (and scikit-learn for the digits).
"""
