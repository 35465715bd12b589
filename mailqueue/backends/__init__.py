"""Email backends. Each module exports a class named ``EmailBackend``; choose one by dotted path."""
