"""Model serving on the SageMaker scikit-learn container contract, with data capture."""
