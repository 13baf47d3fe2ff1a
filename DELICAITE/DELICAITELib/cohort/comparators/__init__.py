"""The study's comparators, trained by `delicaite cohort train` beside DELICAITE.

models.py    clinical logistic regression, gradient boosting, one-hidden-layer MLP: fit with scikit-learn,
             predict from plain arrays (so saved models need no pickle)
files.py     save/load a fitted comparator as checksummed weights.npz + model.json
"""
