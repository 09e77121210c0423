"""docassist pipelines: everything but HTTP."""
