"""Feature definitions (the contract shared with serving and the feature store) and builders."""
