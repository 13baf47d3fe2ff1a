"""The methods the interaction benchmark compares, each fitted on one training sample.

Every fit returns a Scores: ``h`` on the logit scale where the method has one (DELICAITE, the linear
baselines), else None; ``rank`` the score Spearman's correlation uses (h, or a peer's probability-scale
CATE); ``haic`` its rule (HAIC where it recommends HAIC); ``interval`` the (lower, upper) it shows beside
h, where it has one.

- DELICAITE: DELICAITELib's InteractionModel with its defaults (propensity-weighted when confounded).
- Baselines: Tian's lasso (DELICAITELib's TianLasso), the linear modified-covariate logistic regression
  (main effects and interactions, nearly unpenalised), the best single-covariate rule (the covariate,
  threshold and direction with the highest inverse-propensity-weighted disease-control rate on the
  training sample), all HAIC, all TACE.
- Reference: the logistic regression that knows the truth's form (true g, the terms of the true h), not
  a rule anyone could fit: its |bias of h| shows what estimation alone costs at each sample size.
- Peers, each given a tuned final stage (comparable effort): econml's DRLearner with a gradient-boosted
  final stage chosen by 3-fold cross-validation, econml's CausalForestDML tuned by its own tune() (out of
  sample R-score), causalml's X-learner on gradient boosting with its depth chosen by cross-validation.
  Peers estimate the CATE of HAIC on the PD probability; HAIC where it is negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from tian_simulation import TianSample, interaction_terms

FINAL_STAGE_GRID = {"max_depth": [2, 3], "min_samples_leaf": [10, 40], "n_estimators": [100], "learning_rate": [0.05]}
OUTCOME_GRID = {"max_depth": [2, 3], "n_estimators": [100, 200]}
RULE_QUANTILES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


@dataclass
class Scores:
    rank: np.ndarray
    haic: np.ndarray
    h: np.ndarray | None = None
    interval: tuple[np.ndarray, np.ndarray] | None = None


def _propensity_weights(train: TianSample, confounded: bool) -> np.ndarray:
    """Stabilised inverse-propensity weights from a logistic regression (1 for randomised samples)."""
    if not confounded:
        return np.ones(len(train.y))
    haic = train.T > 0
    e = LogisticRegression(max_iter=2000).fit(train.X, haic).predict_proba(train.X)[:, 1].clip(0.05, 0.95)
    return np.where(haic, haic.mean() / e, (1 - haic.mean()) / (1 - e))


# ----------------------------------------------------------------------------------------- DELICAITE
def fit_delicaite(train: TianSample, confounded: bool, seed: int, **options):
    from DELICAITELib.model import InteractionModel

    model = InteractionModel(propensity_weighting=confounded, random_state=seed, **options)
    model.fit(train.X, train.therapy, train.y)

    def predict(test: TianSample) -> Scores:
        table = model.predict_all(test.X)
        h = table["h"].to_numpy()
        return Scores(h, h < 0, h, (table["h_lower"].to_numpy(), table["h_upper"].to_numpy()))

    return predict


# ------------------------------------------------------------------------------------------ baselines
def fit_tian_lasso(train: TianSample, confounded: bool, seed: int):
    from DELICAITELib.model.tian import TianLasso

    model = TianLasso(propensity_weighting=confounded, random_state=seed).fit(train.X, train.therapy, train.y)

    def predict(test: TianSample) -> Scores:
        h, lower, upper = model.interaction_score(test.X, return_interval=True)
        return Scores(h, h < 0, h, (lower, upper))

    return predict


def fit_linear_logistic(train: TianSample, confounded: bool, seed: int):
    """logit P(PD) = a + bᵀz + T·(c + dᵀz)/2, nearly unpenalised (C = 1e4), IPW when confounded."""
    mean, scale = train.X.mean().to_numpy(), train.X.std().to_numpy()

    def design(sample: TianSample) -> np.ndarray:
        z = (sample.X.to_numpy() - mean) / scale
        return np.column_stack([z, sample.T / 2, sample.T[:, None] * z / 2])

    fit = LogisticRegression(C=1e4, max_iter=10000).fit(design(train), train.y,
                                                         sample_weight=_propensity_weights(train, confounded))
    p = train.X.shape[1]
    interaction = fit.coef_[0][p:]

    def predict(test: TianSample) -> Scores:
        h = interaction[0] + ((test.X.to_numpy() - mean) / scale) @ interaction[1:]
        return Scores(h, h < 0, h)

    return predict


def true_form_interaction(y, g, t, terms) -> tuple[float, np.ndarray]:
    """(c, d) of logit P(PD) = a + b·g + T·(c + dᵀterms)/2, unpenalised: h = c + dᵀterms (shared by
    both benchmarks' true-form references)."""
    import statsmodels.api as sm

    design = np.column_stack([np.ones(len(g)), g, t / 2, t[:, None] * terms / 2])
    coefficients = sm.Logit(np.asarray(y, dtype=float), design).fit(disp=0, maxiter=200).params
    return float(coefficients[2]), coefficients[3:]


def fit_true_form_logistic(train: TianSample, confounded: bool, seed: int):
    """A reference no one could fit, not a baseline: the logistic regression that knows the truth's form,
    logit P(PD) = a + b·g(x) + T·(c + dᵀf(x))/2, with g the true main effect and f the terms the true h is
    linear in (tian_simulation.interaction_terms); unpenalised and unweighted (with g known, the confounders
    are adjusted for). Only its four coefficients of h are estimated, so its mean |bias of h| is what
    estimation alone costs at the setting's sample size: the floor against which the targets are read."""
    intercept, slopes = true_form_interaction(train.y, train.g, train.T,
                                              interaction_terms(train.X.to_numpy(), train.h_form))

    def predict(test: TianSample) -> Scores:
        h = intercept + interaction_terms(test.X.to_numpy(), test.h_form) @ slopes
        return Scores(h, h < 0, h)

    return predict


def fit_best_single_rule(train: TianSample, confounded: bool, seed: int):
    """HAIC where x_j > c (or ≤ c): the covariate, threshold (a training quantile) and direction with the
    highest Hájek-weighted disease-control rate on the training sample."""
    w = _propensity_weights(train, confounded)
    haic_received = train.T > 0
    control = 1 - train.y
    best = (-np.inf, None)
    for column in train.X.columns:
        x = train.X[column].to_numpy()
        for q in RULE_QUANTILES:
            cut = float(np.quantile(x, q))
            for above in (True, False):
                rule = x > cut if above else x <= cut
                follows = rule == haic_received
                value = np.sum(w * follows * control) / max(np.sum(w * follows), 1e-12)
                if value > best[0]:
                    best = (value, (column, cut, above))
    column, cut, above = best[1]

    def predict(test: TianSample) -> Scores:
        x = test.X[column].to_numpy()
        haic = x > cut if above else x <= cut
        return Scores(np.where(haic, -1.0, 1.0), haic)

    return predict


def _constant(haic: bool):
    def fit(train: TianSample, confounded: bool, seed: int):
        def predict(test: TianSample) -> Scores:
            rule = np.full(len(test.y), haic)
            return Scores(np.where(rule, -1.0, 1.0), rule)

        return predict

    return fit


# ---------------------------------------------------------------------------------------------- peers
def _tuned_regressor(seed: int):
    return GridSearchCV(GradientBoostingRegressor(random_state=seed), FINAL_STAGE_GRID, cv=3, scoring="neg_mean_squared_error")


def _tuned_classifier(seed: int):
    return GridSearchCV(GradientBoostingClassifier(random_state=seed), OUTCOME_GRID, cv=3, scoring="neg_log_loss")


def _cate_scores(cate) -> Scores:
    cate = np.asarray(cate, dtype=float).ravel()
    return Scores(cate, cate < 0)


def fit_drlearner(train: TianSample, confounded: bool, seed: int):
    from econml.dr import DRLearner

    est = DRLearner(model_propensity=LogisticRegression(max_iter=2000), model_regression=_tuned_classifier(seed),
                    model_final=_tuned_regressor(seed), discrete_outcome=True, random_state=seed)
    est.fit(train.y, train.T, X=train.X.to_numpy())
    return lambda test: _cate_scores(est.effect(test.X.to_numpy(), T0=-1.0, T1=1.0))


def fit_causal_forest(train: TianSample, confounded: bool, seed: int):
    from econml.dml import CausalForestDML

    est = CausalForestDML(model_y=_tuned_classifier(seed), model_t=LogisticRegression(max_iter=2000),
                          discrete_treatment=True, discrete_outcome=True, random_state=seed)
    est.tune(train.y, train.T, X=train.X.to_numpy())
    est.fit(train.y, train.T, X=train.X.to_numpy())
    return lambda test: _cate_scores(est.effect(test.X.to_numpy(), T0=-1.0, T1=1.0))


def fit_xlearner(train: TianSample, confounded: bool, seed: int):
    from causalml.inference.meta import BaseXClassifier

    outcome = _tuned_classifier(seed).fit(train.X, train.y).best_estimator_  # depth chosen by cross-validation
    est = BaseXClassifier(outcome_learner=outcome, effect_learner=_tuned_regressor(seed), control_name="TACE")
    est.fit(train.X.to_numpy(), train.therapy.astype(str), train.y)
    return lambda test: _cate_scores(est.predict(test.X.to_numpy(), verbose=False))


OWN = {"delicaite": fit_delicaite}
BASELINES = {"tian_lasso": fit_tian_lasso, "linear_logistic": fit_linear_logistic,
             "best_single_rule": fit_best_single_rule, "all_haic": _constant(True), "all_tace": _constant(False)}
REFERENCES = {"true_form_logistic": fit_true_form_logistic}  # not a rule: the noise floor of the setting
PEERS = {"econml_drlearner": fit_drlearner, "econml_causal_forest": fit_causal_forest, "causalml_xlearner": fit_xlearner}
METHODS = {**OWN, **BASELINES, **REFERENCES, **PEERS}
