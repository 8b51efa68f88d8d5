"""Training, evaluation and ranking metrics of the retail recommender."""
