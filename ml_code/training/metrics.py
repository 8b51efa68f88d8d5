"""Per-customer ranking metrics, vectorised over a long table of scored candidates.

Inputs are aligned arrays (or Series): the customer of each row, the model score and the
binary or graded relevance (purchased within the label horizon). Each customer's candidates are
ranked by decreasing score, ties broken by row order so results are deterministic. Averages run
over customers with at least one relevant candidate, the usual convention for offline
recommender evaluation. Monitoring imports these to compute the same numbers on captured
traffic joined with ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def per_customer_metrics(
    groups: Sequence, scores: Sequence[float], relevance: Sequence[float], k: int = 10
) -> pd.DataFrame:
    """precision, recall and NDCG at ``k`` for each customer with a relevant candidate."""
    frame = pd.DataFrame(
        {
            "group": np.asarray(groups),
            "score": np.asarray(scores, dtype="float64"),
            "rel": np.asarray(relevance, dtype="float64"),
        }
    )
    frame = frame.sort_values(["group", "score"], ascending=[True, False], kind="stable")
    rank = frame.groupby("group", sort=False).cumcount().to_numpy() + 1
    rel = frame["rel"].to_numpy()
    top = rank <= k
    gain = np.where(top, rel / np.log2(rank + 1.0), 0.0)

    ideal_frame = frame.sort_values(["group", "rel"], ascending=[True, False], kind="stable")
    ideal_rank = ideal_frame.groupby("group", sort=False).cumcount().to_numpy() + 1
    ideal = np.where(
        ideal_rank <= k, ideal_frame["rel"].to_numpy() / np.log2(ideal_rank + 1.0), 0.0
    )
    by_group = pd.DataFrame(
        {
            "hits": pd.Series(np.where(top, rel > 0, False), index=frame.index)
            .groupby(frame["group"])
            .sum(),
            "relevant": (frame["rel"] > 0).groupby(frame["group"]).sum(),
            "dcg": pd.Series(gain, index=frame.index).groupby(frame["group"]).sum(),
            "idcg": pd.Series(ideal, index=ideal_frame.index).groupby(ideal_frame["group"]).sum(),
        }
    )
    by_group = by_group[by_group["relevant"] > 0]
    return pd.DataFrame(
        {
            f"precision_at_{k}": by_group["hits"] / k,
            f"recall_at_{k}": by_group["hits"] / by_group["relevant"],
            f"ndcg_at_{k}": by_group["dcg"] / by_group["idcg"],
        }
    )


def _mean(column: pd.Series) -> float:
    return float(column.mean()) if len(column) else float("nan")


def precision_at_k(
    groups: Sequence, scores: Sequence[float], relevance: Sequence[float], k: int = 10
) -> float:
    """Mean share of each customer's top ``k`` that is relevant (divides by ``k``)."""
    return _mean(per_customer_metrics(groups, scores, relevance, k)[f"precision_at_{k}"])


def recall_at_k(
    groups: Sequence, scores: Sequence[float], relevance: Sequence[float], k: int = 10
) -> float:
    """Mean share of each customer's relevant candidates that reach the top ``k``."""
    return _mean(per_customer_metrics(groups, scores, relevance, k)[f"recall_at_{k}"])


def ndcg_at_k(
    groups: Sequence, scores: Sequence[float], relevance: Sequence[float], k: int = 10
) -> float:
    """Mean normalised discounted cumulative gain of each customer's top ``k``."""
    return _mean(per_customer_metrics(groups, scores, relevance, k)[f"ndcg_at_{k}"])


def ranking_metrics(
    groups: Sequence, scores: Sequence[float], relevance: Sequence[float], k: int = 10
) -> dict[str, float]:
    """Mean precision, recall and NDCG at ``k``, keyed ``precision_at_<k>`` etc."""
    table = per_customer_metrics(groups, scores, relevance, k)
    return {name: _mean(table[name]) for name in table.columns}
