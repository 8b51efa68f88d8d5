"""ML code the mlops-kit platform runs: data, features, training, serving and monitoring.

Every stage is both an importable module and a script following the SageMaker container
contract, so the same file runs as a SageMaker job and as a local process.
"""
