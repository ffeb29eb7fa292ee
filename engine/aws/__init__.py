"""AWS access: client construction, the catalogue of operations teiji calls, thin adapters."""
