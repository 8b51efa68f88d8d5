"""mlops-kit control plane: reusable Pulumi components and the kit's own tooling."""
