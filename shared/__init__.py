"""The contract between the API and the workers: specs, settings, storage, job store, key layout."""
