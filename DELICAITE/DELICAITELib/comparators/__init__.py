"""The study's comparators and the cohort's split by centre, as used by `delicaite cohort train`
(the job itself is DELICAITELib/cohort_training.py; the trained folder is read by cohort_models.py).

splits.py    training centre / internal test / external test, and the validation share for model choice
models.py    clinical logistic regression, gradient boosting, one-hidden-layer MLP: fit with scikit-learn,
             predict from plain arrays (so saved models need no pickle)
files.py     save/load a fitted comparator as checksummed weights.npz + model.json
"""
